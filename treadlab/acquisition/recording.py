"""One session file attached to a device stream: the writer as a subscriber.

A :class:`SessionRecording` is what a :class:`~treadlab.acquisition.stream.DeviceStream` hands its data to while
a file is being written: :meth:`SessionRecording.start` creates the file from the devices' descriptions
(:meth:`~treadlab.drivers.base.Device.describe`) and starts the writer thread; the reader threads then call its
``put_*`` methods (the :class:`~treadlab.acquisition.worker.StreamSink` interface) with stream-clock times, which
it moves to the file's session clock (time zero = :attr:`SessionRecording.start_ns`); :meth:`finish` ends the
file (clock refit, final attributes). Detaching it from the stream ends the file; the stream, the devices and the
live view go on.
"""

from __future__ import annotations

import logging
import os
import time

import h5py
import numpy as np

from treadlab import __version__
from treadlab import fileformat as ff
from treadlab.acquisition.session import finalize, utc_now_iso
from treadlab.acquisition.writer import MIN_FREE_BYTES, SessionWriter, TableSetup, create_session_file
from treadlab.errors import StorageError
from treadlab.kinds import DeviceDescription

log = logging.getLogger(__name__)

INFO, WARNING = 20, 30


def root_attributes(meta: dict, rig_text: str, start_ns: int) -> dict:
    """The session file's root attributes at creation (``docs/file-format.md``)."""
    return {
        "format": ff.FORMAT, "format_version": ff.FORMAT_VERSION, "created": utc_now_iso(),
        "software_version": __version__, "start_monotonic_ns": np.int64(start_ns), "start_utc": utc_now_iso(),
        "participant": str(meta.get("participant") or ""), "condition": str(meta.get("condition") or ""),
        "body_mass_kg": float(meta.get("body_mass_kg") or np.nan),
        "treadmill_speed_mps": float(meta.get("treadmill_speed_mps") or np.nan),
        "shoe": str(meta.get("shoe") or ""), "notes": str(meta.get("notes") or ""),
        "rig": rig_text,
        **({"foot_length_mm": float(meta["foot_length_mm"])} if meta.get("foot_length_mm") else {}),
    }


