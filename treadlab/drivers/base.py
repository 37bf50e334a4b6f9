"""Types shared by every driver: the rig's description of a device, a batch of received samples, and the
:class:`Device` interface every driver implements (binary, line, LSL inlet, and any added later).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from treadlab.kinds import Calibration, DeviceDescription


@dataclass(frozen=True)
class DeviceConfig:
    """One ``[[device]]`` entry of a rig file, validated (see ``docs/rig.md``).

    Parameters
    ----------
    name : str
        Device name, becomes ``/devices/<name>`` in the session file.
    port : str
        Any port or URL pyserial opens (``/dev/ttyACM0``, ``COM3``, ``socket://host:port``, ``rfc2217://``...).
    protocol : str
        ``"binary"`` (device protocol v1), ``"line"`` (simple FSR insoles), ``"lsl"`` (an external LSL stream),
        or another registered protocol (:func:`treadlab.drivers.register_protocol`).
    baudrate : int
        Ignored by USB CDC devices and pseudo-terminals, used by UARTs.
    rate_hz : int or None
        Sent with SET_RATE before START (binary); the nominal rate (line, required there).
    kind : str or None
        Expected kind (a registered kind: "insole", "mat"...); checked against INFO when given. Line devices are
        insoles unless the rig says another kind that allows the line protocol.
    side : str or None
        Expected side of an insole ("left" or "right"); required for line devices.
    sensels : int or None
        Expected sensel count; required for line devices.
    serial : str or None
        Expected serial number; checked against INFO when given.
    time_unit : {"ms", "us"} or None
        Line devices: unit of the time column.
    layout : str, dict or None
        Line devices: a layout name from ``config/layouts`` or an inline layout table.
    calibration : dict or None
        Line devices: ``{unit, gain, offset}`` with scalars or per-sensel lists.
    required : bool
        A required device that is missing refuses the capture; an optional one is skipped with a warning.
    extra : dict
        Protocol-specific settings (an LSL stream's query, an adapter's options).
    expect : dict
        INFO values the rig file expects beyond the generic keys: the entry's kind's own rig keys
        (:attr:`treadlab.kinds.Kind.rig_keys`, e.g. an imu's ``placement``); checked by ``identify`` like ``side``.
    """

    name: str
    port: str
    protocol: str = "binary"
    baudrate: int = 921600
    rate_hz: int | None = None
    kind: str | None = None
    side: str | None = None
    sensels: int | None = None
    serial: str | None = None
    time_unit: str | None = None
    layout: Any = None
    calibration: dict | None = None
    required: bool = True
    extra: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SampleBatch:
    """Samples of one device decoded from one or more reads, in arrival order.

    Attributes
    ----------
    seq : ndarray of uint32, shape (k,)
        Sequence numbers as received (they wrap at 2**32).
    device_time : ndarray of uint64, shape (k,)
        Device clock in ticks of the device's ``clock_hz``, as received.
    values : ndarray, shape (k, n)
        Raw values: the device's dtype (uint8 or uint16) for binary devices, float32 for line devices.
        Mats are flattened row-major; reshape to (k, rows, cols).
    host_time_ns : ndarray of int64, shape (k,)
        ``time.monotonic_ns()`` when the read that completed the sample returned.
    """

    seq: np.ndarray
    device_time: np.ndarray
    values: np.ndarray
    host_time_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)


@dataclass(frozen=True)
class PingResult:
    """One PING round trip: host send and receive times (``monotonic_ns``) and the device clock in ticks."""

    host_send_ns: int
    host_recv_ns: int
    device_ticks: int

    @property
    def rtt_ns(self) -> int:
        """Round-trip time."""
        return self.host_recv_ns - self.host_send_ns


@runtime_checkable
class Device(Protocol):
    """What the acquisition, ``lab devices`` and the app use of a device; every driver implements it.

    Lifecycle: a driver is made (not yet talking) by :func:`treadlab.drivers.connect`, which calls
    ``identify``, ``set_rate`` (when the rig asks for another rate) and ``get_calibration``; then one reader
    thread calls ``start``, ``read`` in a loop (with ``send_ping``, ``drain_pongs`` and ``drain_logs`` between
    reads), ``stop`` and ``close``. Drivers are not thread-safe: one thread at a time.

    Attributes
    ----------
    name : str
        The rig's name of the device.
    protocol : str
        The protocol the driver speaks (``"binary"``, ``"line"``, ``"lsl"``...).
    supports_ping : bool
        ``send_ping`` gets a PONG back (collected by ``read``, drained by ``drain_pongs``).
    stats : DeviceStats
        Counters of this connection (bytes, messages, damaged frames, sequence gaps...).
    """

    name: str
    protocol: str
    supports_ping: bool

    def identify(self, timeout_s: float = 2.0, retries: int = 3) -> dict:
        """Ask the device who it is, check that against the rig entry, and return INFO."""

    def describe(self) -> DeviceDescription:
        """The identified device's description (kind, shape, dtype, calibration, layout, clock...)."""

    def set_rate(self, rate_hz: int, timeout_s: float = ...) -> None:
        """Set the sampling rate (or refuse a rate the device cannot take)."""

    def get_calibration(self, timeout_s: float = ...) -> Calibration:
        """Read the calibration; the description carries it from then on."""

    def start(self, timeout_s: float = ..., keep_received: bool = False) -> None:
        """Start streaming; samples received before are dropped unless ``keep_received`` (a reconnection)."""

    def stop(self, timeout_s: float = ...) -> None:
        """Stop streaming (samples sent before the stop stay readable)."""

    def read(self, timeout_s: float = 0.05) -> SampleBatch | None:
        """All complete samples received since the last call; raises ``DeviceDisconnectedError`` when gone."""

    def send_ping(self) -> int | None:
        """Send a PING without waiting (no-op where ``supports_ping`` is False)."""

    def drain_pongs(self) -> list[PingResult]:
        """PING round trips completed since the last call."""

    def drain_logs(self) -> list[tuple[int, int, str]]:
        """Device LOG messages since the last call, as ``(host_ns, level, text)``."""

    def close(self) -> None:
        """Release the transport (safe to call more than once)."""
