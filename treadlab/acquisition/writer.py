"""The session file writer: one thread appending queued batches to a SWMR HDF5 file, flushed every 0.5 s.

Crash safety (``docs/acquisition.md``): every group, dataset and attribute of the session file is created before
``swmr_mode`` is switched on; the writer then only appends (resize + write) and flushes at least every
``flush_interval_s``, so a file left by a killed recorder opens with ``h5py.File(path, "r", swmr=True)`` and holds
everything up to the last flush. Readers never block the writer; reader threads never block on the disk: they
put batches on a bounded queue whose overflow is counted.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from treadlab import fileformat as ff
from treadlab.errors import StorageError, UnknownKindError
from treadlab.kinds import DeviceDescription, get_kind

log = logging.getLogger(__name__)

COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
#: Counters kept live in ``/devices/<name>/counters`` (see docs/file-format.md).
COUNTER_COLUMNS = ff.COUNTER_COLUMNS
_CHUNK_BYTES = 64 * 1024  # small chunks: a flush rewrites at most one partial chunk per dataset
#: Default free-space reserve: below it the capture stops cleanly instead of running into a full disk.
MIN_FREE_BYTES = 64 * 1024 * 1024
#: Default bound on queued sample bytes (several seconds of the stress rig).
MAX_QUEUED_BYTES = 128 * 1024 * 1024
_VEC_CHUNK = 4096


def _text(s: str, n_bytes: int) -> bytes:
    """UTF-8 bytes of ``s`` cut to at most ``n_bytes`` on a character boundary."""
    b = str(s).encode("utf-8")[:n_bytes]
    return b.decode("utf-8", errors="ignore").encode("utf-8")


def _vec(g: h5py.Group, name: str, dtype: Any, cols: int | None = None) -> h5py.Dataset:
    shape, maxshape, chunks = ((0,), (None,), (_VEC_CHUNK,)) if cols is None else ((0, cols), (None, cols), (256, cols))
    # Float rows never written read as NaN (not 0): lab repair tells a real row from an unwritten one.
    fill = np.nan if np.dtype(dtype).kind == "f" else None
    return g.create_dataset(name, shape=shape, maxshape=maxshape, chunks=chunks, dtype=dtype, fillvalue=fill,
                            **COMPRESSION)


@dataclass
class TableSetup:
    """An extra group of append-only columns (e.g. ``/feedback``), laid out before SWMR like every other group.

    Attributes
    ----------
    group : str
        Path of the group, e.g. ``"feedback/cues"``.
    columns : dict of str to dtype
        One 1-D dataset per column (float columns read NaN where unwritten).
    attrs : dict
        Attributes of the group, set at creation (SWMR allows no new attributes later).
    """

    group: str
    columns: dict
    attrs: dict = field(default_factory=dict)


def create_session_file(path: str, root_attrs: dict, devices: list[DeviceDescription],
                        tables: list[TableSetup] | None = None) -> h5py.File:
    """Create a session file with every group, dataset and attribute, and switch it to SWMR writing.

    Parameters
    ----------
    path : str
        New file; an existing path is refused.
    root_attrs : dict
        Root attributes (``fileformat.ROOT_ATTRS`` and more).
    devices : list of DeviceDescription
        From each driver's ``describe()``; marker devices (``markers`` True) get no group.
    tables : list of TableSetup, optional
        Extra groups of columns, appended to with :meth:`SessionWriter.put_rows`.

    Returns
    -------
    h5py.File
        Open in SWMR write mode.

    Raises
    ------
    StorageError
        The path exists or cannot be created.
    """
    try:
        f = h5py.File(path, "x", libver=ff.LIBVER)
    except FileExistsError as exc:
        raise StorageError(f"{path}: exists already; session files are never overwritten") from exc
    except OSError as exc:
        if os.path.exists(path):
            raise StorageError(f"{path}: exists already; session files are never overwritten") from exc
        raise StorageError(f"{path}: cannot create the session file ({exc})") from exc
    try:
        for k, v in root_attrs.items():
            f.attrs[k] = v
        f.attrs[ff.A_STATE] = ff.STATE_RECORDING
        f.attrs[ff.A_STOP_UTC] = ""
        f.attrs[ff.A_DURATION_S] = np.nan
        f.attrs[ff.A_STOP_REASON] = ""
        f.attrs[ff.A_CLOCK_MODEL] = ff.CLOCK_MODEL
        devs = f.create_group(ff.DEVICES)
        for d in devices:
            if not d.markers:
                _create_device(devs, d)
        m = f.create_group(ff.MARKERS)
        m_time, m_label = ff.MARKER_COLUMNS
        _vec(m, m_time, "f8")
        _vec(m, m_label, h5py.string_dtype("utf-8", ff.MARKER_LABEL_BYTES))
        e = f.create_group(ff.EVENTS)
        e_time, e_source, e_level, e_text = ff.EVENT_COLUMNS
        _vec(e, e_time, "f8")
        _vec(e, e_source, h5py.string_dtype("utf-8", ff.EVENT_SOURCE_BYTES))
        _vec(e, e_level, "u1")
        _vec(e, e_text, h5py.string_dtype("utf-8", ff.EVENT_TEXT_BYTES))
        for tab in tables or []:
            g = f.require_group(tab.group)
            for k, v in tab.attrs.items():
                g.attrs[k] = v
            for col, dt in tab.columns.items():
                _vec(g, col, dt)
        f.flush()
        f.swmr_mode = True
    except BaseException:
        f.close()
        raise
    return f


def _create_device(devs: h5py.Group, d: DeviceDescription) -> None:
    g = devs.create_group(d.name)
    g.attrs[ff.A_KIND] = d.kind or ""
    g.attrs[ff.A_SIDE] = d.side or ""
    g.attrs[ff.A_PROTOCOL] = d.protocol
    g.attrs[ff.A_RATE_HZ] = float(d.rate_hz)
    g.attrs[ff.A_INFO_JSON] = json.dumps(d.info, default=str)
    g.attrs[ff.A_SERIAL] = d.serial or ""
    g.attrs[ff.A_CLOCK_HZ] = float(d.clock_hz)
    g.attrs[ff.A_SHAPE] = np.asarray(d.shape, dtype=np.int64)
    for k, v in _device_attrs(d).items():  # the kind's own attributes (a force device's channels, belts, axes...)
        g.attrs[k] = v
    for k in ff.FINAL_DEVICE_ATTRS:
        g.attrs[k] = np.nan if k in ("drift_ppm", "fit_residual_ms", "achieved_rate_hz") else 0
    row_bytes = max(1, d.n_values * np.dtype(d.dtype).itemsize)
    rows = int(max(1, min(4096, _CHUNK_BYTES // row_bytes)))
    g.create_dataset(ff.RAW, shape=(0, *d.shape), maxshape=(None, *d.shape), chunks=(rows, *d.shape),
                     dtype=d.dtype, **COMPRESSION)
    _vec(g, ff.SEQ, "u4")
    _vec(g, ff.DEVICE_TIME, "u8")
    _vec(g, ff.TIME, "f8")
    _vec(g, ff.HOST_TIME, "f8")
    gaps = _vec(g, ff.GAPS, "f8", cols=3)
    gaps.attrs[ff.A_COLUMNS] = list(ff.GAP_COLUMNS)
    cal = g.create_group(ff.CALIBRATION)
    if d.calibration is not None:
        cal.create_dataset(ff.CAL_GAIN, data=np.asarray(d.calibration.gain, dtype=np.float32))
        cal.create_dataset(ff.CAL_OFFSET, data=np.asarray(d.calibration.offset, dtype=np.float32))
        cal.attrs[ff.A_CAL_UNIT] = d.calibration.unit
    else:
        cal.create_dataset(ff.CAL_GAIN, data=np.ones(d.n_values, np.float32))
        cal.create_dataset(ff.CAL_OFFSET, data=np.zeros(d.n_values, np.float32))
        cal.attrs[ff.A_CAL_UNIT] = ff.UNIT_RAW
    if d.channel_units:
        width = max(1, max(len(u.encode("utf-8")) for u in d.channel_units))
        cal.create_dataset(ff.CAL_UNITS, data=np.asarray([u.encode("utf-8") for u in d.channel_units],
                                                         dtype=f"S{width}"))
    lay = g.create_group(ff.LAYOUT)
    attrs, data = _geometry(d)
    if d.layout is not None:
        lay.create_dataset(ff.LAYOUT_POSITIONS, data=np.asarray(d.layout["positions_mm"], dtype=np.float32))
        lay.create_dataset(ff.LAYOUT_AREAS, data=np.asarray(d.layout["areas_mm2"], dtype=np.float32))
        lay.attrs[ff.A_FOOT_LENGTH_MM] = float(d.layout.get("foot_length_mm", np.nan))
        if d.layout.get("name"):
            lay.attrs[ff.A_LAYOUT_NAME] = str(d.layout["name"])
    for k, v in attrs.items():  # the kind's geometry (a mat's pitch, rows, cols, belt axis)
        lay.attrs[k] = v
    for k, v in data.items():
        if k not in lay:
            lay.create_dataset(k, data=np.asarray(v, dtype=np.float32))
    clk = g.create_group(ff.CLOCK)
    seg = _vec(clk, ff.CLOCK_SEGMENTS_NAME, "f8", cols=len(ff.SEGMENT_COLUMNS))
    seg.attrs[ff.A_COLUMNS] = list(ff.SEGMENT_COLUMNS)
    pings = _vec(clk, ff.CLOCK_PINGS_NAME, "i8", cols=len(ff.PING_COLUMNS))
    pings.attrs[ff.A_COLUMNS] = list(ff.PING_COLUMNS)
    cnt = g.create_dataset(ff.COUNTERS, data=np.zeros(len(ff.COUNTER_COLUMNS), np.int64))
    cnt.attrs[ff.A_COLUMNS] = list(ff.COUNTER_COLUMNS)


def _device_attrs(d: DeviceDescription) -> dict:
    """The registered kind's attributes of the device group (:meth:`Kind.device_attrs`); none for an unknown kind."""
    try:
        return get_kind(d.kind, d.name).device_attrs(d.info)
    except UnknownKindError:  # a kind this process does not know (a test factory's)
        return {}


