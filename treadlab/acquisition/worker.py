"""One device's reader thread: read, time, check sequence, hand out; PING; reconnect after an unplug.

A :class:`DeviceWorker` owns its driver object (drivers are not thread-safe: only this thread touches it once
started). Per batch it maps device ticks to the session clock (:class:`~treadlab.acquisition.clock.OnlineClock`),
records sequence gaps, feeds the ring buffer and subscribers, and queues the batch for the writer. When the port
vanishes it retries the same port path every ``retry_s`` (identify, same serial, set rate, START) while the other
devices go on recording; every sample received after the port reopened is kept (a device may have streamed on).

A marker device (an external LSL string stream, ``dev.markers`` True) has no samples and no ``/devices`` group:
each string sample becomes a session marker ``"<device>: <text>"`` at its LSL timestamp mapped to the session
clock, an INFO event of the device with the text, and a call of every marker subscriber.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from treadlab.acquisition.clock import OnlineClock
from treadlab.acquisition.clockcheck import TickRateCheck
from treadlab.acquisition.ring import RingBuffer
from treadlab.acquisition.writer import DeviceSetup, SessionWriter
from treadlab.drivers import DeviceConfig, open_device
from treadlab.errors import DeviceDisconnectedError, DeviceError, LabError

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
    seq = np.asarray(seq, dtype=np.uint32)
    prev = np.uint32(last_seq if last_seq is not None else (int(seq[0]) - 1) % 2**32)
    d = np.diff(seq, prepend=prev).astype(np.uint32)
    jumps = np.flatnonzero(d != 1)
    if len(jumps) == 0:
        return np.empty((0, 3))
    before_t = np.where(jumps > 0, time_s[np.maximum(jumps - 1, 0)], last_time_s)
    count = d[jumps].astype(np.int64) - 1
    backward = d[jumps] >= 2**31
    if np.any(backward):
        est = np.round((time_s[jumps] - before_t) * rate_hz) - 1
        count = np.where(backward, np.maximum(est, 0), count).astype(np.int64)
    prev_of = np.where(jumps > 0, seq[np.maximum(jumps - 1, 0)].astype(np.int64), np.int64(prev))
    first_missing = (prev_of + 1) % 2**32
    return np.c_[before_t, first_missing, count].astype(np.float64)


def connect(cfg: DeviceConfig, timeout_s: float = 2.0):
    """Open, identify, set the rate of and read the calibration of one device; returns the driver.

    Raises the drivers' :class:`~treadlab.errors.DeviceError` subclasses (port missing, mismatch, timeout...).
    """
    if cfg.protocol == "lsl":  # an external Lab Streaming Layer stream recorded like a device
        from treadlab.acquisition.lsl_inlet import open_lsl_device

        dev = open_lsl_device(cfg)
    else:
        dev = open_device(cfg)
    try:
        dev.identify(timeout_s=timeout_s)
        if cfg.rate_hz is not None and dev.protocol == "binary":
            dev.set_rate(cfg.rate_hz)
        dev.calibration = dev.get_calibration()
    except BaseException:
        dev.close()
        raise
    return dev


def setup_of(dev, cfg: DeviceConfig) -> DeviceSetup:
    """The writer's description of an identified driver."""
    return DeviceSetup(name=cfg.name, kind=dev.kind, side=dev.side, protocol=dev.protocol, rate_hz=dev.rate_hz,
                       info=dev.info, serial=dev.serial or "", clock_hz=dev.clock_hz, shape=tuple(dev.shape),
                       dtype=np.dtype(dev.dtype), calibration=getattr(dev, "calibration", None), layout=dev.layout)


