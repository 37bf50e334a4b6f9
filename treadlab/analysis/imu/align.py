"""Sensor-to-segment alignment and segment angles (pure functions on arrays).

How the board sits on the body is unknown; the segment frame (x forward, y to the runner's left, z up, zero
while standing still and upright) is found from the data in two steps:

1. **Vertical from standing** (:func:`still_periods`, :func:`standing_reference`): during a still period of at
   least 3 s (gyroscope quiet, acceleration steady) the sensor reads gravity; the segment's z axis, in sensor
   coordinates, is the up direction the orientation filter sees then (the mean of ``R_ES(t)^T e_z`` over the
   period; from the mean acceleration for accelerometer-only sensors). Any tilt of the board on the body, about any
   axis, drops out: every angle is relative to this standing pose.
2. **Forward from the running** (:func:`forward_angle_rad`): the running direction is the horizontal direction in
   which the sensor's velocity is lowest when its vertical acceleration peaks. In every running (and walking)
   stance the body brakes, then pushes off: the forward velocity falls during the first half of stance and rises
   during the second, so it is lowest at mid-stance, where the vertical force, and the vertical acceleration, are
   largest. The forward direction is therefore ``-cov(v_h, a_z)``: the covariance of the (high-passed)
   horizontal velocity with the vertical acceleration, both in a heading-stabilised earth frame. Medio-lateral
   sway changes sign from one step to the next and averages out of that covariance; the sign comes with it (no
   180-degree ambiguity, unlike a principal-component axis).

The segment angles (:func:`segment_angles`) are the Cardan angles of the segment's orientation in the earth frame
in the order rotation (about z), obliquity (about the rotated x), tilt (about the twice-rotated y), as Baker
(2001) recommends for the pelvis: ``R = Rz(rotation) Rx(obliquity) Ry(tilt)`` (scipy ``as_euler("ZXY")``). A
rotation of the earth frame about the vertical (the 6D filter's heading, which drifts) changes only the first
angle, so obliquity and tilt are free of heading drift; the rotation angle has its slowly varying part removed
(:func:`remove_heading`, moving mean over ``heading_window_s``), and the per-stride metrics remove each stride's
least-squares linear trend on top. Signs: obliquity positive = left side up (right side down), tilt positive =
anterior (top forward), rotation positive = counter-clockwise seen from above (left side backwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, sosfiltfilt
from scipy.spatial.transform import Rotation

from treadlab.errors import AnalysisError
from treadlab.vocabulary import G_MPS2

__all__ = ["ANGLE_NAMES", "StandingReference", "find_standing", "forward_angle_rad", "heading_stabilised",
           "product_matrix", "remove_heading", "segment_angles", "segment_frame", "standing_reference", "still_periods",
           "tentative_frame", "up_from_quat"]

#: Columns of :func:`segment_angles`.
ANGLE_NAMES = ("rotation_deg", "obliquity_deg", "tilt_deg")

STILL_MIN_S = 3.0
STILL_GYRO_DPS = 6.0       # RMS deviation of the angular rate from its local mean
STILL_ACC_G = 0.08         # RMS deviation of the acceleration from its local mean
STILL_WINDOW_S = 0.5


def _moving_mean(x: np.ndarray, n: int) -> np.ndarray:
    return uniform_filter1d(np.asarray(x, dtype=np.float64), size=max(1, int(n)), axis=0, mode="nearest")


def still_periods(acc_g: np.ndarray, rate_hz: float, gyro_dps: np.ndarray | None = None, *,
                  min_s: float = STILL_MIN_S, gyro_rms_dps: float = STILL_GYRO_DPS, acc_rms_g: float = STILL_ACC_G,
                  window_s: float = STILL_WINDOW_S) -> np.ndarray:
    """Still periods: the sensor does not move (standing), at least ``min_s`` long.

    A sample is still when, over a ``window_s`` window around it, the RMS deviation of the angular rate from its
    local mean is below ``gyro_rms_dps`` (a constant gyroscope bias does not count as motion) and that of the
    acceleration below ``acc_rms_g``, and the mean acceleration is 1 g within 10%.

    Parameters
    ----------
    acc_g : ndarray, shape (n, 3)
    rate_hz : float
    gyro_dps : ndarray, shape (n, 3), optional
        None for accelerometer-only sensors (the acceleration test alone).
    min_s, gyro_rms_dps, acc_rms_g, window_s : float

    Returns
    -------
    ndarray of int, shape (k, 2)
        ``[start, stop)`` sample ranges, in time order.
    """
    acc = np.asarray(acc_g, dtype=np.float64)
    n = len(acc)
    if n == 0:
        return np.empty((0, 2), dtype=np.int64)
    w = max(3, int(round(window_s * rate_hz)))

    def rms_dev(x: np.ndarray) -> np.ndarray:
        m = _moving_mean(x, w)
        return np.sqrt(np.maximum(_moving_mean(x * x, w) - m * m, 0.0).sum(axis=1)), m

    acc_dev, acc_mean = rms_dev(acc)
    still = (acc_dev < acc_rms_g) & (np.abs(np.linalg.norm(acc_mean, axis=1) - 1.0) < 0.1)
    if gyro_dps is not None:
        still &= rms_dev(np.asarray(gyro_dps, dtype=np.float64))[0] < gyro_rms_dps
    edges = np.diff(np.concatenate([[0], still.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = (stops - starts) >= min_s * rate_hz
    return np.stack([starts[keep], stops[keep]], axis=1).astype(np.int64)


def find_standing(periods: np.ndarray, time_s: np.ndarray, marker_s: float | None = None) -> tuple[int, int]:
    """The standing period: the first still period, or the one at (else nearest to) a ``standing`` marker.

    Parameters
    ----------
    periods : ndarray, shape (k, 2)
        From :func:`still_periods`.
    time_s : ndarray
        Sample times of the rows ``periods`` index.
    marker_s : float, optional

    Returns
    -------
    (start, stop) : int
    """
    if len(periods) == 0:
        raise AnalysisError("no standing period: no still period of at least 3 s (stand still at the start, "
                            "mark one 'standing', or give a standing recording)")
    if marker_s is None:
        a, b = periods[0]
        return int(a), int(b)
    t0, t1 = time_s[periods[:, 0]], time_s[np.maximum(periods[:, 1] - 1, periods[:, 0])]
    dist = np.where((t0 <= marker_s) & (marker_s <= t1), 0.0, np.minimum(abs(t0 - marker_s), abs(t1 - marker_s)))
    a, b = periods[int(np.argmin(dist))]
    return int(a), int(b)


def up_from_quat(quat: np.ndarray) -> np.ndarray:
    """The earth's up direction in sensor coordinates, averaged over ``quat`` (scalar-last, sensor in earth)."""
    up = Rotation.from_quat(np.asarray(quat, dtype=np.float64)).inv().apply([0.0, 0.0, 1.0]).mean(axis=0)
    return up / np.linalg.norm(up)


