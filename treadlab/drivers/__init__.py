"""Device drivers: protocol v1 (binary insoles and mats), the line protocol, and simulated devices.

Drivers receive their transport (a pyserial port object); they never open ports themselves.
"""

from __future__ import annotations

from treadlab.drivers.adapters import ADAPTERS
from treadlab.drivers.base import Calibration, DeviceConfig, PingResult, SampleBatch
from treadlab.drivers.binary import BinaryDevice
from treadlab.drivers.common import DeviceStats
from treadlab.drivers.line import LineDevice
from treadlab.drivers.transport import open_port
from treadlab.drivers.urls import scheme_of
from treadlab.errors import ConfigError, DeviceError, PortNotFoundError

__all__ = [
    "BinaryDevice",
    "Calibration",
    "DeviceConfig",
    "DeviceStats",
    "LineDevice",
    "PingResult",
    "SampleBatch",
    "open_device",
    "open_port",
]


def open_device(cfg: DeviceConfig, timeout_s: float = 0.05) -> BinaryDevice | LineDevice:
    """Open the port of a rig-file device and wrap it in the driver of its protocol.

    Parameters
    ----------
    cfg : DeviceConfig
        The device's rig-file entry (``port``, ``protocol``, ``baudrate``...).
    timeout_s : float
        Read timeout of the port.

    Returns
    -------
    BinaryDevice or LineDevice
        Not yet identified: call ``identify()`` next.

    Raises
    ------
    PortNotFoundError, PortBusyError, PortPermissionError, DeviceError
        The port cannot be opened (the message names the device and the port).
    ConfigError
        Unknown protocol, or a line device without the keys it needs.
    """
    if cfg.protocol in ADAPTERS:  # a device with a public interface of its own (treadlab.drivers.adapters)
        return ADAPTERS[cfg.protocol].open(cfg, timeout_s)
    if cfg.protocol not in ("binary", "line"):
        raise ConfigError(f"{cfg.name}: protocol must be 'binary', 'line' or one of "
                          f"{', '.join(map(repr, ADAPTERS))}, not {cfg.protocol!r}")
    if scheme_of(cfg.port) == "ble":
        raise PortNotFoundError(f"{cfg.name}: {cfg.port}: Bluetooth ports cannot be opened from a rig file yet (the "
                                "GATT transport needs a controller backend; see docs/transports.md)")
    if scheme_of(cfg.port) == "udp":  # a message source: one datagram is one protocol v1 message
        if cfg.protocol != "binary":
            raise ConfigError(f"{cfg.name}: udp:// carries protocol v1 messages ('binary'), not {cfg.protocol!r}")
        from treadlab.drivers.message import open_udp_device

        return open_udp_device(cfg, timeout_s)
    try:
        port = open_port(cfg.port, baudrate=cfg.baudrate, timeout_s=timeout_s)
    except DeviceError as exc:
        raise type(exc)(f"{cfg.name}: {exc}") from exc
    try:
        if cfg.protocol == "binary":
            return BinaryDevice(port, cfg)
        return LineDevice(port, cfg)
    except ConfigError:
        port.close()
        raise
