"""Opening session files (finished, being recorded, or crashed), finishing them, and summarising them.

:func:`open_session` is the one way acquisition tools open a file: a finished file opens normally; a file that
refuses a normal open is opened with ``swmr=True`` and reported as being recorded (its ``.recording`` sidecar
names a live pid) or crashed (pointing to ``lab repair``). :func:`finalize` refits every clock over the whole
recording and writes the final attributes; the recorder calls it at a clean stop, ``lab repair`` after a crash.
"""

from __future__ import annotations

import datetime as _dt
import json
import os

import h5py
import numpy as np

from treadlab import fileformat as ff
from treadlab.acquisition.clock import fit_recording
from treadlab.errors import SessionFileError
from treadlab.kinds.imu import A_PLACEMENT
from treadlab.sessionfile import open_session_file, recording_pid

__all__ = ["finalize", "open_session", "recording_pid", "summary", "utc_now_iso"]


def utc_now_iso() -> str:
    """Current UTC time, ISO 8601 with a Z."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def open_session(path: str, allow_live: bool = True, allow_crashed: bool = False) -> tuple[h5py.File, str]:
    """Open a session file read-only (:func:`treadlab.sessionfile.open_session_file`, the one opener).

    Parameters
    ----------
    path : str
    allow_live : bool
        Accept a file still being recorded (opened with ``swmr=True``).
    allow_crashed : bool
        Accept a file left by a crashed recorder (opened with ``swmr=True``), e.g. for ``lab repair``.

    Returns
    -------
    h5 : h5py.File
    status : {"complete", "recording", "crashed"}

    Raises
    ------
    SessionFileError
        Missing, not HDF5, damaged, not a treadlab session, or crashed when not allowed (naming ``lab repair``).
    """
    return open_session_file(path, allow_live=allow_live, allow_crashed=allow_crashed)


def _str(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def gap_sample_index(seq: np.ndarray, time_s: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Index of each gap's sample: the last sample stored before the gap (vectorised).

    A ``gaps`` row written while recording holds the ``time`` of that sample as it was stamped then (the online
    clock), so the sample is the one with exactly that time and seq ``first missing - 1``. Where no stored
    sample matches both (its batch was not stored), the latest sample stamped at or before the gap's time.

    Parameters
    ----------
    seq : ndarray of uint32, shape (n,)
    time_s : ndarray of float64, shape (n,)
        ``time`` as stored while recording (before the refit).
    gaps : ndarray of float64, shape (k, 3)

    Returns
    -------
    ndarray of int64, shape (k,)
        Sample index per row; -1 when the gap comes before every stored sample.
    """
    k, n = len(gaps), len(seq)
    idx = np.full(k, -1, np.int64)
    if k == 0 or n == 0:
        return idx
    order = np.argsort(time_s, kind="stable")
    ts = time_s[order]
    gap_t = gaps[:, 0]
    want = (gaps[:, 1].astype(np.int64) - 1) % 2**32
    pos = np.searchsorted(ts, gap_t, side="left")
    for d in (0, 1, -1):  # equal times are neighbours in the sorted order
        cand = np.clip(pos + d, 0, n - 1)
        hit = (idx < 0) & (ts[cand] == gap_t) & (seq[order[cand]].astype(np.int64) == want)
        idx[hit] = order[cand[hit]]
    rest = np.flatnonzero(idx < 0)
    if len(rest):
        last = np.searchsorted(ts, gap_t[rest], side="right") - 1
        idx[rest] = np.where(last >= 0, order[np.maximum(last, 0)], -1)
    return idx


