"""Pressure mat against known answers: a matrix of simulated runners written straight to session files.

Run: ``PYTHONPATH=. python bench/mat_matrix.py [--quick]``. Prints, per case: steps found/missed/false, IC error
(median, p95, max, ms), strike class agreement, step width and length (found vs truth), belt speed, and the
asymmetry (SI points) error of contact time and peak force.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sessionfactory import MatSpec, truth_in, write_session  # noqa: E402
from test_analysis_known import match_steps  # noqa: E402

from treadlab.analysis import analyze, symmetry_index  # noqa: E402
from treadlab.drivers.sim.gait import RunnerParams  # noqa: E402

# strike left, strike right, cadence spm, speed m/s, asymmetry %, belt along
CASES = [
    ("rearfoot", "rearfoot", 172, 3.2, 0.0, "rows"),
    ("midfoot", "midfoot", 172, 3.2, 0.0, "rows"),
    ("forefoot", "forefoot", 172, 3.2, 0.0, "rows"),
    ("rearfoot", "forefoot", 172, 3.2, 0.0, "rows"),
    ("rearfoot", "rearfoot", 140, 2.6, 15.0, "cols"),
    ("midfoot", "midfoot", 160, 3.0, -10.0, "cols"),
    ("forefoot", "forefoot", 190, 4.0, 20.0, "cols"),
    ("midfoot", "forefoot", 180, 3.6, 10.0, "rows"),
    ("forefoot", "rearfoot", 150, 2.8, -20.0, "cols"),
    ("midfoot", "rearfoot", 185, 3.8, 0.0, "cols"),
]


def run_case(case, seed: int, duration_s: float = 6.0, tmp: Path | None = None) -> dict:
    """Write, analyse and score one case."""
    sl, sr, cad, speed, asym, along = case
    runner = RunnerParams(strike_left=sl, strike_right=sr, cadence_spm=cad, speed_mps=speed,
                          contact_time_ms=float(np.interp(cad, [140, 190], [290, 220])),
                          contact_time_asym_pct=asym / 2, peak_force_asym_pct=asym / 2, loading_rate_asym_pct=asym,
                          step_width_mm=100.0, seed=seed)
    spec = MatSpec(rows=176, cols=48) if along == "rows" else MatSpec(rows=48, cols=176, belt_axis="cols")
    p = Path(tmp or tempfile.mkdtemp()) / "mat.h5"
    p.unlink(missing_ok=True)  # the session writer never overwrites a file
    model = write_session(p, runner, duration_s=duration_s, insoles=None, mat=spec)
    with analyze(p, source="mat") as ga:
        steps, summary = ga.steps.copy(), ga.summary
    truth = truth_in(model, 0.6, duration_s + 0.4)
    inner = steps[(steps["ic_s"] > 0.6) & (steps["to_s"] < duration_s + 0.4)]
    found, tr, missed, false = match_steps(inner, truth)
    err = np.abs(found["ic_s"] - tr["ic_s"]).to_numpy() * 1e3
    asym_err = {}
    for col in ("contact_time_ms", "peak_force_bw"):
        t_si = symmetry_index(tr.loc[tr.foot == "left", col].mean(), tr.loc[tr.foot == "right", col].mean())
        asym_err[col] = abs(summary["asymmetry_si_pct"][col] - t_si)
    m = summary["mat"]
    heel_x = model.steps["x_mm"].to_numpy()  # truth step width: lateral heel distance of consecutive contacts
    width_truth = np.mean(np.abs(np.diff(heel_x)))
    return {"case": f"{sl[:4]}/{sr[:4]} {cad}spm {speed}m/s asym{asym:g} {along}", "seed": seed,
            "steps": len(tr), "missed": missed, "false": false,
            "ic_med": np.median(err), "ic_p95": np.percentile(err, 95), "ic_max": err.max(),
            "class": (found["strike_class"].to_numpy() == tr["strike_class"].to_numpy()).mean() * 100,
            "si_err": np.median(np.abs(found["strike_index_pct"] - tr["strike_index_pct"])),
            "si_max": np.max(np.abs(found["strike_index_pct"] - tr["strike_index_pct"])),
            "lr": (found["foot"].to_numpy() == tr["foot"].to_numpy()).mean() * 100,
            "width": m["step_width_m"]["mean"] * 1e3, "width_truth": width_truth, "length": m["step_length_m"]["mean"],
            "length_truth": speed * 60 / cad, "speed": summary["belt_speed_mps"],
            "ct_asym_err": asym_err["contact_time_ms"], "pf_asym_err": asym_err["peak_force_bw"]}


def main() -> None:
    quick = "--quick" in sys.argv
    seeds = [12] if quick else [12, 3, 21]
    fmt = ("{case:38s} s{seed:<3d} n={steps:3d} miss={missed} false={false} "
           "IC med/p95/max={ic_med:4.1f}/{ic_p95:4.1f}/{ic_max:4.1f} class={class:5.1f}% "
           "|dSI| med/max={si_err:4.1f}/{si_max:4.1f} LR={lr:5.1f}% width={width:5.1f}/{width_truth:5.1f}mm "
           "len={length:.3f}/{length_truth:.3f} v={speed:.2f} dCT_SI={ct_asym_err:.1f} dPF_SI={pf_asym_err:.1f}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            for seed in seeds:
                print(fmt.format(**run_case(case, seed, tmp=Path(tmp))), flush=True)
    print(f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
