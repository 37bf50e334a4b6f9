"""One inertial sensor of a session turned into segment signals: angles, vertical and axial accelerations.

:func:`process_imu` reads a sensor (an :class:`~treadlab.analysis.imu_reader.ImuData`, or anything with its
``iter_imu``/``read_time``/``n_samples``/``rate_hz``/``has_gyro``/``placement`` verbs) a block at a time:

1. the standing period (:func:`~treadlab.analysis.imu.align.still_periods` over the first ``STAND_SEARCH_S`` of
   the recording, or around a marker named ``standing``, or a :class:`StandingReference` from a separate standing
   recording, :func:`standing_from_device`);
2. the orientation (offline VQF in overlapping blocks, :func:`~treadlab.analysis.imu.orientation.orientation_blocks`);
3. the segment frame (vertical from standing, forward from the running) and per sample: the Cardan angles
   (rotation with the heading removed, obliquity, tilt), the earth-vertical and the forward/left accelerations
   (g), the acceleration along the segment's own z axis (g, gravity included; the shank's long axis on a tibia).

Accelerometer-only sensors (no gyroscope) give no angles and no earth-frame accelerations: only the axial
acceleration along the up direction found from gravity while standing (PTA, PPA), and body-frame horizontal
accelerations for the pelvis's events (the pelvis tilts only a few degrees).

Per-sample results are float32 (about 40 bytes a sample: 72 MB for an hour at 500 Hz); the raw data is read a
block at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from treadlab.analysis.imu import align as al
from treadlab.analysis.imu.orientation import BLOCK_CORE_S, BLOCK_PAD_S, VqfSettings, orientation_blocks
from treadlab.errors import AnalysisError

__all__ = ["STAND_SEARCH_S", "ImuSignals", "process_imu", "standing_from_device"]

#: How far into a recording the standing period is looked for (s).
STAND_SEARCH_S = 120.0
#: Half-width of the search around a ``standing`` marker (s).
MARKER_SEARCH_S = 30.0
#: Below this forward-direction strength (:func:`~treadlab.analysis.imu.align.forward_angle_rad`) the running
#: direction is reported as unreliable.
FORWARD_MIN_STRENGTH = 0.1


@dataclass
class ImuSignals:
    """Per-sample segment signals of one sensor (see the module notes).

    Attributes
    ----------
    name, placement : str
    rate_hz : float
    time_s : ndarray of float64, shape (n,)
    has_gyro : bool
    standing : StandingReference
    frame : ndarray, shape (3, 3)
        ``R_SB``: the segment's axes (x forward, y left, z up) in sensor coordinates.
    forward_strength : float
        How clearly the running showed its direction (0-1; below 0.1 the forward direction is a guess).
    angles_deg : ndarray of float32, shape (n, 3) or None
        Rotation (heading removed), obliquity, tilt (``align.ANGLE_NAMES``); None without gyroscope.
    acc_lab_g : ndarray of float32, shape (n, 3)
        Forward, left, vertical specific force (g; vertical 1 at rest) in the heading-stabilised frame (without
        gyroscope: the segment frame fixed to the body).
    acc_axial_g : ndarray of float32, shape (n,)
        Along the segment's z axis, fixed to the body (the up direction while standing), gravity included.
    clipped_rows : ndarray of int64
        Samples at 95% of full scale or more on any accelerometer or gyroscope axis.
    info : dict
        JSON-ready facts: standing period, forward strength, the filter's settings, clipping count.
    """

    name: str
    placement: str
    rate_hz: float
    time_s: np.ndarray
    has_gyro: bool
    standing: al.StandingReference
    frame: np.ndarray
    forward_strength: float
    angles_deg: np.ndarray | None
    acc_lab_g: np.ndarray
    acc_axial_g: np.ndarray
    clipped_rows: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        """Samples."""
        return len(self.time_s)

    def rows_at(self, t_s: np.ndarray) -> np.ndarray:
        """The first sample at or after each time (clipped to the recording)."""
        return np.clip(np.searchsorted(self.time_s, np.asarray(t_s, dtype=float)), 0, self.n_samples)


def _read_all(dev, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    ts, accs, gyros = [], [], []
    for _, t, acc, gyro in dev.iter_imu(start, stop):  # one iteration per ~32 MiB block
        ts.append(t)
        accs.append(acc)
        gyros.append(gyro)
    if not ts:
        return np.empty(0), np.empty((0, 3), np.float32), None
    gyro = None if gyros[0] is None else np.concatenate(gyros)
    return np.concatenate(ts), np.concatenate(accs), gyro


def _standing_rows(dev, time_s: np.ndarray, marker_s: float | None) -> tuple[int, int, str]:
    rate = float(dev.rate_hz)
    if marker_s is None:
        lo, hi, source = 0, int(np.searchsorted(time_s, time_s[0] + STAND_SEARCH_S)), "start"
    else:
        lo = int(np.searchsorted(time_s, marker_s - MARKER_SEARCH_S))
        hi = int(np.searchsorted(time_s, marker_s + MARKER_SEARCH_S))
        source = "marker"
    t, acc, gyro = _read_all(dev, lo, hi)
    periods = al.still_periods(acc, rate, gyro)
    try:
        a, b = al.find_standing(periods, t, marker_s)
    except AnalysisError as exc:
        where = "at the start" if marker_s is None else f"around the 'standing' marker at {marker_s:.1f} s"
        raise AnalysisError(f"imu {dev.name!r}: {exc.args[0].split(': ', 1)[-1]} ({where})") from None
    return lo + a, lo + b, source


def standing_from_device(dev, settings: VqfSettings | None = None, marker_s: float | None = None
                         ) -> al.StandingReference:
    """The standing pose of a sensor from a standing recording (its first still period of >= 3 s).

    Use it for a separate standing trial of the same sensor, worn the same way, and pass the result to
    :func:`process_imu` (``standing=``).
    """
    t = dev.read_time()
    a, b, _ = _standing_rows(dev, t, marker_s)
    ts, acc, gyro = _read_all(dev, a, b)
    quat = None
    if gyro is not None:
        from treadlab.analysis.imu.orientation import offline_quat

        quat = offline_quat(gyro, acc, dev.rate_hz, settings)
    return al.standing_reference(acc, ts, quat, gyro, source="recording")


def process_imu(dev, *, settings: VqfSettings | None = None, marker_s: float | None = None,
                standing: al.StandingReference | None = None, running_mask_after_s: float = 2.0,
                block_core_s: float = BLOCK_CORE_S, block_pad_s: float = BLOCK_PAD_S) -> ImuSignals:
    """Segment signals of one sensor (see the module notes).

    Parameters
    ----------
    dev : ImuData
    settings : VqfSettings, optional
    marker_s : float, optional
        Time of a ``standing`` marker: the standing period is the still period there.
    standing : StandingReference, optional
        From a separate standing recording (:func:`standing_from_device`); overrides the search.
    running_mask_after_s : float
        The forward direction is estimated from the samples this long after the standing period's end.
    block_core_s, block_pad_s : float
        Orientation blocks (:func:`~treadlab.analysis.imu.orientation.orientation_blocks`).

    Returns
    -------
    ImuSignals

    Raises
    ------
    AnalysisError
        No standing period, or too few samples.
    """
    rate = float(dev.rate_hz)
    n = int(dev.n_samples)
    if n < 5 * rate:
        raise AnalysisError(f"imu {dev.name!r} has {n} samples: too short to analyse")
    time_s = dev.read_time(0, n)
    clipped = _clipped_rows(dev, n)
    quat = None
    if dev.has_gyro:
        quat = np.empty((n, 4), dtype=np.float32)

        def read(a: int, b: int):
            _, acc, gyro = _read_all(dev, a, b)
            return gyro, acc

        for a, q in orientation_blocks(read, n, rate, settings, block_core_s, block_pad_s):
            quat[a:a + len(q)] = q
    if standing is None:
        a, b, source = _standing_rows(dev, time_s, marker_s)
        _, acc_s, gyro_s = _read_all(dev, a, b)
        standing = al.standing_reference(acc_s, time_s[a:b], None if quat is None else quat[a:b], gyro_s, source)
    frame0 = al.tentative_frame(standing.up_sensor)
    run = time_s > standing.stop_s + running_mask_after_s
    acc_axial = np.empty(n, dtype=np.float32)
    if quat is None:
        acc_lab = np.empty((n, 3), dtype=np.float32)
        for a, _t, acc, _g in dev.iter_imu(0, n):  # one iteration per block
            acc_lab[a:a + len(acc)] = acc @ frame0
            acc_axial[a:a + len(acc)] = acc @ standing.acc_up_sensor
        phi, strength = al.forward_angle_rad(acc_lab, rate, run)
        frame = _turn(frame0, phi)
        acc_lab[:] = _rotate_xy(acc_lab, -phi if np.isfinite(phi) else 0.0)
        angles = None
    else:
        ang0 = np.empty(n, dtype=np.float64)
        for a in range(0, n, 1 << 18):  # blocks of 2^18 samples: bounded temporaries
            ang0[a:a + (1 << 18)] = al.segment_angles(quat[a:a + (1 << 18)], frame0)[:, 0]
        heading = al.remove_heading(ang0, rate)[1]
        acc_lab = np.empty((n, 3), dtype=np.float32)
        for a, _t, acc, _g in dev.iter_imu(0, n):  # one iteration per block
            b = a + len(acc)
            acc_lab[a:b] = al.heading_stabilised(quat[a:b], acc, heading[a:b])
            acc_axial[a:b] = acc @ standing.up_sensor
        phi, strength = al.forward_angle_rad(acc_lab, rate, run)
        phi = phi if np.isfinite(phi) else 0.0
        frame = _turn(frame0, phi)
        acc_lab[:] = _rotate_xy(acc_lab, -phi)
        angles = np.empty((n, 3), dtype=np.float32)
        for a in range(0, n, 1 << 18):  # blocks of 2^18 samples
            angles[a:a + (1 << 18)] = al.segment_angles(quat[a:a + (1 << 18)], frame)
        del quat
        angles[:, 0] = al.remove_heading(angles[:, 0], rate)[0]
    info = {"standing": standing.to_dict(), "forward_strength": float(strength),
            "forward_reliable": bool(strength >= FORWARD_MIN_STRENGTH), "has_gyro": bool(dev.has_gyro),
            "clipped_samples": int(len(clipped)), "placement": dev.placement,
            "vqf": (settings or VqfSettings()).vqf_params() if dev.has_gyro else None}
    return ImuSignals(dev.name, dev.placement, rate, time_s, bool(dev.has_gyro), standing, frame, float(strength),
                      angles, acc_lab, acc_axial, clipped, info)


def _turn(frame0: np.ndarray, phi: float) -> np.ndarray:
    """The frame turned about its z axis by ``phi`` (the forward direction found in the tentative frame)."""
    if not np.isfinite(phi):
        return frame0
    return frame0 @ Rotation.from_euler("z", phi).as_matrix()


def _rotate_xy(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = np.array(v, dtype=np.float32, copy=True)
    out[:, 0] = c * v[:, 0] - s * v[:, 1]
    out[:, 1] = s * v[:, 0] + c * v[:, 1]
    return out


def _clipped_rows(dev, n: int) -> np.ndarray:
    """Rows at 95% of full scale or more (acc or gyro), a block at a time."""
    mask_of = getattr(dev, "clipped_mask", None)
    if mask_of is None:
        return np.empty(0, dtype=np.int64)
    rows = dev.block_rows() if hasattr(dev, "block_rows") else 1 << 18
    parts = [np.flatnonzero(mask_of(a, min(a + rows, n))) + a for a in range(0, n, rows)]
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)