class SessionRecording:
    """A session file being written from a stream (start, device descriptions, samples, stop).

    Parameters
    ----------
    path : str
        The file to create (never overwritten).
    meta : dict
        Session metadata (``participant``, ``condition``, ``body_mass_kg``...).
    rig_text : str
        The rig file's text, stored verbatim.
    descriptions : list of DeviceDescription
        The devices recorded; marker devices write to ``/markers`` and ``/events`` only.
    clock_origin_ns : int or None
        ``monotonic_ns`` of the stream's time zero (None: the stream starts with this file).
    min_free_bytes : int
        Free-space reserve (see :class:`~treadlab.acquisition.writer.SessionWriter`).
    """

    def __init__(self, path: str, meta: dict, rig_text: str, descriptions: list[DeviceDescription],
                 clock_origin_ns: int | None = None, min_free_bytes: int = MIN_FREE_BYTES,
                 tables: list[TableSetup] = ()) -> None:
        self.path = os.fspath(path)
        self.tables = list(tables)
        self.meta = dict(meta)
        self.rig_text = rig_text
        self.descriptions = {d.name: d for d in descriptions}
        self.clock_origin_ns = clock_origin_ns
        self.min_free_bytes = min_free_bytes
        self.start_ns: int | None = None
        self.stop_reason = ""
        self.writer: SessionWriter | None = None
        self._offset_ns = 0
        self._offset_s = 0.0
        self._rows: dict[str, int] = {d.name: 0 for d in descriptions}
        self._baseline: dict[str, dict[str, int]] = {}
        self._finished = False

    # ------------------------------------------------------------------ lifecycle

    def start(self, skipped: list[str] = (), background: bool = False) -> SessionRecording:
        """Create the file (every group and attribute, then SWMR) and start the writer thread.

        Parameters
        ----------
        skipped : list of str
            Optional devices left out (an event each).
        background : bool
            Create the file in the writer thread (what arrives meanwhile waits in its queue), so that this returns
            at once: the app's Record button. A creation failure then shows as :attr:`failed` and is raised by
            :meth:`finish`.

        Raises
        ------
        StorageError
            The file exists, or (``background`` False) cannot be created.
        """
        if os.path.exists(self.path):
            raise StorageError(f"{self.path}: exists already; session files are never overwritten")
        self.start_ns = time.monotonic_ns()
        origin = self.start_ns if self.clock_origin_ns is None else self.clock_origin_ns
        self._offset_ns = self.start_ns - origin
        self._offset_s = self._offset_ns / 1e9
        if background:
            self.writer = SessionWriter(None, min_free_bytes=self.min_free_bytes, open_file=self._create,
                                        path=self.path)
        else:
            self.writer = SessionWriter(self._create(), min_free_bytes=self.min_free_bytes)
        self.writer.start()
        self.writer.put_event(0.0, "session", INFO, f"session started, devices: {', '.join(self.descriptions)}")
        for msg in skipped:
            self.writer.put_event(0.0, "session", WARNING, f"optional device skipped: {msg}")
        log.info("recording to %s (devices: %s)", self.path, ", ".join(self.descriptions))
        return self

    def _create(self):
        """The new session file (SWMR) and its ``.recording`` sidecar."""
        h5 = create_session_file(self.path, root_attributes(self.meta, self.rig_text, self.start_ns),
                                 list(self.descriptions.values()), self.tables)
        with open(self.path + ff.RECORDING_SUFFIX, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        return h5

    def set_baseline(self, name: str, counters: dict[str, int]) -> None:
        """The device's counters when this file started (they are stored relative to them)."""
        self._baseline[name] = dict(counters)

    def counters_of(self, name: str, counters: dict[str, int]) -> dict[str, int]:
        """A device's counters since this file started."""
        base = self._baseline.get(name, {})
        return {k: int(v) - int(base.get(k, 0)) for k, v in counters.items()}

    @property
    def elapsed_s(self) -> float:
        """Seconds since the file's time zero."""
        return 0.0 if self.start_ns is None else (time.monotonic_ns() - self.start_ns) / 1e9

    @property
    def offset_s(self) -> float:
        """Stream time of the file's time zero."""
        return self._offset_s

    @property
    def failed(self) -> bool:
        """True when writing failed: the capture must be stopped (:meth:`finish` raises the error)."""
        return self.writer is not None and self.writer.failed.is_set()

    @property
    def broken(self) -> bool:
        """True when a write failed: the file needs ``lab repair``."""
        return self.writer is not None and self.writer.broken

    def finish(self, reason: str, counters: dict[str, dict[str, int]]) -> str:
        """Write what is queued, close the file and finish it (clock refit, final attributes); returns the path.

        Parameters
        ----------
        reason : str
            ``stop_reason`` ("stopped", "duration", "interrupted"...; a writer failure overrides it).
        counters : dict
            Per device, its counters now (:meth:`DeviceWorker.counters`); stored relative to the baseline.

        Raises
        ------
        StorageError
            Writing failed during the capture (what was written stays readable).
        """
        writer = self.writer
        if self._finished or writer is None:
            return self.path
        self._finished = True
        if writer.error is not None and reason in ("stopped", "storage"):
            reason = "write-failed" if writer.broken else "disk-full"
        self.stop_reason = reason
        duration_s = self.elapsed_s
        writer.put_event(duration_s, "session", INFO, f"session stopped ({reason})")
        rel = {n: self.counters_of(n, c) for n, c in counters.items() if n in self.descriptions}
        for name, c in rel.items():
            writer.set_counters(name, {**c, "queue_overflow": writer.overflow_n})
        writer.stop()
        if writer.h5 is None:  # the file could not be created (background start)
            raise writer.error
        if not writer.broken:
            try:
                with h5py.File(self.path, "r+", libver=ff.LIBVER) as f:
                    finalize(f, ff.STATE_COMPLETE, reason, duration_s, rel)
            except OSError as exc:
                writer.broken = True
                writer.error = StorageError(f"{self.path}: finishing the session file failed ({exc}); "
                                            f"run `lab repair {self.path}`")
        if not writer.broken:
            try:
                os.remove(self.path + ff.RECORDING_SUFFIX)
            except FileNotFoundError:
                pass
        log.info("%s: finished (%s, %.1f s)", self.path, reason, duration_s)
        if writer.error is not None:
            log.error("%s", writer.error)
            raise writer.error
        return self.path

    # ------------------------------------------------------------------ the sink (reader threads)

    def put_samples(self, name: str, seq: np.ndarray, device_time: np.ndarray, time_s: np.ndarray,
                    host_s: np.ndarray, raw: np.ndarray) -> bool:
        """Queue a batch (stream times moved to the file's clock)."""
        if self._offset_ns:
            time_s = time_s - self._offset_s
            host_s = host_s - self._offset_s
        ok = self.writer.put_samples(name, seq, device_time, time_s, host_s, raw)
        if ok:
            self._rows[name] = self._rows.get(name, 0) + len(seq)
        return ok

    def put_gaps(self, name: str, rows: np.ndarray) -> bool:
        """Queue gap rows (their time column moved to the file's clock)."""
        rows = np.array(rows, dtype=np.float64).reshape(-1, 3)
        rows[:, 0] -= self._offset_s
        return self.writer.put_gaps(name, rows)

    def put_segment(self, name: str, offset: int = 0) -> bool:
        """A clock segment starts at the device's file row ``rows so far + offset``."""
        row = np.array([self._rows.get(name, 0) + offset, 0, 0] + [np.nan] * 4)
        return self.writer.put_segment(name, row)

    def put_ping(self, name: str, send_ns: int, recv_ns: int, ticks: int) -> bool:
        """Queue a PING round trip (file-clock ns)."""
        return self.writer.put_ping(name, send_ns - self._offset_ns, recv_ns - self._offset_ns, ticks)

    def put_rows(self, group: str, columns: dict) -> bool:
        """Append rows to one of the extra groups (:class:`~treadlab.acquisition.writer.TableSetup`) of the file."""
        return self.writer.put_rows(group, columns)

    def put_marker(self, time_s: float, label: str) -> bool:
        """Queue a marker given on the stream clock."""
        return self.writer.put_marker(time_s - self._offset_s, label)

    def put_event(self, time_s: float, source: str, level: int, text: str) -> bool:
        """Queue an event given on the stream clock."""
        return self.writer.put_event(time_s - self._offset_s, source, level, text)

    def set_counters(self, name: str, values: dict[str, int]) -> None:
        """Latest counters of a device (since the stream started; stored since this file started)."""
        writer = self.writer
        writer.set_counters(name, {**self.counters_of(name, values), "queue_overflow": writer.overflow_n})
