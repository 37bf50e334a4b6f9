"""The Recorder: a rig's devices on one session clock, streamed to one session file (Python API, no Qt).

Usage::

    with Recorder(devices, {"participant": "P01", "condition": "baseline"}, "P01.h5", rig_text) as rec:
        rec.subscribe(on_batch)          # called from the reader threads with LiveBatch objects
        rec.start()
        rec.mark("warm-up done")
        t, values = rec.ring("insole_left").snapshot(last_s=5.0)   # for polling views
        print(rec.status())
    # leaving the block stops the capture cleanly and finishes the file

Threads: one reader per device (:class:`~treadlab.acquisition.worker.DeviceWorker`), one writer
(:class:`~treadlab.acquisition.writer.SessionWriter`); all are started by :meth:`Recorder.start` and joined
(checked) by :meth:`Recorder.stop`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h5py
import numpy as np

from treadlab import __version__
from treadlab import fileformat as ff
from treadlab.acquisition.ring import RingBuffer
from treadlab.acquisition.session import finalize, utc_now_iso
from treadlab.acquisition.worker import DeviceWorker, LiveBatch, connect, setup_of
from treadlab.acquisition.writer import MIN_FREE_BYTES, SessionWriter, create_session_file
from treadlab.drivers import DeviceConfig
from treadlab.errors import LabError, StorageError

META_KEYS = ("participant", "condition", "body_mass_kg", "treadmill_speed_mps", "shoe", "notes")
STALLED_S = 1.0


@dataclass
class DeviceStatus:
    """Live counters of one device (see :meth:`Recorder.status`)."""

    name: str
    state: str
    samples: int
    rate_hz: float
    nominal_hz: float
    lost: int
    crc_errors: int
    drift_ppm: float
    reconnections: int


@dataclass
class SessionStatus:
    """Live counters of a capture."""

    elapsed_s: float
    file_size_bytes: int
    queue_overflow: int
    devices: list[DeviceStatus] = field(default_factory=list)
    error: str | None = None


class Recorder:
    """Capture every device of a rig into one session file.

    Parameters
    ----------
    rig_devices : list of DeviceConfig
    session_meta : dict
        ``participant``, ``condition``, ``body_mass_kg``, ``treadmill_speed_mps``, ``shoe``, ``notes`` (any may
        be missing).
    out_path : str
        The session file to create (never overwritten).
    rig_text : str
        The rig file's text, stored verbatim.
    ring_s : float
        Seconds of samples each ring buffer keeps.
    ping_interval_s : float
        PING period of each binary device while streaming.
    min_free_bytes : int
        Free-space reserve on the output disk: below it the capture stops cleanly (see :class:`SessionWriter`).
    """

    def __init__(self, rig_devices: list[DeviceConfig], session_meta: dict, out_path: str, rig_text: str = "",
                 ring_s: float = 10.0, ping_interval_s: float = 1.0, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        self.configs = list(rig_devices)
        self.meta = dict(session_meta)
        self.path = os.fspath(out_path)
        self.rig_text = rig_text
        self.ring_s = ring_s
        self.ping_interval_s = ping_interval_s
        self.min_free_bytes = min_free_bytes
        self.start_ns: int | None = None
        self.stop_reason = ""
        self.skipped: list[str] = []
        self._devices: dict[str, tuple[DeviceConfig, object]] = {}
        self._workers: dict[str, DeviceWorker] = {}
        self._subscribers: list[Callable[[LiveBatch], None]] = []
        self._marker_subscribers: list[Callable[[float, str], None]] = []
        self._writer: SessionWriter | None = None
        self._stopped = False

    @classmethod
    def with_devices(cls, devices: list[tuple[DeviceConfig, object]], session_meta: dict, out_path: str,
                     rig_text: str = "", **kw) -> Recorder:
        """A recorder for devices already connected and identified elsewhere (see :func:`worker.connect`).

        The recorder owns them from now on (it starts, stops and closes them).
        """
        rec = cls([cfg for cfg, _ in devices], session_meta, out_path, rig_text, **kw)
        rec._devices = {cfg.name: (cfg, dev) for cfg, dev in devices}
        return rec

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> Recorder:
        """Connect and identify every device (before any file is created).

        Raises
        ------
        DeviceError
            A required device is missing or is not what the rig file says (the message names it); devices opened
            so far are closed again. Optional devices that fail are skipped (listed in :attr:`skipped`).
        """
        if os.path.exists(self.path):
            raise StorageError(f"{self.path}: exists already; session files are never overwritten")
        try:
            for cfg in self.configs:
                if cfg.name in self._devices:
                    continue
                try:
                    self._devices[cfg.name] = (cfg, connect(cfg))
                except LabError as exc:
                    if cfg.required:
                        raise
                    self.skipped.append(f"{cfg.name}: {exc}")
        except BaseException:
            self._close_devices()
            raise
        return self

    def start(self) -> None:
        """Create the session file, start the writer and every device; returns once all are streaming.

        Raises
        ------
        StorageError
            The file cannot be created.
        DeviceError
            A device refused START (the capture is stopped again and the file finished).
        """
        if not self._devices:
            self.open()
        # a marker device (an external LSL string stream) writes to /markers and /events, not to /devices
        setups = [setup_of(dev, cfg) for cfg, dev in self._devices.values() if not getattr(dev, "markers", False)]
        self.start_ns = time.monotonic_ns()
        root = {
            "format": ff.FORMAT, "format_version": ff.FORMAT_VERSION, "created": utc_now_iso(),
            "software_version": __version__, "start_monotonic_ns": np.int64(self.start_ns), "start_utc": utc_now_iso(),
            "participant": str(self.meta.get("participant") or ""), "condition": str(self.meta.get("condition") or ""),
            "body_mass_kg": float(self.meta.get("body_mass_kg") or np.nan),
            "treadmill_speed_mps": float(self.meta.get("treadmill_speed_mps") or np.nan),
            "shoe": str(self.meta.get("shoe") or ""), "notes": str(self.meta.get("notes") or ""),
            "rig": self.rig_text,
        }
        try:
            h5 = create_session_file(self.path, root, setups)
        except BaseException:
            self._close_devices()
            raise
        with open(self.path + ff.RECORDING_SUFFIX, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        self._writer = SessionWriter(h5, min_free_bytes=self.min_free_bytes)
        self._writer.start()
        self._writer.put_event(0.0, "session", 20, f"session started, devices: {', '.join(self._devices)}")
        for msg in self.skipped:
            self._writer.put_event(0.0, "session", 30, f"optional device skipped: {msg}")
        for name, (cfg, dev) in self._devices.items():
            w = DeviceWorker(cfg, dev, self.start_ns, self._writer, self._subscribers, self.ring_s,
                             self.ping_interval_s, marker_subscribers=self._marker_subscribers)
            self._workers[name] = w
            w.start()
        for w in self._workers.values():
            w.started.wait(10.0)
        failed = [w for w in self._workers.values() if w.error is not None]
        if failed:
            err = failed[0].error
            self.stop("start-failed")
            raise err

    def stop(self, reason: str = "stopped") -> str:
        """Stop every device, write what is queued, close the file and finish it (clock refit, final attributes).

        Safe to call more than once. Returns the file's path.

        Raises
        ------
        StorageError
            Writing failed during the capture (what was written stays readable).
        """
        if self._stopped:
            return self.path
        self._stopped = True
        writer = self._writer
        if writer is not None and writer.error is not None and reason in ("stopped", "storage"):
            reason = "write-failed" if writer.broken else "disk-full"
        self.stop_reason = reason
        errors: list[BaseException] = []
        for w in self._workers.values():
            try:
                w.stop()
            except RuntimeError as exc:
                errors.append(exc)
        self._close_devices()
        if writer is None:
            return self.path
        duration_s = (time.monotonic_ns() - (self.start_ns or 0)) / 1e9
        writer.put_event(duration_s, "session", 20, f"session stopped ({reason})")
        for name, w in self._workers.items():
            writer.set_counters(name, {**w.counters(), "queue_overflow": writer.overflow_n})
        writer.stop()
        if not writer.broken:
            try:
                with h5py.File(self.path, "r+", libver=ff.LIBVER) as f:
                    finalize(f, ff.STATE_COMPLETE, reason, duration_s,
                             {n: w.counters() for n, w in self._workers.items()})
            except OSError as exc:
                writer.broken = True
                writer.error = StorageError(f"{self.path}: finishing the session file failed ({exc}); "
                                            f"run `lab repair {self.path}`")
        if not writer.broken:
            try:
                os.remove(self.path + ff.RECORDING_SUFFIX)
            except FileNotFoundError:
                pass
        if errors:
            raise errors[0]
        if writer.error is not None:
            raise writer.error
        return self.path

    @property
    def connected(self) -> list:
        """The identified drivers after :meth:`open` (for estimates; only the reader threads use them later)."""
        return [dev for _, dev in self._devices.values()]

    def close(self) -> None:
        """Close the devices of a recorder that was opened but never started (no-op otherwise)."""
        if self._writer is None:
            self._close_devices()

    def _close_devices(self) -> None:
        for name, (_, dev) in list(self._devices.items()):
            if name not in self._workers:
                dev.close()
        if not self._workers:
            self._devices.clear()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is None:
            self._close_devices()
            return
        try:
            self.stop("interrupted" if exc_type is KeyboardInterrupt else ("error" if exc_type else "stopped"))
        except LabError:
            if exc_type is None:
                raise

    # ------------------------------------------------------------------ live API

    @property
    def names(self) -> list[str]:
        """Names of the devices being recorded."""
        return list(self._devices)

    @property
    def failed(self) -> bool:
        """True when writing failed: the capture must be stopped (:meth:`stop` raises the error)."""
        return self._writer is not None and self._writer.failed.is_set()

    @property
    def write_broken(self) -> bool:
        """True when a write failed: the file needs ``lab repair`` and HDF5 cannot be shut down cleanly."""
        return self._writer is not None and self._writer.broken

    @property
    def elapsed_s(self) -> float:
        """Seconds since session time zero."""
        return 0.0 if self.start_ns is None else (time.monotonic_ns() - self.start_ns) / 1e9

    def mark(self, label: str) -> float:
        """Add a marker now; returns its session time."""
        if self._writer is None:
            raise StorageError("mark(): the capture has not started")
        t = self.elapsed_s
        self._writer.put_marker(t, label)
        for cb in list(self._marker_subscribers):
            cb(t, label)
        return t

    def subscribe_markers(self, callback: Callable[[float, str], None]) -> Callable[[], None]:
        """Call ``callback(time_s, label)`` for every marker (from the thread calling :meth:`mark`; keep it quick).

        Returns a function that unsubscribes. Used by :class:`~treadlab.acquisition.lsl.RecorderLsl`.
        """
        self._marker_subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._marker_subscribers:
                self._marker_subscribers.remove(callback)

        return unsubscribe

    def subscribe(self, callback: Callable[[LiveBatch], None]) -> Callable[[], None]:
        """Call ``callback(batch)`` with every :class:`LiveBatch`; returns a function that unsubscribes.

        The callback runs in the device's reader thread: it must be quick and thread-safe (hand the data over,
        e.g. to a queue); an exception it raises is counted and logged as an event, never stops the capture.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def ring(self, name: str) -> RingBuffer:
        """The ring buffer of device ``name`` (latest ``ring_s`` seconds; poll with ``snapshot``)."""
        return self._workers[name].ring

    def status(self) -> SessionStatus:
        """Live counters of the capture and of every device."""
        now = time.monotonic()
        devices = []
        for name, w in self._workers.items():
            rate = 0.0
            t = w.ring.times_s(2.0)
            if len(t) > 1 and self.elapsed_s - t[-1] < 2.0:
                span = max(t[-1] - t[0], 1e-9)
                rate = (len(t) - 1) / span if now - w.last_sample_mono < STALLED_S else 0.0
            state = w.state
            if state == "streaming" and now - w.last_sample_mono > STALLED_S:
                state = "stalled"
            fit = w.clock.fit
            devices.append(DeviceStatus(name, state, w.samples_n, rate, w.rate_hz, w.lost_n, w.crc_errors,
                                        fit.drift_ppm if fit is not None and w.clock.has_drift else float("nan"),
                                        w.reconnections))
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        writer = self._writer
        return SessionStatus(self.elapsed_s, size, writer.overflow_n if writer else 0, devices,
                             str(writer.error) if writer and writer.error else None)
