"""The inertial-sensor kind ("imu"): accelerometer, optionally gyroscope and magnetometer, worn on one segment.

Wire contract (issue 14, ``docs/protocol.md`` "IMU devices"): INFO ``dtype`` "i16", ``channels`` (names in wire
order, a subset of ``ax ay az gx gy gz mx my mz`` containing ``ax ay az``), ``placement`` (where the board is
worn), ``range_g`` (and ``range_dps`` with gyroscope channels, ``range_ut`` with magnetometer channels: full scale).
CALIBRATION unit code 2 ("imu") gives one (gain, offset) per channel: g for ``a*``, deg/s for ``g*``, uT for ``m*``.

The session file (``docs/file-format.md``) keeps ``placement``, ``channels`` and the ranges as attributes of
``/devices/<name>`` (:meth:`ImuKind.device_attrs`) and the unit of every channel in ``calibration/units``.
Everything here is pure and dependency-free: the drivers, the writer, the rig loader and the analysis share it.
"""

from __future__ import annotations

import math

import numpy as np

from treadlab.errors import ConfigError, ProtocolError
from treadlab.kinds.base import Kind, register_kind

#: Channel names a device may send, in the contract's order.
CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz")
#: The accelerometer channels every imu sends.
ACC = ("ax", "ay", "az")
GYRO = ("gx", "gy", "gz")
MAG = ("mx", "my", "mz")
#: Where a board is worn: the contract's four segments, and (an addition for insole-borne IMUs such as Moticon's)
#: the feet.
PLACEMENTS = ("pelvis", "trunk", "tibia_left", "tibia_right", "foot_left", "foot_right")
#: The calibrated unit of each sensor (``calibration/units``), by the channel name's first letter.
SENSOR_UNITS = {"a": "g", "g": "deg/s", "m": "uT"}
#: The INFO key of each sensor's full scale, by the channel name's first letter.
RANGE_KEYS = {"a": "range_g", "g": "range_dps", "m": "range_ut"}
#: A sample at this fraction of its sensor's full scale or more is clipping.
CLIP_FRACTION = 0.95
#: CALIBRATION unit of an imu: one unit per channel (:data:`SENSOR_UNITS`).
UNIT_IMU = "imu"
DTYPE = "i16"

# Attributes of ``/devices/<name>`` (besides every device's).
A_PLACEMENT = "placement"
A_CHANNELS = "channels"
A_RANGE_G = "range_g"
A_RANGE_DPS = "range_dps"
A_RANGE_UT = "range_ut"


