"""Device drivers: protocol v1 (binary devices of every registered kind), the line protocol, LSL inlets.

Every driver implements :class:`~treadlab.drivers.base.Device`; :func:`connect` is the one way to get an
identified device from a rig entry (used by ``lab devices``, the recorder and the app). Byte-stream drivers
receive their transport (a pyserial port object); they never open ports themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from treadlab.drivers.adapters import ADAPTERS
from treadlab.drivers.base import Calibration, Device, DeviceConfig, PingResult, SampleBatch
from treadlab.drivers.binary import BinaryDevice
from treadlab.drivers.common import DeviceStats
from treadlab.drivers.line import LineDevice
from treadlab.drivers.transport import open_port
from treadlab.drivers.urls import scheme_of
from treadlab.errors import ConfigError, DeviceError, PortNotFoundError
from treadlab.kinds import DeviceDescription

__all__ = [
    "BinaryDevice",
    "Calibration",
    "Device",
    "DeviceConfig",
    "DeviceDescription",
    "DeviceStats",
    "LineDevice",
    "PingResult",
    "SampleBatch",
    "connect",
    "open_device",
    "open_port",
    "protocol_names",
    "register_protocol",
]

log = logging.getLogger(__name__)

#: Protocol name -> opener ``(cfg, timeout_s) -> Device`` (not yet identified).
_OPENERS: dict[str, Callable[[DeviceConfig, float], Device]] = {}


def register_protocol(name: str, opener: Callable[[DeviceConfig, float], Device]) -> None:
    """Make ``protocol = name`` rig entries open with ``opener(cfg, timeout_s)`` (a new transport or protocol)."""
    _OPENERS[name] = opener


def protocol_names() -> tuple[str, ...]:
    """The registered protocols, sorted."""
    return tuple(sorted(_OPENERS))


def _open_serial(cls):
    def opener(cfg: DeviceConfig, timeout_s: float) -> Device:
        try:
            port = open_port(cfg.port, baudrate=cfg.baudrate, timeout_s=timeout_s)
        except DeviceError as exc:
            raise type(exc)(f"{cfg.name}: {exc}") from exc
        try:
            return cls(port, cfg)
        except ConfigError:
            port.close()
            raise

    return opener


def _open_binary(cfg: DeviceConfig, timeout_s: float) -> Device:
    """Protocol v1 on a byte stream (serial, ``socket://``, ``rfc2217://``) or from a message source (``udp://``)."""
    scheme = scheme_of(cfg.port)
    if scheme == "ble":
        raise PortNotFoundError(f"{cfg.name}: {cfg.port}: Bluetooth ports cannot be opened from a rig file yet (the "
                                "GATT transport needs a controller backend; see docs/transports.md)")
    if scheme == "udp":  # a message source: one datagram is one protocol v1 message
        from treadlab.drivers.message import open_udp_device

        return open_udp_device(cfg, timeout_s)
    return _open_binary_stream(cfg, timeout_s)


def _open_line(cfg: DeviceConfig, timeout_s: float) -> Device:
    if scheme_of(cfg.port) in ("udp", "ble"):
        raise ConfigError(f"{cfg.name}: {cfg.port}: udp:// carries protocol v1 messages ('binary'), not 'line'")
    return _open_line_stream(cfg, timeout_s)


def _open_lsl(cfg: DeviceConfig, timeout_s: float) -> Device:
    if cfg.kind == "force":  # a force plate or treadmill with its channel map (docs/rig.md)
        from treadlab.drivers.lsl_force import LslForceDevice

        return LslForceDevice(cfg)
    from treadlab.drivers.lsl import LslInletDevice  # late: only LSL users pay for it

    return LslInletDevice(cfg)


_open_binary_stream = _open_serial(BinaryDevice)
_open_line_stream = _open_serial(LineDevice)
register_protocol("binary", _open_binary)
register_protocol("line", _open_line)
register_protocol("lsl", _open_lsl)
for _name, _adapter in ADAPTERS.items():  # devices with a public interface of their own (drivers.adapters)
    register_protocol(_name, _adapter.open)


def open_device(cfg: DeviceConfig, timeout_s: float = 0.05) -> Device:
    """Open the transport of a rig-file device and wrap it in the driver of its protocol.

    Parameters
    ----------
    cfg : DeviceConfig
        The device's rig-file entry (``port``, ``protocol``, ``baudrate``...).
    timeout_s : float
        Read timeout of the port.

    Returns
    -------
    Device
        Not yet identified: call ``identify()`` next (or use :func:`connect`).

    Raises
    ------
    PortNotFoundError, PortBusyError, PortPermissionError, DeviceError
        The port cannot be opened (the message names the device and the port).
    ConfigError
        Unknown protocol, or a device entry without the keys its protocol needs.
    """
    opener = _OPENERS.get(cfg.protocol)
    if opener is None:
        raise ConfigError(f"{cfg.name}: protocol must be one of {', '.join(map(repr, protocol_names()))}, "
                          f"not {cfg.protocol!r}")
    return opener(cfg, timeout_s)


def connect(cfg: DeviceConfig, timeout_s: float = 2.0) -> Device:
    """Open, identify, set the rate of, and read the calibration of one device: the one connection recipe.

    Parameters
    ----------
    cfg : DeviceConfig
        The rig entry.
    timeout_s : float
        How long identification may take.

    Returns
    -------
    Device
        Identified (``describe()`` works), not started.

    Raises
    ------
    DeviceError
        Port missing, busy or refused; nothing answered; the device is not what the rig says; an unknown kind
        (:class:`~treadlab.kinds.UnknownKindError`); a rate it refuses.
    """
    try:
        dev = open_device(cfg)
    except DeviceError as exc:
        log.info("%s: not connected: %s", cfg.name, exc)
        raise
    try:
        dev.identify(timeout_s=timeout_s)
        if cfg.rate_hz is not None and cfg.rate_hz != dev.describe().rate_hz:
            dev.set_rate(cfg.rate_hz)
        dev.get_calibration()
    except BaseException as exc:
        dev.close()
        if isinstance(exc, DeviceError):
            log.info("%s: not connected: %s", cfg.name, exc)
        raise
    desc = dev.describe()
    log.info("%s: connected (%s %s, serial %s, %g Hz)", cfg.name, desc.protocol, desc.kind, desc.serial or "-",
             desc.rate_hz)
    return dev