def refit_gaps(seq: np.ndarray, online_s: np.ndarray, time_s: np.ndarray, gaps: np.ndarray,
               rate_hz: float, ticks: np.ndarray | None = None, clock_hz: float | None = None) -> np.ndarray:
    """``gaps`` rows on the refitted clock: each time is the refitted time of its sample.

    A row after which the numbering restarted (the next stored seq is not ``first missing + count``: a device
    that power-cycled, or one whose samples the host numbers, line and LSL devices, after a reconnection) has an
    estimated count, the sample slots between its sample and the next one at the nominal rate; it is estimated
    again from the refitted times, as the recorder did from the online ones. Where the device clock ran on across
    the gap (the slots counted in device ticks agree with the times to within 10 ms) the count is taken from the
    ticks, which is exact for a device that samples on its own clock.

    Parameters
    ----------
    seq : ndarray of uint32, shape (n,)
    online_s : ndarray of float64, shape (n,)
        ``time`` as stamped while recording.
    time_s : ndarray of float64, shape (n,)
        ``time`` refitted.
    gaps : ndarray of float64, shape (k, 3)
    rate_hz : float
        Nominal rate.
    ticks : ndarray of uint64, shape (n,), optional
        ``device_time``.
    clock_hz : float, optional
        Ticks per second of ``device_time``.

    Returns
    -------
    ndarray of float64, shape (k, 3)
    """
    out = np.array(gaps, dtype=np.float64, copy=True)
    at = gap_sample_index(seq, online_s, out)
    found = at >= 0
    out[found, 0] = time_s[at[found]]
    nxt = at + 1
    has_next = found & (nxt < len(seq))
    rows = np.flatnonzero(has_next)
    if len(rows) and np.isfinite(rate_hz) and rate_hz > 0:
        expected = (out[rows, 1].astype(np.int64) + out[rows, 2].astype(np.int64)) % 2**32
        restart = rows[seq[nxt[rows]].astype(np.int64) != expected]
        a, b = at[restart], nxt[restart]
        est = np.round((time_s[b] - time_s[a]) * rate_hz) - 1
        if ticks is not None and clock_hz:
            dticks = ticks[b].astype(np.int64) - ticks[a].astype(np.int64)
            by_ticks = np.round(dticks / clock_hz * rate_hz) - 1
            ran_on = (dticks > 0) & (np.abs(by_ticks - est) <= 0.01 * rate_hz + 1)
            est = np.where(ran_on, by_ticks, est)
        out[restart, 2] = np.maximum(est, 0)
    return out


def finalize(f: h5py.File, state: str, stop_reason: str, duration_s: float | None = None,
             counters: dict[str, dict] | None = None) -> None:
    """Refit every device clock over the whole recording, rewrite ``time`` and the gap times, write the final
    attributes.

    A gap's time becomes the refitted ``time`` of its sample (:func:`gap_sample_index`), as in
    ``docs/file-format.md``.

    Parameters
    ----------
    f : h5py.File
        Open ``r+`` (not SWMR).
    state : {"complete", "repaired"}
    stop_reason : str
    duration_s : float, optional
        Session time of the stop; default: the latest stored sample time.
    counters : dict, optional
        Per device: ``crc_errors``, ``reconnections`` (default: the live ``counters`` dataset).
    """
    counters = counters or {}
    last_t = 0.0
    for name, g in f[ff.DEVICES].items():
        ticks = g[ff.DEVICE_TIME][:]
        host_s = g[ff.HOST_TIME][:]
        segs_live = g[ff.CLOCK_SEGMENTS][:]
        pings = g[ff.CLOCK_PINGS][:]
        n = len(ticks)
        clock_hz = float(g.attrs[ff.A_CLOCK_HZ])
        live = dict(zip([_str(c) for c in g[ff.COUNTERS].attrs[ff.A_COLUMNS]], g[ff.COUNTERS][:].tolist()))
        live.update(counters.get(name, {}))
        seg_rows = np.empty((0, len(ff.SEGMENT_COLUMNS)))
        gaps = g[ff.GAPS][:]
        if n:
            starts = segs_live[:, 0].astype(np.int64) if len(segs_live) else np.array([0], np.int64)
            time_s, segs = fit_recording(ticks, host_s, clock_hz, known_starts=starts[starts < n], pings=pings)
            if len(gaps):
                gaps = refit_gaps(g[ff.SEQ][:], g[ff.TIME][:], time_s, gaps, float(g.attrs["rate_hz"]), ticks,
                                  clock_hz)
                g[ff.GAPS][:] = gaps
            g[ff.TIME][:] = time_s
            seg_rows = np.array([fit.as_row(s, k) for s, k, fit in segs])
            last_t = max(last_t, float(time_s[-1]))
            weights = np.array([k for _, k, _ in segs], dtype=np.float64)
            drift = float(np.average([fit.drift_ppm for _, _, fit in segs], weights=weights))
            resid = float(np.sqrt(np.average([fit.residual_ms**2 for _, _, fit in segs], weights=weights)))
            span = float(time_s[-1] - time_s[0])
            rate = (n - 1) / span if span > 0 else np.nan
        else:
            drift = resid = rate = np.nan
        ds = g[ff.CLOCK_SEGMENTS]
        ds.resize(len(seg_rows), axis=0)
        if len(seg_rows):
            ds[:] = seg_rows
        g.attrs["n_samples"] = n
        g.attrs["lost_samples"] = int(np.sum(gaps[:, 2])) if len(gaps) else 0
        g.attrs["crc_errors"] = int(live.get("crc_errors", 0))
        g.attrs["reconnections"] = int(live.get("reconnections", 0))
        g.attrs["drift_ppm"] = drift
        g.attrs["fit_residual_ms"] = resid
        g.attrs["achieved_rate_hz"] = rate
    f.attrs[ff.A_STATE] = state
    f.attrs[ff.A_STOP_UTC] = utc_now_iso()
    f.attrs[ff.A_DURATION_S] = float(last_t if duration_s is None else duration_s)
    f.attrs[ff.A_STOP_REASON] = stop_reason


