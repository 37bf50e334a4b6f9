"""``lab import`` speed: a long text export and the longest C3D file a C3D header can count, next to a bare read.

    python bench/force_import.py [--minutes 60] [--rate-hz 1000]

Text: ``--minutes`` of the synthetic runner (tests/force_support.py) at ``--rate-hz`` as a tab-separated export
(Time Fx Fy Fz COPx COPy, 2 decimals). C3D: 65535 frames at 100 Hz with the analog channels at ``--rate-hz`` (one
type-2 platform), the most a C3D header counts; ezc3d's own per-sample platform extraction is timed on it too.
Prints seconds and samples per second; the import's peak memory is the process's (ru_maxrss).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from force_support import Gait, write_c3d  # noqa: E402

from treadlab.acquisition.importer import ImportOptions, import_file  # noqa: E402
from treadlab.analysis import read_session  # noqa: E402


def _bare_read(path: Path) -> float:
    t0 = time.perf_counter()
    with read_session(path) as s:
        f = s.devices["force"]
        f.read_time()
        for _, _, _ in f.iter_force():
            pass
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate-hz", type=float, default=1000.0)
    ap.add_argument("--no-ezc3d", action="store_true", help="skip timing ezc3d's own platform extraction")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        g = Gait(seconds=args.minutes * 60.0, rate_hz=args.rate_hz)
        s = g.signals()
        n = len(s["t"])
        noise = np.random.default_rng(1).normal(0, 5, (2, n))
        txt = tmp / "long.txt"
        pd.DataFrame({"Time": np.arange(1, n + 1), "Fx": s["Fx"], "Fy": s["Fy"] + noise[0], "Fz": s["Fz"] + noise[1],
                      "COPx": s["COPx"], "COPy": s["COPy"]}).to_csv(txt, sep="\t", index=False, float_format="%.2f")
        t0 = time.perf_counter()
        res = import_file(str(txt), str(tmp / "txt.h5"), ImportOptions(rate_hz=args.rate_hz))
        imp = time.perf_counter() - t0
        print(f"text export, {args.minutes:g} min at {args.rate_hz:g} Hz ({n:,} rows, "
              f"{txt.stat().st_size / 2**20:.0f} MiB): lab import {imp:.2f} s ({n / imp / 1e6:.2f} M rows/s), "
              f"session file {(tmp / 'txt.h5').stat().st_size / 2**20:.0f} MiB; bare read "
              f"{_bare_read(Path(res.path)):.2f} s")
        frames = 65535
        g = Gait(seconds=frames / 100.0, rate_hz=args.rate_hz)
        c3d = write_c3d(tmp / "long.c3d", g)
        t0 = time.perf_counter()
        res = import_file(str(c3d), str(tmp / "c3d.h5"))
        imp = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"C3D, {frames} frames at 100 Hz, analog {args.rate_hz:g} Hz ({res.n_samples:,} samples, "
              f"{c3d.stat().st_size / 2**20:.0f} MiB): lab import {imp:.2f} s; bare read "
              f"{_bare_read(Path(res.path)):.2f} s; peak memory so far {peak_mb:.0f} MB")
        if not args.no_ezc3d:
            import ezc3d

            t0 = time.perf_counter()
            ezc3d.c3d(str(c3d), extract_forceplat_data=True)
            print(f"  for comparison, ezc3d.c3d(extract_forceplat_data=True) alone: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
