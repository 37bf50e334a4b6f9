"""C3D files for ``lab import``: force platforms (types 1-4), events, unused analog channels.

ezc3d reads the file (parameters, scaled analog samples, events); each platform's calibration (``CAL_MATRIX``,
``ORIGIN``, ``CORNERS``) is applied as ezc3d's ForcePlatform module does it, on whole arrays
(:mod:`treadlab.acquisition.c3d_platforms`: ezc3d's own ``extract_forceplat_data`` converts one sample at a time
and takes minutes for an hour at 1000 Hz), giving force, moment, centre of pressure and free moment in the file's
lab frame. ``ANALOG:UNITS`` is often filled with the *calibrated* unit while the channels hold volts, so the
importer checks the result against a person's weight (:func:`treadlab.acquisition.importer.check_newtons`) instead
of trusting the labels. 3-D marker trajectories are not imported (the source path is kept); events (foot strike,
foot off...) become markers.
"""

from __future__ import annotations

import numpy as np

from treadlab.acquisition.c3d_platforms import PlatformError, platform_params, platform_signals
from treadlab.acquisition.importsource import BLOCK_ROWS, AnalogSource, ForceSource, PlateSource
from treadlab.errors import ImportFileError

__all__ = ["SUPPORTED_TYPES", "read_c3d"]

SUPPORTED_TYPES = (1, 2, 3, 4)
FORCE_UNITS = {"n": 1.0, "newton": 1.0, "kn": 1000.0}
MOMENT_UNITS = {"nmm": 1.0, "n.mm": 1.0, "n·mm": 1.0, "n*mm": 1.0, "nm": 1000.0, "n.m": 1000.0, "n·m": 1000.0}
POSITION_UNITS = {"mm": 1.0, "cm": 10.0, "m": 1000.0}


def _param(c, group: str, name: str, default=None):
    try:
        return c["parameters"][group][name]["value"]
    except (KeyError, TypeError):
        return default


