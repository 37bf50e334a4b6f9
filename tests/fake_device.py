"""Small protocol v1 and line-protocol device fakes for the driver tests.

Each fake is a thread serving a real pseudo-terminal (or an accepted TCP connection) with bytes made by
:mod:`treadlab.drivers.protocol`'s encoders, so the drivers are tested through real pyserial I/O. Sample values
are a known function of the sequence number (:func:`expected_values`), so tests check every value exactly.
The full simulated devices (own processes, clocks, gait) are in ``treadlab.drivers.sim``.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time
import tty
from dataclasses import dataclass, field

import numpy as np

from treadlab.drivers import protocol as p


def expected_values(seq: np.ndarray, n: int, dtype: str) -> np.ndarray:
    """The values the fakes send for sample ``seq`` (vectorised)."""
    top = 256 if dtype == "u8" else 65536
    seq = np.asarray(seq, dtype=np.int64)
    return ((seq[:, None] * 7 + np.arange(n)[None, :] * 3) % top).astype(p.DTYPES[dtype])


@dataclass
class FakeSpec:
    kind: str = "insole"
    side: str = "left"
    sensels: int = 16
    rows: int = 0
    cols: int = 0
    dtype: str = "u8"
    rate_hz: int = 500
    rates_hz: tuple = (100, 200, 500, 1000)
    clock_hz: int = 1_000_000
    serial: str = "FAKE-0001"
    start_seq: int = 0
    loss_every: int = 0  # skip one sample every N (seq jumps)
    garbage_before_info: bytes = b""
    silent: bool = False  # never answers
    log_on_start: str = "started"
    info_extra: dict = field(default_factory=dict)
    cal_unit: str = "N"  # CALIBRATION unit ("imu" for an imu fake: gain 0.5, offset = the channel's index)

    @property
    def n_values(self) -> int:
        return self.sensels if self.kind == "insole" else self.rows * self.cols

    def info(self) -> dict:
        d = {"protocol": 1, "kind": self.kind, "model": "fake", "serial": self.serial, "firmware": "0.0",
             "dtype": self.dtype, "adc_bits": 8 if self.dtype == "u8" else 12, "rate_hz": self.rate_hz,
             "rates_hz": list(self.rates_hz), "clock_hz": self.clock_hz}
        if self.kind == "insole":
            d.update(side=self.side, sensels=self.sensels)
        else:
            d.update(rows=self.rows, cols=self.cols, pitch_mm=[8.47, 8.47], belt_axis="rows")
        d.update(self.info_extra)
        return d


class FakeBinaryLogic:
    """Device-side protocol v1: answers commands, produces DATA when started."""

    def __init__(self, spec: FakeSpec) -> None:
        self.spec = spec
        self.rate_hz = spec.rate_hz
        self.started = False
        self.seq = spec.start_seq
        self.sent = 0
        self.t0_ns = time.monotonic_ns()
        self.next_ns = 0
        self.decoder = p.FrameDecoder()
        self.garbage_sent = False
        self.commands: list[int] = []

    def handle(self, chunk: bytes) -> bytes:
        spec = self.spec
        _, msgs = self.decoder.feed(chunk)
        out = []
        for msg_type, body in msgs:
            self.commands.append(msg_type)
            if spec.silent:
                continue
            if msg_type == p.IDENTIFY:
                if spec.garbage_before_info and not self.garbage_sent:
                    out.append(spec.garbage_before_info)
                    self.garbage_sent = True
                info = spec.info()
                info["rate_hz"] = self.rate_hz
                out.append(p.encode_info(info))
            elif msg_type == p.START:
                out.append(p.encode_ack(p.START))
                if spec.log_on_start:
                    out.append(p.encode_log(20, spec.log_on_start))
                self.started = True
                self.next_ns = time.monotonic_ns()
            elif msg_type == p.STOP:
                out.append(self.produce())
                self.started = False
                out.append(p.encode_ack(p.STOP))
            elif msg_type == p.SET_RATE:
                (rate,) = struct.unpack("<H", body)
                if rate in spec.rates_hz:
                    self.rate_hz = rate
                    out.append(p.encode_ack(p.SET_RATE))
                else:
                    out.append(p.encode_nak(p.SET_RATE, p.NAK_UNSUPPORTED_RATE, f"rate {rate} Hz not supported"))
            elif msg_type == p.GET_CALIBRATION:
                n = spec.n_values
                out.append(p.encode_calibration(spec.cal_unit, np.full(n, 0.5), np.arange(n, dtype=np.float32)))
            elif msg_type == p.PING:
                (host_ns,) = struct.unpack("<Q", body)
                out.append(p.encode_pong(host_ns, self.ticks(time.monotonic_ns())))
            else:
                out.append(p.encode_nak(msg_type, p.NAK_UNKNOWN_COMMAND, "unknown command"))
        return b"".join(out)

    def ticks(self, now_ns: int) -> int:
        return (now_ns - self.t0_ns) * self.spec.clock_hz // 1_000_000_000

    def produce(self) -> bytes:
        """DATA for every sample due since the last call."""
        if not self.started:
            return b""
        now = time.monotonic_ns()
        period_ns = 1_000_000_000 // self.rate_hz
        k = (now - self.next_ns) // period_ns + 1 if now >= self.next_ns else 0
        if k <= 0:
            return b""
        when = self.next_ns + np.arange(k, dtype=np.int64) * period_ns
        self.next_ns += k * period_ns
        seq = (self.seq + np.arange(k, dtype=np.int64)) % 2**32
        self.seq = (self.seq + k) % 2**32
        if self.spec.loss_every:
            keep = (np.arange(k) + self.sent) % self.spec.loss_every != self.spec.loss_every - 1
            seq, when = seq[keep], when[keep]
        self.sent += k
        t = ((when - self.t0_ns) * self.spec.clock_hz // 1_000_000_000).astype(np.uint64)
        vals = expected_values(seq, self.spec.n_values, self.spec.dtype)
        return p.encode_data_block(seq.astype(np.uint32), t, vals, self.spec.dtype)


class _Runner:
    """Owns the serving thread: start/stop with a checked join, loop on an Event."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name)
        self.error: BaseException | None = None

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        assert not self._thread.is_alive(), "fake device thread did not stop"
        self._close()
        if self.error is not None:
            raise self.error

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _run(self) -> None:
        try:
            self._serve()
        except OSError as exc:  # the far end vanished: the test decides whether that was expected
            if not self._stop.is_set() and not getattr(self, "unplugged", False):
                self.error = exc

    def _serve(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _close(self) -> None:  # pragma: no cover - overridden
        pass


class PtyFake(_Runner):
    """Serve a fake device on a pseudo-terminal; ``path`` is the port to open."""

    def __init__(self, spec: FakeSpec | None = None, line_source=None) -> None:
        super().__init__("fake-device-pty")
        self.logic = FakeBinaryLogic(spec or FakeSpec())
        self.line_source = line_source  # callable(now_ns) -> bytes, makes this a line-protocol device
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.unplugged = False
        self._fd_lock = threading.Lock()

    def unplug(self) -> None:
        """Close the master (and slave): the driver's read sees a vanished port, like a USB unplug."""
        with self._fd_lock:
            self.unplugged = True
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _serve(self) -> None:
        while not self._stop.is_set() and not self.unplugged:
            with self._fd_lock:
                if self.unplugged:
                    return
                ready, _, _ = select.select([self.master], [], [], 0.002)
                out = b""
                if ready:
                    out += self.logic.handle(os.read(self.master, 65536))
                if self.line_source is not None:
                    out += self.line_source(time.monotonic_ns())
                else:
                    out += self.logic.produce()
                if out:
                    self._write_all(out)
            time.sleep(0.001)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                n = os.write(self.master, view)
                view = view[n:]
            except BlockingIOError:
                time.sleep(0.001)

    def _close(self) -> None:
        if not self.unplugged:
            self.unplug()


class TcpFake(_Runner):
    """Serve a fake protocol v1 device on a TCP port (a serial-over-network server); ``url`` to open."""

    def __init__(self, spec: FakeSpec | None = None) -> None:
        super().__init__("fake-device-tcp")
        self.logic = FakeBinaryLogic(spec or FakeSpec())
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.conn: socket.socket | None = None

    def _serve(self) -> None:
        self.server.settimeout(0.05)
        while not self._stop.is_set() and self.conn is None:
            try:
                self.conn, _ = self.server.accept()
            except TimeoutError:
                continue
        while not self._stop.is_set():
            ready, _, _ = select.select([self.conn], [], [], 0.002)
            out = b""
            if ready:
                chunk = self.conn.recv(65536)
                if not chunk:
                    return
                out += self.logic.handle(chunk)
            out += self.logic.produce()
            if out:
                self.conn.sendall(out)
            time.sleep(0.001)

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


class LineSource:
    """Makes line-protocol text at ``rate_hz``: ``t,v1,...,vN`` with t in ms, values ``seq + i/4``."""

    def __init__(self, n: int = 8, rate_hz: int = 200, crlf: bool = False, header: bytes = b"# fake FSR insole\n",
                 odd_every: int = 0) -> None:
        self.n, self.rate_hz, self.crlf, self.odd_every = n, rate_hz, crlf, odd_every
        self.pending = header
        self.t0 = time.monotonic_ns()
        self.count = 0

    def text(self, i: int) -> bytes:
        if self.odd_every and i % self.odd_every == self.odd_every - 1:
            return b"1.2.3,garbage\n"
        vals = ",".join(f"{i + j / 4:g}" for j in range(self.n))
        return f"{i * 1000 // self.rate_hz},{vals}{chr(13) if self.crlf else ''}\n".encode()

    def __call__(self, now_ns: int) -> bytes:
        due = (now_ns - self.t0) * self.rate_hz // 1_000_000_000
        out = self.pending + b"".join(self.text(i) for i in range(self.count, due))
        self.pending = b""
        self.count = max(self.count, due)
        return out