class DeviceWorker:
    """Owner of one device's reader thread.

    Parameters
    ----------
    cfg : DeviceConfig
    dev : driver
        Connected and identified (:func:`connect`), not started.
    start_ns : int
        ``monotonic_ns`` at session time zero.
    writer : SessionWriter
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
    """

    def __init__(self, cfg: DeviceConfig, dev, start_ns: int, writer: SessionWriter,
                 subscribers: list[Callable[[LiveBatch], None]], ring_s: float = 10.0,
                 ping_interval_s: float = 1.0, retry_s: float = 0.5, coalesce_s: float | None = None,
                 marker_subscribers: list[Callable[[float, str], None]] | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.dev = dev
        self.serial = dev.serial
        self.rate_hz = float(dev.rate_hz)
        self.shape = tuple(dev.shape)
        self.start_ns = start_ns
        self.writer = writer
        self.subscribers = subscribers
        self.markers = bool(getattr(dev, "markers", False))
        self.marker_subscribers = marker_subscribers if marker_subscribers is not None else []
        if self.markers:  # no samples to keep: an empty ring, so that status() and views work unchanged
            self.ring = RingBuffer(1, 1, np.float32)
        else:
            self.ring = RingBuffer(int(ring_s * max(self.rate_hz, 1.0)), dev.n_values, dev.dtype)
        self.clock = OnlineClock(dev.clock_hz)
        self.tick_check = TickRateCheck(dev.clock_hz, dev.rate_hz)  # does the device clock tick at its INFO clock_hz?
        self.ping_interval_s = ping_interval_s
        self.retry_s = retry_s
        self.coalesce_s = COALESCE_S if coalesce_s is None else coalesce_s
        # Never let more than COALESCE_BYTES gather in the port during a pause (a pty or USB buffer holds a few
        # kB; fast devices get short pauses), and never pause behind a backlog.
        bytes_per_s = max(1.0, self.rate_hz) * (dev.n_values * np.dtype(dev.dtype).itemsize + 16)
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
        self._stop = threading.Event()
        self.started = threading.Event()
        self._thread: threading.Thread | None = None

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
        st = getattr(self.dev, "stats", None)
        return self.crc_base + (st.errors if st is not None else 0)

    def counters(self) -> dict[str, int]:
        """Counters for the file's live ``counters`` dataset."""
        return {"samples": self.samples_n, "lost_samples": self.lost_n, "crc_errors": self.crc_errors,
                "reconnections": self.reconnections}

    # ------------------------------------------------------------------ thread

    def _now_s(self) -> float:
        return (time.monotonic_ns() - self.start_ns) / 1e9

    def _event(self, level: int, text: str) -> None:
        self.writer.put_event(self._now_s(), self.name, level, text)

    def _run(self) -> None:
        try:
            self.dev.start()
        except LabError as exc:
            self.error = exc
            self.state = "failed"
            self.started.set()
            self.dev.close()
            return
        if not self.markers:
            self.writer.put_segment(self.name, np.array([0, 0, 0, np.nan, np.nan, np.nan, np.nan]))
        self.state = "streaming"
        self._event(INFO, f"started ({self.dev.kind}, serial {self.serial}, {self.rate_hz:g} Hz)")
        self.started.set()
        next_ping = time.monotonic() + 0.05
        rng = np.random.default_rng()
        next_counters = time.monotonic()
        ping_out_until = 0.0
        self._warm_until = time.monotonic() + WARMUP_S
        while not self._stop.is_set():
            if time.monotonic() >= next_counters:
                self.writer.set_counters(self.name, {**self.counters(), "queue_overflow": self.writer.overflow_n})
                next_counters = time.monotonic() + 0.5
            if self.dev is None:
                self._reconnect()
                continue
            try:
                batch = self.dev.read(0.05)
                if self.dev.supports_ping and time.monotonic() >= next_ping:
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
            if self._drain_side_messages():
                ping_out_until = 0.0
            if batch is not None and len(batch):
                self._handle(batch)
                # Let a few USB frames gather before the next read (fewer, larger batches: less CPU), except
                # while a PONG is awaited: its receipt time bounds the clock and must be taken at once.
                if self._pause_s > 0 and len(batch) <= self._backlog_n and time.monotonic() >= ping_out_until:
                    self._stop.wait(self._pause_s)
        self._shutdown()

    def _drain_side_messages(self) -> bool:
        """Hand PONGs to the clock and the file, LOG messages to the events; True if a PONG came."""
        pongs = self.dev.drain_pongs()
        for res in pongs:
            send, recv = res.host_send_ns - self.start_ns, res.host_recv_ns - self.start_ns
            self.clock.add_ping(send, recv, res.device_ticks)
            self.writer.put_ping(self.name, send, recv, res.device_ticks)
        for host_ns, level, text in self.dev.drain_logs():
            self.writer.put_event((host_ns - self.start_ns) / 1e9, self.name, level, text)
        return bool(pongs)

    def _handle(self, batch) -> None:
        if self.markers:
            self._handle_markers(batch)
            return
        seq = batch.seq.astype(np.uint32, copy=False)
        ticks = batch.device_time.astype(np.uint64, copy=False)
        host_s = (batch.host_time_ns - self.start_ns) / 1e9
        k = len(ticks)
        forward = self._last_ticks is None or int(ticks[0]) >= self._last_ticks
        if forward and (k == 1 or not np.any(ticks[1:] < ticks[:-1])):  # the usual case: no clock reset
            time_s = self.clock.update(ticks, host_s)
        else:
            time_s = self._times_across_resets(ticks, host_s)
        if not getattr(self.dev, "host_clock", False) and (warning := self.tick_check.update(ticks, host_s)):
            self._event(WARNING, warning)
        if self._last_seq is None or int(seq[0]) != (self._last_seq + 1) % 2**32 or \
                (int(seq[-1]) - int(seq[0])) % 2**32 != k - 1 or (k > 2 and np.any(np.diff(seq) != 1)):
            self._gaps(seq, time_s)
        self._last_seq = int(seq[-1])
        values = batch.values.reshape((len(seq), *self.shape))
        self.writer.put_samples(self.name, seq, ticks, time_s, host_s, values)
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

    def _handle_markers(self, batch) -> None:
        """Markers and events of a string stream's batch; ``device_time`` is LSL time (host clock) in ns."""
        from treadlab.acquisition.lsl_inlet import marker_texts

        time_s = (batch.device_time.astype(np.int64) - self.start_ns) / 1e9
        texts = marker_texts(batch.values)
        self.samples_n += len(texts)
        self.last_sample_mono = time.monotonic()
        for t, text in zip(time_s.tolist(), texts):  # one iteration per marker (a few a second at most)
            label = f"{self.name}: {text}"
            self.writer.put_marker(t, label)
            self.writer.put_event(t, self.name, INFO, text)
            for cb in list(self.marker_subscribers):
                try:
                    cb(t, label)
                except Exception as exc:  # noqa: BLE001 - a subscriber's bug must not stop the recording
                    self.subscriber_errors += 1
                    if self.subscriber_errors == 1:
                        self._event(ERROR, f"marker subscriber {cb!r} raised {exc!r}")

    def _times_across_resets(self, ticks: np.ndarray, host_s: np.ndarray) -> np.ndarray:
        """Session times of a batch in which the device clock goes backwards: a new clock segment at each reset."""
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
                self.writer.put_segment(self.name, np.array([self.samples_n + a, 0, 0] + [np.nan] * 4))
                self._event(WARNING, "device clock went backwards: new clock segment")
            parts.append(self.clock.update(ticks[a:b], host_s[a:b]))
        return np.concatenate(parts)

    def _gaps(self, seq: np.ndarray, time_s: np.ndarray) -> None:
        """Record every sequence jump of a batch in ``gaps`` and the lost count."""
        rows = seq_gaps(self._last_seq, seq, time_s, self._last_time_s, self.rate_hz)
        self._last_seq = int(seq[-1])
        if len(rows):
            self.lost_n += int(rows[:, 2].sum())
            self.writer.put_gaps(self.name, rows)

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
        if self.serial and dev.serial != self.serial:
            self._event(ERROR, f"a different device (serial {dev.serial}, expected {self.serial}) is on "
                               f"{self.cfg.port}; not using it")
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
        if not self.markers:
            self.writer.put_segment(self.name, np.array([self.samples_n, 0, 0] + [np.nan] * 4))
        self.state = "streaming"
        self.down_since_mono = None
        self.last_sample_mono = time.monotonic()
        self._event(INFO, f"reconnected (serial {dev.serial}), reconnection {self.reconnections}")

    def _shutdown(self) -> None:
        if self.dev is None:
            return
        try:
            self.dev.stop()
            batch = self.dev.read(0.0)  # DATA sent before STOP's ACK
            self._drain_side_messages()
            if batch is not None and len(batch):
                self._handle(batch)
        except LabError as exc:
            self._event(WARNING, f"stop: {exc}")
        self._event(INFO, "stopped")
        self.crc_base += self.dev.stats.errors
        self.dev.close()
        self.dev = None
        self.state = "stopped"