def _load(path: str):
    import ezc3d  # imported here: only lab import needs it

    try:
        return ezc3d.c3d(path)
    except Exception as exc:  # noqa: BLE001 - ezc3d raises RuntimeError, IOError, ValueError... for bad files
        raise ImportFileError(f"{path}: not a readable C3D file ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_platforms(c, path: str) -> list[int]:
    used = _param(c, "FORCE_PLATFORM", "USED")
    n = int(np.asarray(used).ravel()[0]) if used is not None and np.asarray(used).size else 0
    if n <= 0:
        raise ImportFileError(f"{path}: the C3D file has no force platform (FORCE_PLATFORM:USED is "
                              f"{'missing' if used is None else n}); lab import reads force-plate data")
    types = [int(t) for t in np.asarray(_param(c, "FORCE_PLATFORM", "TYPE", []), dtype=float).ravel()[:n]]
    if len(types) < n:
        raise ImportFileError(f"{path}: FORCE_PLATFORM:TYPE gives {len(types)} types for {n} platforms "
                              "(damaged C3D parameters)")
    bad = [(i + 1, t) for i, t in enumerate(types) if t not in SUPPORTED_TYPES]
    if bad:
        i, t = bad[0]
        raise ImportFileError(f"{path}: force platform {i} has type {t}; lab import reads platform types 1-4")
    return types


def _check_size(path: str) -> list[str]:
    """A truncated file: fewer bytes than the frames its header announces need (ezc3d reads what is there and
    shortens its own copy of the header, so the file's header is read here).
    """
    import os

    with open(path, "rb") as fh:
        head = fh.read(512)
    if len(head) < 512 or head[1] != 0x50:
        raise ImportFileError(f"{path}: not a readable C3D file (no C3D header: its second byte is not 0x50)")
    try:
        big = _param_block_processor(path, head) == 86  # MIPS (big-endian); 84 Intel and 85 DEC little-endian
    except (OSError, IndexError, ValueError):
        big = False
    words = np.frombuffer(head[:20], dtype=">u2" if big else "<u2")
    n_points, n_analog, first, last = (int(w) for w in words[1:5])
    scale = float(np.frombuffer(head[12:16], dtype=">f4" if big else "<f4")[0])
    start = int(words[8])
    if last < first or start < 2:
        return []  # ezc3d's own checks apply
    word = 4 if scale < 0 else 2
    frame_bytes = (n_points * 4 + n_analog) * word
    need = (start - 1) * 512 + (last - first + 1) * frame_bytes
    have = os.path.getsize(path)
    if have < need:
        raise ImportFileError(f"{path}: the C3D file is truncated ({have} bytes; its header announces "
                              f"{last - first + 1} frames, {need} bytes)")
    extra = (have - need - 511) // frame_bytes if frame_bytes else 0  # the last block is padded to 512 bytes
    if last >= 65535 and extra > 0:
        return [f"WARNING: the file holds about {extra} frames beyond the 65535 a C3D header counts; ezc3d reads "
                "the first 65535 frames and only those are imported"]
    return []


def _param_block_processor(path: str, head: bytes) -> int:
    """The processor type byte of the parameter section (84 Intel, 85 DEC, 86 MIPS)."""
    block = head[0]
    with open(path, "rb") as fh:
        fh.seek((block - 1) * 512)
        p = fh.read(4)
    return p[3]


def _factor(unit: str, table: dict, what: str, path: str) -> float:
    key = str(unit or "").strip().lower().replace(" ", "")
    if not key:
        return 1.0
    if key not in table:
        raise ImportFileError(f"{path}: the force platforms give {what} in {unit!r}; lab import reads "
                              f"{', '.join(table)}")
    return table[key]


def _events(c, path: str, first_frame: int, point_rate: float, duration_s: float) -> tuple[list, list[str]]:
    """``EVENT`` parameters -> markers ``(time from the first sample, "Left Foot Strike")``."""
    n = _param(c, "EVENT", "USED")
    n = int(np.asarray(n).ravel()[0]) if n is not None and np.asarray(n).size else 0
    if n <= 0:
        return [], []
    labels = [str(x).strip() for x in (_param(c, "EVENT", "LABELS", []) or [])]
    contexts = [str(x).strip() for x in (_param(c, "EVENT", "CONTEXTS", []) or [])]
    times = np.asarray(_param(c, "EVENT", "TIMES", np.zeros((2, 0))), dtype=np.float64)
    if times.ndim != 2 or times.shape[0] != 2 or times.shape[1] < n or len(labels) < n:
        return [], [f"EVENT parameters are incomplete ({n} events declared): events not imported"]
    t = times[0, :n] * 60.0 + times[1, :n]
    if point_rate > 0:
        t = t - first_frame / point_rate  # C3D event times count from the trial's frame 1
    out, skipped = [], 0
    for i in np.argsort(t, kind="stable"):  # one iteration per event
        if -1e-9 <= t[i] <= duration_s + 1e-9:
            ctx = contexts[i] if i < len(contexts) else ""
            out.append((float(max(t[i], 0.0)), f"{ctx} {labels[i]}".strip()))
        else:
            skipped += 1
    notes = [f"{len(out)} C3D events imported as markers"]
    if skipped:
        notes.append(f"{skipped} C3D events outside the trial were not imported")
    return out, notes


def _units(c, path: str) -> tuple[float, float, float]:
    """Factors to N, N·mm and mm of the platforms' outputs: ``FORCE_PLATFORM:UNITS`` (default N) and
    ``POINT:UNITS`` (default m) as ezc3d reads them; moments in force x position.
    """
    fu = _param(c, "FORCE_PLATFORM", "UNITS") or ["N"]
    pu = _param(c, "POINT", "UNITS") or ["m"]
    kf = _factor(str(fu[0]), FORCE_UNITS, "forces", path)
    kp = _factor(str(pu[0]), POSITION_UNITS, "positions", path)
    return kf, kf * kp, kp


def read_c3d(path: str, block_rows: int = BLOCK_ROWS) -> ForceSource:
    """Read a C3D file's force platforms, events and unused analog channels.

    Raises
    ------
    ImportFileError
        Not a readable C3D file, truncated, no force platform, a platform type other than 1-4, platform
        parameters that cannot be used, units it cannot convert, no analog samples.
    """
    size_notes = _check_size(path)
    c = _load(path)
    types = _check_platforms(c, path)
    analogs = np.asarray(c["data"]["analogs"])
    n = analogs.shape[-1] if analogs.ndim == 3 else 0
    rate = float(c["header"]["analogs"]["frame_rate"])
    if n == 0 or not rate > 0:
        raise ImportFileError(f"{path}: the C3D file holds no analog samples (no force data)")
    kf, km, kp = _units(c, path)
    plates = []
    for i, t in enumerate(types):  # one iteration per platform
        try:
            par = platform_params(c["parameters"], i, t)
        except PlatformError as exc:
            raise ImportFileError(f"{path}: {exc}") from None
        first = {f"{q}{a}": np.empty(n, np.float32) for q in ("F", "M", "COP", "T") for a in "xyz"}
        for a0 in range(0, n, block_rows):  # one iteration per block of samples: bounded temporaries
            b0 = min(a0 + block_rows, n)
            try:
                sig = platform_signals(par, analogs[0, :, a0:b0])
            except PlatformError as exc:
                raise ImportFileError(f"{path}: {exc}") from None
            for q, key, k in (("F", "force", kf), ("M", "moment", km), ("COP", "cop", kp), ("T", "tz", km)):
                for j, ax in enumerate("xyz"):
                    first[f"{q}{ax}"][a0:b0] = sig[key][j] * k
        plates.append(PlateSource(first=first, corners_mm=par.corners * kp, type=t))
    units = _param(c, "ANALOG", "UNITS", []) or []
    labels = [str(x).strip() for x in (_param(c, "ANALOG", "LABELS", []) or [])]
    said = " ".join(sorted({str(u) for u in units[:6 * len(plates)]}))
    notes = [f"C3D: {len(plates)} force platform{'s' if len(plates) > 1 else ''} "
             f"(type {', '.join(map(str, types))}), {rate:g} Hz, read by ezc3d and calibrated from FORCE_PLATFORM; "
             f"ANALOG:UNITS of the platform channels say {said or 'nothing'} "
             "(not trusted: checked against a person's weight below)"]
    notes += size_notes
    point_rate = float(c["header"]["points"]["frame_rate"] or 0.0)
    markers, ev_notes = _events(c, path, int(c["header"]["points"]["first_frame"]), point_rate, (n - 1) / rate)
    notes += ev_notes
    n_points = int(c["header"]["points"]["size"])
    if n_points:
        notes.append(f"{n_points} marker trajectories stay in the source file (not imported)")
    analog = _unused_analog(c, analogs, labels, units, rate, len(plates))
    if analog is not None:
        notes.append(f"{len(analog.labels)} other analog channels kept as they are: {' '.join(analog.labels)}")
    return ForceSource(path=path, format="c3d", rate_hz=rate, plates=plates, markers=markers, analog=analog,
                       notes=notes)


def _unused_analog(c, analogs: np.ndarray, labels: list, units: list, rate: float, n_plates: int):
    """Analog channels that no force platform reads (``FORCE_PLATFORM:CHANNEL``), or None."""
    ch = np.asarray(_param(c, "FORCE_PLATFORM", "CHANNEL", np.zeros((0, 0))), dtype=np.int64)
    used = {int(v) - 1 for v in ch[:, :n_plates].ravel()} if ch.ndim == 2 else set()
    keep = [i for i in range(analogs.shape[1]) if i not in used]
    if not keep:
        return None
    return AnalogSource(labels=[labels[i] if i < len(labels) else f"analog{i + 1}" for i in keep],
                        units=[str(units[i]) if i < len(units) else "" for i in keep], rate_hz=rate,
                        values=np.ascontiguousarray(analogs[0][keep].T, dtype=np.float32))
