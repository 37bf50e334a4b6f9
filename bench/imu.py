"""Benchmark: the IMU analysis of a long session, per sensor: time, samples/s and peak memory.

The session (by default one hour at 500 Hz of a pelvis and a trunk sensor with gyroscopes and two
accelerometer-only tibia sensors) is made from the synthetic runner of ``tests/imu_synth.py`` (exact kinematics,
noise, gyroscope bias, mounting misalignment) and written by the real session writer (``tests/imu_files.py``),
once, into the cache folder. Each measurement runs in its own child process, so its peak resident memory
(``ru_maxrss``) is its own:

- ``pelvis``: ``analyze(file, source="imu")`` on a copy of the session with the pelvis sensor only (orientation,
  alignment, events, every per-step metric, summary);
- ``all``: the same with the four sensors.

Usage: ``python bench/imu.py [--minutes 60] [--rate 500] [--cache DIR]``. Target: under 5 s per sensor for an
hour at 500 Hz, memory bounded (the raw data is read a block at a time; see ``docs/analysis.md``). The CPU time
is printed beside the wall time: on a shared machine the wall time follows the load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

ANALYSE = r"""
import json, os, resource, sys, time
from treadlab.analysis import analyze, json_clean
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c0 = time.process_time()
t0 = time.perf_counter()
with analyze(sys.argv[1], source="imu") as ga:
    text = json.dumps(json_clean(ga.summary))
    steps = len(ga.steps)
    n = sum(d.n_samples for d in ga.session.of_kind("imu"))
    sensors = len(ga.session.of_kind("imu"))
dt = time.perf_counter() - t0
cpu = time.process_time() - c0
print(json.dumps({"s": dt, "cpu_s": cpu, "steps": steps, "samples": n, "sensors": sensors, "base_kib": base,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "load": os.getloadavg()[0]}))
"""


def make(path: Path, minutes: float, rate_hz: float, placements: tuple[str, ...]) -> None:
    from imu_files import runner_session
    from imu_synth import Runner

    r = Runner(rate_hz=rate_hz, stand_s=10.0, run_s=minutes * 60.0 - 10.0, mount_deg=(7.0, -9.0, 5.0),
               gyro_bias_dps=(0.6, -0.8, 0.5), gyro_noise_dps=0.3, acc_noise_g=0.01, heading_drift_dps=0.02)
    runner_session(path, r, placements=placements)


def run(path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", ANALYSE, str(path)], capture_output=True, text=True, env=env,
                         check=True, timeout=1200)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "treadlab-bench-imu")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"IMU analysis, {args.minutes:g} min at {args.rate:g} Hz per sensor (synthetic runner, real writer)")
    for label, placements in (("pelvis", ("pelvis",)), ("all", ("pelvis", "trunk", "tibia_left", "tibia_right"))):
        path = args.cache / f"imu_{label}_{args.minutes:g}min_{args.rate:g}hz.h5"
        if not path.exists():  # in a child process, so that the analysis' children do not inherit its memory
            t0 = time.perf_counter()
            code = (f"import sys; sys.path[:0] = {[str(ROOT), str(ROOT / 'tests'), str(ROOT / 'bench')]!r}; "
                    f"from imu import make; from pathlib import Path; "
                    f"make(Path({str(path)!r}), {args.minutes!r}, {args.rate!r}, {placements!r})")
            subprocess.run([sys.executable, "-c", code], check=True, timeout=1800)
            print(f"  wrote {path.name} in {time.perf_counter() - t0:.0f} s")
        r = run(path)
        per = r["s"] / r["sensors"]
        print(f"  {label:6s}: {r['sensors']} sensor(s), {r['samples'] / 1e6:.2f} M samples, {r['steps']} steps: "
              f"{r['s']:.2f} s ({per:.2f} s per sensor; CPU {r['cpu_s'] / r['sensors']:.2f} s per sensor), "
              f"{r['samples'] / r['s'] / 1e6:.2f} M samples/s, "
              f"peak memory {r['peak_kib'] / 1024:.0f} MiB (after imports {r['base_kib'] / 1024:.0f} MiB); "
              f"load average {r['load']:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
