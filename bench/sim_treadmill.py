"""The simulated instrumented treadmill's value generation: how much faster than real time it runs.

Times :meth:`ForceSignalSource.raw` (the gait model, both feet's COP on the belt, spring-mass horizontal forces,
moments, noise, i32 counts) on 16 ms blocks at 1000 Hz and 2000 Hz, single and split belts, as the device process
calls it, and prints microseconds per block and the real-time factor (simulated seconds per CPU second).

    .venv/bin/python bench/sim_treadmill.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from treadlab.drivers.sim.rig import treadmill_spec
from treadlab.drivers.sim.signals import make_gait
from treadlab.drivers.sim.spec import default_calibration
from treadlab.drivers.sim.treadmill import ForceSignalSource


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="simulated seconds per case")
    args = ap.parse_args()
    gait = make_gait(None)
    print(f"{'belts':<7} {'outputs':<8} {'rate_hz':>7} {'us/16ms block':>14} {'x real time':>12}")
    for belts in ("single", "split"):
        for outputs in ("moments", "cop"):
            for rate in (1000, 2000):
                spec = treadmill_spec(belts, rate_hz=rate, treadmill={"outputs": outputs})
                gain, offset = default_calibration(spec, np.random.default_rng(1))
                src = ForceSignalSource(spec, gait, 0, gain, offset)
                block = int(0.016 * rate)
                n_blocks = int(args.seconds / 0.016)
                t_ns = (np.arange(block) * (1e9 / rate)).astype(np.int64)
                src.raw(t_ns + int(9e9))  # warm-up: imports, caches
                start = time.perf_counter()
                for i in range(n_blocks):  # one call per 16 ms block, as the device process does
                    src.raw(t_ns + int(10e9 + i * 16e6))
                cpu = time.perf_counter() - start
                print(f"{belts:<7} {outputs:<8} {rate:>7} {cpu / n_blocks * 1e6:>14.0f} "
                      f"{n_blocks * 0.016 / cpu:>12.0f}")


if __name__ == "__main__":
    main()
