"""IMU analysis: orientation, sensor-to-segment alignment, pelvis/trunk/tibia metrics, IMU gait events.

Stable API (``docs/analysis.md``, "Inertial sensors"):

- :mod:`~treadlab.analysis.imu.orientation`: :class:`VqfSettings` (the VQF filter's settings),
  :func:`offline_quat` and :func:`orientation_blocks` (offline VQF, whole arrays or overlapping blocks with the
  heading stitched), :class:`OrientationFilter` (causal VQF, block by block, for live views).
- :mod:`~treadlab.analysis.imu.align`: :func:`still_periods`, :func:`find_standing`, :func:`standing_reference`
  -> :class:`StandingReference` (the vertical from standing), :func:`tentative_frame`, :func:`segment_frame`,
  :func:`segment_angles` (Cardan rotation/obliquity/tilt, ``ZXY``), :func:`remove_heading`,
  :func:`heading_stabilised`, :func:`forward_angle_rad` (the running direction from braking and push-off).

Live obliquity from a pelvis sensor (what ``lab gui`` does)::

    filt = OrientationFilter(rate_hz)
    q = filt.update(gyro_dps, acc_g)                      # every block, in order
    ref = standing_reference(acc_still, t_still, q_still)  # once, from a still period
    frame0 = tentative_frame(ref.up_sensor)
    ang = segment_angles(q, frame0)                        # obliquity and tilt need the forward direction:
    phi, strength = forward_angle_rad(heading_stabilised(q, acc_g, remove_heading(ang[:, 0], rate_hz)[1]),
                                      rate_hz)             # over >= 10 s of running
    frame = segment_frame(ref.up_sensor, frame0 @ [cos(phi), sin(phi), 0])
    rotation, obliquity, tilt = segment_angles(q, frame).T  # degrees; rotation still holds the heading
"""

from __future__ import annotations

from treadlab.analysis.imu.align import (
    ANGLE_NAMES,
    StandingReference,
    find_standing,
    forward_angle_rad,
    heading_stabilised,
    remove_heading,
    segment_angles,
    segment_frame,
    standing_reference,
    still_periods,
    tentative_frame,
    up_from_quat,
)
from treadlab.analysis.imu.orientation import OrientationFilter, VqfSettings, offline_quat, orientation_blocks

__all__ = [
    "ANGLE_NAMES", "OrientationFilter", "StandingReference", "VqfSettings", "find_standing", "forward_angle_rad",
    "heading_stabilised", "offline_quat", "orientation_blocks", "remove_heading", "segment_angles",
    "segment_frame", "standing_reference", "still_periods", "tentative_frame", "up_from_quat",
]
