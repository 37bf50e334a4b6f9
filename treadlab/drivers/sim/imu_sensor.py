"""The errors of one simulated IMU board: mounting, biases, noise, range and int16 counts.

A board sits on its segment rotated by a random misalignment of up to ``max_misalignment_deg`` (10 deg: the
board's own frame relative to the segment frame; the host finds it from standing and running). Its readings are
``M^T`` times the segment-frame values (:meth:`ImuModel.signals` without a sensor), plus a constant bias, plus
white noise, clipped at full scale and quantised to int16 with ``gain = full_scale / 32768`` per count (offset 0),
which is what the device's CALIBRATION reports (unit code 2, "imu": g, deg/s, uT per channel).

Noise assumptions (white, SD = density x sqrt(rate / 2), i.e. the output filter passes half the sample rate):

- pelvis and trunk (+-16 g, +-2000 deg/s): a consumer 6-axis MEMS IMU of the Bosch BMI160 class, datasheet
  densities 180 ug/sqrt(Hz) (accelerometer) and 0.007 deg/s/sqrt(Hz) (gyroscope): 2.8 mg and 0.11 deg/s RMS at
  500 Hz;
- tibia (+-32 g, +-2000 deg/s): a wide-range IMU of the TDK ICM-20649 class (+-30 g), 285 ug/sqrt(Hz) and
  0.0175 deg/s/sqrt(Hz): 6.4 mg and 0.39 deg/s RMS at 1000 Hz;
- magnetometer (optional, +-1300 uT): a Bosch BMM150 class, 0.3 uT RMS per axis, hard-iron offset up to 5 uT.

Biases are constant per board: gyroscope up to ``max_gyro_bias_dps`` (1 deg/s) in a random direction, accelerometer
up to ``max_accel_bias_g`` (5 mg) per axis. Noise is counter-based (seed, sample instant in microseconds), so any
split of the samples into blocks gives the same values.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from scipy.spatial.transform import Rotation

from treadlab.drivers.sim import _random as rnd

__all__ = ["ALL_CHANNELS", "PLACEMENTS", "ImuSensor", "default_rate_hz"]

PLACEMENTS = ("pelvis", "trunk", "tibia_left", "tibia_right")
ALL_CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz")
_NOISE_STREAM = 50
#: (accelerometer ug/sqrt(Hz), gyroscope deg/s/sqrt(Hz)) of each class of board.
_DENSITY = {"low_g": (180.0, 0.007), "wide_range": (285.0, 0.0175)}
_MAG_NOISE_UT = 0.3
_MAG_OFFSET_UT = 5.0


def default_rate_hz(placement: str) -> int:
    """500 Hz on the pelvis and trunk, 1000 Hz on a shank."""
    return 1000 if placement.startswith("tibia") else 500


@dataclasses.dataclass
class ImuSensor:
    """One board: placement, channels, full scales, mounting and error terms (JSON-serialisable).

    Parameters
    ----------
    placement : {"pelvis", "trunk", "tibia_left", "tibia_right"}
    rate_hz : float
        Sample rate (sets the noise SD).
    channels : list of str
        Wire order, a subset of ``ax ay az gx gy gz mx my mz`` with ``ax ay az``.
    range_g, range_dps, range_ut : float
        Full scales.
    misalignment : list of list of float
        3 x 3 rotation of the board frame relative to the segment frame (columns: board axes in the segment).
    gyro_bias_dps, accel_bias_g, mag_offset_ut : list of float
        Constant error of each axis.
    accel_noise_ug_rthz, gyro_noise_dps_rthz, mag_noise_ut : float
        White-noise densities (magnetometer: SD per sample).
    seed : int
        Seed of the noise.
    """

    placement: str
    rate_hz: float = 500.0
    channels: list[str] = dataclasses.field(default_factory=lambda: list(ALL_CHANNELS[:6]))
    range_g: float = 16.0
    range_dps: float = 2000.0
    range_ut: float = 1300.0
    misalignment: list[list[float]] = dataclasses.field(default_factory=lambda: np.eye(3).tolist())
    gyro_bias_dps: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0, 0.0])
    accel_bias_g: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0, 0.0])
    mag_offset_ut: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0, 0.0])
    accel_noise_ug_rthz: float = _DENSITY["low_g"][0]
    gyro_noise_dps_rthz: float = _DENSITY["low_g"][1]
    mag_noise_ut: float = _MAG_NOISE_UT
    seed: int = 0

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise ValueError(f"IMU placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        bad = [c for c in self.channels if c not in ALL_CHANNELS]
        if bad or not {"ax", "ay", "az"} <= set(self.channels) or len(set(self.channels)) != len(self.channels):
            raise ValueError(f"IMU channels must be distinct names of {' '.join(ALL_CHANNELS)} including ax ay az, "
                             f"got {self.channels!r}")
        m = np.asarray(self.misalignment, dtype=np.float64)
        if m.shape != (3, 3) or not np.allclose(m.T @ m, np.eye(3), atol=1e-9) or np.linalg.det(m) < 0:
            raise ValueError("IMU misalignment must be a 3 x 3 rotation matrix")

    @classmethod
    def random(cls, placement: str, seed: int = 0, rate_hz: float | None = None, magnetometer: bool = False,
               max_misalignment_deg: float = 10.0, max_gyro_bias_dps: float = 1.0,
               max_accel_bias_g: float = 0.005, noise: bool = True) -> ImuSensor:
        """A board with a random mounting and biases drawn from ``seed`` (realistic defaults; see the module)."""
        rng = np.random.default_rng([seed, 61])
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = np.radians(rng.uniform(0.0, max_misalignment_deg))
        mis = Rotation.from_rotvec(axis * angle).as_matrix()
        bias_dir = rng.normal(size=3)
        bias_dir /= np.linalg.norm(bias_dir)
        gyro_bias = bias_dir * rng.uniform(0.0, max_gyro_bias_dps)
        accel_bias = rng.uniform(-max_accel_bias_g, max_accel_bias_g, 3)
        mag_offset = rng.uniform(-_MAG_OFFSET_UT, _MAG_OFFSET_UT, 3)
        tibia = placement.startswith("tibia")
        dens = _DENSITY["wide_range" if tibia else "low_g"]
        return cls(placement, rate_hz=float(rate_hz or default_rate_hz(placement)),
                   channels=list(ALL_CHANNELS if magnetometer else ALL_CHANNELS[:6]),
                   range_g=32.0 if tibia else 16.0, misalignment=mis.tolist(), gyro_bias_dps=gyro_bias.tolist(),
                   accel_bias_g=accel_bias.tolist(), mag_offset_ut=mag_offset.tolist(),
                   accel_noise_ug_rthz=dens[0] if noise else 0.0, gyro_noise_dps_rthz=dens[1] if noise else 0.0,
                   mag_noise_ut=_MAG_NOISE_UT if noise else 0.0, seed=int(rng.integers(0, 2**31)))

    # ---------------------------------------------------------------------------------------- readings

    @property
    def full_scale(self) -> np.ndarray:
        """Full scale of each channel in wire order (g, deg/s, uT)."""
        return np.array([{"a": self.range_g, "g": self.range_dps, "m": self.range_ut}[c[0]] for c in self.channels])

    def noise_sd(self) -> tuple[float, float, float]:
        """SD per sample of accelerometer (g), gyroscope (deg/s) and magnetometer (uT) noise."""
        root = np.sqrt(self.rate_hz / 2.0)
        return self.accel_noise_ug_rthz * 1e-6 * root, self.gyro_noise_dps_rthz * root, self.mag_noise_ut

    def read(self, clean: dict[str, np.ndarray], t_s: np.ndarray) -> dict[str, np.ndarray]:
        """The board's readings from the segment-frame values ``clean`` at the instants ``t_s`` (session s).

        Returns ``acc_g``, ``gyro_dps``, ``mag_ut`` (n, 3) in the board frame, with biases and noise, clipped at
        the full scales (the largest int16 count).
        """
        m = np.asarray(self.misalignment, dtype=np.float64)
        t = np.asarray(t_s, dtype=np.float64)
        sd = self.noise_sd()
        if any(x > 0 for x in sd):
            ticks = np.round(t * 1e6).astype(np.int64)
            z = rnd.normal_grid(rnd.key(self.seed, _NOISE_STREAM), ticks, 9)
        else:
            z = np.zeros((len(t), 9))
        out = {}
        for i, (key, bias, rng) in enumerate((("acc_g", self.accel_bias_g, self.range_g),
                                              ("gyro_dps", self.gyro_bias_dps, self.range_dps),
                                              ("mag_ut", self.mag_offset_ut, self.range_ut))):
            v = clean[key] @ m + np.asarray(bias) + sd[i] * z[:, 3 * i:3 * i + 3]
            out[key] = np.clip(v, -rng, rng * 32767.0 / 32768.0)
        return out

    def gain(self) -> np.ndarray:
        """CALIBRATION gain per channel (unit per count): full scale / 32768."""
        return (self.full_scale / 32768.0).astype(np.float32)

    def raw(self, readings: dict[str, np.ndarray]) -> np.ndarray:
        """int16 counts (n, channels) of :meth:`read`'s values, in wire order."""
        cols = {"a": readings["acc_g"], "g": readings["gyro_dps"], "m": readings["mag_ut"]}
        axis = {"x": 0, "y": 1, "z": 2}
        values = np.column_stack([cols[c[0]][:, axis[c[1]]] for c in self.channels])
        counts = np.round(values / self.gain().astype(np.float64))
        return np.clip(counts, -32768, 32767).astype("<i2")

    def to_json(self) -> str:
        """The board as JSON (the ground truth of its mounting and biases)."""
        return json.dumps(dataclasses.asdict(self))
