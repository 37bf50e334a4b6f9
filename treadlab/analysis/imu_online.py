"""IMU metrics as the samples arrive: pelvis angles block by block, pelvic drop and PTA per step (live view, feedback).

Nothing here redefines a metric or writes an attitude filter. The orientation is :mod:`treadlab.analysis.imu`'s
:class:`~treadlab.analysis.imu.orientation.OrientationFilter` (VQF's stateful object, fed block by block), the
standing pose and the segment frame are that package's alignment functions (:mod:`treadlab.analysis.imu.align`),
applied to the first seconds of the stream exactly as the offline analysis applies them to a recording:

1. **standing**: the samples are buffered until a still period of at least 3 s has ended
   (:func:`~treadlab.analysis.imu.align.still_periods`); its standing reference
   (:func:`~treadlab.analysis.imu.align.standing_reference`) gives the segment's up axis;
2. **forward** (pelvis and trunk): the first ``forward_s`` seconds of motion after it give the running direction
   (:func:`~treadlab.analysis.imu.align.forward_angle_rad` on the heading-stabilised accelerations), hence the
   segment frame (:func:`~treadlab.analysis.imu.align.segment_frame`);
3. **ready**: every new block's Cardan angles (:func:`~treadlab.analysis.imu.align.segment_angles`: rotation,
   obliquity, tilt relative to standing); live, the rotation's heading is the trailing mean of the last
   ``heading_window_s`` (offline it is the centred mean).

The per-step values, with the definitions of the steps table (issue 14), once the step's window has passed:

- ``pelvic_drop_deg`` of a step of foot X: the largest obliquity towards the swing side between X's initial
  contact and toe-off (obliquity is positive when the right side is lower: a left stance's drop is its largest
  obliquity, a right stance's the largest negative one);
- ``pta_g``: the largest reading of the ``tibia_X`` sensor along the shank's long axis (its standing up axis,
  gravity included) between IC and IC + 100 ms.

The step events (IC, toe-off) come from the caller: the feedback engine's insole detection
(:class:`~treadlab.analysis.online.OnlineSteps`). Vectorised over the samples of a block; Python runs once per
block and once per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from treadlab.analysis.imu.align import (
    forward_angle_rad,
    heading_stabilised,
    remove_heading,
    segment_angles,
    segment_frame,
    standing_reference,
    still_periods,
    tentative_frame,
)
from treadlab.analysis.imu.orientation import OrientationFilter
from treadlab.analysis.online import StepEvent

__all__ = ["IMU_METRIC_PLACEMENTS", "IMU_METRIC_STAGE", "ImuChannels", "OnlineImuMetrics", "OnlineSegment",
           "OnlineTibia", "PTA_WINDOW_S", "online_sensor", "pelvic_drop_deg", "peak_in_window"]

#: The step event after which each IMU metric of a step can be evaluated ("contact": IC; "toeoff": toe-off).
IMU_METRIC_STAGE = {"pelvic_drop_deg": "toeoff", "pta_g": "contact"}
#: The placements each IMU metric reads.
IMU_METRIC_PLACEMENTS = {"pelvic_drop_deg": ("pelvis",), "pta_g": ("tibia_left", "tibia_right")}
#: PTA is the peak between IC and IC + this.
PTA_WINDOW_S = 0.100
STANDING_MIN_S = 3.0
#: A step still without its value this long after its window (the sensor is not aligned yet) is dropped.
STALE_S = 1.0


@dataclass(frozen=True)
class ImuChannels:
    """How one IMU's raw values become accelerations (g) and angular rates (deg/s): ``gain * (raw - offset)``.

    Attributes
    ----------
    device : str
    placement : str
        ``pelvis``, ``trunk``, ``tibia_left`` or ``tibia_right``.
    rate_hz : float
    acc : tuple of int
        Columns of ``ax ay az`` in the raw values.
    gyro : tuple of int or None
        Columns of ``gx gy gz`` (None for an accelerometer-only sensor).
    gain, offset : ndarray, shape (n_channels,)
    """

    device: str
    placement: str
    rate_hz: float
    acc: tuple[int, int, int]
    gyro: tuple[int, int, int] | None
    gain: np.ndarray
    offset: np.ndarray

    @classmethod
    def from_channels(cls, device: str, placement: str, rate_hz: float, channels, gain=1.0,
                      offset=0.0) -> ImuChannels:
        """From the channel names in column order (``ax ay az gx gy gz [mx my mz]``, a subset with ``ax ay az``)."""
        names = [str(c) for c in channels]
        n = len(names)
        acc = tuple(names.index(c) for c in ("ax", "ay", "az"))
        gyro = tuple(names.index(c) for c in ("gx", "gy", "gz")) if all(c in names for c in ("gx", "gy", "gz")) \
            else None
        g = np.broadcast_to(np.asarray(gain, np.float64), (n,)).copy()
        o = np.broadcast_to(np.asarray(offset, np.float64), (n,)).copy()
        return cls(device, placement, float(rate_hz), acc, gyro, g, o)

    def split(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Accelerations (g) and angular rates (deg/s, or None) of raw rows (k, n_channels)."""
        v = (np.asarray(raw, np.float64).reshape(len(raw), -1) - self.offset) * self.gain
        return v[:, list(self.acc)], (v[:, list(self.gyro)] if self.gyro is not None else None)


