"""The kind registry and the device description: what every layer knows about a kind of device, in one place.

Dependency-free on purpose (numpy and :mod:`treadlab.errors` only): the drivers describe devices with it, the
acquisition writes the description to the session file, the GUI picks live views by kind, and the analysis may
import it too (it never imports the drivers). A kind is one :class:`Kind` object registered once with
:func:`register_kind`; the built-in kinds live in their own modules (``insole.py``, ``mat.py``, ``stream.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from treadlab.errors import ProtocolError, UnknownKindError

__all__ = ["Calibration", "DeviceDescription", "Kind", "UnknownKindError", "get_kind", "kind_names",
           "register_kind", "shape_from_info", "unregister_kind"]


@dataclass(frozen=True)
class Calibration:
    """Per-value calibration: ``value = gain * (raw - offset)`` in ``unit`` ("N", "kPa", a channel unit...)."""

    unit: str
    gain: np.ndarray
    offset: np.ndarray


@dataclass(frozen=True)
class DeviceDescription:
    """Everything known about one identified device, as the session file stores it (``/devices/<name>``).

    Returned by every driver's ``describe()``; the writer lays out the device's group from it alone.

    Attributes
    ----------
    name : str
        Device name (group ``/devices/<name>``).
    kind : str
        A registered kind (attribute ``kind``).
    protocol : str
        ``"binary"``, ``"line"``, ``"lsl"``... (attribute ``protocol``).
    shape : tuple of int
        Shape of one sample (attribute ``shape``; ``raw`` is ``(n, *shape)``).
    dtype : numpy.dtype
        Raw value type (dataset ``raw``).
    rate_hz, clock_hz : float
        Nominal sampling rate and device clock (attributes ``rate_hz``, ``clock_hz``).
    serial : str
        Serial number or stream id (attribute ``serial``; "" when unknown).
    side : str
        ``"left"``/``"right"`` for insoles, "" otherwise (attribute ``side``).
    info : dict
        INFO as the device sent it (attribute ``info_json``).
    calibration : Calibration or None
        Group ``calibration`` (datasets ``gain``, ``offset``, attribute ``unit``; identity and "raw" when None).
    layout : dict or None
        Sensel layout (group ``layout``: datasets ``positions_mm``, ``areas_mm2``; attributes ``foot_length_mm``,
        ``name``).
    layout_attrs : dict
        The kind's geometry attributes of group ``layout`` (a mat's ``pitch_mm``, ``rows``, ``cols``,
        ``belt_axis``).
    layout_data : dict of ndarray
        The kind's geometry datasets of group ``layout`` when no sensel layout gives them.
    channel_labels : tuple of str
        One label per value (row-major for 2-D shapes).
    channel_units : tuple of str
        The calibrated unit of every value when the kind has one per channel (dataset ``calibration/units``;
        empty when one unit, :attr:`unit`, covers every value).
    markers : bool
        The device's samples are markers (texts), written to ``/markers`` and ``/events``, not to ``/devices``.
    host_clock : bool
        The device time *is* the host clock (an LSL stream).
    supports_ping : bool
        PING round trips bound the clock fit.
    """

    name: str
    kind: str
    protocol: str
    shape: tuple[int, ...]
    dtype: np.dtype
    rate_hz: float
    clock_hz: float
    serial: str = ""
    side: str = ""
    info: dict = field(default_factory=dict)
    calibration: Calibration | None = None
    layout: dict | None = None
    layout_attrs: dict = field(default_factory=dict)
    layout_data: dict = field(default_factory=dict)
    channel_labels: tuple[str, ...] = ()
    channel_units: tuple[str, ...] = ()
    markers: bool = False
    host_clock: bool = False
    supports_ping: bool = False

    @property
    def n_values(self) -> int:
        """Values per sample."""
        return int(np.prod(self.shape))

    @property
    def unit(self) -> str:
        """Unit of the calibrated values ("raw" without a calibration)."""
        return self.calibration.unit if self.calibration is not None else "raw"


class Kind:
    """One kind of device; subclass it in the kind's own module and register one instance.

    Attributes
    ----------
    name : str
        The kind's name in INFO, rig files and session files.
    info_keys : tuple of str
        INFO keys a protocol v1 device of this kind must send (beyond the protocol's own).
    lsl_type : str
        Stream type of the outlet that publishes it (``lab record --lsl``); "" for the kind's name.
    lsl_outlet : bool
        Published on LSL at all (an external LSL stream is not published again).
    line_protocol : bool
        Line-protocol devices (``t,v1,...,vN``, 1-D samples) may be of this kind.
    sensel_layout : bool
        INFO's or the rig's ``layout`` names a sensel layout (``config/layouts``) for this kind.
    rig_kind : bool
        A rig entry may say ``kind = "<name>"`` (an external LSL stream is named by its protocol instead).
    signed : bool
        Calibrated values keep their sign (an imu's acceleration); False: forces and pressures, whose values below
        the offset are noise shown and published as 0.
    rig_keys : tuple of str
        Keys a rig entry of this kind may give beyond the generic ones (an imu's ``placement``); the rig loader
        accepts them (after :meth:`check_rig`) and the driver checks each against the device's INFO at connection,
        as it checks ``side``.
    """

    name = ""
    info_keys: tuple[str, ...] = ()
    lsl_type = ""
    lsl_outlet = True
    line_protocol = False
    sensel_layout = False
    rig_kind = True
    rig_keys: tuple[str, ...] = ()
    signed = False

    def check_info(self, info: dict, where: str) -> None:
        """Check INFO beyond the presence of :attr:`info_keys` (called before :meth:`shape`); raise
        :class:`~treadlab.errors.ProtocolError` naming the device (``where``) and the problem. Nothing by default.
        """

    def shape(self, info: dict) -> tuple[int, ...]:
        """Shape of one sample from INFO (keys :attr:`info_keys` are present)."""
        raise NotImplementedError

    def channel_labels(self, shape: tuple[int, ...], info: dict) -> tuple[str, ...]:
        """One label per value: ``ch01``... unless the kind says otherwise."""
        return tuple(f"ch{i + 1:02d}" for i in range(int(np.prod(shape))))

    def channel_units(self, shape: tuple[int, ...], info: dict, unit: str) -> tuple[str, ...]:
        """The calibrated unit of every value when the kind has one per channel (``unit`` is the calibration's
        unit); empty (the default) when ``unit`` covers every value.
        """
        return ()

    def geometry(self, info: dict, shape: tuple[int, ...], layout: dict | None) -> tuple[dict, dict]:
        """The kind's ``layout`` group attributes and datasets, as ``(attrs, datasets)`` (none by default)."""
        return {}, {}

    def device_attrs(self, info: dict) -> dict:
        """Attributes of the device group ``/devices/<name>`` the kind adds from INFO (a force device's
        ``channels``, ``belts``, ``axes``...); none by default. Written by the session writer at creation.
        """
        return {}

    def summary(self, desc: DeviceDescription) -> str:
        """What ``lab devices`` says the device is, e.g. ``insole left 16 sensels``."""
        return f"{self.name} {desc.n_values} values"

    def check_rig(self, entry: dict, where: str) -> None:
        """Check a rig entry of this kind beyond the generic keys; raise :class:`~treadlab.errors.ConfigError`."""

    def __repr__(self) -> str:
        return f"<kind {self.name!r}>"


_KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    """Make ``kind`` known to every layer (drivers, writer, rig loader, LSL); returns it.

    Registering another object under a registered name replaces it (a test's toy kind can be re-registered).
    """
    if not kind.name or not isinstance(kind.name, str):
        raise ValueError(f"a kind needs a name, got {kind.name!r}")
    _KINDS[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Forget a kind (tests that registered a toy kind)."""
    _KINDS.pop(name, None)


def kind_names() -> tuple[str, ...]:
    """Names of the registered kinds, sorted."""
    return tuple(sorted(_KINDS))


def get_kind(name: Any, where: str = "") -> Kind:
    """The registered kind ``name``.

    Raises
    ------
    UnknownKindError
        No module registered it; the message names the device (``where``) and the known kinds.
    """
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        prefix = f"{where}: " if where else ""
        raise UnknownKindError(f"{prefix}unknown device kind {name!r}; treadlab knows "
                               f"{', '.join(map(repr, kind_names()))} (a new kind registers itself, see "
                               "docs/design.md 'Adding a device kind')")
    return kind


def shape_from_info(info: dict, where: str) -> tuple[Kind, tuple[int, ...]]:
    """The kind and sample shape INFO describes (its kind's keys checked).

    Raises
    ------
    UnknownKindError
        INFO's kind is not registered.
    ProtocolError
        INFO lacks a key the kind needs, or gives a shape that is not positive integers.
    """
    kind = get_kind(info.get("kind"), where)
    missing = [k for k in kind.info_keys if k not in info]
    if missing:
        raise ProtocolError(f"{where}: INFO lacks {', '.join(missing)} (a {kind.name} sends them)")
    kind.check_info(info, where)
    try:
        shape = tuple(int(s) for s in kind.shape(info))
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{where}: INFO of a {kind.name} gives no usable shape ({exc})") from exc
    if not shape or min(shape) <= 0:
        raise ProtocolError(f"{where}: INFO of a {kind.name} gives shape {shape}")
    return kind, shape