def summary(path: str) -> dict:
    """Everything ``lab info`` shows, as a JSON-serialisable dict (works on a file being recorded).

    Raises
    ------
    SessionFileError
        As :func:`open_session` (a crashed file points to ``lab repair``).
    """
    f, status = open_session(path, allow_live=True, allow_crashed=False)
    try:
        out: dict = {"path": path, "status": status, "file_size_bytes": os.path.getsize(path)}
        meta = {}
        for k, v in f.attrs.items():
            if k == "rig":
                continue
            v = _str(v) if isinstance(v, bytes | str) else v
            meta[k] = v.item() if isinstance(v, np.generic) else v
        out["metadata"] = meta
        devices = {}
        for name, g in f[ff.DEVICES].items():
            devices[name] = _device_summary(path, name, g, status)
        out["devices"] = devices
        mg = f.get(ff.MARKERS)
        out["markers"] = []
        m_time, m_label = ff.MARKER_COLUMNS
        if mg is not None and m_time in mg and m_label in mg:
            if status == "recording":
                mg[m_time].refresh()
                mg[m_label].refresh()
            out["markers"] = [{"time_s": float(t), "label": _str(lab)}
                              for t, lab in zip(mg[m_time][:], mg[m_label][:])]
        return json.loads(json.dumps(out, default=_num))
    except (KeyError, OSError, RuntimeError, ValueError, IndexError, TypeError) as exc:
        # h5py reports damaged metadata as KeyError/OSError/RuntimeError deep inside a read.
        raise SessionFileError(f"{path}: damaged session file, cannot be read ({exc})") from None
    finally:
        f.close()


def _device_summary(path, name: str, g, status: str) -> dict:
    """Counters of one device group; attributes a v1 file need not have (treadlab's own extras) may be absent."""
    for key in (ff.TIME, ff.GAPS):
        if key not in g:
            raise SessionFileError(f"{path}: device {name!r} has no '{key}' dataset (not a complete v1 session file)")
    if status == "recording":
        for key in (ff.SEQ, ff.TIME, ff.GAPS):
            if key in g:
                g[key].refresh()
    t = g[ff.TIME][:]
    gaps = g[ff.GAPS][:]
    live = {}
    if ff.COUNTERS in g:
        live = dict(zip([_str(c) for c in g[ff.COUNTERS].attrs.get(ff.A_COLUMNS, [])], g[ff.COUNTERS][:].tolist()))
    attrs = g.attrs
    n = len(t)
    dur = float(t[-1] - t[0]) if n > 1 else 0.0
    final = status == "complete"

    def count(key: str) -> int:
        v = attrs.get(key) if final and key in attrs else live.get(key, 0)
        return int(v) if v is not None and np.isfinite(float(v)) else 0

    return {
        "kind": _str(attrs.get(ff.A_KIND, "")), "side": _str(attrs.get(ff.A_SIDE, "")),
        "placement": _str(attrs.get(A_PLACEMENT, "")),
        "serial": _str(attrs.get(ff.A_SERIAL, "")),
        "rate_hz": float(attrs.get(ff.A_RATE_HZ, float("nan"))), "samples": n, "duration_s": dur,
        "achieved_rate_hz": (n - 1) / dur if dur > 0 else None,
        "lost_samples": int(np.sum(gaps[:, 2])) if len(gaps) else 0, "gaps": int(len(gaps)),
        "crc_errors": count("crc_errors"), "reconnections": count("reconnections"),
        "drift_ppm": _num(attrs.get("drift_ppm", float("nan"))),
        "fit_residual_ms": _num(attrs.get("fit_residual_ms", float("nan"))),
    }


def _num(v):
    v = float(v)
    return None if not np.isfinite(v) else v
