"""A simulated protocol v1 device on UDP: the simulator's device logic behind a datagram socket.

:class:`UdpSimDevice` runs one :class:`~treadlab.drivers.sim.device.SimDevice` (the same commands, clock, drift
and gait signals as the pty simulators) and speaks protocol v1 over UDP as ``docs/protocol.md`` defines it: each
datagram holds one decoded message ``type | body | crc32`` (no COBS), commands arrive as datagrams, and the device
sends every answer and all DATA to the address the most recent command came from.

The network between is simulated too: ``drop_rate`` of the DATA datagrams never leave (as Wi-Fi loses them) and
``corrupt_rate`` of them have one byte flipped after the CRC was computed; the sequence numbers of both are kept
(:attr:`UdpSimDevice.dropped_seq`, :attr:`UdpSimDevice.corrupted_seq`) so tests know the answer exactly.

One owned thread serves the socket (:meth:`start`, :meth:`stop` with a checked join). Every sample taken is kept
as ``(seq, true_time_ns)`` ground truth (:meth:`truth`).
"""

from __future__ import annotations

import select
import socket
import threading
import time

import numpy as np
from cobs import cobs

from treadlab.drivers import protocol as p
from treadlab.drivers.sim.device import TRUTH_DTYPE, SimDeviceSpec, make_device

MAX_WAIT_S = 0.02


class UdpSimDevice:
    """Serve a simulated protocol v1 device on a UDP port of ``host`` (``url`` to give the driver).

    Parameters
    ----------
    spec : SimDeviceSpec
        A binary device.
    t_epoch_ns : int or None
        Epoch of the device clock and signals (``time.monotonic_ns`` domain); default: now.
    drop_rate, corrupt_rate : float
        Fraction of DATA datagrams lost, and damaged, on the simulated network.
    host : str
    seed : int
        Seeds the network faults.
    port : int
        UDP port to serve on (0: any free one); a device "power-cycled" by a new instance on the same port.
    """

    def __init__(self, spec: SimDeviceSpec, t_epoch_ns: int | None = None, drop_rate: float = 0.0,
                 corrupt_rate: float = 0.0, host: str = "127.0.0.1", seed: int = 0, port: int = 0) -> None:
        if spec.protocol != "binary":
            raise ValueError("a UDP device speaks protocol v1 ('binary')")
        self.spec = spec
        self.t_epoch_ns = time.monotonic_ns() if t_epoch_ns is None else int(t_epoch_ns)
        self.device = make_device(spec, self.t_epoch_ns)
        self.drop_rate = float(drop_rate)
        self.corrupt_rate = float(corrupt_rate)
        self.rng = np.random.default_rng([seed, 16])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.url = f"udp://{host}:{self.sock.getsockname()[1]}"
        self.peer: tuple[str, int] | None = None
        self.commands: list[int] = []
        self.sent_n = 0
        self.overrun_n = 0
        self.dropped_seq: list[int] = []
        self.corrupted_seq: list[int] = []
        self.error: BaseException | None = None
        self._truth: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"udp-sim-{spec.name}")

    # ----------------------------------------------------------------------------------- lifecycle

    def start(self) -> UdpSimDevice:
        """Start the serving thread; returns self."""
        self.device.power_up(time.monotonic_ns())
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (checked join) and release the socket or link."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(5.0)
        if self._thread.is_alive():
            raise RuntimeError(f"{self._thread.name} did not stop")
        self.sock.close()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> UdpSimDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def truth(self) -> tuple[np.ndarray, np.ndarray]:
        """``(seq, true_time_ns)`` of every sample taken so far."""
        with self._lock:
            rec = np.concatenate(self._truth) if self._truth else np.empty(0, TRUTH_DTYPE)
        return rec["seq"].copy(), rec["t_ns"].copy()

    # ----------------------------------------------------------------------------------- serving

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = time.monotonic_ns()
                due = self.device.next_due_ns()
                wait_s = MAX_WAIT_S if due is None else min(MAX_WAIT_S, max(0.0, (due - now) / 1e9))
                ready, _, _ = select.select([self.sock], [], [], wait_s)
                now = time.monotonic_ns()
                if ready:
                    self._receive(now)
                self._send(self.device.take(now))
                self.device.prefetch(now)
                rec = self.device.pop_truth()
                if len(rec):
                    with self._lock:
                        self._truth.append(rec)
        except (OSError, ValueError) as exc:  # reported by stop()
            self.error = exc

    def _receive(self, now: int) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(p.MAX_FRAME_BYTES)
            except BlockingIOError:
                return
            self.peer = addr  # answers and DATA go where the latest command came from
            if data:
                self.commands.append(data[0])
            # the device logic reads a byte stream: give it the datagram framed as on a serial line
            self._send(self.device.receive(cobs.encode(data) + b"\x00", now))

    def _send(self, stream: bytes) -> None:
        """Send the device's framed output as one datagram per message, through the simulated network."""
        if not stream or self.peer is None:
            return
        messages = [cobs.decode(f) for f in stream.split(b"\x00") if f]
        is_data = np.fromiter((m[0] == p.DATA for m in messages), bool, len(messages))
        n = len(messages)
        drop = is_data & (self.rng.random(n) < self.drop_rate)
        corrupt = is_data & ~drop & (self.rng.random(n) < self.corrupt_rate)
        for i in np.flatnonzero(drop | corrupt):
            seq = int.from_bytes(messages[i][1:5], "little")
            if drop[i]:
                self.dropped_seq.append(seq)
            else:
                self.corrupted_seq.append(seq)
                bad = bytearray(messages[i])
                pos = 5 + int(self.rng.integers(0, len(bad) - 9))  # a value byte: the CRC no longer matches
                bad[pos] ^= 0x5A
                messages[i] = bytes(bad)
        for i in np.flatnonzero(~drop):
            try:
                self.sock.sendto(messages[i], self.peer)
                self.sent_n += 1
            except BlockingIOError:
                self.overrun_n += 1  # the socket's send queue is full: lost like on a real device
