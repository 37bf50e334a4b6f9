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

from treadlab.acquisition.recording import SessionRecording
from treadlab.acquisition.ring import RingBuffer
from treadlab.acquisition.stream import DeviceStream
from treadlab.acquisition.worker import LiveBatch
from treadlab.acquisition.writer import MIN_FREE_BYTES
from treadlab.drivers import Device, DeviceConfig
from treadlab.errors import LabError, StorageError
from treadlab.kinds import DeviceDescription

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
    clock_warning: str | None = None


@dataclass
class SessionStatus:
    """Live counters of a capture."""

    elapsed_s: float
    file_size_bytes: int
    queue_overflow: int
    devices: list[DeviceStatus] = field(default_factory=list)
    error: str | None = None


class Recorder:
    """Capture every device of a rig into one session file: a :class:`DeviceStream` plus one recording.

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

    Notes
    -----
    :meth:`open` connects the devices and starts streaming them (subscribers see samples from then on);
    :meth:`start` attaches the session file. :meth:`start` without :meth:`open` connects first and attaches the
    file before the first sample, so the file holds everything the subscribers saw.
    """

    def __init__(self, rig_devices: list[DeviceConfig], session_meta: dict, out_path: str, rig_text: str = "",
                 ring_s: float = 10.0, ping_interval_s: float = 1.0, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        self.configs = list(rig_devices)
        self.meta = dict(session_meta)
        self.path = os.fspath(out_path)
        self.rig_text = rig_text
        self.min_free_bytes = min_free_bytes
        self.stop_reason = ""
        self.skipped: list[str] = []
        self.stream = DeviceStream(self.configs, ring_s=ring_s, ping_interval_s=ping_interval_s)
        self._pending: dict[str, tuple[DeviceConfig, Device]] = {}
        self._recording: SessionRecording | None = None
        self._stopped = False

    @classmethod
    def with_devices(cls, devices: list[tuple[DeviceConfig, Device]], session_meta: dict, out_path: str,
                     rig_text: str = "", **kw) -> Recorder:
        """A recorder for devices already connected and identified elsewhere (see :func:`treadlab.drivers.connect`).

        The recorder owns them from now on (it starts, stops and closes them).
        """
        rec = cls([cfg for cfg, _ in devices], session_meta, out_path, rig_text, **kw)
        rec._pending = {cfg.name: (cfg, dev) for cfg, dev in devices}
        return rec

    # ------------------------------------------------------------------ lifecycle

    def _connect_all(self) -> None:
        """Connect and identify every device not connected yet (none is started)."""
        if os.path.exists(self.path):
            raise StorageError(f"{self.path}: exists already; session files are never overwritten")
        try:
            for cfg in self.configs:
                if cfg.name in self._pending or cfg.name in self.stream.names:
                    continue
                try:
                    self._pending[cfg.name] = (cfg, self.stream.connect_device(cfg.name))
                except LabError as exc:
                    if cfg.required:
                        raise
                    self.skipped.append(f"{cfg.name}: {exc}")
        except BaseException:
            self._close_pending()
            raise

    def _start_pending(self, sink: SessionRecording | None) -> None:
        """Start streaming the connected devices (with ``sink`` attached from their first sample)."""
        pending, self._pending = self._pending, {}
        try:
            for name, (cfg, dev) in pending.items():
                try:
                    self.stream.add(cfg, dev, sink=sink)
                except LabError as exc:
                    if cfg.required:
                        raise
                    self.skipped.append(f"{name}: {exc}")
        except BaseException:
            for cfg, dev in pending.values():
                if cfg.name not in self.stream.names:
                    dev.close()
            raise

    def open(self) -> Recorder:
        """Connect, identify and start streaming every device (before any file is created).

        Raises
        ------
        DeviceError
            A required device is missing, is not what the rig file says or refused START (the message names
            it); devices opened so far are closed again. Optional devices that fail are skipped (listed in
            :attr:`skipped`).
        """
        self._connect_all()
        try:
            self._start_pending(None)
        except BaseException:
            self.stream.close()
            raise
        return self

    def start(self) -> None:
        """Create the session file and attach it to the stream; returns once every device streams.

        Raises
        ------
        StorageError
            The file cannot be created.
        DeviceError
            A required device is missing or refused START (nothing is recorded).
        """
        fresh = not self.stream.names
        if fresh:
            self._connect_all()
            descs = [dev.describe() for _, dev in self._pending.values()]
            rec = SessionRecording(self.path, self.meta, self.rig_text, descs, clock_origin_ns=None,
                                   min_free_bytes=self.min_free_bytes)
            try:
                rec.start(self.skipped)
            except BaseException:
                self._close_pending()
                raise
            self.stream.start_ns = rec.start_ns  # one clock: the stream starts with the file
            self._recording = rec
            self.stream.attach_new(rec)
            try:
                self._start_pending(rec)
            except BaseException:
                self.stop("start-failed")
                raise
        else:
            self._recording = self.stream.record(self.path, self.meta, self.rig_text,
                                                 min_free_bytes=self.min_free_bytes, skipped=self.skipped)

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
        errors: list[BaseException] = []
        try:
            self.stream.stop_connector()
            self.stream.stop_devices()  # STOP: the last samples still reach the file
        except RuntimeError as exc:
            errors.append(exc)
        self._close_pending()
        rec = self._recording
        if rec is not None and self.stream.recording is rec:
            try:
                self.stream.stop_recording(reason)
            finally:
                self.stop_reason = rec.stop_reason
        if errors:
            raise errors[0]
        return self.path

    @property
    def descriptions(self) -> dict[str, DeviceDescription]:
        """Descriptions of the connected devices (streaming or about to)."""
        out = {n: dev.describe() for n, (_, dev) in self._pending.items()}
        out.update(self.stream.descriptions)
        return out

    @property
    def clock_origin_ns(self) -> int:
        """``monotonic_ns`` of the stream clock's zero (:class:`LiveBatch` times count from it)."""
        return self.stream.clock_origin_ns

    @property
    def start_ns(self) -> int | None:
        """``monotonic_ns`` of the session file's time zero (None before :meth:`start`)."""
        return self._recording.start_ns if self._recording is not None else None

    def close(self) -> None:
        """Close the devices of a recorder that was opened but never started (no-op otherwise)."""
        if self._recording is None:
            self._close_pending()
            self.stream.close()

    def _close_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for _, dev in pending.values():
            dev.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._recording is None:
            self.close()
            return
        try:
            self.stop("interrupted" if exc_type is KeyboardInterrupt else ("error" if exc_type else "stopped"))
        except LabError:
            if exc_type is None:
                raise

    # ------------------------------------------------------------------ live API

    @property
    def names(self) -> list[str]:
        """Names of the devices being recorded (still known after :meth:`stop`)."""
        if self._recording is not None:
            return list(self._recording.descriptions)
        return list(self.stream.names) or list(self._pending)

    @property
    def failed(self) -> bool:
        """True when writing failed: the capture must be stopped (:meth:`stop` raises the error)."""
        return self._recording is not None and self._recording.failed

    @property
    def write_broken(self) -> bool:
        """True when a write failed: the file needs ``lab repair`` and HDF5 cannot be shut down cleanly."""
        return self._recording is not None and self._recording.broken

    @property
    def elapsed_s(self) -> float:
        """Seconds since session time zero."""
        return 0.0 if self._recording is None else self._recording.elapsed_s

    def mark(self, label: str) -> float:
        """Add a marker now; returns its session time."""
        if self._recording is None:
            raise StorageError("mark(): the capture has not started")
        return self.stream.mark(label)

    def subscribe_markers(self, callback: Callable[[float, str], None]) -> Callable[[], None]:
        """Call ``callback(stream_time_s, label)`` for every marker (from the thread giving it; keep it quick).

        Returns a function that unsubscribes. Used by :class:`~treadlab.acquisition.lsl.RecorderLsl`.
        """
        return self.stream.subscribe_markers(callback)

    def subscribe(self, callback: Callable[[LiveBatch], None]) -> Callable[[], None]:
        """Call ``callback(batch)`` with every :class:`LiveBatch`; returns a function that unsubscribes.

        The callback runs in the device's reader thread: it must be quick and thread-safe (hand the data over,
        e.g. to a queue); an exception it raises is counted and logged as an event, never stops the capture.
        """
        return self.stream.subscribe(callback)

    def ring(self, name: str) -> RingBuffer:
        """The ring buffer of device ``name`` (latest ``ring_s`` seconds, stream clock; poll with ``snapshot``)."""
        return self.stream.ring(name)

    def status(self) -> SessionStatus:
        """Live counters of the capture and of every device."""
        return stream_status(self.stream, self._recording)


def stream_status(stream: DeviceStream, rec: SessionRecording | None) -> SessionStatus:
    """Live counters of a stream and of the recording attached to it (counters since the file started)."""
    now = time.monotonic()
    now_s = stream.now_s()
    devices = []
    for name, w in stream.workers.items():
        rate = 0.0
        t = w.ring.times_s(2.0)
        if len(t) > 1 and now_s - t[-1] < 2.0:
            span = max(t[-1] - t[0], 1e-9)
            rate = (len(t) - 1) / span if now - w.last_sample_mono < STALLED_S else 0.0
        state = w.state
        if state == "streaming" and now - w.last_sample_mono > STALLED_S:
            state = "stalled"
        fit = w.clock.fit
        c = rec.counters_of(name, w.counters()) if rec is not None else w.counters()
        devices.append(DeviceStatus(name, state, c["samples"], rate, w.rate_hz, c["lost_samples"],
                                    c["crc_errors"], fit.drift_ppm if fit is not None and w.clock.has_drift
                                    else float("nan"), c["reconnections"], w.tick_check.warning))
    path = rec.path if rec is not None else ""
    size = os.path.getsize(path) if path and os.path.exists(path) else 0
    writer = rec.writer if rec is not None else None
    return SessionStatus(rec.elapsed_s if rec is not None else 0.0, size, writer.overflow_n if writer else 0,
                         devices, str(writer.error) if writer and writer.error else None)