@dataclass(frozen=True)
class StandingReference:
    """The standing pose of one sensor: the zero of its segment's angles.

    Attributes
    ----------
    up_sensor : ndarray, shape (3,)
        The segment's z axis (up while standing) in sensor coordinates, unit length.
    acc_up_sensor : ndarray, shape (3,)
        The mean acceleration while standing, normalised (the same as ``up_sensor`` within the filter's accuracy;
        the axis of accelerometer-only readings such as PTA).
    acc_norm_g : float
        Length of the mean acceleration (1 for a well-calibrated sensor).
    start_s, stop_s : float
        The standing period.
    source : str
        "start" (first still period), "marker" (at a ``standing`` marker) or "recording" (a separate standing
        recording).
    gyro_bias_dps : ndarray, shape (3,)
        Mean angular rate while standing (NaN without gyroscope).
    """

    up_sensor: np.ndarray
    acc_up_sensor: np.ndarray
    acc_norm_g: float
    start_s: float
    stop_s: float
    source: str = "start"
    gyro_bias_dps: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {"start_s": self.start_s, "stop_s": self.stop_s, "source": self.source,
                "up_sensor": [float(v) for v in self.up_sensor], "acc_norm_g": self.acc_norm_g,
                "gyro_bias_dps": [float(v) for v in self.gyro_bias_dps]}


