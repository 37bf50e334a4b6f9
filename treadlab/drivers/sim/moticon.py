"""A simulated Moticon OpenGo desktop app: both insoles on one UDP text stream (``protocol = "moticon"``).

:func:`encode_datagrams` writes the documented text layout (51 white-space separated numbers per datagram, see
:mod:`treadlab.drivers.adapters.moticon`); :class:`MoticonSim` sends it at the app's rate to a UDP address from one
owned thread, with the runner's gait model driving the pressures (force per sensor of the ``insole16`` layout over
the sensor's area, in N/cm²), the total force (N), the centre of pressure and a simple inertial signal, and keeps
everything it sent as ground truth. Faults of a Wi-Fi hop are switchable: datagrams dropped (``drop_rate``), sent
twice (``duplicate_rate``) or replaced by text that is not the format (``garble_rate``).
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.signals import make_gait

SIDES = ("left", "right")


def side_channels(gait, layout, side: str, t_s: np.ndarray) -> dict[str, np.ndarray]:
    """One insole's channels at times ``t_s``: pressure (N/cm²), total force (N), COP, acceleration (g), rate."""
    force = gait.insole_forces(side, t_s, layout)  # (k, 16) N
    areas_cm2 = np.asarray(layout.areas_mm2, np.float64) / 100.0
    pressure = force / areas_cm2
    total = force.sum(axis=1)
    pos = np.asarray(layout.positions_mm, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cop = np.where(total[:, None] > 1.0, force @ pos / total[:, None], 0.0) / float(layout.foot_length_mm)
    phase = 2 * np.pi * t_s * 1.4 + (0.0 if side == "left" else np.pi)
    acc = np.c_[0.3 * np.sin(phase), 0.1 * np.cos(phase), 1.0 + 0.5 * np.sin(2 * phase)]
    gyro = np.c_[40 * np.cos(phase), 15 * np.sin(phase), 5 * np.sin(2 * phase)]
    return {"pressure": pressure, "total_force": total, "cop": cop, "acc": acc, "gyro": gyro}


def encode_datagrams(t_s: np.ndarray, left: dict, right: dict, decimals: int = 3) -> list[bytes]:
    """The datagrams of samples at ``t_s``: ``time L.acc L.gyro L.cop L.pressure L.force R...`` (51 numbers)."""
    blocks = [np.asarray(t_s, np.float64)[:, None]]
    for ch in (left, right):
        blocks += [ch["acc"], ch["gyro"], ch["cop"], ch["pressure"], ch["total_force"][:, None]]
    table = np.hstack(blocks)
    text = np.char.mod(f"%.{decimals}f", np.round(table, decimals))
    return [" ".join(row).encode() for row in text.tolist()]


class MoticonSim:
    """Send a Moticon OpenGo UDP stream to ``target`` (``(host, port)``) at ``rate_hz`` from one owned thread.

    Attributes
    ----------
    sent_t : list of float
        Times (s, the first field) of every sample put on the wire, in order (duplicates once).
    dropped_t : list of float
        Times of the samples whose datagram was dropped.
    garbled_n, duplicated_n : int
    """

    def __init__(self, target: tuple[str, int], rate_hz: int = 100, runner=None, t0_s: float = 12.5,
                 drop_rate: float = 0.0, duplicate_rate: float = 0.0, garble_rate: float = 0.0, seed: int = 0,
                 decimals: int = 3) -> None:
        self.target = target
        self.rate_hz = int(rate_hz)
        self.gait = make_gait(runner)
        self.layout = load_layout("insole16")
        self.t0_s = float(t0_s)
        self.drop_rate, self.duplicate_rate, self.garble_rate = drop_rate, duplicate_rate, garble_rate
        self.decimals = decimals
        self.rng = np.random.default_rng([seed, 14])
        self.sock: socket.socket | None = None
        self.sent_t: list[float] = []
        self.dropped_t: list[float] = []
        self.garbled_n = 0
        self.duplicated_n = 0
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="moticon-sim")
        self._truth: list[tuple[np.ndarray, dict, dict]] = []

    def start(self) -> MoticonSim:
        """Start the serving thread; returns self."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (checked join) and release the socket or link."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(5.0)
        if self._thread.is_alive():
            raise RuntimeError("moticon-sim did not stop")
        if self.sock is not None:
            self.sock.close()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> MoticonSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def channels(self, t_s: np.ndarray) -> tuple[dict, dict]:
        """The left and right channels the stream carries at device times ``t_s`` (ground truth)."""
        return tuple(side_channels(self.gait, self.layout, side, np.asarray(t_s, np.float64)) for side in SIDES)

    def _run(self) -> None:
        period_s = 1.0 / self.rate_hz
        start = time.monotonic()
        i = 0
        try:
            while not self._stop.is_set():
                due = int((time.monotonic() - start) / period_s) + 1
                if due > i:
                    t = self.t0_s + np.arange(i, due) * period_s
                    self._send(t)
                    i = due
                self._stop.wait(max(0.0, start + i * period_s - time.monotonic()))
        except OSError as exc:  # reported by stop()
            self.error = exc

    def _send(self, t: np.ndarray) -> None:
        left, right = self.channels(t)
        grams = encode_datagrams(t, left, right, self.decimals)
        k = len(grams)
        r = self.rng.random((3, k))
        for j in range(k):  # one datagram per sample: that is the format
            if r[0, j] < self.drop_rate:
                self.dropped_t.append(float(t[j]))
                continue
            if r[1, j] < self.garble_rate:
                self.garbled_n += 1
                self.sock.sendto(b"MOTICON status: insole battery 81 %", self.target)
                self.dropped_t.append(float(t[j]))
                continue
            self.sock.sendto(grams[j], self.target)
            self.sent_t.append(float(t[j]))
            if r[2, j] < self.duplicate_rate:
                self.duplicated_n += 1
                self.sock.sendto(grams[j], self.target)
