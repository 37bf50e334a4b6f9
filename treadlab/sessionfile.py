"""The one way treadlab opens a session file for reading: finished, being recorded, or left by a crash.

Both :mod:`treadlab.acquisition` (``lab info``, ``lab repair``) and :mod:`treadlab.analysis` (the reader) open
files through :func:`open_session_file`, so a missing, foreign, damaged or crashed file gets the same message
whichever command meets it. Depends only on h5py, :mod:`treadlab.fileformat` and :mod:`treadlab.errors`.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from treadlab import fileformat as ff
from treadlab.errors import SessionFileError

__all__ = ["STATUS_COMPLETE", "STATUS_CRASHED", "STATUS_RECORDING", "open_session_file", "recording_pid"]

STATUS_COMPLETE = "complete"
STATUS_RECORDING = "recording"
STATUS_CRASHED = "crashed"

#: Errors of a plain open that mean "a writer holds this file, or died holding it" (HDF5's file-consistency
#: flags): only these go to the SWMR read path. On a file with damaged metadata HDF5's SWMR open retries its
#: reads for minutes instead of failing.
SWMR_OPEN_HINTS = ("already open for write", "consistency flags", "unable to lock file")

#: Errors of h5py that mean a damaged file when they surface from a read (attributes, chunks, headers).
HDF5_ERRORS = (KeyError, OSError, RuntimeError, TypeError, AttributeError, ValueError, IndexError)


def recording_pid(path: str | Path) -> int | None:
    """Pid of the recorder writing ``path`` if its sidecar exists and that process is alive, else None."""
    side = str(path) + ff.RECORDING_SUFFIX
    try:
        with open(side, encoding="utf-8") as fh:
            pid = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _damaged(path: Path, exc: BaseException) -> SessionFileError:
    text = str(exc)
    if "truncated file" in text:
        return SessionFileError(f"{path} is damaged or truncated (a recorder that could not finish a write leaves "
                                f"it so: run `lab repair {path}`) ({text})")
    return SessionFileError(f"{path} is damaged or truncated and cannot be opened ({text})")


def open_session_file(path: str | Path, *, allow_live: bool = True,
                      allow_crashed: bool = True) -> tuple[h5py.File, str]:
    """Open a session file read-only and say whether it is complete, being recorded, or crashed.

    A finished file opens normally. A file whose writer holds it, or died holding it, refuses a normal open and
    is opened with ``swmr=True``: "recording" while its ``.recording`` sidecar names a live pid, else "crashed".

    Parameters
    ----------
    path : str or Path
    allow_live : bool
        Accept a file still being recorded.
    allow_crashed : bool
        Accept a file left by a crashed recorder (else the error names ``lab repair``).

    Returns
    -------
    h5 : h5py.File
    status : {"complete", "recording", "crashed"}

    Raises
    ------
    SessionFileError
        Missing, a folder, not HDF5, damaged or truncated, not a treadlab session (``format`` attribute), or
        recording/crashed when not allowed.
    """
    p = Path(path)
    if not p.exists():
        raise SessionFileError(f"session file not found: {p}")
    if p.is_dir():
        raise SessionFileError(f"{p} is a folder, not a session file")
    if not h5py.is_hdf5(p):
        raise SessionFileError(f"{p} is not a treadlab session file (not HDF5)")
    try:
        f, status = h5py.File(p, "r"), STATUS_COMPLETE
    except (OSError, RuntimeError) as exc:
        if not any(k in str(exc) for k in SWMR_OPEN_HINTS):
            raise _damaged(p, exc) from None
        try:  # being recorded, or left by a crashed recorder: the SWMR read path opens it
            f = h5py.File(p, "r", swmr=True)
        except (OSError, RuntimeError) as exc2:
            raise _damaged(p, exc2) from None
        status = STATUS_RECORDING if recording_pid(p) is not None else STATUS_CRASHED
    try:
        fmt = _text(f.attrs.get(ff.A_FORMAT, ""))
    except HDF5_ERRORS as exc:
        f.close()
        raise SessionFileError(f"{p} is damaged: its attributes cannot be read ({exc})") from None
    if fmt != ff.FORMAT:
        f.close()
        raise SessionFileError(f"{p} is not a treadlab session file (format attribute is {fmt!r})")
    if status == STATUS_CRASHED and not allow_crashed:
        f.close()
        raise SessionFileError(f"{p}: left by a recorder that did not stop cleanly; run `lab repair {p}`")
    if status == STATUS_RECORDING and not allow_live:
        f.close()
        raise SessionFileError(f"{p}: is still being recorded (pid {recording_pid(p)})")
    return f, status
