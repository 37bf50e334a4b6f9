"""Cost of the clock sanity check in a reader thread, and how fast it decides.

A device at 1 kHz read in batches of 4 samples (the reader's usual batch at that rate) for 10 minutes of
device time, host times late by exponential jitter with a 20-80 ms stall every second, and a clock 2000 ppm fast.
Printed: microseconds per :meth:`TickRateCheck.update` (every batch; a refit once a second included), the
envelope points kept, the device time until the warning, and the final estimate.

Run: ``.venv/bin/python bench/clockcheck.py [--minutes 10] [--ppm 2000]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from treadlab.acquisition.clockcheck import TickRateCheck


def pairs(minutes: float, ppm: float, rate_hz: float = 1000.0, clock_hz: float = 1e6, seed: int = 1):
    """Device ticks and late host times of every sample."""
    rng = np.random.default_rng(seed)
    k = np.arange(int(minutes * 60 * rate_hz))
    ticks = (k * clock_hz // rate_hz).astype(np.uint64)
    true_s = ticks.astype(float) / (clock_hz * (1 + ppm * 1e-6))
    host = true_s + rng.exponential(0.0003, len(k))
    for start in np.arange(0, minutes * 60, 1.0) + rng.uniform(0, 1, int(minutes * 60)):
        hit = (true_s > start) & (true_s < start + rng.uniform(0.02, 0.08))
        host[hit] += rng.uniform(0.02, 0.08)
    return ticks, host


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--ppm", type=float, default=2000.0)
    args = ap.parse_args()
    ticks, host = pairs(args.minutes, args.ppm)
    check = TickRateCheck(1e6, 1000.0)
    batch = 4
    warned_at = None
    t0 = time.perf_counter()
    n_batches = 0
    for a in range(0, len(ticks), batch):  # one call per batch, as the reader thread makes them
        if check.update(ticks[a:a + batch], host[a:a + batch]) and warned_at is None:
            warned_at = float(ticks[a]) / 1e6
        n_batches += 1
    elapsed = time.perf_counter() - t0
    print(f"clock check: {n_batches} batches of {batch} samples ({args.minutes:g} min at 1 kHz): "
          f"{elapsed / n_batches * 1e6:.1f} us per batch, {elapsed / (args.minutes * 60) * 100:.3f} % of one core")
    print(f"envelope points kept: {check.n_points} (window {check.window_s:g} s)")
    print(f"warning after {warned_at:.1f} s of device time" if warned_at is not None else "no warning")
    print(f"final: {check.final().describe()}")


if __name__ == "__main__":
    main()