def standing_reference(acc_g: np.ndarray, time_s: np.ndarray, quat: np.ndarray | None = None,
                       gyro_dps: np.ndarray | None = None, source: str = "start") -> StandingReference:
    """The standing pose from the samples of a standing period.

    Parameters
    ----------
    acc_g : ndarray, shape (n, 3)
        Accelerations of the standing period (g).
    time_s : ndarray, shape (n,)
    quat : ndarray, shape (n, 4), optional
        The filter's orientation over the period (scalar-last): then ``up_sensor`` is the up the filter sees,
        so that obliquity and tilt are exactly zero on average while standing. Without it (accelerometer-only
        sensors), the mean acceleration's direction.
    gyro_dps : ndarray, shape (n, 3), optional
    source : str

    Returns
    -------
    StandingReference
    """
    acc = np.asarray(acc_g, dtype=np.float64)
    if len(acc) == 0:
        raise AnalysisError("the standing period has no samples")
    mean = acc.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    acc_up = mean / norm
    up = up_from_quat(quat) if quat is not None and len(quat) else acc_up
    bias = np.asarray(gyro_dps, dtype=np.float64).mean(axis=0) if gyro_dps is not None else np.full(3, np.nan)
    return StandingReference(up, acc_up, norm, float(time_s[0]), float(time_s[-1]), source, bias)


def tentative_frame(up_sensor: np.ndarray) -> np.ndarray:
    """A segment frame with the right z axis and an arbitrary forward: columns x, y, z in sensor coordinates.

    x is the sensor axis most nearly horizontal while standing, made horizontal.
    """
    up = np.asarray(up_sensor, dtype=np.float64)
    up = up / np.linalg.norm(up)
    axis = np.eye(3)[int(np.argmin(np.abs(up)))]
    return segment_frame(up, axis)


