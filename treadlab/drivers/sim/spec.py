"""Specification of a simulated device: what it is, how it delivers, which faults it has, its calibration.

:class:`SimDeviceSpec` is JSON-serialisable (:meth:`SimDeviceSpec.to_json`), which is how
:class:`~treadlab.drivers.sim.rig.SimulatedRig` hands it to the device process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from treadlab.drivers import protocol as p
from treadlab.drivers.layouts import load_layout


@dataclass
class DeliveryParams:
    """USB-like delivery of a simulated device (see :class:`treadlab.drivers.sim.clock.UsbDelivery`)."""

    usb_frame_ms: float = 1.0
    stall_rate_hz: float = 0.3
    stall_max_ms: float = 20.0
    fifo_bytes: int | None = None  # None: 64 KiB, or 0.25 s of DATA if that is more


@dataclass
class FaultParams:
    """Fault switches; all can be changed at run time through the device process's stdin.

    Attributes
    ----------
    corrupt_rate : float
        Fraction of DATA frames (or lines) with one flipped byte.
    loss_rate : float
        Fraction of samples taken but never sent (the seq, or the line time, jumps).
    garbage_at_start : int
        Random bytes sent before the first message after every power-up.
    unplug_at_s, replug_after_s : float or None
        Unplug this long after the process starts, and replug this long after that (None: stay unplugged).
    """

    corrupt_rate: float = 0.0
    loss_rate: float = 0.0
    garbage_at_start: int = 0
    unplug_at_s: float | None = None
    replug_after_s: float | None = None


@dataclass
class SimDeviceSpec:
    r"""Everything a simulated device process needs; JSON-serialisable (:meth:`to_json`, :meth:`from_json`).

    Parameters
    ----------
    name : str
        Device name; its port is ``<workdir>/<name>``.
    kind : {"insole", "mat", "imu", "force"}
        ``"force"``: a simulated instrumented treadmill (:mod:`treadlab.drivers.sim.treadmill`).
    protocol : {"binary", "line"}
    side : {"left", "right"} or None
        Insoles only.
    layout : str, dict or None
        Insoles: a layout name the host knows ("insole16", "insole99", "insole960") or an inline layout.
    rows, cols : int or None
        Mats only.
    pitch_mm : list of float or None
        Mats: sensel pitch ``[row, col]``.
    belt_axis : {"rows", "cols"}
        Mats: which index runs along the belt (as in ``GaitModel.mat_frames``).
    placement : {"pelvis", "trunk", "tibia_left", "tibia_right"} or None
        IMUs only: the segment it is worn on.
    channels : list of str or None
        IMUs: wire order (default ``ax ay az gx gy gz``, plus ``mx my mz`` with ``imu["magnetometer"]``).
    range_g, range_dps, range_ut : float or None
        IMUs: full scales (default 16 g, or 32 g on a shank; 2000 deg/s; 1300 uT).
    imu : dict or None
        IMUs: the board's errors, keyword arguments of :meth:`~treadlab.drivers.sim.imu_sensor.ImuSensor.random`
        (``max_misalignment_deg``, ``max_gyro_bias_dps``, ``max_accel_bias_g``, ``noise``, ``magnetometer``).
    rate_hz : int
        Sampling rate after power-up.
    rates_hz : list of int
        Rates accepted by SET_RATE.
    clock_hz : int
        Device clock tick rate (line devices: derived from ``time_unit``).
    dtype : {"u8", "u16", "i16", "i32", "f32"}
        Insoles and mats ``u8``/``u16``; IMUs ``i16``; treadmills ``i32`` (counts) or ``f32`` (calibrated values).
    treadmill : dict or None
        Treadmills: :class:`~treadlab.drivers.sim.treadmill.TreadmillParams` as a dict (belts, outputs, noise).
    adc_bits : int
    drift_ppm, offset_ticks : float, int
        Device clock against true time (see :class:`~treadlab.drivers.sim.clock.DeviceClock`).
    serial, model, firmware : str
    calibration : dict or None
        ``{"unit": "N", "gain": scalar or list, "offset": scalar or list}``; None picks a plausible one.
    seq_start : int
        First seq after power-up (set it near 2**32 to test the wrap).
    time_unit : {"ms", "us"}
        Line devices: unit of the time column.
    decimals : int
        Line devices: 0 sends raw ADC counts, more sends calibrated newtons with that many decimals.
    line_ending : str
        Line devices: "\n" or "\r\n".
    block_ms : float
        Values are generated this many milliseconds at a time.
    self_powered : bool
        The device has its own power (a battery): an unplug cuts only the link. Its firmware keeps sampling and
        numbering (seq, clock and rate go on; the samples taken while the cable is out are lost), and after a
        replug it streams again as soon as the host opens the port, without IDENTIFY or START. False (the
        default): a bus-powered device, which a replug power-cycles (seq and clock restart, stopped until START).
    seed : int
    delivery : DeliveryParams
    faults : FaultParams
    """

    name: str
    kind: str = "insole"
    protocol: str = "binary"
    side: str | None = None
    layout: Any = None
    rows: int | None = None
    cols: int | None = None
    pitch_mm: list[float] | None = None
    belt_axis: str = "rows"
    placement: str | None = None
    channels: list[str] | None = None
    range_g: float | None = None
    range_dps: float | None = None
    range_ut: float | None = None
    imu: dict | None = None
    treadmill: dict | None = None
    rate_hz: int = 500
    rates_hz: list[int] = field(default_factory=lambda: [50, 100, 120, 200, 250, 500, 750, 1000])
    clock_hz: int = 1_000_000
    dtype: str = "u16"
    adc_bits: int = 12
    drift_ppm: float = 0.0
    offset_ticks: int = 0
    serial: str = "SIM0000"
    model: str = "treadlab-sim"
    firmware: str = "1.0.0"
    calibration: dict | None = None
    seq_start: int = 0
    time_unit: str = "ms"
    decimals: int = 0
    line_ending: str = "\n"
    block_ms: float = 16.0
    self_powered: bool = False
    seed: int = 0
    delivery: DeliveryParams = field(default_factory=DeliveryParams)
    faults: FaultParams = field(default_factory=FaultParams)

    def __post_init__(self) -> None:
        if isinstance(self.delivery, dict):
            self.delivery = DeliveryParams(**self.delivery)
        if isinstance(self.faults, dict):
            self.faults = FaultParams(**self.faults)
        checks = {"kind": ("insole", "mat", "imu", "force"), "protocol": ("binary", "line"),
                  "dtype": ("i32", "f32") if self.kind == "force" else ("u8", "u16", "i16"),
                  "time_unit": ("ms", "us"), "belt_axis": ("rows", "cols")}
        for key, allowed in checks.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"SimDeviceSpec {self.name!r}: {key} must be one of {allowed}, "
                                 f"got {getattr(self, key)!r}")
        if self.kind == "mat" and (not self.rows or not self.cols):
            raise ValueError(f"SimDeviceSpec {self.name!r}: a mat needs rows and cols")
        if self.kind == "insole" and self.side not in ("left", "right"):
            raise ValueError(f"SimDeviceSpec {self.name!r}: an insole needs side 'left' or 'right'")
        if self.kind == "imu":
            self._check_imu()
        if self.kind == "force":
            from treadlab.drivers.sim.treadmill import TreadmillParams

            self.treadmill = TreadmillParams.from_any(self.treadmill).as_dict()  # a bad value raises ValueError
        if self.protocol == "line" and self.kind != "insole":
            raise ValueError(f"SimDeviceSpec {self.name!r}: line devices are insoles")
        if self.protocol == "line":
            self.clock_hz = 1000 if self.time_unit == "ms" else 1_000_000
        if self.kind == "insole" and self.layout is None:
            self.layout = "insole16"
        for key in ("rate_hz", "clock_hz", "adc_bits"):
            if not getattr(self, key) > 0:
                raise ValueError(f"SimDeviceSpec {self.name!r}: {key} must be positive, got {getattr(self, key)!r}")
        if not 0 <= self.seq_start < 2**32:
            raise ValueError(f"SimDeviceSpec {self.name!r}: seq_start must be a u32, got {self.seq_start!r}")
        if self.kind == "insole":
            self.n_values  # noqa: B018 - an unknown layout raises ConfigError here, not in the device process

    def _check_imu(self) -> None:
        from treadlab.drivers.sim.imu_sensor import ALL_CHANNELS, PLACEMENTS

        if self.placement not in PLACEMENTS:
            raise ValueError(f"SimDeviceSpec {self.name!r}: an imu needs placement one of {PLACEMENTS}, "
                             f"got {self.placement!r}")
        if self.dtype != "i16":
            raise ValueError(f"SimDeviceSpec {self.name!r}: an imu sends dtype 'i16', got {self.dtype!r}")
        extra = set(self.imu or {}) - {"max_misalignment_deg", "max_gyro_bias_dps", "max_accel_bias_g", "noise",
                                       "magnetometer"}
        if extra:
            raise ValueError(f"SimDeviceSpec {self.name!r}: unknown imu settings {sorted(extra)}")
        if self.channels is None:
            mag = bool((self.imu or {}).get("magnetometer", False))
            self.channels = list(ALL_CHANNELS if mag else ALL_CHANNELS[:6])
        if self.range_g is None:
            self.range_g = 32.0 if self.placement.startswith("tibia") else 16.0
        if self.range_dps is None:
            self.range_dps = 2000.0
        if self.range_ut is None:
            self.range_ut = 1300.0

    @property
    def fifo_bytes(self) -> int:
        """Size of the device's output FIFO (``delivery.fifo_bytes``, or 64 KiB / 0.25 s of DATA)."""
        if self.delivery.fifo_bytes is not None:
            return int(self.delivery.fifo_bytes)
        item = p.data_message_size(self.n_values, self.dtype) if self.protocol == "binary" else 8 * self.n_values
        return max(64 * 1024, int(0.25 * max(self.rates_hz + [self.rate_hz]) * item))

    @property
    def n_values(self) -> int:
        """Values per sample: sensels of an insole, rows * cols of a mat, channels of a treadmill."""
        if self.kind == "force":
            from treadlab.drivers.sim.treadmill import TreadmillParams, channel_names

            tp = TreadmillParams.from_any(self.treadmill)
            return len(channel_names(tp.belts, tp.outputs))
        if self.kind == "mat":
            return int(self.rows) * int(self.cols)
        if self.kind == "imu":
            return len(self.channels)
        return layout_sensels(self.layout)

    def to_json(self) -> str:
        """The spec as a JSON string."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SimDeviceSpec:
        """Inverse of :meth:`to_json`; unknown keys raise ``ValueError``."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"SimDeviceSpec: unknown keys {sorted(unknown)}")
        return cls(**data)


