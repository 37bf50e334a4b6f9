"""One device's reader thread: read, time, check sequence, hand out; PING; reconnect after an unplug.

A :class:`DeviceWorker` owns its driver object (drivers are not thread-safe: only this thread touches it once
started). Per batch it maps device ticks to the stream clock (:class:`~treadlab.acquisition.clock.OnlineClock`),
records sequence gaps, feeds the ring buffer and subscribers, and hands the batch to the attached sink (a
:class:`~treadlab.acquisition.recording.SessionRecording` while a file is being written, nothing in preview).
The sink is attached and detached while the thread runs (:meth:`DeviceWorker.attach`, :meth:`DeviceWorker.detach`)
without stopping the device. When the port vanishes it retries the same port path every ``retry_s`` (identify,
same serial, set rate, START) while the other devices go on streaming; every sample received after the port
reopened is kept (a device may have streamed on).

A marker device (an external LSL string stream, ``dev.markers`` True) has no samples and no ``/devices`` group:
each string sample becomes a session marker ``"<device>: <text>"`` at its LSL timestamp mapped to the session
clock, an INFO event of the device with the text, and a call of every marker subscriber.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from treadlab.acquisition.clock import OnlineClock
from treadlab.acquisition.clockcheck import TickRateCheck
from treadlab.acquisition.ring import RingBuffer
from treadlab.drivers import Device, DeviceConfig, connect
from treadlab.drivers.common import sequence_jumps
from treadlab.drivers.lsl import marker_texts
from treadlab.errors import DeviceDisconnectedError, DeviceError, LabError

log = logging.getLogger(__name__)

INFO, WARNING, ERROR = 20, 30, 40
#: For this long after START (and after each reconnection) PINGs go every WARMUP_PING_S instead of every second.
WARMUP_S = 10.0
WARMUP_PING_S = 0.05
#: Pause after a read that returned samples (fewer, larger batches: a third of the reader CPU at 750 Hz).
COALESCE_S = 0.004
#: ... but no longer than it takes the device to send this many bytes.
COALESCE_BYTES = 4096


@dataclass(frozen=True)
class LiveBatch:
    """Samples handed to subscribers: one device, in arrival order.

    Attributes
    ----------
    name : str
        Device name.
    seq : ndarray of uint32
    device_time : ndarray of uint64
    time_s : ndarray of float64
        Session time (online clock fit).
    host_time_s : ndarray of float64
        Host receive time, session clock.
    values : ndarray, shape (k, *shape)
        Raw values as received (mats as (k, rows, cols)).
    """

    name: str
    seq: np.ndarray
    device_time: np.ndarray
    time_s: np.ndarray
    host_time_s: np.ndarray
    values: np.ndarray


def seq_gaps(last_seq: int | None, seq: np.ndarray, time_s: np.ndarray, last_time_s: float,
             rate_hz: float) -> np.ndarray:
    """Rows of the ``gaps`` table for the sequence jumps of a batch (vectorised; seq wraps at 2**32).

    Parameters
    ----------
    last_seq : int or None
        Sequence number of the previous sample (None: first batch).
    seq : ndarray of uint32
    time_s : ndarray of float64
        Session times of the batch.
    last_time_s : float
        Session time of the previous sample.
    rate_hz : float
        Nominal rate, to estimate the loss when the device restarted its numbering (a backward jump).

    Returns
    -------
    ndarray of float64, shape (k, 3)
        (time of the last sample before the gap, first missing seq, missing count) per jump.
    """
    jumps, step, prev_of = sequence_jumps(last_seq, seq)
    if len(jumps) == 0:
        return np.empty((0, 3))
    before_t = np.where(jumps > 0, time_s[np.maximum(jumps - 1, 0)], last_time_s)
    count = step.astype(np.int64) - 1
    backward = step >= 2**31
    if np.any(backward):
        est = np.round((time_s[jumps] - before_t) * rate_hz) - 1
        count = np.where(backward, np.maximum(est, 0), count).astype(np.int64)
    first_missing = (prev_of + 1) % 2**32
    return np.c_[before_t, first_missing, count].astype(np.float64)


class StreamSink(Protocol):
    """What a reader thread hands its data to while attached (the session file's writer is one).

    Times are on the stream clock (seconds, or ns for PINGs, since the stream's ``start_ns``); every call comes
    from the device's reader thread and must not block.
    """

    def put_samples(self, name: str, seq: np.ndarray, device_time: np.ndarray, time_s: np.ndarray,
                    host_s: np.ndarray, raw: np.ndarray) -> bool:
        """A batch of samples (raw shaped (k, *shape))."""

    def put_gaps(self, name: str, rows: np.ndarray) -> bool:
        """Rows (k, 3) of the gap table."""

    def put_segment(self, name: str, offset: int = 0) -> bool:
        """A new clock segment starts ``offset`` samples after the device's samples put so far."""

    def put_ping(self, name: str, send_ns: int, recv_ns: int, ticks: int) -> bool:
        """A PING round trip."""

    def put_marker(self, time_s: float, label: str) -> bool:
        """A marker."""

    def put_event(self, time_s: float, source: str, level: int, text: str) -> bool:
        """An event (device LOG, connection change)."""

    def set_counters(self, name: str, values: dict[str, int]) -> None:
        """The device's counters (since the stream started)."""


class DeviceWorker:
    """Owner of one device's reader thread.

    Parameters
    ----------
    cfg : DeviceConfig
    dev : Device
        Connected and identified (:func:`treadlab.drivers.connect`), not started.
    start_ns : int
        ``monotonic_ns`` at stream time zero.
    subscribers : list of callables
        Shared list; each is called with a :class:`LiveBatch` from this thread.
    ring_s : float
        Seconds kept in the ring buffer.
    ping_interval_s, retry_s : float
    coalesce_s : float or None
        Pause after a read that returned samples, so that one read returns several USB frames (not while a PONG
        is awaited); default :data:`COALESCE_S`.
    marker_subscribers : list of callables, optional
        Shared list; for a marker device each is called with ``(time_s, label)`` from this thread.
    on_event : callable, optional
        ``on_event(time_s, source, level, text)`` for every event of the device (connection, LOG...), attached
        sink or not (the stream keeps the newest and logs them).
    sink : StreamSink, optional
        Attached from the first sample (as :meth:`attach` would).
    """

    def __init__(self, cfg: DeviceConfig, dev: Device, start_ns: int,
                 subscribers: list[Callable[[LiveBatch], None]], ring_s: float = 10.0,
                 ping_interval_s: float = 1.0, retry_s: float = 0.5, coalesce_s: float | None = None,
                 marker_subscribers: list[Callable[[float, str], None]] | None = None,
                 on_event: Callable[[float, str, int, str], None] | None = None,
                 sink: StreamSink | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.dev = dev
        self.desc = dev.describe()
        desc = self.desc
        self.serial = desc.serial
        self.rate_hz = float(desc.rate_hz)
        self.shape = tuple(desc.shape)
        self.start_ns = start_ns
        self.subscribers = subscribers
        self.markers = desc.markers
        self.marker_subscribers = marker_subscribers if marker_subscribers is not None else []
        self.on_event = on_event
        if self.markers:  # no samples to keep: an empty ring, so that status() and views work unchanged
            self.ring = RingBuffer(1, 1, np.float32)
        else:
            self.ring = RingBuffer(int(ring_s * max(self.rate_hz, 1.0)), desc.n_values, desc.dtype)
        self.clock = OnlineClock(desc.clock_hz)
        self.tick_check = TickRateCheck(desc.clock_hz, desc.rate_hz)  # does the device clock tick at its clock_hz?
        self.ping_interval_s = ping_interval_s
        self.retry_s = retry_s
        self.coalesce_s = COALESCE_S if coalesce_s is None else coalesce_s
        # Never let more than COALESCE_BYTES gather in the port during a pause (a pty or USB buffer holds a few
        # kB; fast devices get short pauses), and never pause behind a backlog.
        bytes_per_s = max(1.0, self.rate_hz) * (desc.n_values * np.dtype(desc.dtype).itemsize + 16)
        self._pause_s = min(self.coalesce_s, COALESCE_BYTES / bytes_per_s)
        self._backlog_n = max(2, int(2 * self._pause_s * self.rate_hz) + 1)
        self.state = "connected"
        self.samples_n = 0
        self.lost_n = 0
        self.reconnections = 0
        self.crc_base = 0
        self.subscriber_errors = 0
        self.error: LabError | None = None
        self.last_sample_mono = time.monotonic()
        self.down_since_mono: float | None = None
        self._last_seq: int | None = None
        self._last_ticks: int | None = None
        self._last_time_s = 0.0
        self._warm_until = 0.0
        self._sink: StreamSink | None = None
        self._sink_new = False
        self._sink_lock = threading.Lock()
        self._logged_errors = 0
        if sink is not None:
            self.attach(sink)
        self._stop = threading.Event()
        self.started = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ sink

    def attach(self, sink: StreamSink) -> None:
        """Hand every later sample, gap, PING, marker and counter to ``sink`` (from the next batch on).

        Safe while the thread runs: the sink starts with a new clock segment, and the fast PING warm-up is
        re-armed so that the file's clock fit has close PING bounds from its first second.
        """
        with self._sink_lock:
            self._sink = sink
            self._sink_new = True

    def detach(self) -> StreamSink | None:
        """Stop handing data to the sink; returns it. Once this returns the thread no longer calls it."""
        with self._sink_lock:
            sink, self._sink = self._sink, None
            return sink

    @property
    def sink(self) -> StreamSink | None:
        """The attached sink, if any."""
        return self._sink

    def _begin_sink(self, sink: StreamSink) -> None:
        """First call on a newly attached sink (reader thread, sink lock held)."""
        self._sink_new = False
        if not self.markers:
            sink.put_segment(self.name)
        self._warm_until = time.monotonic() + WARMUP_S

    # ------------------------------------------------------------------ owner API

    def start(self) -> None:
        """Start the thread; it sends START first and sets :attr:`started` (or :attr:`error`)."""
        self._thread = threading.Thread(target=self._run, name=f"reader:{self.name}")
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to stop (it sends STOP and closes the port) and join it (checked)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError(f"reader thread of {self.name} did not stop within {timeout_s} s")
            self._thread = None

    @property
    def crc_errors(self) -> int:
        """Damaged frames or lines dropped, over every connection."""
        dev = self.dev  # None while reconnecting
        return self.crc_base + (dev.stats.errors if dev is not None else 0)

    def counters(self) -> dict[str, int]:
        """Counters since the thread started (the sink subtracts what it did not see)."""
        return {"samples": self.samples_n, "lost_samples": self.lost_n, "crc_errors": self.crc_errors,
                "reconnections": self.reconnections}

    # ------------------------------------------------------------------ thread

    def _now_s(self) -> float:
        return (time.monotonic_ns() - self.start_ns) / 1e9

    def _event(self, level: int, text: str, time_s: float | None = None) -> None:
        """An event of this device: to the stream's event callback and to the sink (the file)."""
        t = self._now_s() if time_s is None else time_s
        if self.on_event is not None:
            self.on_event(t, self.name, level, text)
        sink = self._sink
        if sink is not None:
            sink.put_event(t, self.name, level, text)

    def _run(self) -> None:
        try:
            self.dev.start()
        except LabError as exc:
            self.error = exc
            self.state = "failed"
            self.started.set()
            self.dev.close()
            return
        self.state = "streaming"
        self._event(INFO, f"started ({self.desc.kind}, serial {self.serial}, {self.rate_hz:g} Hz)")
        self.started.set()
        next_ping = time.monotonic() + 0.05
        rng = np.random.default_rng()
        next_counters = time.monotonic()
        ping_out_until = 0.0
        self._warm_until = time.monotonic() + WARMUP_S
        while not self._stop.is_set():
            if self.dev is None:
                self._reconnect()
                continue
            try:
                batch = self.dev.read(0.05)
                if self.desc.supports_ping and time.monotonic() >= next_ping:
                    self.dev.send_ping()
                    ping_out_until = time.monotonic() + 0.1
                    # Fast sync while the clock fit is young, then the normal period; jittered so that PINGs do
                    # not lock to the phase of USB frames.
                    young = time.monotonic() < self._warm_until
                    period = WARMUP_PING_S if young else self.ping_interval_s
                    next_ping = time.monotonic() + period * rng.uniform(0.5, 1.5)
            except DeviceDisconnectedError as exc:
                self._disconnected(str(exc))
                continue
            except DeviceError as exc:
                self._event(WARNING, f"read error: {exc}")
                continue
            if self.markers:  # the read did not raise: the stream is there, even with no marker to give
                self.last_sample_mono = time.monotonic()
            with self._sink_lock:  # attach/detach wait for the batch in hand
                sink = self._sink
                if sink is not None and self._sink_new:
                    self._begin_sink(sink)
                    next_ping = min(next_ping, time.monotonic() + WARMUP_PING_S)
                if time.monotonic() >= next_counters:
                    if sink is not None:
                        sink.set_counters(self.name, self.counters())
                    self._log_damage()
                    next_counters = time.monotonic() + 0.5
                if self._drain_side_messages(sink):
                    ping_out_until = 0.0
                if batch is not None and len(batch):
                    self._handle(batch, sink)
            if batch is not None and len(batch):
                # Let a few USB frames gather before the next read (fewer, larger batches: less CPU), except
                # while a PONG is awaited: its receipt time bounds the clock and must be taken at once.
                if self._pause_s > 0 and len(batch) <= self._backlog_n and time.monotonic() >= ping_out_until:
                    self._stop.wait(self._pause_s)
        self._shutdown()

    def _log_damage(self) -> None:
        """Log damaged frames or lines when their count grew (at most every half second)."""
        n = self.crc_errors
        if n > self._logged_errors:
            log.warning("%s: %d damaged frames or lines dropped (%d in all)", self.name, n - self._logged_errors, n)
            self._logged_errors = n

    def _drain_side_messages(self, sink: StreamSink | None) -> bool:
        """Hand PONGs to the clock and the sink, LOG messages to the events; True if a PONG came."""
        pongs = self.dev.drain_pongs()
        for res in pongs:
            send, recv = res.host_send_ns - self.start_ns, res.host_recv_ns - self.start_ns
            self.clock.add_ping(send, recv, res.device_ticks)
            if sink is not None:
                sink.put_ping(self.name, send, recv, res.device_ticks)
        for host_ns, level, text in self.dev.drain_logs():
            self._event(level, text, (host_ns - self.start_ns) / 1e9)
        return bool(pongs)

    def _handle(self, batch, sink: StreamSink | None) -> None:
        if self.markers:
            self._handle_markers(batch, sink)
            return
        seq = batch.seq.astype(np.uint32, copy=False)
        ticks = batch.device_time.astype(np.uint64, copy=False)
        host_s = (batch.host_time_ns - self.start_ns) / 1e9
        k = len(ticks)
        forward = self._last_ticks is None or int(ticks[0]) >= self._last_ticks
        if forward and (k == 1 or not np.any(ticks[1:] < ticks[:-1])):  # the usual case: no clock reset
            time_s = self.clock.update(ticks, host_s)
        else:
            time_s = self._times_across_resets(ticks, host_s, sink)
        if not self.desc.host_clock and (warning := self.tick_check.update(ticks, host_s)):
            self._event(WARNING, warning)
        if self._last_seq is None or int(seq[0]) != (self._last_seq + 1) % 2**32 or \
                (int(seq[-1]) - int(seq[0])) % 2**32 != k - 1 or (k > 2 and np.any(np.diff(seq) != 1)):
            self._gaps(seq, time_s, sink)
        self._last_seq = int(seq[-1])
        values = batch.values.reshape((len(seq), *self.shape))
        if sink is not None:
            sink.put_samples(self.name, seq, ticks, time_s, host_s, values)
        self.ring.append(time_s, batch.values)
        self.samples_n += len(seq)
        self._last_ticks = int(ticks[-1])
        self._last_time_s = float(time_s[-1])
        self.last_sample_mono = time.monotonic()
        if self.state != "streaming":
            self.state = "streaming"
        if self.subscribers:
            live = LiveBatch(self.name, seq, ticks, time_s, host_s, values)
            for cb in list(self.subscribers):
                try:
                    cb(live)
                except Exception as exc:  # noqa: BLE001 - a subscriber's bug must not stop the recording
                    self.subscriber_errors += 1
                    if self.subscriber_errors == 1:
                        self._event(ERROR, f"subscriber {cb!r} raised {exc!r}")

    def _handle_markers(self, batch, sink: StreamSink | None) -> None:
        """Markers and events of a string stream's batch; ``device_time`` is LSL time (host clock) in ns."""
        time_s = (batch.device_time.astype(np.int64) - self.start_ns) / 1e9
        texts = marker_texts(batch.values)
        self.samples_n += len(texts)
        self.last_sample_mono = time.monotonic()
        for t, text in zip(time_s.tolist(), texts):  # one iteration per marker (a few a second at most)
            label = f"{self.name}: {text}"
            if sink is not None:
                sink.put_marker(t, label)
            self._event(INFO, text, t)
            for cb in list(self.marker_subscribers):
                try:
                    cb(t, label)
                except Exception as exc:  # noqa: BLE001 - a subscriber's bug must not stop the recording
                    self.subscriber_errors += 1
                    if self.subscriber_errors == 1:
                        self._event(ERROR, f"marker subscriber {cb!r} raised {exc!r}")

    def _times_across_resets(self, ticks: np.ndarray, host_s: np.ndarray, sink: StreamSink | None) -> np.ndarray:
        """Stream times of a batch in which the device clock goes backwards: a new clock segment at each reset."""
        back = np.flatnonzero(ticks[1:] < ticks[:-1]) + 1
        if self._last_ticks is not None and int(ticks[0]) < self._last_ticks:
            back = np.r_[0, back]
        bounds = np.r_[0, back, len(ticks)].astype(np.int64)
        parts = []
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):  # one iteration per clock reset (rare)
            if a == b:
                continue
            if a in back:
                self.clock.new_segment()
                if sink is not None:
                    sink.put_segment(self.name, a)
                self._event(WARNING, "device clock went backwards: new clock segment")
            parts.append(self.clock.update(ticks[a:b], host_s[a:b]))
        return np.concatenate(parts)

    def _gaps(self, seq: np.ndarray, time_s: np.ndarray, sink: StreamSink | None) -> None:
        """Record every sequence jump of a batch in ``gaps`` and the lost count."""
        rows = seq_gaps(self._last_seq, seq, time_s, self._last_time_s, self.rate_hz)
        self._last_seq = int(seq[-1])
        if len(rows):
            self.lost_n += int(rows[:, 2].sum())
            if sink is not None:
                sink.put_gaps(self.name, rows)
            log.info("%s: %d samples lost in %d sequence gaps", self.name, int(rows[:, 2].sum()), len(rows))

    def _disconnected(self, why: str) -> None:
        self.state = "reconnecting"
        self.down_since_mono = time.monotonic()
        self._event(WARNING, f"disconnected: {why}")
        self.crc_base += self.dev.stats.errors
        self.dev.close()
        self.dev = None

    def _reconnect(self) -> None:
        if self._stop.wait(self.retry_s):
            return
        if self.down_since_mono is not None and time.monotonic() - self.down_since_mono > 10.0:
            self.state = "lost"
        try:
            dev = connect(self.cfg, timeout_s=1.0)
        except LabError:
            return
        if self.serial and dev.describe().serial != self.serial:
            self._event(ERROR, f"a different device (serial {dev.describe().serial}, expected {self.serial}) is "
                               f"on {self.cfg.port}; not using it")
            dev.close()
            return
        try:
            dev.start(keep_received=True)  # what came while the port reopened is the device's next samples
        except LabError as exc:
            self._event(WARNING, f"reconnect: START failed ({exc})")
            dev.close()
            return
        self.dev = dev
        self.reconnections += 1
        self._warm_until = time.monotonic() + WARMUP_S
        self.clock.new_segment()
        self.tick_check.new_segment()
        self._last_ticks = None
        with self._sink_lock:
            if not self.markers and self._sink is not None and not self._sink_new:
                self._sink.put_segment(self.name)
        self.state = "streaming"
        self.down_since_mono = None
        self.last_sample_mono = time.monotonic()
        self._event(INFO, f"reconnected (serial {dev.describe().serial}), reconnection {self.reconnections}")

    def _shutdown(self) -> None:
        if self.dev is None:
            return
        with self._sink_lock:
            sink = self._sink
            if sink is not None and self._sink_new:
                self._begin_sink(sink)
            try:
                self.dev.stop()
                batch = self.dev.read(0.0)  # DATA sent before STOP's ACK
                self._drain_side_messages(sink)
                if batch is not None and len(batch):
                    self._handle(batch, sink)
            except LabError as exc:
                self._event(WARNING, f"stop: {exc}")
            if sink is not None:
                sink.set_counters(self.name, self.counters())
        self._event(INFO, "stopped")
        self.crc_base += self.dev.stats.errors
        self.dev.close()
        self.dev = None
        self.state = "stopped"
