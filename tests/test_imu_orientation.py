"""Orientation (VQF) and sensor-to-segment alignment: settings reach the filter, blocks equal one batch,
and the segment angles of a synthetic runner come back through noise, gyro bias and mounting misalignment."""

from __future__ import annotations

import numpy as np
import pytest
from imu_synth import Runner
from scipy.spatial.transform import Rotation

from treadlab.analysis.imu import align as al
from treadlab.analysis.imu.orientation import (
    OrientationFilter,
    VqfSettings,
    offline_quat,
    orientation_blocks,
)
from treadlab.errors import AnalysisError, ConfigError

RATE = 200.0


def _tilt_step(n_s: float = 4.0):
    """Still sensor, gyro silent, gravity seen 20 deg tilted: the filter's inclination follows at tau_acc's pace."""
    n = int(n_s * RATE)
    acc = np.tile([np.sin(np.deg2rad(20)), 0.0, np.cos(np.deg2rad(20))], (n, 1))
    return np.zeros((n, 3)), acc


def _incl_deg(q: np.ndarray) -> np.ndarray:
    up = Rotation.from_quat(q).apply([0.0, 0.0, 1.0])
    return np.rad2deg(np.arccos(np.clip(up[:, 2], -1, 1)))


def test_settings_reach_the_filter():
    filt = OrientationFilter(RATE, VqfSettings(tau_acc_s=0.7, rest_bias_est=False, bias_clip_dps=1.5))
    p = filt.params
    assert p["tauAcc"] == pytest.approx(0.7)
    assert p["restBiasEstEnabled"] is False
    assert p["biasClip"] == pytest.approx(1.5)


def test_tau_acc_changes_the_output_as_expected():
    """A sensor starts level, then its accelerometer says 20 deg: a shorter tau_acc follows gravity faster."""
    g0, a0 = np.zeros((int(RATE), 3)), np.tile([0.0, 0.0, 1.0], (int(RATE), 1))
    g1, a1 = _tilt_step()
    gyro, acc = np.vstack([g0, g1]), np.vstack([a0, a1])
    at = int(RATE) + int(1.0 * RATE)  # 1 s after the step
    for make in (lambda s: OrientationFilter(RATE, s).update(gyro, acc), lambda s: offline_quat(gyro, acc, RATE, s)):
        fast = _incl_deg(make(VqfSettings(tau_acc_s=0.5, rest_bias_est=False)))
        slow = _incl_deg(make(VqfSettings(tau_acc_s=5.0, rest_bias_est=False)))
        assert fast[-1] == pytest.approx(20.0, abs=0.5)
        assert fast[at] > slow[at] + 3.0


def test_invalid_settings_are_refused():
    with pytest.raises(ConfigError, match="tau_acc_s"):
        OrientationFilter(RATE, VqfSettings(tau_acc_s=-1.0))
    with pytest.raises(ConfigError, match="rate"):
        OrientationFilter(0.0)


def test_causal_blocks_equal_one_batch():
    r = Runner(rate_hz=RATE, run_s=20, gyro_noise_dps=0.3, acc_noise_g=0.01)
    gyro, acc = r.pelvis()
    whole = OrientationFilter(RATE).update(gyro, acc)
    filt = OrientationFilter(RATE)
    parts = np.vstack([filt.update(gyro[a:a + 777], acc[a:a + 777]) for a in range(0, len(acc), 777)])
    np.testing.assert_allclose(np.abs((parts * whole).sum(axis=1)), 1.0, atol=1e-9)