def _positive(value, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ProtocolError(f"{where}: INFO {key} must be a positive number (the sensor's full scale), got {value!r}")
    return float(value)


def validate_info(info: dict, where: str) -> tuple[str, ...]:
    """Check an imu's INFO against the contract; returns its channel names.

    Raises
    ------
    ProtocolError
        One message naming the first problem: the dtype, the channel list (not a list of names, an unknown or
        repeated name, no accelerometer), the placement, or a range that is missing or not positive.
    """
    if info.get("dtype") != DTYPE:
        raise ProtocolError(f"{where}: an imu sends dtype {DTYPE!r}, INFO says {info.get('dtype')!r}")
    channels = info.get("channels")
    if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
        raise ProtocolError(f"{where}: INFO channels must be a list of channel names from {' '.join(CHANNELS)}, "
                            f"got {channels!r}")
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ProtocolError(f"{where}: INFO channels has unknown name {', '.join(map(repr, unknown))}; "
                            f"names are {' '.join(CHANNELS)}")
    repeated = sorted({c for c in channels if channels.count(c) > 1})
    if repeated:
        raise ProtocolError(f"{where}: INFO channels names {', '.join(map(repr, repeated))} more than once")
    missing = [c for c in ACC if c not in channels]
    if missing:
        raise ProtocolError(f"{where}: INFO channels lacks {' '.join(missing)} (every imu sends ax ay az)")
    placement = info.get("placement")
    if placement not in PLACEMENTS:
        raise ProtocolError(f"{where}: INFO placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    for letter in sorted({c[0] for c in channels}, key="agm".index):
        key = RANGE_KEYS[letter]
        if key not in info:
            raise ProtocolError(f"{where}: INFO lacks {key} (an imu with {letter}* channels sends it)")
        _positive(info[key], key, where)
    return tuple(channels)


def ranges(info: dict) -> dict[str, float]:
    """``range_g``, ``range_dps``, ``range_ut`` from INFO; NaN for a sensor the device lacks or does not state."""
    out = {}
    for key in (A_RANGE_G, A_RANGE_DPS, A_RANGE_UT):
        v = info.get(key)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        out[key] = float(v) if ok else float("nan")
    return out


def physical_scale(channels, info: dict, calibration=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(gain, offset)`` to g, deg/s, uT: the CALIBRATION's when its unit is "imu", else from the full
    scale, ``gain = range / 2**(adc_bits - 1)`` (INFO ``adc_bits``, 16 for i16) and offset 0 (NaN gain for a sensor
    whose range is not known). Float64, shape (channels,).
    """
    n = len(channels)
    if calibration is not None and calibration.unit == UNIT_IMU:
        return (np.asarray(calibration.gain, np.float64).ravel()[:n].copy(),
                np.asarray(calibration.offset, np.float64).ravel()[:n].copy())
    r = ranges(info)
    bits = info.get("adc_bits", 16)
    bits = int(bits) if isinstance(bits, (int, float)) and not isinstance(bits, bool) and 1 < bits <= 32 else 16
    full = np.array([r.get(RANGE_KEYS.get(str(c)[:1], ""), float("nan")) for c in channels], np.float64)
    return full / float(2 ** (bits - 1)), np.zeros(n)


class ImuKind(Kind):
    """Inertial sensors: shape ``(n_channels,)``, labels = channel names, LSL type ``MoCap``."""

    name = "imu"
    info_keys = ("channels", "placement", "range_g")
    # The XDF meta-data conventions (which LSL follows) have no type of their own for inertial sensors; their
    # motion-capture type is "MoCap". The channel labels (ax ... mz) and units say what each channel is.
    lsl_type = "MoCap"
    rig_keys = ("placement",)
    signed = True

    def check_info(self, info: dict, where: str) -> None:
        """The contract's checks (:func:`validate_info`)."""
        validate_info(info, where)

    def shape(self, info: dict) -> tuple[int, ...]:
        """``(n_channels,)``."""
        return (len(info["channels"]),)

    def channel_labels(self, shape: tuple[int, ...], info: dict) -> tuple[str, ...]:
        """The channel names in wire order (``ax``, ``ay``...)."""
        return tuple(str(c) for c in info.get("channels", ()))[: int(np.prod(shape))]

    def channel_units(self, shape: tuple[int, ...], info: dict, unit: str) -> tuple[str, ...]:
        """``g``, ``deg/s`` or ``uT`` per channel when the calibration unit is "imu"; none otherwise (raw)."""
        if unit != UNIT_IMU:
            return ()
        return tuple(SENSOR_UNITS[c[0]] for c in self.channel_labels(shape, info))

    def device_attrs(self, info: dict) -> dict:
        """``placement``, ``channels`` (array of str) and the ranges (NaN for a sensor it does not have)."""
        attrs = {A_PLACEMENT: str(info.get("placement", "")), A_CHANNELS: [str(c) for c in info.get("channels", [])]}
        attrs.update(ranges(info))
        return attrs

    def summary(self, desc) -> str:
        """``imu pelvis 6 channels 500 Hz``."""
        return f"imu {desc.info.get('placement', '?')} {desc.n_values} channels {desc.rate_hz:g} Hz"

    def check_rig(self, entry: dict, where: str) -> None:
        """``placement`` (optional) must be one of :data:`PLACEMENTS`; an imu has no ``side`` or ``sensels``."""
        placement = entry.get("placement")
        if placement is not None and placement not in PLACEMENTS:
            raise ConfigError(f"{where}: 'placement' must be one of {', '.join(map(repr, PLACEMENTS))}, "
                              f"got {placement!r}")
        for key in ("side", "sensels"):
            if key in entry:
                raise ConfigError(f"{where}: an imu has no {key!r}; say where it is worn with 'placement'")


IMU = register_kind(ImuKind())