def _geometry(d: DeviceDescription) -> tuple[dict, dict]:
    """The kind's ``layout`` attributes and datasets: the description's, else its registered kind's."""
    if d.layout_attrs or d.layout_data:
        return d.layout_attrs, d.layout_data
    try:
        return get_kind(d.kind, d.name).geometry(d.info, tuple(d.shape), d.layout)
    except UnknownKindError:  # a kind this process does not know (a test factory's): no geometry
        return {}, {}


def _append(ds: h5py.Dataset, rows: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + len(rows), axis=0)
    ds[n:] = rows


class SessionWriter:
    """Owner of the writer thread of one session file.

    Reader threads call the ``put_*`` methods (never blocking; a full queue drops the item and counts it in
    :attr:`overflow_n`); the thread appends in blocks every ``write_interval_s`` and flushes at least every
    ``flush_interval_s``. A failed write stops the thread and sets :attr:`error` (a :class:`StorageError`);
    the owner stops the capture.

    Parameters
    ----------
    h5 : h5py.File or None
        From :func:`create_session_file` (SWMR write mode); closed by :meth:`stop`. None: the thread creates it
        first with ``open_file()`` (items put meanwhile wait in the queue), so that starting costs no disk time.
    max_items : int
        Queue bound (batches, markers, events...).
    open_file : callable, optional
        Makes the file when ``h5`` is None; a :class:`StorageError` it raises becomes :attr:`error`.
    path : str
        The file's path when ``h5`` is None.
    max_bytes : int
        Bound on the sample bytes waiting in the queue (so that a disk slower than the devices cannot eat the
        memory); a batch beyond it is dropped and counted in :attr:`overflow_n`.
    write_interval_s, flush_interval_s : float
    min_free_bytes : int
        When the disk holding the file has less free space than this, the writer stops taking batches (a clean
        stop with :attr:`error` set, before any write can fail); what is queued is still written.

    Notes
    -----
    A write that does fail (I/O error, file size limit) leaves the HDF5 library unable to close the file
    (:attr:`broken`); the data up to the last flush stays readable with ``swmr=True`` and ``lab repair``.
    """

    def __init__(self, h5: h5py.File | None, max_items: int = 20000, write_interval_s: float = 0.2,
                 flush_interval_s: float = 0.5, min_free_bytes: int = MIN_FREE_BYTES,
                 max_bytes: int = MAX_QUEUED_BYTES, open_file: Callable[[], h5py.File] | None = None,
                 path: str = "") -> None:
        self.h5 = h5
        self._open_file = open_file
        self.path = h5.filename if h5 is not None else os.fspath(path)
        self.min_free_bytes = min_free_bytes
        self.broken = False
        self._q: queue.Queue = queue.Queue(maxsize=max_items)
        self.max_bytes = max_bytes
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        self.write_interval_s = write_interval_s
        self.flush_interval_s = flush_interval_s
        self.overflow_n = 0
        self.error: StorageError | None = None
        self.failed = threading.Event()
        self.rows_written: dict[str, int] = {}
        self.flushes_n = 0
        self.last_flush_mono = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counters: dict[str, np.ndarray] = {}
        self._flushed_rows: dict[str, int] = {}

    # ------------------------------------------------------------------ producers (any thread)

    def _put(self, item: tuple) -> bool:
        if self.failed.is_set():
            return False
        try:
            self._q.put_nowait(item)
            return True
        except queue.Full:
            self._overflowed()
            return False

    def put_samples(self, name: str, seq: np.ndarray, device_time: np.ndarray, time_s: np.ndarray,
                    host_s: np.ndarray, raw: np.ndarray) -> bool:
        """Queue a batch of samples of device ``name`` (raw shaped (k, *shape)). False if dropped."""
        nbytes = raw.nbytes + 28 * len(seq)
        with self._bytes_lock:
            if self._queued_bytes + nbytes > self.max_bytes:
                self._overflowed()
                return False
            self._queued_bytes += nbytes
        if self._put(("s", name, seq, device_time, time_s, host_s, raw)):
            return True
        with self._bytes_lock:
            self._queued_bytes -= nbytes
        return False

    def _overflowed(self) -> None:
        """Count a dropped item; the first and every 1000th drop are logged."""
        self.overflow_n += 1
        if self.overflow_n == 1 or self.overflow_n % 1000 == 0:
            log.warning("%s: write queue full, %d items dropped so far", self.path, self.overflow_n)

    @property
    def queued_bytes(self) -> int:
        """Sample bytes waiting to be written."""
        return self._queued_bytes

    def put_gaps(self, name: str, rows: np.ndarray) -> bool:
        """Queue rows (k, 3) of the device's ``gaps`` table."""
        return self._put(("g", name, np.asarray(rows, dtype=np.float64).reshape(-1, 3)))

    def put_segment(self, name: str, row: np.ndarray) -> bool:
        """Queue a ``clock/segments`` row (written live at each segment start, refitted at stop)."""
        return self._put(("c", name, np.asarray(row, dtype=np.float64).reshape(1, -1)))

    def put_ping(self, name: str, send_ns: int, recv_ns: int, ticks: int) -> bool:
        """Queue a PING round trip (session-clock ns, device ticks)."""
        return self._put(("p", name, np.array([[send_ns, recv_ns, ticks]], dtype=np.int64)))

    def put_marker(self, time_s: float, label: str) -> bool:
        """Queue a marker."""
        return self._put(("m", float(time_s), _text(label, ff.MARKER_LABEL_BYTES)))

    def put_event(self, time_s: float, source: str, level: int, text: str) -> bool:
        """Queue an event (device LOG or session event)."""
        return self._put(("e", float(time_s), _text(source, ff.EVENT_SOURCE_BYTES), int(level),
                          _text(text, ff.EVENT_TEXT_BYTES)))

    def put_rows(self, group: str, columns: dict[str, np.ndarray]) -> bool:
        """Queue rows of a :class:`TableSetup` group: every column's values, equal lengths."""
        return self._put(("t", group, {k: np.atleast_1d(np.asarray(v)) for k, v in columns.items()}))

    def set_counters(self, name: str, values: dict[str, int]) -> None:
        """Latest counters of a device, written to ``counters`` at the next flush."""
        self._counters[name] = np.array([int(values.get(k, 0)) for k in COUNTER_COLUMNS], dtype=np.int64)
        self._counters[name][-1] = self._flushed_rows.get(name, 0)

    @property
    def queued_n(self) -> int:
        """Items waiting to be written."""
        return self._q.qsize()

    # ------------------------------------------------------------------ thread

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name=f"writer:{os.path.basename(self.path)}")
        self._thread.start()

    def stop(self, timeout_s: float = 120.0) -> None:
        """Write everything queued, flush, join the thread (checked) and close the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError(f"writer thread of {self.path} did not stop within {timeout_s} s")
            self._thread = None
        if self.h5 is None:  # never created (see :attr:`error`)
            return
        try:
            self.h5.close()
        except (OSError, RuntimeError, ValueError) as exc:
            if self.error is None:
                self.error = StorageError(f"{self.path}: closing the session file failed ({exc})")
                self.failed.set()

    def _run(self) -> None:
        if self.h5 is None:
            try:
                self.h5 = self._open_file()
            except StorageError as exc:
                self.error = exc
                log.error("%s", exc)
                self.failed.set()
                while not self._q.empty():
                    self._q.get_nowait()
                return
        pending: list[tuple] = []
        last_write = last_flush = time.monotonic()
        while True:
            stopping = self._stop.is_set()
            try:
                pending.append(self._q.get(timeout=0.05))
                while True:
                    pending.append(self._q.get_nowait())
            except queue.Empty:
                pass
            now = time.monotonic()
            if pending and (now - last_write >= self.write_interval_s or stopping or len(pending) > 2000):
                if not self._guard(self._write, pending):
                    break
                pending = []
                last_write = now
            if now - last_flush >= self.flush_interval_s or (stopping and self._q.empty()):
                if not self._guard(self._flush):
                    break
                last_flush = now
            if stopping and self._q.empty() and not pending:
                break
        if self.broken:  # drop what is left; nothing more can be written
            while not self._q.empty():
                self._q.get_nowait()

    def _guard(self, fn, *args) -> bool:
        try:
            fn(*args)
            return True
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
            self.broken = True
            self.error = StorageError(f"{self.path}: writing the session file failed ({exc}); capture stopped, "
                                      f"data up to the last flush is in the file (run `lab repair {self.path}`)")
            log.error("%s", self.error)
            self.failed.set()
            return False

    def _flush(self) -> None:
        devs = self.h5[ff.DEVICES]
        for name in devs:
            vals = self._counters.get(name, np.zeros(len(COUNTER_COLUMNS), np.int64))
            # rows known durable: those of the previous successful flush (this one may still fail half-way)
            vals[-1] = self._flushed_rows.get(name, 0)
            devs[name][ff.COUNTERS][:] = vals
        rows = dict(self.rows_written)
        self.h5.flush()
        self._flushed_rows.update(rows)
        self.flushes_n += 1
        self.last_flush_mono = time.monotonic()
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(self.path))).free
        if free < self.min_free_bytes and not self.failed.is_set():
            self.error = StorageError(f"{self.path}: the disk is almost full ({free / 1e6:.0f} MB free); capture "
                                      f"stopped, the file is complete up to here")
            log.error("%s", self.error)
            self.failed.set()

    def _write(self, items: list[tuple]) -> None:
        samples: dict[str, list[tuple]] = {}
        tables: dict[tuple[str, str], list[np.ndarray]] = {}
        markers: list[tuple] = []
        events: list[tuple] = []
        table_rows: dict[str, list[dict]] = {}
        for it in items:  # one iteration per queued batch, not per sample
            kind = it[0]
            if kind == "s":
                samples.setdefault(it[1], []).append(it[2:])
            elif kind in ("g", "c", "p"):
                tables.setdefault((it[1], kind), []).append(it[2])
            elif kind == "m":
                markers.append(it[1:])
            elif kind == "e":
                events.append(it[1:])
            elif kind == "t":
                table_rows.setdefault(it[1], []).append(it[2])
        devs = self.h5[ff.DEVICES]
        done_bytes = sum(b[4].nbytes + 28 * len(b[0]) for bs in samples.values() for b in bs)
        for name, batches in samples.items():
            g = devs[name]
            cols = list(zip(*batches))
            for key, arrs in zip((ff.SEQ, ff.DEVICE_TIME, ff.TIME, ff.HOST_TIME, ff.RAW), cols):
                _append(g[key], np.concatenate(arrs))
            self.rows_written[name] = g[ff.SEQ].shape[0]
        with self._bytes_lock:
            self._queued_bytes -= done_bytes
        where = {"g": ff.GAPS, "c": ff.CLOCK_SEGMENTS, "p": ff.CLOCK_PINGS}
        for (name, kind), rows in tables.items():
            _append(devs[name][where[kind]], np.concatenate(rows))
        if markers:
            g = self.h5[ff.MARKERS]
            _append(g["time"], np.array([m[0] for m in markers]))
            label_dt = h5py.string_dtype("utf-8", ff.MARKER_LABEL_BYTES)
            _append(g["label"], np.array([m[1] for m in markers], dtype=label_dt))
        if events:
            g = self.h5[ff.EVENTS]
            t, src, lvl, txt = zip(*events)
            _append(g["time"], np.array(t))
            _append(g["source"], np.array(src, dtype=h5py.string_dtype("utf-8", ff.EVENT_SOURCE_BYTES)))
            _append(g["level"], np.array(lvl, dtype=np.uint8))
            _append(g["text"], np.array(txt, dtype=h5py.string_dtype("utf-8", ff.EVENT_TEXT_BYTES)))
        for group, parts in table_rows.items():  # one iteration per table group and column
            g = self.h5[group]
            for col in parts[0]:
                _append(g[col], np.concatenate([p[col] for p in parts]).astype(g[col].dtype))
