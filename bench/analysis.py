"""Benchmark: analysis time and peak memory on a stress-rig session file, next to a bare h5py read.

The file (two 960-sensel insoles at 750 Hz, u8, and a 5,376-sensel mat at 120 Hz, u8; gzip 1 + shuffle) is
written once from the gait model by ``tests/sessionfactory.py`` and kept in the cache folder. Each measurement
runs in its own child process, so its peak resident memory (``ru_maxrss``) is its own:

- bare read: h5py reads every ``raw`` and ``time`` dataset of the file, chunk by chunk, and discards the data;
- analysis: ``treadlab.analysis.analyze(file)`` (both insoles and the mat), summary, and JSON of the summary.

Both runs import treadlab.analysis first (not timed); each is repeated (``--repeat``, alternating) and the
fastest run is reported, since the machine is shared. Usage: ``python bench/analysis.py [--minutes 10]
[--cache DIR]``. Targets: analysis at most 2x the bare read,
memory under 1 GiB whatever the file's length.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BARE = r"""
import resource, sys, time, h5py
import treadlab.analysis  # same imports as the analysis run, outside the timing
t0 = time.perf_counter()
n = 0
with h5py.File(sys.argv[1], "r") as f:
    for name, g in f["devices"].items():
        for ds in (g["raw"], g["time"]):
            step = ds.chunks[0] * max(1, (32 << 20) // (ds.chunks[0] * max(1, ds[0:1].nbytes)))
            for a in range(0, ds.shape[0], step):
                n += ds[a:a + step].size
dt = time.perf_counter() - t0
print(dt, n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

ANALYSE = r"""
import json, resource, sys, time, warnings
import h5py
from treadlab.analysis import analyze, json_clean
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with analyze(sys.argv[1]) as ga:
        text = json.dumps(json_clean(ga.summary))
        steps = len(ga.steps)
        fp = ga.summary.get("mat", {}).get("footprints", 0)
dt = time.perf_counter() - t0
print(dt, steps, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, fp)
"""


def make_file(path: Path, minutes: float) -> None:
    """Write the stress-rig session file."""
    sys.path.insert(0, str(ROOT / "tests"))
    from sessionfactory import InsoleSpec, MatSpec, write_session

    from treadlab.drivers.sim.gait import RunnerParams

    runner = RunnerParams(strike_left="rearfoot", strike_right="midfoot", loading_rate_asym_pct=10.0,
                          swing_offset_n=30.0, seed=11)
    # u8 insoles: 960 sensels of ~19 mm2 carry at most ~60 N each at 0.25 N/count.
    spec = InsoleSpec(layout="insole960", rate_hz=750.0, dtype="u1", gain=0.25, offset=4.0)
    write_session(path, runner, duration_s=minutes * 60.0, insoles=spec,
                  mat=MatSpec(rows=112, cols=48, rate_hz=120.0, gain=4.0), block_s=2.0)


def run_child(code: str, path: Path) -> list[float]:
    """Run a measurement in a fresh interpreter and return its printed numbers."""
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True)
    return [float(x) for x in out.stdout.split()]


def main() -> int:
    """Write (or reuse) the file, then print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=2, help="alternate runs; the fastest of each is reported")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "treadlab-bench"))
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"stress-{args.minutes:g}min.h5"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".part")
        make_file(tmp, args.minutes)
        tmp.rename(path)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
    size_mib = path.stat().st_size / 2**20
    runs = [(run_child(BARE, path), run_child(ANALYSE, path)) for _ in range(args.repeat)]
    bare_s = min(r[0][0] for r in runs)
    values, bare_kib = runs[0][0][1], max(r[0][2] for r in runs)
    ana_s = min(r[1][0] for r in runs)
    steps, ana_kib, footprints = runs[0][1][1], max(r[1][2] for r in runs), runs[0][1][3]
    result = {
        "file_minutes": args.minutes, "file_mib": round(size_mib, 1), "values_read": int(values),
        "bare_read_s": round(bare_s, 2), "analysis_s": round(ana_s, 2), "ratio": round(ana_s / bare_s, 2),
        "bare_read_peak_mib": round(bare_kib / 1024, 1), "analysis_peak_mib": round(ana_kib / 1024, 1),
        "steps": int(steps), "mat_footprints": int(footprints),
    }
    print(f"stress-rig session, {args.minutes:g} min, {size_mib:.0f} MiB on disk, {values / 1e9:.2f} G values")
    print(f"  bare h5py read     {bare_s:7.2f} s   peak {bare_kib / 1024:6.0f} MiB")
    print(f"  analysis (all)     {ana_s:7.2f} s   peak {ana_kib / 1024:6.0f} MiB   ({ana_s / bare_s:.2f} x bare read; "
          f"{int(steps)} insole steps, {int(footprints)} mat footprints)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
