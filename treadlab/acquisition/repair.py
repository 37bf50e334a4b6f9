"""``lab repair``: turn a session file left by a crashed recorder into a complete, normally readable file.

The original is never destroyed: the repaired copy is written beside it (``FILE.repairing``), then the original is
renamed ``FILE.crashed`` and the copy takes its name. The copy holds every dataset as found (everything up to the
last flush), with the clocks refitted from the stored ``device_time``/``host_time`` pairs and PINGs, and the final
attributes (``state = "repaired"``).
"""

from __future__ import annotations

import os
import re
import shutil

import h5py
import numpy as np

from treadlab import fileformat as ff
from treadlab.acquisition.session import finalize, open_session, recording_pid
from treadlab.errors import SessionFileError, StorageError


def _consistent_rows(src: h5py.Group, truncated: bool) -> int:
    """Rows of a device that are really on disk.

    Every per-sample dataset must hold them, and rows never written read as NaN in ``host_time``/``time``. After a
    failed write (a truncated file) only the rows of the last successful flush (``counters``) are trusted.
    """
    n = min(src[k].shape[0] for k in (ff.RAW, ff.SEQ, ff.DEVICE_TIME, ff.TIME, ff.HOST_TIME))
    for key in (ff.HOST_TIME, ff.TIME):
        nan = np.flatnonzero(np.isnan(src[key][:n]))
        if len(nan):
            n = int(nan[0])
    if truncated:
        cols = [c.decode() if isinstance(c, bytes) else str(c) for c in src[ff.COUNTERS].attrs[ff.A_COLUMNS]]
        if "flushed_rows" in cols:
            n = min(n, int(src[ff.COUNTERS][cols.index("flushed_rows")]))
    return n


def _copy_trimmed(src: h5py.File, dst: h5py.File, truncated: bool = False) -> None:
    for k, v in src.attrs.items():
        dst.attrs[k] = v
    for name in src:
        if name != ff.DEVICES:
            src.copy(src[name], dst, name=name)
    trim_groups = [ff.MARKERS, ff.EVENTS]
    for gname in trim_groups:  # text and time datasets of one table must agree
        g = dst[gname]
        n = min(ds.shape[0] for ds in g.values())
        nan = np.flatnonzero(np.isnan(g["time"][:n]))
        n = int(nan[0]) if len(nan) else n
        for ds in g.values():
            ds.resize(n, axis=0)
    devs = dst.create_group(ff.DEVICES)
    for name, g in src[ff.DEVICES].items():
        n = _consistent_rows(g, truncated)
        out = devs.create_group(name)
        for k, v in g.attrs.items():
            out.attrs[k] = v
        for key, obj in g.items():
            if key in (ff.RAW, ff.SEQ, ff.DEVICE_TIME, ff.TIME, ff.HOST_TIME):
                continue
            g.copy(obj, out, name=key)
        for key in (ff.RAW, ff.SEQ, ff.DEVICE_TIME, ff.TIME, ff.HOST_TIME):
            ds = g[key]
            new = out.create_dataset(key, shape=(n, *ds.shape[1:]), maxshape=ds.maxshape, chunks=ds.chunks,
                                     dtype=ds.dtype, compression=ds.compression, compression_opts=ds.compression_opts,
                                     shuffle=ds.shuffle)
            step = max(1, ds.chunks[0] * 16)
            for a in range(0, n, step):  # block copy, one iteration per block of chunks
                new[a : min(n, a + step)] = ds[a : min(n, a + step)]
        segs = out[ff.CLOCK_SEGMENTS]
        keep = segs[:][:, 0] < n if segs.shape[0] else np.zeros(0, bool)
        if segs.shape[0]:
            rows = segs[:][keep]
            segs.resize(len(rows), axis=0)
            segs[:] = rows


def _truncated_eof(path: str) -> int | None:
    """The end of file HDF5 expects, when ``path`` is shorter than that (a write failed at the end), else None."""
    for swmr in (False, True):
        try:
            with h5py.File(path, "r", swmr=swmr):
                pass
        except OSError as exc:
            m = re.search(r"eof = (\d+).*stored_eof = (\d+)", str(exc))
            if m and int(m.group(2)) > int(m.group(1)):
                return int(m.group(2))
    return None


def repair(path: str) -> tuple[str, str]:
    """Repair a crashed session file in place, keeping the original as ``FILE.crashed``.

    A file cut short by a failed write (its superblock names a larger end of file) is read through a padded
    copy; the blocks that never reached the disk read as missing (trimmed to the rows every dataset holds).

    Returns
    -------
    repaired, original : str
        Path of the repaired file (``path``) and of the kept original.

    Raises
    ------
    SessionFileError
        The file is complete already, still being recorded, or not a session file.
    StorageError
        The repaired copy cannot be written or the original cannot be kept.
    """
    source = path
    padded = path + ".padded"
    eof = _truncated_eof(path) if os.path.exists(path) else None
    if eof is not None:
        shutil.copyfile(path, padded)
        with open(padded, "r+b") as fh:
            fh.truncate(eof)
        source = padded
    try:
        return _repair_from(path, source)
    finally:
        if os.path.exists(padded):
            os.remove(padded)


def _repair_from(path: str, source: str) -> tuple[str, str]:
    if source == path:
        f, status = open_session(path, allow_live=True, allow_crashed=True)
        f.close()
        if status == "complete":
            raise SessionFileError(f"{path}: is complete, nothing to repair")
        if status == "recording":
            raise SessionFileError(f"{path}: is still being recorded (pid {recording_pid(path)}); stop it first")
    elif recording_pid(path) is not None:
        raise SessionFileError(f"{path}: is still being recorded (pid {recording_pid(path)}); stop it first")
    crashed = path + ff.CRASHED_SUFFIX
    tmp = path + ".repairing"
    if os.path.exists(crashed):
        raise StorageError(f"{crashed}: exists already; move it away before repairing {path} again")
    if os.path.exists(tmp):
        os.remove(tmp)  # a previous repair that was itself interrupted
    try:
        with h5py.File(source, "r", swmr=True) as src, h5py.File(tmp, "x", libver=ff.LIBVER) as dst:
            if src.attrs.get(ff.A_FORMAT) != ff.FORMAT:
                raise SessionFileError(f"{path}: not a treadlab session file")
            _copy_trimmed(src, dst, truncated=source != path)
            finalize(dst, ff.STATE_REPAIRED, "repaired")
            dst.attrs[ff.A_REPAIRED_FROM] = os.path.basename(crashed)
    except (OSError, RuntimeError) as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise StorageError(f"{path}: cannot write the repaired file ({exc})") from exc
    except SessionFileError:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(path, crashed)
    os.replace(tmp, path)
    side = path + ff.RECORDING_SUFFIX
    if os.path.exists(side):
        os.remove(side)
    return path, crashed
