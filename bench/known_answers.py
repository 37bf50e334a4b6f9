"""Known-answer sweep: random simulated runners over the issue's whole range, analysed against the gait model.

tests/test_analysis_known.py checks a fixed matrix; this draws ``--cases`` runners at random (seeded) from the
whole space the analysis must cover (rearfoot / midfoot / forefoot, 140-190 steps/min, 16 or 99 sensels,
200-1000 Hz, -20..20 % asymmetry, swing readings at 20-40 N) and prints, per case and in total, which targets
are met: >= 99 % of steps and no false ones, IC within 5 ms, strike class >= 95 %, AVLR and VILR within 10 %,
asymmetry within 3 SI points. Usage: ``python bench/known_answers.py [--cases 40] [--seed 1] [--seconds 8]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sessionfactory import InsoleSpec, truth_in, write_session  # noqa: E402
from test_analysis_known import match_steps  # noqa: E402

from treadlab.analysis import analyze, symmetry_index  # noqa: E402
from treadlab.drivers.sim.gait import RunnerParams  # noqa: E402

START_S = 0.5


def draw(rng: np.random.Generator) -> dict:
    """One random case."""
    strike = str(rng.choice(["rearfoot", "midfoot", "forefoot"]))
    cadence = int(rng.integers(140, 191))
    return {"strike": strike, "cadence_spm": cadence, "contact_time_ms": int(round(300 - (cadence - 140) * 1.8)),
            "rate_hz": int(rng.choice([200, 250, 500, 750, 1000])), "layout": str(rng.choice(["insole16", "insole99"])),
            "asym_pct": float(rng.choice([0.0, 10.0, 15.0, 20.0]) * rng.choice([-1, 1])),
            "swing_offset_n": float(rng.uniform(20, 40)), "seed": int(rng.integers(1, 10_000))}


def run_case(case: dict, folder: Path, seconds: float) -> dict:
    """Write, analyse and score one case."""
    runner = RunnerParams(strike_left=case["strike"], strike_right=case["strike"], cadence_spm=case["cadence_spm"],
                          contact_time_ms=case["contact_time_ms"], loading_rate_asym_pct=case["asym_pct"],
                          contact_time_asym_pct=case["asym_pct"] / 2, peak_force_asym_pct=case["asym_pct"] / 2,
                          swing_offset_n=case["swing_offset_n"], seed=case["seed"])
    path = folder / f"case{case['seed']}.h5"
    model = write_session(path, runner, duration_s=seconds, start_s=START_S,
                          insoles=InsoleSpec(layout=case["layout"], rate_hz=case["rate_hz"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with analyze(path) as ga:
            steps, summary = ga.steps.copy(), ga.summary
    path.unlink()
    truth = truth_in(model, START_S + 0.05, START_S + seconds - 0.05, rate_hz=case["rate_hz"])
    f, t, missed, _ = match_steps(steps, truth)
    inner = steps[(steps["ic_s"] > START_S + 0.05) & (steps["to_s"] < START_S + seconds - 0.05)]
    _, _, _, false = match_steps(inner, model.steps)
    ic_ms = np.abs(f["ic_s"] - t["ic_s"]).to_numpy() * 1e3
    out = {"steps_ok": missed <= 0.01 * len(truth) and false == 0, "ic_max_ms": float(ic_ms.max()),
           "strike_ok_frac": float((f["strike_class"].to_numpy() == t["strike_class"].to_numpy()).mean())}
    for col in ("avlr_bw_s", "vilr_bw_s"):
        out[f"{col}_max_rel"] = float(np.nanmax(np.abs(f[col].to_numpy() / t[col].to_numpy() - 1)))
    si_err = []
    for col in ("avlr_bw_s", "vilr_bw_s", "contact_time_ms", "peak_force_bw", "impulse_bw_s"):
        if col not in truth:
            continue
        left = truth.loc[truth["foot"] == "left", col].mean()
        right = truth.loc[truth["foot"] == "right", col].mean()
        si_err.append(abs(summary["asymmetry_si_pct"][col] - symmetry_index(left, right)))
    out["si_max_err"] = float(max(si_err))
    out["pass"] = bool(out["steps_ok"] and out["ic_max_ms"] <= 5.0 and out["strike_ok_frac"] >= 0.95
                       and out["avlr_bw_s_max_rel"] <= 0.10 and out["vilr_bw_s_max_rel"] <= 0.10
                       and out["si_max_err"] <= 3.0)
    return out


def main() -> int:
    """Draw, run and print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.cases):  # one iteration per simulated session
            case = draw(rng)
            res = run_case(case, Path(tmp), args.seconds)
            rows.append({**case, **res})
            print(f"{'pass' if res['pass'] else 'FAIL'}  {case['strike']:8s} {case['cadence_spm']} spm "
                  f"{case['rate_hz']:4d} Hz {case['layout']:8s} asym {case['asym_pct']:+5.0f}%  "
                  f"IC {res['ic_max_ms']:4.1f} ms  strike {res['strike_ok_frac']:.2f}  "
                  f"AVLR {res['avlr_bw_s_max_rel']:.3f}  VILR {res['vilr_bw_s_max_rel']:.3f}  "
                  f"SI {res['si_max_err']:.1f}  steps {'ok' if res['steps_ok'] else 'BAD'}", flush=True)
    passed = sum(r["pass"] for r in rows)
    worst = {k: max(r[k] for r in rows) for k in ("ic_max_ms", "avlr_bw_s_max_rel", "vilr_bw_s_max_rel",
                                                  "si_max_err")}
    print(f"{passed} of {len(rows)} random cases meet every target ({time.perf_counter() - t0:.0f} s); worst: "
          + ", ".join(f"{k} {v:.3g}" for k, v in worst.items()))
    print(json.dumps({"cases": len(rows), "passed": passed, "worst": worst}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
