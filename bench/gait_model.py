"""Gait model speed: the simulated devices generate their values with it in real time.

Prints, best of several repeats, the time to generate one second of

- a 960-sensel insole at 750 Hz (750 x 960 values, noise and baseline on), in 1 s and in 10 ms batches;
- a 16-sensel insole at 1000 Hz;
- a 48 x 112 treadmill mat at 120 Hz (and a 64 x 176 mat at 100 Hz);

as a fraction of real time (target: well under 0.1 s per second of data), plus the cost of building a 24 h model
(what a device process does at start-up) and of the ground-truth step table of 10 min.

Run: ``.venv/bin/python bench/gait_model.py [--repeats 7]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim import GaitModel, RunnerParams


def best_of(fn, repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    params = RunnerParams(noise_n=1.5, swing_offset_n=30.0)
    model = GaitModel(params, 600.0)
    insole960 = load_layout("insole960")
    insole16 = load_layout("insole16")
    t750 = 100.0 + np.arange(750) / 750.0
    t1000 = 100.0 + np.arange(1000) / 1000.0
    t120 = 100.0 + np.arange(120) / 120.0
    t100 = 100.0 + np.arange(100) / 100.0

    def batched(t, batch):
        for i in range(0, len(t), batch):
            model.insole_forces("left", t[i : i + batch], insole960)

    rows = [
        ("insole 960 sensels, 750 Hz, one call", lambda: model.insole_forces("left", t750, insole960)),
        ("insole 960 sensels, 750 Hz, 10 ms batches", lambda: batched(t750, 8)),
        ("insole 16 sensels, 1000 Hz, one call", lambda: model.insole_forces("right", t1000, insole16)),
        ("mat 48 x 112, 120 Hz, one call", lambda: model.mat_frames(t120, 48, 112, 8.47, belt_axis="cols")),
        ("mat 64 x 176, 100 Hz, one call", lambda: model.mat_frames(t100, 64, 176, 6.0, belt_axis="cols")),
    ]
    print(f"{'one second of data':45s} {'time (s)':>9s} {'x real time':>12s}")
    for name, fn in rows:
        fn()  # warm caches (layout, pressure normaliser)
        s = best_of(fn, args.repeats)
        print(f"{name:45s} {s:9.4f} {s:12.4f}")
    s = best_of(lambda: GaitModel(params, 24 * 3600.0), max(1, args.repeats // 3))
    print(f"{'build a 24 h model':45s} {s:9.4f}")
    s = best_of(lambda: GaitModel(params, 600.0).steps, 1)
    print(f"{'ground-truth steps of 10 min (1700 steps)':45s} {s:9.4f}")


if __name__ == "__main__":
    main()
