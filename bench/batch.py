"""Study throughput of ``lab batch``: sessions analysed per minute with 1 and with 2 Dask workers, same run.

A study of simulated sessions (the gait simulator's runner through a known insole calibration, written in the
session file format; ``tests/integration_sessions.py``) is written to a temporary folder, then analysed by
:func:`treadlab.lab.batch.run_batch` on a local cluster of 1 and of 2 single-threaded worker processes. Cluster
start-up is timed separately from the analysis (a study of hundreds of sessions amortises it). Best of
``--repeats`` per cluster size. On a shared 2-core machine the 2-worker figure is bounded by what the other users
leave free.

Run: ``.venv/bin/python bench/batch.py [--sessions 16] [--duration 60] [--rate 500] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dask.distributed import Client, LocalCluster  # noqa: E402
from integration_sessions import write_session  # noqa: E402

from treadlab.drivers.sim.gait import RunnerParams  # noqa: E402
from treadlab.lab.batch import expand_paths, run_batch  # noqa: E402


def make_study(root: Path, n: int, duration_s: float, rate_hz: float) -> list[Path]:
    """``n`` sessions of different simulated runners in ``root/pNN/run.h5``."""
    for i in range(n):
        params = RunnerParams(cadence_spm=160.0 + 2.0 * (i % 12), body_mass_kg=60.0 + i % 25, seed=i)
        folder = root / f"p{i:02d}"
        folder.mkdir()
        write_session(folder / "run.h5", params=params, duration_s=duration_s, rate_hz=rate_hz,
                      participant=f"p{i:02d}", seed=i)
    return expand_paths([str(root / "**" / "*.h5")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per session")
    ap.add_argument("--rate", type=float, default=500.0, help="insole rate, Hz")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = make_study(Path(tmp), args.sessions, args.duration, args.rate)
        size_mb = sum(p.stat().st_size for p in paths) / 1e6
        print(f"study: {len(paths)} sessions x {args.duration:g} s, two 16-sensel insoles at {args.rate:g} Hz, "
              f"{size_mb:.1f} MB, written in {time.perf_counter() - t0:.1f} s")
        rates = {}
        for workers in (1, 2):
            t0 = time.perf_counter()
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
                startup_s = time.perf_counter() - t0
                client.run(lambda: __import__("treadlab.analysis"))  # imports warm on every worker
                best = float("inf")
                for _ in range(args.repeats):
                    t1 = time.perf_counter()
                    table = run_batch(paths, client=client, progress=False)
                    best = min(best, time.perf_counter() - t1)
                failed = int((table["error"] != "").sum())
            rates[workers] = len(paths) / best * 60.0
            print(f"{workers} worker(s): {rates[workers]:7.1f} sessions/min  ({best:.2f} s for {len(paths)} "
                  f"sessions, {best / len(paths) * 1e3:.0f} ms each; cluster start-up {startup_s:.1f} s; "
                  f"failed {failed})")
        print(f"speed-up 2 vs 1 worker: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
