"""One inertial sensor of a session turned into segment signals: angles, vertical and axial accelerations.

:func:`process_imu` reads a sensor (an :class:`~treadlab.analysis.imu_reader.ImuData`, or anything with its
``iter_imu``/``read_time``/``n_samples``/``rate_hz``/``has_gyro``/``placement`` verbs) a block at a time:

1. the standing period (:func:`~treadlab.analysis.imu.align.still_periods` over the first ``STAND_SEARCH_S`` of
   the recording, or around a marker named ``standing``, or a :class:`StandingReference` from a separate standing
   recording, :func:`standing_from_device`);
2. the orientation (offline VQF in overlapping blocks, :func:`~treadlab.analysis.imu.orientation.orientation_blocks`),
   at about ``ORIENTATION_RATE_HZ``: the gyroscope's and accelerometer's means over groups of samples (the
   gyroscope's mean is its integral over the group), interpolated back to every sample;
3. the segment frame (vertical from standing, forward from the running) and per sample: the Cardan angles
   (rotation with the heading removed, obliquity, tilt), the earth-vertical and the forward/left accelerations
   (g), the acceleration along the segment's own z axis (g, gravity included; the shank's long axis on a tibia).

Accelerometer-only sensors (no gyroscope) give no angles and no earth-frame accelerations: only the axial
acceleration along the up direction found from gravity while standing (PTA, PPA), and body-frame horizontal
accelerations for the pelvis's events (the pelvis tilts only a few degrees).

Per-sample results are float32, and only those the placement's metrics use are kept (:data:`KEEP_BY_PLACEMENT`):
with the time (float64), 36 bytes a sample on the pelvis, 20 on the trunk, 12 on a tibia. The raw data is read a
block at a time, and every pass over the whole recording works a block (2^18 samples) at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from treadlab.analysis.imu import align as al
from treadlab.analysis.imu.orientation import BLOCK_CORE_S, BLOCK_PAD_S, VqfSettings, orientation_blocks
from treadlab.errors import AnalysisError
from treadlab.kinds.imu import CLIP_FRACTION

__all__ = ["KEEP_ALL", "KEEP_BY_PLACEMENT", "STAND_SEARCH_S", "ImuSignals", "process_imu", "standing_from_device"]

#: How far into a recording the standing period is looked for (s).
STAND_SEARCH_S = 120.0
#: Half-width of the search around a ``standing`` marker (s).
MARKER_SEARCH_S = 30.0
#: Below this forward-direction strength (:func:`~treadlab.analysis.imu.align.forward_angle_rad`) the running
#: direction is reported as unreliable.
FORWARD_MIN_STRENGTH = 0.1
#: The orientation filter runs at about this rate (the gyroscope and accelerometer averaged over groups of
#: samples; the pelvis's orientation has no content near it, and the filter is several times faster).
ORIENTATION_RATE_HZ = 100.0
#: The per-sample signals :func:`process_imu` can keep.
KEEP_ALL = ("angles", "acc_lab", "acc_axial")
#: What each placement's events and metrics use (others: everything): the trunk its tilt (lean), a tibia its
#: axial acceleration (initial contact, PTA).
KEEP_BY_PLACEMENT = {"trunk": ("angles",), "tibia_left": ("acc_axial",), "tibia_right": ("acc_axial",)}
#: Rows of a block of the per-sample passes (bounded temporaries).
_ROWS = 1 << 18


@dataclass
class ImuSignals:
    """Per-sample segment signals of one sensor (see the module notes).

    Attributes
    ----------
    name, placement : str
    rate_hz : float
    time_s : ndarray of float64, shape (n,)
    has_gyro : bool
        Whether the orientation was computed (a gyroscope, and not a tibia).
    standing : StandingReference
    frame : ndarray, shape (3, 3)
        ``R_SB``: the segment's axes (x forward, y left, z up) in sensor coordinates.
    forward_strength : float
        How clearly the running showed its direction (0-1; below 0.1 the forward direction is a guess).
    angles_deg : ndarray of float32, shape (n, 3) or None
        Rotation (unwrapped, the heading included: the per-stride metrics remove each stride's line), obliquity,
        tilt (``align.ANGLE_NAMES``); None without gyroscope. :meth:`rotation_deg` has the heading removed.
    heading_t_s, heading_deg : ndarray
        The heading (the moving mean of the rotation over 2 s) at about ``ORIENTATION_RATE_HZ``.
    acc_lab_g : ndarray of float32, shape (n, 3) or None
        Forward, left, vertical specific force (g; vertical 1 at rest) in the heading-stabilised frame (without
        gyroscope: the segment frame fixed to the body). None when not kept (``process_imu(keep=...)``).
    acc_axial_g : ndarray of float32, shape (n,) or None
        Along the segment's z axis, fixed to the body (the up direction while standing), gravity included.
        None when not kept.
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
    acc_lab_g: np.ndarray | None
    acc_axial_g: np.ndarray | None
    clipped_rows: np.ndarray
    info: dict = field(default_factory=dict)
    heading_t_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    heading_deg: np.ndarray = field(default_factory=lambda: np.empty(0))

    def rotation_deg(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """The pelvis's rotation about its heading (deg) for samples ``start:stop`` (None without gyroscope)."""
        if self.angles_deg is None:
            return None
        stop = self.n_samples if stop is None else stop
        return (self.angles_deg[start:stop, 0]
                - np.interp(self.time_s[start:stop], self.heading_t_s, self.heading_deg)).astype(np.float32)

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
    except AnalysisError:
        where = (f"in its first {STAND_SEARCH_S:g} s" if marker_s is None
                 else f"around the 'standing' marker at {marker_s:.1f} s")
        raise AnalysisError(f"imu {dev.name!r}: no standing period {where} (no still period of at least 3 s); "
                            "stand still at the start, mark one 'standing', or give a standing recording") from None
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
                block_core_s: float = BLOCK_CORE_S, block_pad_s: float = BLOCK_PAD_S,
                orientation: bool = True, keep: tuple[str, ...] = KEEP_ALL) -> ImuSignals:
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
    orientation : bool
        False: treat the sensor as accelerometer-only (the tibiae: their metrics need no orientation).
    keep : tuple of str
        The per-sample signals to keep (of :data:`KEEP_ALL`); the others are None in the result (what a
        placement's metrics do not need is not held: :data:`KEEP_BY_PLACEMENT`).

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
    limits = _clip_limits(dev)
    use_gyro = bool(dev.has_gyro and orientation)
    fac = max(1, int(rate // ORIENTATION_RATE_HZ)) if use_gyro else 1
    acc_all, clipped, gyro_d, acc_d = _read_pass(dev, n, fac, limits, use_gyro)
    heading_t, heading = np.empty(0), np.empty(0)
    if standing is None:
        a, b, source = _standing_rows(dev, time_s, marker_s)
    if not use_gyro:
        if standing is None:
            standing = al.standing_reference(acc_all[a:b], time_s[a:b], None, None, source)
        frame0 = al.tentative_frame(standing.up_sensor)
        run = time_s > standing.stop_s + running_mask_after_s
        acc_axial = np.empty(n, dtype=np.float32)
        acc_lab = acc_all  # turned in place, a block at a time
        for a0 in range(0, n, _ROWS):  # blocks of 2^18 samples: bounded temporaries
            blk = acc_all[a0:a0 + _ROWS]
            acc_axial[a0:a0 + len(blk)] = blk @ standing.acc_up_sensor
            acc_lab[a0:a0 + len(blk)] = blk @ frame0
        phi, strength = al.forward_angle_rad(acc_lab, rate, run)
        frame = _turn(frame0, phi)
        for a0 in range(0, n, _ROWS):  # blocks of 2^18 samples
            acc_lab[a0:a0 + _ROWS] = _rotate_xy(acc_lab[a0:a0 + _ROWS], -phi if np.isfinite(phi) else 0.0)
        angles = None
    else:
        # Orientation at ~ORIENTATION_RATE_HZ: the gyroscope averaged over each group of fac samples (its
        # integral over the group), the accelerometer likewise; sample k of the decimated series is the
        # orientation at the end of its group.
        rate_d = rate / fac
        nd = len(gyro_d)
        quat_d = np.empty((nd, 4))
        for a0, q in orientation_blocks(lambda a1, b1: (gyro_d[a1:b1], acc_d[a1:b1]), nd, rate_d, settings,
                                        block_core_s, block_pad_s):
            quat_d[a0:a0 + len(q)] = q
        _continuous_sign(quat_d)
        t_d = time_s[np.arange(nd) * fac + fac - 1]
        if standing is None:
            da, db = a // fac, max(a // fac + 1, b // fac)
            standing = al.standing_reference(acc_all[a:b], time_s[a:b], quat_d[da:db], gyro_d[da:db], source)
        frame0 = al.tentative_frame(standing.up_sensor)
        run_d = t_d > standing.stop_s + running_mask_after_s
        acc_axial = np.empty(n, dtype=np.float32)
        for a0 in range(0, n, _ROWS):  # blocks of 2^18 samples: bounded temporaries
            acc_axial[a0:a0 + _ROWS] = acc_all[a0:a0 + _ROWS] @ standing.up_sensor
        heading_d = al.remove_heading(al.segment_angles(quat_d, frame0)[:, 0], rate_d)[1]
        stab_d = al.heading_stabilised(quat_d, acc_d, heading_d)
        phi, strength = al.forward_angle_rad(stab_d, rate_d, run_d)
        del stab_d, gyro_d, acc_d
        phi = phi if np.isfinite(phi) else 0.0
        frame = _turn(frame0, phi)
        ang_d = al.segment_angles(quat_d, frame)
        ang_d[:, 0] = np.rad2deg(np.unwrap(np.deg2rad(ang_d[:, 0])))
        heading_t, heading = t_d, al.remove_heading(ang_d[:, 0], rate_d)[1]
        angles = np.empty((n, 3), dtype=np.float32)
        for a0 in range(0, n, _ROWS):  # blocks of 2^18 samples: bounded temporaries
            for j in range(3):  # three angles
                angles[a0:a0 + _ROWS, j] = np.interp(time_s[a0:a0 + _ROWS], t_d, ang_d[:, j])
        del ang_d
        acc_lab = acc_all  # turned in place, a block at a time
        for a0 in range(0, n, _ROWS // 4):  # blocks of 2^16 samples: bounded temporaries (rotations)
            b0 = min(n, a0 + _ROWS // 4)
            q = _interp_quat(time_s[a0:b0], t_d, quat_d)
            h = np.interp(time_s[a0:b0], t_d, heading_d) + np.rad2deg(phi)
            acc_lab[a0:b0] = al.heading_stabilised(q, acc_all[a0:b0], h)
        del quat_d
    info = {"standing": standing.to_dict(), "forward_strength": float(strength),
            "forward_reliable": bool(strength >= FORWARD_MIN_STRENGTH), "orientation": use_gyro,
            "clipped_samples": int(len(clipped)), "placement": dev.placement,
            "vqf": (settings or VqfSettings()).vqf_params() if use_gyro else None}
    return ImuSignals(dev.name, dev.placement, rate, time_s, use_gyro, standing, frame, float(strength),
                      angles if "angles" in keep else None, acc_lab if "acc_lab" in keep else None,
                      acc_axial if "acc_axial" in keep else None, clipped, info, heading_t, heading)


def _read_pass(dev, n: int, fac: int, limits, use_gyro: bool):
    """One pass over the raw data: every acceleration (float32), the clipped rows, and the gyroscope and
    acceleration averaged over groups of ``fac`` samples (float64; None without a gyroscope).
    """
    acc_all = np.empty((n, 3), dtype=np.float32)
    clipped = []
    nd = n // fac
    gyro_d = np.empty((nd, 3)) if use_gyro else None
    acc_d = np.empty((nd, 3)) if use_gyro else None
    rows = max(fac, (1 << 18) // fac * fac)
    for a in range(0, n, rows):  # one iteration per block of 2^18 rows
        _, acc, gyro = _read_all(dev, a, min(n, a + rows))
        acc_all[a:a + len(acc)] = acc
        clipped.append(np.flatnonzero(_clipping(acc, gyro, limits)) + a)
        if use_gyro:
            k = len(acc) // fac
            d0 = a // fac
            gyro_d[d0:d0 + k] = gyro[:k * fac].reshape(k, fac, 3).mean(axis=1)
            acc_d[d0:d0 + k] = acc[:k * fac].reshape(k, fac, 3).mean(axis=1)
    return acc_all, np.concatenate(clipped).astype(np.int64), gyro_d, acc_d


def _continuous_sign(q: np.ndarray) -> None:
    """Flip quaternions (in place) so that consecutive ones are on the same side (q and -q are one rotation)."""
    flip = np.sum(q[1:] * q[:-1], axis=1) < 0
    sign = np.concatenate([[1.0], np.where(np.cumsum(flip) % 2 == 1, -1.0, 1.0)])
    q *= sign[:, None]


def _interp_quat(t: np.ndarray, t_d: np.ndarray, q_d: np.ndarray) -> np.ndarray:
    """Quaternions at times ``t`` by normalised linear interpolation of ``q_d`` (sign-continuous) at ``t_d``."""
    q = np.stack([np.interp(t, t_d, q_d[:, j]) for j in range(4)], axis=1)  # four components
    return q / np.linalg.norm(q, axis=1, keepdims=True)


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


def _clip_limits(dev) -> tuple[float, float]:
    """Clipping levels of the accelerometer (g) and gyroscope (deg/s): 95% of full scale (inf when unknown)."""
    out = []
    for key in ("range_g", "range_dps"):
        v = float(getattr(dev, key, float("nan")))
        out.append(CLIP_FRACTION * v if np.isfinite(v) and v > 0 else np.inf)
    return out[0], out[1]


def _clipping(acc: np.ndarray, gyro: np.ndarray | None, limits: tuple[float, float]) -> np.ndarray:
    """Samples at 95% of full scale or more on any accelerometer or gyroscope axis."""
    hit = np.any(np.abs(acc) >= limits[0], axis=1)
    if gyro is not None:
        hit |= np.any(np.abs(gyro) >= limits[1], axis=1)
    return hit