def segment_frame(up_sensor: np.ndarray, forward_sensor: np.ndarray) -> np.ndarray:
    """The segment frame in sensor coordinates: columns x (forward), y (left), z (up), right-handed.

    Parameters
    ----------
    up_sensor : ndarray, shape (3,)
    forward_sensor : ndarray, shape (3,)
        Any vector with a horizontal part along the running direction (its part along ``up_sensor`` is removed).

    Returns
    -------
    ndarray, shape (3, 3)
        ``R_SB``: a segment-frame vector ``v_B`` is ``R_SB @ v_B`` in sensor coordinates.
    """
    z = np.asarray(up_sensor, dtype=np.float64)
    z = z / np.linalg.norm(z)
    f = np.asarray(forward_sensor, dtype=np.float64)
    x = f - (f @ z) * z
    if np.linalg.norm(x) < 1e-6:
        raise AnalysisError("the forward direction is vertical: cannot make a segment frame")
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def segment_angles(quat: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Cardan angles of the segment in the earth frame: rotation (z), obliquity (x), tilt (y), degrees.

    Parameters
    ----------
    quat : ndarray, shape (n, 4)
        Sensor orientation in the filter's earth frame (scalar-last).
    frame : ndarray, shape (3, 3)
        ``R_SB`` from :func:`segment_frame` (or :func:`tentative_frame`).

    Returns
    -------
    ndarray, shape (n, 3)
        Columns :data:`ANGLE_NAMES`; the rotation still holds the (arbitrary, drifting) heading: see
        :func:`remove_heading`.
    """
    q = np.asarray(quat, dtype=np.float64) @ product_matrix(Rotation.from_matrix(frame)).T
    return Rotation.from_quat(q).as_euler("ZXY", degrees=True)


def product_matrix(p: Rotation, side: str = "right") -> np.ndarray:
    """The 4x4 matrix ``M`` with ``M @ q.as_quat()`` the quaternion of ``q * p`` (``side="right"``) or ``p * q``
    (``"left"``), scalar-last, for every ``q``.

    The quaternion product is linear in ``q``: the columns of ``M`` are scipy's products of ``p`` with the four
    unit quaternions, and one matrix product then composes a whole array with ``p`` (much faster than a
    ``Rotation`` product of arrays).
    """
    cols = []
    for e in np.eye(4):  # four products
        r = Rotation.from_quat(e)
        cols.append((r * p if side == "right" else p * r).as_quat(canonical=False))
    return np.stack(cols, axis=1)


def remove_heading(rotation_deg: np.ndarray, rate_hz: float, window_s: float = 2.0,
                   breaks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split the rotation angle into the slowly varying heading and the pelvis's rotation about it.

    The heading (the runner's mean facing, plus the 6D filter's drift) is the moving mean of the unwrapped angle
    over ``window_s`` (about three strides); what is left oscillates about zero.

    Returns
    -------
    rotation_deg : ndarray
        The rotation less the heading.
    heading_deg : ndarray
        The heading (unwrapped).
    """
    unwrapped = np.rad2deg(np.unwrap(np.deg2rad(np.asarray(rotation_deg, dtype=np.float64))))
    heading = _moving_mean(unwrapped, int(round(window_s * rate_hz)))
    return unwrapped - heading, heading


def heading_stabilised(quat: np.ndarray, acc_g: np.ndarray, heading_deg: np.ndarray) -> np.ndarray:
    """Accelerations (g) in the earth frame turned by minus the heading: a frame that faces the runner's way.

    Returns
    -------
    ndarray, shape (n, 3)
        x, y horizontal (along the tentative frame's forward and left), z up (1 g at rest).
    """
    earth = Rotation.from_quat(np.asarray(quat, dtype=np.float64)).apply(np.asarray(acc_g, dtype=np.float64))
    h = np.deg2rad(np.asarray(heading_deg, dtype=np.float64))
    c, s = np.cos(h), np.sin(h)
    out = np.empty_like(earth)
    out[:, 0] = c * earth[:, 0] + s * earth[:, 1]
    out[:, 1] = -s * earth[:, 0] + c * earth[:, 1]
    out[:, 2] = earth[:, 2]
    return out


def forward_angle_rad(acc_stab_g: np.ndarray, rate_hz: float, mask: np.ndarray | None = None,
                      highpass_hz: float = 0.5) -> tuple[float, float]:
    """The running direction in a heading-stabilised frame, from braking and push-off (see the module notes).

    Parameters
    ----------
    acc_stab_g : ndarray, shape (n, 3)
        From :func:`heading_stabilised` (continuous samples).
    rate_hz : float
    mask : ndarray of bool, optional
        Samples to use (running); default all.
    highpass_hz : float
        High-pass of the integrated horizontal velocity (removes integration drift; well below the stride rate).

    Returns
    -------
    angle_rad : float
        Angle of the forward direction from the frame's x axis, counter-clockwise seen from above.
    strength : float
        ``|cov(v_h, a_z)| / (sd(v_h) sd(a_z))``: 0 when the data show no braking pattern (then the angle is
        meaningless), typically 0.3-0.8 while running.
    """
    if len(acc_stab_g) < 4 * rate_hz:
        return float("nan"), 0.0
    sos = butter(2, highpass_hz, btype="highpass", fs=rate_hz, output="sos")
    pad = int(FORWARD_PAD_S * rate_hz)
    if len(acc_stab_g) > FORWARD_BLOCK + 2 * pad:
        return _forward_blocks(acc_stab_g, rate_hz, mask, sos, pad)
    a = np.asarray(acc_stab_g, dtype=np.float64)
    horiz = a[:, :2] - a[:, :2].mean(axis=0)
    vel = sosfiltfilt(sos, np.cumsum(horiz, axis=0) * (G_MPS2 / rate_hz), axis=0)
    az = sosfiltfilt(sos, a[:, 2] - 1.0)
    if mask is not None:
        vel, az = vel[mask], az[mask]
    if len(az) < 2:
        return float("nan"), 0.0
    c = (vel * (az - az.mean())[:, None]).mean(axis=0)
    denom = float(np.sqrt((vel.var(axis=0)).sum()) * az.std())
    strength = float(np.linalg.norm(c) / denom) if denom > 0 else 0.0
    return float(np.arctan2(-c[1], -c[0])), strength


#: Blocks of :func:`forward_angle_rad` on long recordings (samples), and the signal read either side of a block
#: (s): the 0.5-Hz high-pass's transient decays below float64 rounding (< 1e-19 at 500 Hz) in that time, so the
#: blocks give the result of one piece with temporaries of a block.
FORWARD_BLOCK = 1 << 18
FORWARD_PAD_S = 30.0


def _forward_blocks(acc, rate_hz: float, mask, sos, pad: int) -> tuple[float, float]:
    """:func:`forward_angle_rad` a block at a time: the same filters, the covariance from per-block sums."""
    n = len(acc)
    edges = list(range(0, n, FORWARD_BLOCK))
    sums = np.array([np.asarray(acc[a:a + FORWARD_BLOCK, :2], dtype=np.float64).sum(axis=0) for a in edges])
    mean_h = sums.sum(axis=0) / n
    # the integral (cumulative sum) of the horizontal acceleration at each sample row, less its mean
    offsets = np.concatenate([[np.zeros(2)], np.cumsum(sums - mean_h * np.diff(edges + [n])[:, None], axis=0)])
    k = 0
    acc_v = np.zeros(2)
    acc_vv = np.zeros(2)
    acc_z = acc_zz = 0.0
    acc_vz = np.zeros(2)
    for a in edges:  # one iteration per block of 2^18 samples
        b = min(n, a + FORWARD_BLOCK)
        lo, hi = max(0, a - pad), min(n, b + pad)
        x = np.asarray(acc[lo:hi], dtype=np.float64)
        blk = lo // FORWARD_BLOCK
        start = offsets[blk] + (np.asarray(acc[blk * FORWARD_BLOCK:lo, :2], dtype=np.float64) - mean_h).sum(axis=0)
        integral = start + np.cumsum(x[:, :2] - mean_h, axis=0)
        vel = sosfiltfilt(sos, integral * (G_MPS2 / rate_hz), axis=0)[a - lo:b - lo]
        az = sosfiltfilt(sos, x[:, 2] - 1.0)[a - lo:b - lo]
        if mask is not None:
            m = np.asarray(mask[a:b])
            vel, az = vel[m], az[m]
        k += len(az)
        acc_v += vel.sum(axis=0)
        acc_vv += (vel * vel).sum(axis=0)
        acc_z += float(az.sum())
        acc_zz += float((az * az).sum())
        acc_vz += (vel * az[:, None]).sum(axis=0)
    if k < 2:
        return float("nan"), 0.0
    mv, mz = acc_v / k, acc_z / k
    c = acc_vz / k - mv * mz
    var_v = acc_vv / k - mv * mv
    sd_z = float(np.sqrt(max(acc_zz / k - mz * mz, 0.0)))
    denom = float(np.sqrt(var_v.sum()) * sd_z)
    strength = float(np.linalg.norm(c) / denom) if denom > 0 else 0.0
    return float(np.arctan2(-c[1], -c[0])), strength
