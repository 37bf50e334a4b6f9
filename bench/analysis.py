"""Benchmark: analysis time and peak memory on a stress-rig session file, next to a bare h5py read.

The file (two 960-sensel insoles at 750 Hz, u8, and a 5,376-sensel mat at 120 Hz, u8; gzip 1 + shuffle) is
written once from the gait model by ``tests/sessionfactory.py`` and kept in the cache folder. Each measurement
runs in its own child process, so its peak resident memory (``ru_maxrss``) is its own:

- bare read: h5py reads every ``raw`` and ``time`` dataset of the file, chunk by chunk, and discards the data;
- analysis: ``treadlab.analysis.analyze(file)`` (both insoles and the mat), summary, and JSON of the summary.

Both runs import treadlab.analysis first (not timed); each is repeated (``--repeat``, alternating) and the
fastest run is reported, since the machine is shared. Usage: ``python bench/analysis.py [--minutes 10]
[--cache DIR] [--tile-from 10]``. Targets: analysis at most 2x the bare read, memory under 1 GiB whatever
the file's length.

Long files: writing an hour from the gait model takes about an hour on a shared 2-core machine, so
``--tile-from M`` builds the ``--minutes`` file from the (cached) M-minute one: its compressed ``raw`` chunks are
copied as they are (``write_direct_chunk``, no recompression) as many times as needed, and ``seq``/``time``/
``device_time``/``host_time`` are written afresh for the whole length, so the file reads as one continuous
recording (the gait jumps in phase once per tile: one odd step every M minutes). The analysis reads every byte
of it like any recording; peak memory is measured, never extrapolated.
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


def tile_file(base: Path, path: Path, minutes: float) -> None:
    """Write a ``minutes``-long session file from the chunks of ``base`` (see the module docstring)."""
    import h5py
    import numpy as np

    from treadlab import fileformat as ff

    with h5py.File(base, "r") as src, h5py.File(path, "w", libver=ff.LIBVER) as dst:
        dst.attrs.update(dict(src.attrs))
        for name in ("markers", "events"):
            src.copy(src[name], dst, name=name)
        for name, g in src["devices"].items():
            out = dst.require_group("devices").create_group(name)
            out.attrs.update(dict(g.attrs))
            for sub in ("calibration", "layout", "gaps"):
                g.copy(g[sub], out, name=sub)
            raw = g["raw"]
            rows_chunk = raw.chunks[0]
            whole_n = (raw.shape[0] // rows_chunk) * rows_chunk  # whole chunks only, so offsets stay aligned
            rate_hz = float(g.attrs["rate_hz"])
            total_n = int(minutes * 60.0 * rate_hz) // rows_chunk * rows_chunk
            dset = out.create_dataset("raw", shape=(total_n, *raw.shape[1:]), maxshape=(None, *raw.shape[1:]),
                                      dtype=raw.dtype, chunks=raw.chunks, compression="gzip", compression_opts=1,
                                      shuffle=True)
            tail = (0,) * (raw.ndim - 1)
            for a in range(0, total_n, rows_chunk):  # one iteration per compressed chunk (~256 KiB raw)
                mask, data = raw.id.read_direct_chunk((a % whole_n, *tail))
                dset.id.write_direct_chunk((a, *tail), data, mask)
            t0 = float(g["time"][0])
            idx = np.arange(total_n)
            t = t0 + idx / rate_hz
            kw = {"chunks": (4096,), "compression": "gzip", "compression_opts": 1, "shuffle": True, "maxshape": (None,)}
            out.create_dataset("seq", data=idx.astype("u4"), **kw)
            out.create_dataset("time", data=t, **kw)
            out.create_dataset("device_time", data=np.round(t * 1e6).astype("u8"), **kw)
            out.create_dataset("host_time", data=t + 0.002, **kw)


def run_child(code: str, path: Path) -> list[float]:
    """Run a measurement in a fresh interpreter and return its printed numbers."""
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True)
    return [float(x) for x in out.stdout.split()]


def main() -> int:
    """Write (or reuse) the file, then print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=2, help="alternate runs; the fastest of each is reported")
    ap.add_argument("--tile-from", type=float, default=None,
                    help="build the file from the cached file of this many minutes (copied chunks)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "treadlab-bench"))
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"stress-{args.minutes:g}min.h5"
    if args.tile_from:
        path = cache / f"stress-{args.minutes:g}min-tiled-{args.tile_from:g}.h5"
    base = cache / f"stress-{args.tile_from or args.minutes:g}min.h5"
    for p, build in ((base, lambda tmp: make_file(tmp, args.tile_from or args.minutes)),
                     (path, lambda tmp: tile_file(base, tmp, args.minutes))):
        if not p.exists():
            t0 = time.perf_counter()
            tmp = p.with_suffix(".part")
            build(tmp)
            tmp.rename(p)
            print(f"wrote {p} ({p.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
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
