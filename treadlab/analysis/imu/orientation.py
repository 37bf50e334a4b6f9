"""Sensor orientation from gyroscope and accelerometer with VQF (Laidig & Seel 2023), block by block.

The attitude filter is the ``vqf`` package's compiled code (6D: no magnetometer, whose readings near a treadmill
motor are doubtful); no attitude filter is written here. Two forms:

- :func:`offline_quat` / :func:`orientation_blocks` (the analysis): ``vqf.offlineVQF``, the acausal
  forward-backward variant over whole arrays. Running's inertial accelerations (the stride-rate sway) pull a
  causal filter's inclination by a few tenths of a degree with a lag, and that error has the stride's left-right
  pattern, so it biases pelvic drop per side (measured on synthetic running: +-0.5 deg per side causal, +-0.03 deg
  offline, ``tests/test_imu_orientation.py``). A long session is filtered in overlapping blocks (core
  ``BLOCK_CORE_S``, ``BLOCK_PAD_S`` either side, > 10 time constants of the accelerometer low-pass), and the
  arbitrary heading of each block is turned onto the previous one's over their overlap, so memory is bounded by
  the block and the result is one continuous orientation.
- :class:`OrientationFilter` (live views): the causal ``vqf.VQF`` run with ``updateBatch`` on consecutive blocks,
  its state kept between them.

The quaternions are scalar-last ``(x, y, z, w)`` (scipy's order), of the sensor frame in the filter's earth frame
(z up, heading arbitrary and drifting slowly: a 6D filter cannot observe heading; ``align`` removes it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import vqf
from scipy.spatial.transform import Rotation

from treadlab.analysis.imu.align import product_matrix
from treadlab.errors import ConfigError
from treadlab.vocabulary import G_MPS2

__all__ = ["BLOCK_CORE_S", "BLOCK_PAD_S", "OrientationFilter", "VqfSettings", "offline_quat", "orientation_blocks",
           "orientation_quat"]

BLOCK_CORE_S = 300.0
BLOCK_PAD_S = 30.0

_DEG = np.pi / 180.0


@dataclass(frozen=True)
class VqfSettings:
    """Settings of the VQF filter (names of :cpp:struct:`VQFParams`, with units in ours).

    Parameters
    ----------
    tau_acc_s : float
        Time constant of the accelerometer low-pass in the quasi-inertial frame (VQF ``tauAcc``): how fast the
        inclination follows gravity. Running's inertial accelerations average out over a stride, so the
        default 3 s (VQF's own) suits it; shorter lets impacts tilt the estimate.
    motion_bias_est : bool
        Estimate the gyroscope bias during motion (``motionBiasEstEnabled``).
    rest_bias_est : bool
        Estimate the gyroscope bias at rest (``restBiasEstEnabled``), e.g. during the standing period.
    bias_sigma_init_dps : float
        Initial uncertainty of the bias estimate (``biasSigmaInit``, deg/s).
    bias_forgetting_time_s : float
        Time in which the bias uncertainty grows back (``biasForgettingTime``).
    bias_clip_dps : float
        Largest bias the filter estimates (``biasClip``, deg/s).
    rest_min_s : float
        Stillness needed before rest is detected (``restMinT``).
    rest_th_gyr_dps, rest_th_acc_mps2 : float
        Rest-detection thresholds (``restThGyr``, ``restThAcc``).
    """

    tau_acc_s: float = 3.0
    motion_bias_est: bool = True
    rest_bias_est: bool = True
    bias_sigma_init_dps: float = 0.5
    bias_forgetting_time_s: float = 100.0
    bias_clip_dps: float = 2.0
    rest_min_s: float = 1.5
    rest_th_gyr_dps: float = 2.0
    rest_th_acc_mps2: float = 0.5

    def vqf_params(self) -> dict:
        """The keyword arguments of :class:`vqf.VQF` (VQF's own names and units)."""
        for k, v in asdict(self).items():
            if not isinstance(v, bool) and not (np.isfinite(v) and v > 0):
                raise ConfigError(f"invalid VQF setting {k}={v!r}: must be a positive number")
        return {"tauAcc": float(self.tau_acc_s), "motionBiasEstEnabled": bool(self.motion_bias_est),
                "restBiasEstEnabled": bool(self.rest_bias_est), "biasSigmaInit": float(self.bias_sigma_init_dps),
                "biasForgettingTime": float(self.bias_forgetting_time_s), "biasClip": float(self.bias_clip_dps),
                "restMinT": float(self.rest_min_s), "restThGyr": float(self.rest_th_gyr_dps),
                "restThAcc": float(self.rest_th_acc_mps2)}


class OrientationFilter:
    """VQF over consecutive blocks of one sensor: :meth:`update` each block in time order.

    Parameters
    ----------
    rate_hz : float
        Sampling rate (the filter assumes uniform sampling).
    settings : VqfSettings, optional

    Attributes
    ----------
    rate_hz : float
    settings : VqfSettings
    bias_dps_ : ndarray, shape (3,)
        The gyroscope bias estimate after the last block (deg/s).
    rest_fraction_ : float
        Fraction of the samples so far that VQF took for rest.
    """

    def __init__(self, rate_hz: float, settings: VqfSettings | None = None):
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise ConfigError(f"invalid IMU rate {rate_hz!r} Hz")
        self.rate_hz = float(rate_hz)
        self.settings = settings or VqfSettings()
        self._vqf = vqf.VQF(1.0 / self.rate_hz, **self.settings.vqf_params())
        self.bias_dps_ = np.zeros(3)
        self._rest = 0
        self._n = 0

    @property
    def params(self) -> dict:
        """The parameters the VQF object runs with (read back from the filter itself)."""
        return dict(self._vqf.params)

    def update(self, gyro_dps: np.ndarray, acc_g: np.ndarray) -> np.ndarray:
        """Orientation of every sample of the next block.

        Parameters
        ----------
        gyro_dps : ndarray, shape (n, 3)
            Angular rate (deg/s), sensor frame.
        acc_g : ndarray, shape (n, 3)
            Specific force (g), sensor frame (reads +1 g upwards at rest).

        Returns
        -------
        ndarray, shape (n, 4)
            Quaternions ``(x, y, z, w)`` of the sensor in the filter's earth frame.
        """
        gyr = np.ascontiguousarray(np.asarray(gyro_dps, dtype=np.float64) * _DEG)
        acc = np.ascontiguousarray(np.asarray(acc_g, dtype=np.float64) * G_MPS2)
        if gyr.shape != acc.shape or gyr.ndim != 2 or gyr.shape[1] != 3:
            raise ValueError(f"gyro and acc must both be (n, 3), got {gyr.shape} and {acc.shape}")
        if len(gyr) == 0:
            return np.empty((0, 4))
        out = self._vqf.updateBatch(gyr, acc)
        q = out["quat6D"]  # (w, x, y, z)
        self.bias_dps_ = np.asarray(out["bias"][-1]) / _DEG
        self._rest += int(np.count_nonzero(out["restDetected"]))
        self._n += len(gyr)
        return np.ascontiguousarray(np.roll(q, -1, axis=1))

    @property
    def rest_fraction_(self) -> float:  # noqa: D102 (documented in the class)
        return self._rest / self._n if self._n else float("nan")


def orientation_quat(gyro_dps: np.ndarray, acc_g: np.ndarray, rate_hz: float,
                     settings: VqfSettings | None = None) -> np.ndarray:
    """Orientation of a whole recording in one batch (see :class:`OrientationFilter`).

    Parameters
    ----------
    gyro_dps, acc_g : ndarray, shape (n, 3)
    rate_hz : float
    settings : VqfSettings, optional

    Returns
    -------
    ndarray, shape (n, 4)
        Scalar-last quaternions of the sensor in the filter's earth frame.
    """
    return OrientationFilter(rate_hz, settings).update(gyro_dps, acc_g)


def _inputs(gyro_dps: np.ndarray, acc_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gyr = np.ascontiguousarray(np.asarray(gyro_dps, dtype=np.float64) * _DEG)
    acc = np.ascontiguousarray(np.asarray(acc_g, dtype=np.float64) * G_MPS2)
    if gyr.shape != acc.shape or gyr.ndim != 2 or gyr.shape[1] != 3:
        raise ValueError(f"gyro and acc must both be (n, 3), got {gyr.shape} and {acc.shape}")
    return gyr, acc


def offline_quat(gyro_dps: np.ndarray, acc_g: np.ndarray, rate_hz: float,
                 settings: VqfSettings | None = None) -> np.ndarray:
    """Orientation of a recording with the offline (forward-backward) VQF.

    Parameters
    ----------
    gyro_dps, acc_g : ndarray, shape (n, 3)
        Angular rate (deg/s) and specific force (g), sensor frame, uniform rate.
    rate_hz : float
    settings : VqfSettings, optional

    Returns
    -------
    ndarray, shape (n, 4)
        Scalar-last quaternions of the sensor in the filter's earth frame.
    """
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ConfigError(f"invalid IMU rate {rate_hz!r} Hz")
    gyr, acc = _inputs(gyro_dps, acc_g)
    if len(gyr) == 0:
        return np.empty((0, 4))
    out = vqf.offlineVQF(gyr, acc, None, 1.0 / float(rate_hz), (settings or VqfSettings()).vqf_params())
    return np.ascontiguousarray(np.roll(out["quat6D"], -1, axis=1))


def _heading_offset(q_ref: np.ndarray, q_new: np.ndarray) -> Rotation:
    """The rotation about the vertical that turns ``q_new``'s earth frame onto ``q_ref``'s (mean over samples)."""
    d = (Rotation.from_quat(q_ref) * Rotation.from_quat(q_new).inv()).mean()
    yaw = d.as_euler("ZXY")[0]
    return Rotation.from_euler("Z", yaw)


def orientation_blocks(read: Callable[[int, int], tuple[np.ndarray, np.ndarray]], n: int, rate_hz: float,
                       settings: VqfSettings | None = None, core_s: float = BLOCK_CORE_S,
                       pad_s: float = BLOCK_PAD_S) -> Iterator[tuple[int, np.ndarray]]:
    """Offline VQF orientation of a long recording, block by block, as one continuous orientation.

    Parameters
    ----------
    read : callable
        ``read(start, stop) -> (gyro_dps, acc_g)`` for rows ``start:stop``.
    n : int
        Rows.
    rate_hz : float
    settings : VqfSettings, optional
    core_s, pad_s : float
        Block core and padding either side (the padding's output is discarded).

    Yields
    ------
    (first_row, quat) : int, ndarray of shape (rows, 4)
        Consecutive cores covering ``0:n``.
    """
    core = max(1, int(core_s * rate_hz))
    pad = max(1, int(pad_s * rate_hz))
    tail = None  # the previous block's output over [a - pad, a + pad), heading-aligned
    a = 0
    while a < n:  # one iteration per block of core_s (a 1-hour session: 12 blocks)
        b = n if n - a < core + core // 2 else a + core
        lo, hi = max(0, a - pad), min(n, b + pad)
        q = offline_quat(*read(lo, hi), rate_hz, settings)
        if tail is not None:
            k = min(len(tail), len(q))
            q = q @ product_matrix(_heading_offset(tail[:k], q[:k]), side="left").T
        yield a, q[a - lo:b - lo]
        tail = q[max(0, b - pad) - lo:]
        a = b
