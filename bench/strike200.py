"""Known-answer figures per case: IC error, VILR/AVLR relative error, asymmetry error, for any seeds.

The cases of ``tests/test_analysis_known.py`` (and any others given) are written by ``tests/sessionfactory.py``
into a cache folder (once per case and seed), analysed with :func:`treadlab.analysis.analyze`, and compared
with the gait model's truth at the device's rate, exactly as the tests do. One line per case and seed: IC error
max / median / mean (ms), VILR and AVLR largest relative error and mean (%), largest asymmetry error (SI points),
strike-class agreement, missed and false steps, and the cutoff used; ``<<<`` marks a line that misses a target.

Usage: ``python bench/strike200.py [--seeds 7 8 9 10] [--only rearfoot:200:insole99] [--cache DIR]``. The
noisy corner (rear-foot strikes on a 99-sensel insole at 200 Hz) is noise-limited: run several seeds before
reading anything into one figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sessionfactory import InsoleSpec, truth_in, write_session  # noqa: E402
from test_analysis_known import CASES, DURATION_S, START_S, match_steps  # noqa: E402

from treadlab.analysis import analyze, symmetry_index  # noqa: E402
from treadlab.drivers.sim.gait import GaitModel, RunnerParams  # noqa: E402

#: Beyond the matrix: more rear-foot runners on the noisy 99-sensel insole at 200 Hz.
EXTRA = [
    ("rearfoot", 150, 280, 200, "insole99", 0.0),
    ("rearfoot", 160, 270, 200, "insole99", 0.0),
    ("rearfoot", 185, 230, 200, "insole99", -10.0),
    ("rearfoot", 190, 220, 200, "insole99", -20.0),
]


def _runner(case: tuple, seed: int) -> RunnerParams:
    strike, cadence, ct, _, _, asym = case
    return RunnerParams(strike_left=strike, strike_right=strike, cadence_spm=cadence, contact_time_ms=ct,
                        loading_rate_asym_pct=asym, contact_time_asym_pct=asym / 2, peak_force_asym_pct=asym / 2,
                        swing_offset_n=30.0, seed=seed)


def measure(case: tuple, seed: int, cache: Path) -> str:
    """Analyse one case (writing its file first when it is not cached) and format its figures."""
    strike, cadence, _, rate, layout, asym = case
    runner = _runner(case, seed)
    path = cache / f"{strike}-{cadence}-{rate}-{layout}-{asym:g}-s{seed}.h5"
    if not path.exists():
        write_session(path, runner, duration_s=DURATION_S, start_s=START_S,
                      insoles=InsoleSpec(layout=layout, rate_hz=rate))
    model = GaitModel(runner, duration_s=DURATION_S + 2.0, start_s=START_S - 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with analyze(path) as ga:
            steps, summary = ga.steps.copy(), ga.summary
    truth = truth_in(model, START_S + 0.05, START_S + DURATION_S - 0.05, rate_hz=rate)
    found, want, missed, _ = match_steps(steps, truth)
    inner = steps[(steps["ic_s"] > START_S + 0.05) & (steps["to_s"] < START_S + DURATION_S - 0.05)]
    false = match_steps(inner, model.steps)[3]
    ic_ms = (found["ic_s"] - want["ic_s"]).to_numpy() * 1e3
    vilr = found["vilr_bw_s"].to_numpy() / want["vilr_bw_s"].to_numpy() - 1
    avlr = found["avlr_bw_s"].to_numpy() / want["avlr_bw_s"].to_numpy() - 1
    agree = float((found["strike_class"].to_numpy() == want["strike_class"].to_numpy()).mean())
    asym_err = max(abs(summary["asymmetry_si_pct"][c] - symmetry_index(truth.loc[truth["foot"] == "left", c].mean(),
                                                                       truth.loc[truth["foot"] == "right", c].mean()))
                   for c in ("avlr_bw_s", "vilr_bw_s", "contact_time_ms", "peak_force_bw") if c in truth)
    ic_abs = np.abs(ic_ms)
    miss = (ic_abs.max() > 5 or np.median(ic_abs) > 3 or np.nanmax(np.abs(vilr)) > 0.1
            or np.nanmax(np.abs(avlr)) > 0.1 or asym_err > 3 or missed or false or agree < 0.95)
    return (f"{strike[:4]} {cadence} {rate:4g} {layout:8s} a{asym:+3.0f} s{seed:<3d}| IC max {ic_abs.max():4.2f} "
            f"med {np.median(ic_abs):4.2f} mean {ic_ms.mean():+5.2f} | VILR max {np.nanmax(np.abs(vilr)) * 100:5.2f}%"
            f" mean {np.nanmean(vilr) * 100:+5.2f} | AVLR max {np.nanmax(np.abs(avlr)) * 100:5.2f}% mean "
            f"{np.nanmean(avlr) * 100:+5.2f} | asym {asym_err:4.2f} | class {agree:.2f} miss {missed} false {false}"
            f" | fc {summary['parameters']['filter_cutoff_hz']['left']:.0f} Hz{'  <<<' if miss else ''}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[7])
    ap.add_argument("--only", default="", help="strike:rate:layout filter, e.g. rearfoot:200:insole99")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "treadlab-strike200")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    cases = [c.values[0] if hasattr(c, "values") else c for c in CASES] + EXTRA
    if args.only:
        strike, rate, layout = args.only.split(":")
        cases = [c for c in cases if c[0] == strike and c[3] == float(rate) and c[4] == layout]
    for seed in args.seeds:
        for case in cases:  # one analysis per case and seed
            print(measure(case, seed, args.cache), flush=True)


if __name__ == "__main__":
    main()