def test_offline_blocks_are_one_continuous_orientation():
    """Overlapping offline blocks, headings stitched: inclination and heading match the one-batch result."""
    r = Runner(rate_hz=RATE, run_s=100, heading_drift_dps=0.0, gyro_bias_dps=(0.4, -0.3, 0.5),
               gyro_noise_dps=0.3, acc_noise_g=0.01)
    gyro, acc = r.pelvis()
    whole = offline_quat(gyro, acc, RATE)
    parts = list(orientation_blocks(lambda a, b: (gyro[a:b], acc[a:b]), len(acc), RATE, core_s=30, pad_s=10))
    assert len(parts) > 2 and parts[0][0] == 0
    q = np.vstack([p for _, p in parts])
    assert len(q) == len(acc)
    # Heading is unobservable (each run drifts its own way): compare the inclination, and check that the
    # stitched heading does not jump where blocks meet.
    up_parts = Rotation.from_quat(q).inv().apply([0.0, 0.0, 1.0])
    up_whole = Rotation.from_quat(whole).inv().apply([0.0, 0.0, 1.0])
    incl = np.rad2deg(np.arccos(np.clip((up_parts * up_whole).sum(axis=1), -1, 1)))
    assert np.median(incl) < 0.1 and incl.max() < 1.0
    steps = np.rad2deg((Rotation.from_quat(q[:-1]).inv() * Rotation.from_quat(q[1:])).magnitude())
    joins = np.cumsum([len(p) for _, p in parts])[:-1]
    assert steps[joins - 1].max() < 5 * np.percentile(steps, 99) + 0.2


def _angles(r: Runner, gyro, acc, quat):
    t = r.t
    a, b = al.find_standing(al.still_periods(acc, r.rate_hz, gyro), t)
    ref = al.standing_reference(acc[a:b], t[a:b], quat[a:b], gyro[a:b])
    fr0 = al.tentative_frame(ref.up_sensor)
    head = al.remove_heading(al.segment_angles(quat, fr0)[:, 0], r.rate_hz)[1]
    phi, strength = al.forward_angle_rad(al.heading_stabilised(quat, acc, head), r.rate_hz, t > r.stand_s + 1)
    frame = al.segment_frame(ref.up_sensor, fr0 @ np.array([np.cos(phi), np.sin(phi), 0.0]))
    return al.segment_angles(quat, frame), frame, strength


@pytest.mark.parametrize("mount", [(0, 0, 0), (10, -6, 4), (-5, 8, -10)])
def test_segment_frame_and_angles_through_misalignment_bias_and_noise(mount):
    r = Runner(rate_hz=RATE, run_s=40, mount_deg=mount, gyro_bias_dps=(0.6, -0.5, 0.8), gyro_noise_dps=0.3,
               acc_noise_g=0.01, heading_drift_dps=0.05)
    gyro, acc = r.pelvis()
    ang, frame, strength = _angles(r, gyro, acc, offline_quat(gyro, acc, RATE))
    assert strength > 0.3
    true_fwd = r.mounting("pelvis").inv().apply([1.0, 0.0, 0.0])
    assert np.rad2deg(np.arccos(frame[:, 0] @ true_fwd)) < 2.0
    run = r.t > r.stand_s + 1.5
    truth = r.pelvis_angles_deg(r.t)
    for j in (1, 2):  # obliquity, tilt: no heading in them
        err = ang[run, j] - truth[run, j]
        assert np.sqrt(np.mean(err ** 2)) < 0.5, j
    rot = al.remove_heading(ang[:, 0], RATE)[0]
    err = rot[run] - (truth[run, 0] - truth[run, 0].mean())
    assert np.sqrt(np.mean(err ** 2)) < 0.7


def test_standing_signs_and_zero():
    """Obliquity positive = left side up; tilt positive = top forward; zero while standing."""
    frame = np.eye(3)
    q = Rotation.from_euler("ZXY", [[0, 5, 0], [0, 0, 7], [30, 0, 0]], degrees=True).as_quat()
    ang = al.segment_angles(q, frame)
    np.testing.assert_allclose(ang, [[0, 5, 0], [0, 0, 7], [30, 0, 0]], atol=1e-9)
    left = Rotation.from_quat(q[0]).apply([0, 1, 0])
    top = Rotation.from_quat(q[1]).apply([0, 0, 1])
    assert left[2] > 0 and top[0] > 0


def test_no_standing_period_is_one_clear_error():
    with pytest.raises(AnalysisError, match="no standing period"):
        al.find_standing(np.empty((0, 2), dtype=np.int64), np.arange(10.0))
    r = Runner(rate_hz=RATE, stand_s=1.0, run_s=10)
    gyro, acc = r.pelvis()
    assert len(al.still_periods(acc, RATE, gyro)) == 0
