"""The device stream: a rig's connected devices on one clock, streaming from the moment they are connected.

A :class:`DeviceStream` owns one :class:`~treadlab.acquisition.worker.DeviceWorker` (reader thread) per connected
device, their ring buffers, the batch and marker subscribers, and an optional background connector that keeps
trying devices that are not there yet. Recording is a subscriber: :meth:`DeviceStream.record` attaches a
:class:`~treadlab.acquisition.recording.SessionRecording` to the running workers, :meth:`stop_recording`
detaches it and ends the file; neither re-identifies a device nor pauses the stream. The
:class:`~treadlab.acquisition.recorder.Recorder` (``lab record``) and the desktop app both sit on it.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from treadlab.acquisition.recording import SessionRecording
from treadlab.acquisition.ring import RingBuffer
from treadlab.acquisition.worker import DeviceWorker, LiveBatch
from treadlab.acquisition.writer import MIN_FREE_BYTES
from treadlab.drivers import Device, DeviceConfig, connect
from treadlab.errors import DeviceError, LabError, StorageError
from treadlab.kinds import DeviceDescription

log = logging.getLogger(__name__)

#: Events kept for display (the newest).
MAX_EVENTS = 200


class DeviceStream:
    """Connected devices streaming on one clock; recording attaches to it.

    Parameters
    ----------
    configs : iterable of DeviceConfig
        The rig's devices.
    ring_s : float
        Seconds each ring buffer keeps.
    ping_interval_s : float
        PING period of devices that answer PING.
    retry_s : float
        Period of the background connector and of a worker's reconnection attempts.
    connect_timeout_s : float
        How long identifying one device may take.

    Notes
    -----
    Threads: one reader per connected device, and at most one connector thread (:meth:`connect_in_background`);
    all are joined (checked) by :meth:`close`.
    """

    def __init__(self, configs: Iterable[DeviceConfig], ring_s: float = 10.0, ping_interval_s: float = 1.0,
                 retry_s: float = 0.5, connect_timeout_s: float = 2.0) -> None:
        self.configs: dict[str, DeviceConfig] = {cfg.name: cfg for cfg in configs}
        self.ring_s = ring_s
        self.ping_interval_s = ping_interval_s
        self.retry_s = retry_s
        self.connect_timeout_s = connect_timeout_s
        self.start_ns: int | None = None
        self.errors: dict[str, str] = {}
        self.events: collections.deque = collections.deque(maxlen=MAX_EVENTS)
        self.recording: SessionRecording | None = None
        self._workers: dict[str, DeviceWorker] = {}
        self._subscribers: list[Callable[[LiveBatch], None]] = []
        self._marker_subscribers: list[Callable[[float, str], None]] = []
        self._lock = threading.Lock()
        self._connector: threading.Thread | None = None
        self._connector_stop = threading.Event()
        self._wanted: set[str] = set()
        self._stopped_workers: dict[str, DeviceWorker] = {}
        self._closed = False

    # ------------------------------------------------------------------ clock

    @property
    def clock_origin_ns(self) -> int:
        """``monotonic_ns`` of stream time zero (set when the first device starts streaming)."""
        if self.start_ns is None:
            self.start_ns = time.monotonic_ns()
        return self.start_ns

    def now_s(self) -> float:
        """Current stream time."""
        return (time.monotonic_ns() - self.clock_origin_ns) / 1e9

    # ------------------------------------------------------------------ devices

    @property
    def workers(self) -> dict[str, DeviceWorker]:
        """Reader threads of the streaming devices, by name (a copy)."""
        with self._lock:
            return dict(self._workers)

    @property
    def names(self) -> list[str]:
        """Names of the streaming devices, in rig order."""
        with self._lock:
            return [n for n in self.configs if n in self._workers]

    @property
    def descriptions(self) -> dict[str, DeviceDescription]:
        """Descriptions of the streaming devices, by name."""
        return {n: w.desc for n, w in self.workers.items()}

    def ring(self, name: str) -> RingBuffer:
        """The ring buffer of device ``name`` (latest ``ring_s`` seconds; poll with ``snapshot``)."""
        return self._workers[name].ring

    def connect_device(self, name: str) -> Device:
        """Connect and identify one rig device (not streaming yet); raises the drivers' errors."""
        try:
            dev = connect(self.configs[name], timeout_s=self.connect_timeout_s)
        except LabError as exc:
            self.errors[name] = str(exc)
            raise
        self.errors.pop(name, None)
        return dev

    def add(self, cfg: DeviceConfig, dev: Device, sink: SessionRecording | None = None,
            wait_s: float = 10.0) -> DeviceWorker:
        """Start streaming a connected device; returns its worker once START was answered (or failed).

        Raises
        ------
        DeviceError
            The device refused START (it is closed again).
        """
        self.configs.setdefault(cfg.name, cfg)
        w = DeviceWorker(cfg, dev, self.clock_origin_ns, self._subscribers, self.ring_s, self.ping_interval_s,
                         retry_s=self.retry_s, marker_subscribers=self._marker_subscribers,
                         on_event=self._on_event, sink=sink)
        w.start()
        w.started.wait(wait_s)
        if w.error is not None:
            w.stop()
            self.errors[cfg.name] = str(w.error)
            raise w.error
        with self._lock:
            self._workers[cfg.name] = w
        return w

    def connect(self, names: Iterable[str] | None = None) -> dict[str, LabError]:
        """Connect and start the named devices (default: all) one after the other; returns the failures."""
        failures: dict[str, LabError] = {}
        for name in list(self.configs if names is None else names):
            if name in self._workers:
                continue
            try:
                self.add(self.configs[name], self.connect_device(name))
            except LabError as exc:
                failures[name] = exc
        return failures

    def connect_in_background(self, names: Iterable[str]) -> None:
        """Keep trying to connect the named devices (every ``retry_s``) until each streams or :meth:`close`.

        A device plugged in after the stream started appears by itself. One connector thread (started by the
        first call, joined by :meth:`stop_connector`) serves every call.
        """
        with self._lock:
            self._wanted.update(names)
            alive = self._connector is not None and self._connector.is_alive()
        if not alive and not self._closed:
            self._connector_stop.clear()
            self._connector = threading.Thread(target=self._connect_loop, name="stream-connector")
            self._connector.start()

    def _connect_loop(self) -> None:
        """Until :meth:`stop_connector`: try every wanted device that is not streaming, then wait ``retry_s``."""
        while not self._connector_stop.is_set():
            with self._lock:
                pending = [n for n in self.configs if n in self._wanted and n not in self._workers]
            for name in pending:
                if self._connector_stop.is_set():
                    return
                try:
                    dev = self.connect_device(name)
                except LabError:
                    continue
                with self._lock:
                    still_wanted = name in self._wanted and not self._connector_stop.is_set()
                if not still_wanted:
                    dev.close()
                    continue
                try:
                    self.add(self.configs[name], dev)
                except LabError:
                    continue
            self._connector_stop.wait(self.retry_s)

    def remove(self, name: str) -> None:
        """Stop streaming one device and release it (it is not retried)."""
        with self._lock:
            self._wanted.discard(name)
            w = self._workers.pop(name, None)
        if w is not None:
            w.stop()

    def stop_connector(self, timeout_s: float = 15.0) -> None:
        """Stop the background connector and join it (checked)."""
        self._connector_stop.set()
        th = self._connector
        if th is not None:
            th.join(timeout_s)
            if th.is_alive():
                raise RuntimeError(f"the device connector did not finish within {timeout_s} s")
        self._connector = None

    def stop_devices(self) -> None:
        """Stop every reader thread (STOP, last samples to the attached sink, close); joins are checked."""
        with self._lock:
            workers, self._workers = self._workers, {}
        problems = []
        for w in workers.values():
            try:
                w.stop()
            except RuntimeError as exc:
                problems.append(str(exc))
        self._stopped_workers = workers
        if problems:
            raise RuntimeError("; ".join(problems))

    def close(self) -> None:
        """End a running recording, stop the connector and every device (checked joins)."""
        self._closed = True
        try:
            if self.recording is not None:
                self.stop_recording("stopped")
        finally:
            self.stop_connector()
            self.stop_devices()

    def __enter__(self) -> DeviceStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ subscribers and events

    def subscribe(self, callback: Callable[[LiveBatch], None]) -> Callable[[], None]:
        """Call ``callback(batch)`` with every :class:`LiveBatch` (reader threads; keep it quick).

        Returns a function that unsubscribes.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def subscribe_markers(self, callback: Callable[[float, str], None]) -> Callable[[], None]:
        """Call ``callback(stream_time_s, label)`` for every marker; returns a function that unsubscribes."""
        self._marker_subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._marker_subscribers:
                self._marker_subscribers.remove(callback)

        return unsubscribe

    def _on_event(self, time_s: float, source: str, level: int, text: str) -> None:
        self.events.append((time_s, source, level, text))
        log.log(level, "%s: %s", source, text)

    # ------------------------------------------------------------------ recording

    def record(self, path: str | Path, meta: dict, rig_text: str = "", names: Iterable[str] | None = None,
               min_free_bytes: int = MIN_FREE_BYTES, skipped: list[str] = (), background: bool = False
               ) -> SessionRecording:
        """Start writing a session file of the streaming devices (default: all); the stream goes on as it is.

        With ``background`` the file is created by the writer thread (this returns at once; a creation failure
        shows as the recording's ``failed`` and is raised by :meth:`stop_recording`).

        Raises
        ------
        StorageError
            A file is being written already, or the file cannot be created.
        DeviceError
            No device is streaming.
        """
        if self.recording is not None:
            raise StorageError("a capture is already running")
        workers = self.workers
        chosen = [n for n in (self.names if names is None else names) if n in workers]
        if not chosen:
            raise DeviceError("no device is streaming")
        rec = SessionRecording(os.fspath(path), meta, rig_text, [workers[n].desc for n in chosen],
                               clock_origin_ns=self.clock_origin_ns, min_free_bytes=min_free_bytes)
        rec.start(skipped, background=background)
        for n in chosen:
            w = workers[n]
            d = w.desc
            rec.put_event(self.now_s(), n, 20, f"recording ({d.kind}, serial {d.serial}, {d.rate_hz:g} Hz)")
            rec.set_baseline(n, w.counters())
            w.attach(rec)
        self.recording = rec
        return rec

    def attach_new(self, rec: SessionRecording) -> None:
        """Make ``rec`` the stream's recording (its workers were started with it attached)."""
        self.recording = rec

    def stop_recording(self, reason: str = "stopped") -> str:
        """Detach the recording from every device and finish its file; returns the path.

        Raises
        ------
        StorageError
            No recording runs, or writing failed (what was written stays readable).
        """
        rec = self.recording
        if rec is None:
            raise StorageError("no capture is running")
        self.recording = None
        counters = {}
        for n, w in {**self._stopped_workers, **self.workers}.items():
            if w.sink is rec:
                w.detach()
            counters[n] = w.counters()
        return rec.finish(reason, counters)

    def mark(self, label: str) -> float:
        """Add a marker now to the recording; returns its time on the file's clock."""
        rec = self.recording
        if rec is None:
            raise StorageError("markers need a running capture")
        t_stream = self.now_s()
        rec.put_marker(t_stream, label)
        for cb in list(self._marker_subscribers):
            cb(t_stream, label)
        return t_stream - rec.offset_s
