"""A simulated willowec/pressure-mat board on a pseudo-terminal (``protocol = "willowec-mat"``).

:func:`encode_frames` writes the board's wire format (56 x 28 raw bytes then ``FF FE FE FF`` per frame);
:class:`WillowecMatSim` serves it from one owned thread on a pty in raw mode: it waits for ``start_reading`` and
then streams the gait model's pressure under the mat (scaled to counts that stay at or below 207, as the real mat's
do) at ``rate_hz``. Faults of a DIY USB link can be switched on: ``drop_rate`` of the frames lose a random stretch
of bytes (a serial FIFO overrun), ``fake_marker_rate`` of the frames carry ``FF FE FE FF`` among their values (a
saturated sensor). Every frame slot is kept as ground truth (:attr:`WillowecMatSim.sent`: slot number, whether
intact, the values).
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty

import numpy as np

from treadlab.drivers.adapters.willowec import COLS, MARKER, PITCH_MM, ROWS, START_COMMAND
from treadlab.drivers.sim.signals import make_gait

MAX_COUNT = 207
COUNTS_PER_KPA = 0.6


def encode_frames(frames: np.ndarray) -> bytes:
    """The wire bytes of frames (k, 56, 28) uint8: each frame's bytes row-major, then the marker."""
    k = len(frames)
    out = np.empty((k, ROWS * COLS + len(MARKER)), np.uint8)
    out[:, :ROWS * COLS] = np.asarray(frames, np.uint8).reshape(k, -1)
    out[:, ROWS * COLS:] = np.frombuffer(MARKER, np.uint8)
    return out.tobytes()


class WillowecMatSim:
    """Serve a simulated willowec mat on a pty (``path`` is the port to open)."""

    def __init__(self, rate_hz: int = 50, runner=None, drop_rate: float = 0.0, fake_marker_rate: float = 0.0,
                 seed: int = 0, greeting: bytes = b"pressure mat v2 ready\r\n") -> None:
        self.rate_hz = int(rate_hz)
        self.gait = make_gait(runner)
        self.drop_rate, self.fake_marker_rate = drop_rate, fake_marker_rate
        self.rng = np.random.default_rng([seed, 28])
        self.greeting = greeting
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.started = False
        self.received = b""
        #: slot number, intact (bool), values (56, 28) of every frame slot put on the line
        self.sent: list[tuple[int, bool, np.ndarray]] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="willowec-mat-sim")

    def start(self) -> WillowecMatSim:
        """Start the serving thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (checked join) and release the socket or link."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(5.0)
        if self._thread.is_alive():
            raise RuntimeError("willowec-mat-sim did not stop")
        for fd in (self.master, self.slave):
            os.close(fd)
        if self.error is not None:
            raise self.error

    def __enter__(self) -> WillowecMatSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def frames_at(self, t_s: np.ndarray) -> np.ndarray:
        """Counts (k, 56, 28) uint8 the mat reads at gait times ``t_s``."""
        kpa = self.gait.mat_frames(np.asarray(t_s, np.float64), ROWS, COLS, PITCH_MM[0], "rows")
        return np.clip(np.round(kpa * COUNTS_PER_KPA), 0, MAX_COUNT).astype(np.uint8)

    def _run(self) -> None:
        period_s = 1.0 / self.rate_hz
        t0 = None
        slot = 0
        out = bytearray(self.greeting)
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.005)
                if ready:
                    self.received += os.read(self.master, 4096)
                    if not self.started and START_COMMAND in self.received:
                        self.started = True
                        t0 = time.monotonic()
                if self.started:
                    due = int((time.monotonic() - t0) / period_s)
                    if due > slot:
                        out += self._frames(slot, due, period_s)
                        slot = due
                if out:
                    try:
                        n = os.write(self.master, out)
                        del out[:n]
                    except BlockingIOError:
                        pass
        except OSError as exc:  # reported by stop()
            self.error = exc

    def _frames(self, first: int, end: int, period_s: float) -> bytes:
        k = end - first
        t = 10.0 + np.arange(first, end) * period_s
        frames = self.frames_at(t)
        r = self.rng.random((2, k))
        fake = r[1] < self.fake_marker_rate
        for j in np.flatnonzero(fake):  # a saturated sensor row that reads like the marker
            col = int(self.rng.integers(0, COLS - 4))
            frames[j, int(self.rng.integers(0, ROWS)), col:col + 4] = np.frombuffer(MARKER, np.uint8)
        wire = bytearray(encode_frames(frames))
        size = ROWS * COLS + len(MARKER)
        drop = r[0] < self.drop_rate
        # cut from the last frame backwards so that earlier offsets stay valid
        for j in np.flatnonzero(drop)[::-1]:
            a = j * size + int(self.rng.integers(0, ROWS * COLS - 200))  # never into the marker
            del wire[a:a + int(self.rng.integers(50, 200))]
        for j in range(k):
            self.sent.append((first + j, not (drop[j] or fake[j]), frames[j]))
        return bytes(wire)