def layout_sensels(layout: Any) -> int:
    """Sensel count of an insole layout given by name ("insole99") or inline (a table with ``positions_mm``)."""
    return load_layout(layout).n_sensels


def default_calibration(spec: SimDeviceSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-sensel (gain N/count, offset counts) of a device, from its spec or made up plausibly.

    Made-up gains put the full ADC range at about twice the largest force a sensel should see, with a +/-5 %
    spread between sensels; offsets are a few counts.
    """
    if spec.kind == "force":
        from treadlab.drivers.sim.treadmill import force_calibration

        return force_calibration(spec, rng)
    n = spec.n_values
    cal = spec.calibration or {}
    if spec.kind == "imu":  # int16 counts of the full scale, offset 0 (ImuSensor.gain)
        full = {"a": spec.range_g, "g": spec.range_dps, "m": spec.range_ut}
        gain = np.array([full[c[0]] / 32768.0 for c in spec.channels])
        return gain.astype(np.float32), np.zeros(n, np.float32)
    full = 2 ** spec.adc_bits - 1
    if "gain" in cal:
        gain = np.broadcast_to(np.asarray(cal["gain"], dtype=np.float64), (n,)).copy()
    else:
        max_force_n = 60.0 if spec.kind == "mat" else 2 * 1800.0 / max(1.0, 0.15 * n)
        gain = max_force_n / full * rng.uniform(0.95, 1.05, n)
    if "offset" in cal:
        offset = np.broadcast_to(np.asarray(cal["offset"], dtype=np.float64), (n,)).copy()
    else:
        offset = np.round(rng.uniform(0.005, 0.02, n) * full)
    return gain.astype(np.float32), offset.astype(np.float32)