class _Buffer:
    """The last ``keep_s`` seconds of rows (time first), preallocated, compacted when full."""

    def __init__(self, n_cols: int, keep_s: float) -> None:
        self.keep_s = float(keep_s)
        self._buf = np.empty((1024, n_cols))
        self._a = self._n = 0

    def append(self, rows: np.ndarray) -> None:
        k = len(rows)
        if not k:
            return
        if self._n > self._a:
            self._a += int(np.searchsorted(self._buf[self._a:self._n, 0], rows[-1, 0] - self.keep_s))
        kept = self._n - self._a
        if self._n + k > len(self._buf):
            cap = max(2 * (kept + k), 1024)
            new = np.empty((cap, self._buf.shape[1])) if cap > len(self._buf) else self._buf
            new[:kept] = self._buf[self._a:self._n]
            self._buf, self._a, self._n = new, 0, kept
        self._buf[self._n:self._n + k] = rows
        self._n += k

    @property
    def rows(self) -> np.ndarray:
        return self._buf[self._a:self._n]

    def window(self, t0: float, t1: float) -> np.ndarray:
        """Rows with ``t0 <= t <= t1``."""
        r = self.rows
        a = np.searchsorted(r[:, 0], t0, side="left")
        b = np.searchsorted(r[:, 0], t1, side="right")
        return r[a:b]

    @property
    def last_t(self) -> float:
        return float(self._buf[self._n - 1, 0]) if self._n > self._a else -np.inf


def peak_in_window(t: np.ndarray, x: np.ndarray, t0: float, t1: float) -> float:
    """Largest ``x`` with ``t0 <= t <= t1`` (NaN when the window holds no sample)."""
    a, b = np.searchsorted(t, t0, side="left"), np.searchsorted(t, t1, side="right")
    return float(np.max(x[a:b])) if b > a else float("nan")


def pelvic_drop_deg(t: np.ndarray, obliquity_deg: np.ndarray, foot: str, ic_s: float, to_s: float) -> float:
    """Pelvic drop of one stance of ``foot``: the largest obliquity towards the swing side between IC and TO.

    Obliquity is positive when the right side is lower (the pelvis's left side up), so a left stance's drop is
    its largest obliquity and a right stance's its largest negative obliquity.
    """
    sign = 1.0 if foot == "left" else -1.0
    return peak_in_window(t, sign * np.asarray(obliquity_deg, np.float64), ic_s, to_s)


