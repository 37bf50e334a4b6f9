"""Force-plate analysis: known answers on simulated plates, and the time to import and analyse a long session.

    python bench/force.py [--minutes 60] [--rate-hz 1000] [--known-only | --timing-only]

Known answers (per scenario, single belt, from the gait model with ground truth, tests/forcesim.py): contacts found,
initial-contact error, feet right, strike class right, AVLR/VILR ratio to the truth, asymmetry error.
Timing: a ``--minutes`` session at ``--rate-hz`` written as a text export (Time Fx Fy Fz COPx COPy), imported with
``lab import``, then a bare read of every channel, then ``analyze(source="force")``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from forcesim import ORIGIN_MM, simulate_plate  # noqa: E402

from treadlab.analysis import analyze, read_session, symmetry_index  # noqa: E402
from treadlab.analysis.api import _timed  # noqa: E402
from treadlab.analysis.force import ForceContacts, ForceStrikeIndex, PlateAxes, assign_feet, force_steps, plate_signals  # noqa: E402
from treadlab.analysis.force.source import LOADING_CUTOFF_HZ  # noqa: E402
from treadlab.analysis.metrics import LoadingRates  # noqa: E402
from treadlab.drivers.sim.gait import RunnerParams  # noqa: E402
from treadlab.lab.cli import main as lab  # noqa: E402

SCENARIOS = {
    "rearfoot 3.5 m/s, LR asym +12%": {"strike_left": "rearfoot", "strike_right": "rearfoot", "speed_mps": 3.5,
                                           "loading_rate_asym_pct": 12.0},
    "midfoot 3.0 m/s": {"strike_left": "midfoot", "strike_right": "midfoot", "speed_mps": 3.0},
    "forefoot 4.5 m/s, LR asym -8%": {"strike_left": "forefoot", "strike_right": "forefoot", "speed_mps": 4.5,
                                          "cadence_spm": 180, "contact_time_ms": 200, "loading_rate_asym_pct": -8.0},
    "mixed R rearfoot / L forefoot": {"strike_left": "forefoot", "strike_right": "rearfoot", "speed_mps": 3.5},
}


def known_answers(seconds: float, rate_hz: float) -> None:
    axes = PlateAxes.from_axes({"vertical": "z", "forward": "x"})
    print(f"known answers: {seconds:g} s per scenario at {rate_hz:g} Hz, plate noise SD 5 N, COP from moments")
    for name, kw in SCENARIOS.items():  # one simulated session per scenario
        p = RunnerParams(seed=7, **kw)
        t, ch, model = simulate_plate(p, seconds, rate_hz, noise_n=5.0)
        ch = {k: v for k, v in ch.items() if not k.startswith("COP")}
        sig = plate_signals(t, ch, axes, ORIGIN_MM, None, ch["belt_speed"])
        tab, _ = force_steps(sig, np.empty(0, np.int64), model.bw_n, model.bw_n, p.foot_length_mm, float("nan"),
                             ForceContacts(), LoadingRates(), ForceStrikeIndex(), LOADING_CUTOFF_HZ)
        feet, _ = assign_feet(tab["ic_s"].to_numpy(), tab["lateral_mm"].to_numpy())
        tab.insert(0, "foot", feet)
        steps = _timed(tab, np.empty(0))
        truth = model.steps_for_rate(rate_hz)
        truth = truth[(truth["ic_s"] > 0.1) & (truth["to_s"] < seconds - 0.1)].reset_index(drop=True)
        ic = steps["ic_s"].to_numpy()
        j = np.clip(np.searchsorted(ic, truth["ic_s"].to_numpy()), 1, len(ic) - 1)
        near = np.where(np.abs(ic[j] - truth["ic_s"]) < np.abs(ic[j - 1] - truth["ic_s"]), j, j - 1)
        ok = np.abs(ic[near] - truth["ic_s"].to_numpy()) < 0.03
        m, tr = steps.iloc[near[ok]].reset_index(drop=True), truth[ok].reset_index(drop=True)
        err = np.abs(m["ic_s"] - tr["ic_s"]).to_numpy() * 1e3
        print(f"  {name}: {len(truth)} steps; contacts {ok.mean() * 100:.1f}%; IC error median "
              f"{np.median(err):.1f} ms, p95 {np.percentile(err, 95):.1f}, max {err.max():.1f} ms; "
              f"foot {np.mean(m['foot'] == tr['foot']) * 100:.1f}%; "
              f"class {np.mean(m['strike_class'] == tr['strike_class']) * 100:.1f}%; "
              f"SI error median {np.median(m['strike_index_pct'] - tr['strike_index_pct']):+.1f} pts")
        for col in ("avlr_bw_s", "vilr_bw_s"):
            r = (m[col] / tr[col]).to_numpy()
            a = symmetry_index(*(m.loc[m["foot"] == f, col].mean() for f in ("left", "right")))
            b = symmetry_index(*(tr.loc[tr["foot"] == f, col].mean() for f in ("left", "right")))
            p95 = np.percentile(np.abs(r - 1), 95) * 100
            print(f"      {col}: ratio median {np.median(r):.3f}, |err| p95 {p95:.1f}%; "
                  f"asymmetry {a:+.1f} vs truth {b:+.1f} ({a - b:+.1f} pts)")


def timing(minutes: float, rate_hz: float) -> None:
    seconds = minutes * 60.0
    p = RunnerParams(strike_left="rearfoot", strike_right="rearfoot", speed_mps=3.0, seed=3)
    t0 = time.perf_counter()
    t, ch, model = simulate_plate(p, seconds, rate_hz, noise_n=5.0)
    gen_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        txt = Path(tmp) / "long.txt"
        cols = {"Time": np.arange(1, len(t) + 1), "Fx": ch["Fx"], "Fy": ch["Fy"], "Fz": ch["Fz"],
                "COPx": np.nan_to_num(ch["COPx"]), "COPy": np.nan_to_num(ch["COPy"])}
        pd.DataFrame(cols).to_csv(txt, sep="\t", index=False, float_format="%.2f")
        out = Path(tmp) / "long.h5"
        t1 = time.perf_counter()
        rc = lab(["import", str(txt), "--out", str(out), "--rate-hz", str(rate_hz), "--vertical", "z",
                  "--forward", "x", "--body-mass", str(p.body_mass_kg), "--speed", str(p.speed_mps),
                  "--foot-length", str(p.foot_length_mm)])
        imp_s = time.perf_counter() - t1
        if rc != 0:
            raise SystemExit(f"lab import failed ({rc})")
        t2 = time.perf_counter()
        with read_session(out) as s:
            d = s.of_kind("force")[0]
            d.read_time()
            d.read_channels(list(d.channels))
        read_s = time.perf_counter() - t2
        t3 = time.perf_counter()
        with analyze(out, source="force") as ga:
            n = len(ga.steps)
        ana_s = time.perf_counter() - t3
        size_mb = out.stat().st_size / 2**20
    print(f"timing: {minutes:g} min at {rate_hz:g} Hz ({len(t):,} samples, session file {size_mb:.0f} MiB; "
          f"simulation {gen_s:.1f} s, not counted)")
    print(f"  lab import (text):        {imp_s:6.1f} s")
    print(f"  bare read (every channel): {read_s:6.1f} s")
    print(f"  analyze(source='force'):  {ana_s:6.1f} s   ({n:,} steps)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate-hz", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each known-answer scenario")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--known-only", action="store_true")
    g.add_argument("--timing-only", action="store_true")
    args = ap.parse_args()
    if not args.timing_only:
        known_answers(args.seconds, args.rate_hz)
    if not args.known_only:
        timing(args.minutes, args.rate_hz)


if __name__ == "__main__":
    main()