class OnlineSegment:
    """Segment angles of one pelvis (or trunk) IMU, block by block (see the module notes).

    Parameters
    ----------
    channels : ImuChannels
    keep_s : float
        Seconds of angles kept (for the per-step windows and the live traces).
    forward_s : float
        Seconds of motion after standing used to find the running direction.
    heading_window_s : float
        Trailing window of the live heading (the rotation angle's slowly varying part).

    Attributes
    ----------
    state_ : {"standing", "forward", "ready"}
    standing_ : StandingReference or None
    frame_ : ndarray (3, 3) or None
        The segment frame in sensor coordinates once ready.
    forward_strength_ : float
    ready_s_ : float
        Time of the sample with which the frame was found (NaN before); angles are given from the start of the
        running used to find it.
    """

    def __init__(self, channels: ImuChannels, keep_s: float = 10.0, forward_s: float = 10.0,
                 heading_window_s: float = 2.0) -> None:
        if channels.gyro is None:
            raise ValueError(f"{channels.device}: segment angles need a gyroscope")
        self.channels = channels
        self.rate_hz = channels.rate_hz
        self.forward_s = float(forward_s)
        self.heading_window_s = float(heading_window_s)
        self.filter = OrientationFilter(self.rate_hz)
        self.state_ = "standing"
        self.standing_ = None
        self.frame_: np.ndarray | None = None
        self.forward_strength_ = float("nan")
        self.ready_s_ = float("nan")
        # t, acc (3), gyro (3), quat (4): the raw stream until ready
        self._raw = _Buffer(11, max(60.0, 2 * (STANDING_MIN_S + forward_s)))
        self._angles = _Buffer(4, keep_s)  # t, rotation (heading removed), obliquity, tilt
        self._unwrapped = _Buffer(2, heading_window_s)  # t, unwrapped rotation
        self._checked_at = -np.inf
        self._run_from = 0.0
        self.seen_t_ = -np.inf

    def feed(self, time_s: np.ndarray, raw: np.ndarray) -> int:
        """Take a block of raw samples; returns how many new angle rows it gave (0 until ready)."""
        t = np.asarray(time_s, np.float64)
        if not len(t):
            return 0
        self.seen_t_ = float(t[-1])
        acc, gyro = self.channels.split(raw)
        quat = self.filter.update(gyro, acc)
        if self.state_ == "ready":
            return self._add_angles(t, quat)
        self._raw.append(np.column_stack([t, acc, gyro, quat]))
        r = self._raw.rows
        if self.state_ == "standing" and t[-1] - self._checked_at >= 0.5:
            self._checked_at = float(t[-1])
            self._find_standing(r)
        if self.state_ == "forward":
            r = self._raw.rows
            run = r[r[:, 0] >= self._run_from]
            if len(run) and run[-1, 0] - run[0, 0] >= self.forward_s:
                self._find_forward(run)
                if self.state_ == "ready":
                    self.ready_s_ = float(run[-1, 0])
                    self._raw = None  # the raw stream is not kept once aligned
                    return self._add_angles(run[:, 0], run[:, 7:11])
        return 0

    def _find_standing(self, r: np.ndarray) -> None:
        periods = still_periods(r[:, 1:4], self.rate_hz, r[:, 4:7], min_s=STANDING_MIN_S)
        ended = periods[periods[:, 1] < len(r)] if len(periods) else periods
        if not len(ended):
            return
        a, b = ended[0]
        self.standing_ = standing_reference(r[a:b, 1:4], r[a:b, 0], r[a:b, 7:11], r[a:b, 4:7], source="start")
        self._run_from = float(r[b, 0])
        self.state_ = "forward"

    def _find_forward(self, run: np.ndarray) -> None:
        tent = tentative_frame(self.standing_.up_sensor)
        ang = segment_angles(run[:, 7:11], tent)
        _, heading = remove_heading(ang[:, 0], self.rate_hz, self.heading_window_s)
        stab = heading_stabilised(run[:, 7:11], run[:, 1:4], heading)
        angle, strength = forward_angle_rad(stab, self.rate_hz)
        if not np.isfinite(angle):
            self._run_from = float(run[len(run) // 2, 0])  # try again on later data
            return
        forward = tent @ np.array([np.cos(angle), np.sin(angle), 0.0])
        self.frame_ = segment_frame(self.standing_.up_sensor, forward)
        self.forward_strength_ = float(strength)
        self.state_ = "ready"

    def _add_angles(self, t: np.ndarray, quat: np.ndarray) -> int:
        ang = segment_angles(quat, self.frame_)
        prev = self._unwrapped.rows
        last = prev[-1, 1] if len(prev) else ang[0, 0]
        # unwrap continuing from the last angle, then the trailing mean over the heading window
        step = np.diff(np.concatenate([[last], ang[:, 0]]))
        unwrapped = last + np.cumsum((step + 180.0) % 360.0 - 180.0)
        both = np.concatenate([prev, np.column_stack([t, unwrapped])]) if len(prev) else np.column_stack(
            [t, unwrapped])
        c = np.concatenate([[0.0], np.cumsum(both[:, 1])])
        start = np.searchsorted(both[:, 0], both[:, 0] - self.heading_window_s, side="left")
        idx = np.arange(len(both))
        heading = (c[idx + 1] - c[start]) / (idx + 1 - start)
        heading = heading[-len(t):]
        self._unwrapped.append(np.column_stack([t, unwrapped]))
        self._angles.append(np.column_stack([t, unwrapped - heading, ang[:, 1], ang[:, 2]]))
        return len(t)

    @property
    def ready(self) -> bool:
        """True once the segment frame is known (angles are given)."""
        return self.state_ == "ready"

    @property
    def last_t(self) -> float:
        """Time of the newest angle (-inf before any)."""
        return self._angles.last_t

    def angles(self, last_s: float | None = None) -> np.ndarray:
        """Rows ``(t, rotation_deg, obliquity_deg, tilt_deg)`` of the last ``last_s`` seconds (all kept: None)."""
        r = self._angles.rows
        return r if last_s is None or not len(r) else r[r[:, 0] >= r[-1, 0] - last_s]

    def pelvic_drop(self, foot: str, ic_s: float, to_s: float) -> float:
        """:func:`pelvic_drop_deg` of a stance whose samples have arrived (NaN otherwise)."""
        w = self._angles.window(ic_s, to_s)
        return pelvic_drop_deg(w[:, 0], w[:, 2], foot, ic_s, to_s) if len(w) else float("nan")


class OnlineTibia:
    """Axial acceleration of one tibia IMU (along the shank's standing up axis, gravity included), block by block.

    Attributes
    ----------
    up_sensor_ : ndarray (3,) or None
        The shank's long axis in sensor coordinates (from the first still period of at least 3 s).
    ready_s_ : float
        Time of the first axial sample (NaN before).
    """

    def __init__(self, channels: ImuChannels, keep_s: float = 10.0) -> None:
        self.channels = channels
        self.rate_hz = channels.rate_hz
        self.up_sensor_: np.ndarray | None = None
        self._raw = _Buffer(4, 30.0)
        self._axial = _Buffer(2, keep_s)
        self._checked_at = -np.inf
        self.seen_t_ = -np.inf
        self.ready_s_ = float("nan")

    def feed(self, time_s: np.ndarray, raw: np.ndarray) -> int:
        """Take a block; returns how many axial samples it gave (0 until the standing axis is known)."""
        t = np.asarray(time_s, np.float64)
        if not len(t):
            return 0
        self.seen_t_ = float(t[-1])
        acc, _ = self.channels.split(raw)
        if self.up_sensor_ is not None:
            self._axial.append(np.column_stack([t, acc @ self.up_sensor_]))
            return len(t)
        self._raw.append(np.column_stack([t, acc]))
        if t[-1] - self._checked_at < 0.5:
            return 0
        self._checked_at = float(t[-1])
        r = self._raw.rows
        periods = still_periods(r[:, 1:4], self.rate_hz, min_s=STANDING_MIN_S)
        ended = periods[periods[:, 1] < len(r)] if len(periods) else periods
        if not len(ended):
            return 0
        a, b = ended[0]
        self.up_sensor_ = standing_reference(r[a:b, 1:4], r[a:b, 0]).acc_up_sensor
        after = r[b:]
        self.ready_s_ = float(r[b, 0])
        self._raw = None  # not kept once the axis is known
        self._axial.append(np.column_stack([after[:, 0], after[:, 1:4] @ self.up_sensor_]))
        return len(after)

    @property
    def last_t(self) -> float:
        """Time of the newest axial sample (-inf before any)."""
        return self._axial.last_t

    def axial(self, last_s: float | None = None) -> np.ndarray:
        """Rows ``(t, axial_g)`` of the last ``last_s`` seconds."""
        r = self._axial.rows
        return r if last_s is None or not len(r) else r[r[:, 0] >= r[-1, 0] - last_s]

    def pta(self, ic_s: float) -> float:
        """Peak tibial acceleration of a step (g) once its window has arrived (NaN without samples)."""
        w = self._axial.window(ic_s, ic_s + PTA_WINDOW_S)
        return peak_in_window(w[:, 0], w[:, 1], ic_s, ic_s + PTA_WINDOW_S) if len(w) else float("nan")


def online_sensor(channels: ImuChannels) -> OnlineSegment | OnlineTibia | None:
    """The online state of one IMU: segment angles (pelvis, trunk: needs a gyroscope) or a tibia's axial
    acceleration; None for other placements (the feet) or a pelvis without gyroscope.
    """
    if channels.placement in ("pelvis", "trunk") and channels.gyro is not None:
        return OnlineSegment(channels)
    if channels.placement.startswith("tibia_"):
        return OnlineTibia(channels)
    return None


class OnlineImuMetrics:
    """IMU metrics per step (the feedback engine's target, the live view's values): samples in, step events in,
    values out.

    Parameters
    ----------
    metrics : str or tuple of str
        Names of :data:`IMU_METRIC_STAGE`.
    imus : list of ImuChannels, optional
        The rig's IMUs: those of the metrics' placements get their online state (:func:`online_sensor`).
    sensors : dict, optional
        Instead, existing online states: ``{device: (placement, OnlineSegment | OnlineTibia)}`` (the live views
        own them and feed them; then :meth:`feed` is not used).

    Attributes
    ----------
    devices : set of str
        The devices whose batches :meth:`feed` takes.
    """

    def __init__(self, metrics: str | tuple[str, ...], imus: list[ImuChannels] | None = None,
                 sensors: dict | None = None) -> None:
        self.metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
        for m in self.metrics:
            if m not in IMU_METRIC_STAGE:
                raise ValueError(f"not an IMU metric: {m!r}")
        wanted = {p for m in self.metrics for p in IMU_METRIC_PLACEMENTS[m]}
        self.sensors: dict[str, OnlineSegment | OnlineTibia] = {}
        self.placement: dict[str, str] = {}
        if sensors is not None:
            for dev, (placement, sensor) in sensors.items():
                if placement in wanted and placement not in self.placement.values() and sensor is not None:
                    self.sensors[dev], self.placement[dev] = sensor, placement
        for ch in imus or []:
            if ch.placement in wanted and ch.placement not in self.placement.values():
                sensor = online_sensor(ch)
                if sensor is not None:
                    self.sensors[ch.device], self.placement[ch.device] = sensor, ch.placement
        self.devices = set(self.sensors)
        self._pending: list[tuple[float, str, str, float, float, int]] = []  # (due_s, metric, foot, ic, to, n)

    def _sensor(self, metric: str, foot: str):
        want = "pelvis" if metric == "pelvic_drop_deg" else f"tibia_{foot}"
        for dev, p in self.placement.items():
            if p == want:
                return self.sensors[dev]
        return None

    def feed(self, device: str, time_s: np.ndarray, raw: np.ndarray) -> list[StepEvent]:
        """Take a block of one IMU; returns the step events whose value it completed."""
        self.sensors[device].feed(time_s, raw)
        return self.due()

    def sensor_state(self, device: str) -> str:
        """What a sensor waits for: "stand still" (the first still 3 s), "run" (10 s of running for the forward
        direction) or "ready".
        """
        s = self.sensors[device]
        if isinstance(s, OnlineSegment):
            return {"standing": "stand still", "forward": "run"}.get(s.state_, "ready")
        return "ready" if s.up_sensor_ is not None else "stand still"

    def step(self, event: StepEvent) -> list[StepEvent]:
        """A step event of the insoles (contact or toe-off); returns any values now complete."""
        for m in self.metrics:
            if event.stage != IMU_METRIC_STAGE[m] or self._sensor(m, event.foot) is None:
                continue
            if event.stage == "contact":
                self._pending.append((event.ic_s + PTA_WINDOW_S, m, event.foot, event.ic_s, np.nan, event.step_n))
            else:
                to = event.ic_s + float(event.values.get("contact_time_ms", np.nan)) * 1e-3
                if np.isfinite(to):
                    self._pending.append((to, m, event.foot, event.ic_s, to, event.step_n))
        return self.due()

    def due(self) -> list[StepEvent]:
        """Values of the pending steps whose window the IMU data have passed (in order of their windows' end)."""
        out, keep = [], []
        for p in sorted(self._pending):  # a few per second
            due_s, m, foot, ic, to, n = p
            s = self._sensor(m, foot)
            if s.last_t < due_s:
                if s.seen_t_ - due_s < STALE_S:  # not ready yet (standing, finding forward): the step is dropped
                    keep.append(p)
                continue
            v = s.pelvic_drop(foot, ic, to) if m == "pelvic_drop_deg" else s.pta(ic)
            out.append(StepEvent(foot, ic, IMU_METRIC_STAGE[m], {m: v}, s.last_t, n))
        self._pending = keep
        return out
