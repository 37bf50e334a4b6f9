"""The simulated IMUs' kinematic model: exact sensor signals, standing, events and ground truth.

Known answers: the gyroscope integrated in time gives back the model's orientation; the accelerometer equals
``R^T (a + g)`` with ``a`` from finite differences of the model's positions; the ground truth of each definition of
issue 14 equals the parameter it was built from (constructed runners without variability) and an independent
evaluation of the definition through the public angle and signal functions.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from treadlab.drivers.sim.change import gait_model
from treadlab.drivers.sim.imu_model import PLACEMENTS, ImuModel, ImuSensor
from treadlab.drivers.sim.params import RunnerParams
from treadlab.vocabulary import G_MPS2

STEADY = {"variability_pct": 0.0, "heading_wander_deg": 0.0}


@pytest.fixture(scope="module")
def model():
    return ImuModel(RunnerParams(stand_s=3.0, walk_s=3.0, stride_cv_pct=4.0, seed=5), duration_s=20.0)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_gyro_integrates_to_the_orientation(model, placement):
    """Body-frame angular velocity integrated (midpoint rotation vectors, 0.25 ms) reproduces R(t) over standing,
    the fade-in, walking and running."""
    dt = 2.5e-4
    t = np.arange(2.0, 12.0, dt)
    R = model.kinematics(placement, t).rotation()
    w_mid = np.radians(model.signals(placement, t[:-1] + dt / 2)["gyro_dps"])
    steps = Rotation.from_rotvec(w_mid * dt)
    est = [Rotation.from_matrix(R[0])]
    # Cumulative product in blocks: right-multiplication by body-frame increments.
    for block in np.array_split(np.arange(len(steps)), 40):
        for i in block:
            est.append(est[-1] * steps[i])
    err = (Rotation.from_matrix(R).inv() * Rotation.concatenate(est)).magnitude()
    assert np.degrees(err.max()) < 0.02


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_accelerometer_is_specific_force_of_the_positions(model, placement):
    """acc = R^T (a_world + g e_z) / g, with a_world by central differences of the sensor's position."""
    t = np.random.default_rng(1).uniform(2.0, 19.0, 4000)
    h = 5e-6  # small: a central difference across a contact sees the jump of the jerk (the accel is continuous)
    pos = [np.column_stack([p.v for p in model.kinematics(placement, t + d).pos]) for d in (-h, 0.0, h)]
    vel_fd = (pos[2] - pos[0]) / (2 * h)
    acc_fd = (pos[2] - 2 * pos[1] + pos[0]) / h**2
    kin = model.kinematics(placement, t)
    assert np.allclose(np.column_stack([p.d for p in kin.pos]), vel_fd, atol=1e-7)
    assert np.allclose(np.column_stack([p.dd for p in kin.pos]), acc_fd, atol=5e-3)
    R = kin.rotation()
    want = np.einsum("nji,nj->ni", R, acc_fd + [0.0, 0.0, G_MPS2]) / G_MPS2
    assert np.abs(model.signals(placement, t)["acc_g"] - want).max() < 1e-3


def test_cardan_angles_are_the_orientations_zxy_decomposition(model):
    t = np.linspace(4.0, 19.0, 3000)
    for placement in PLACEMENTS:
        R = model.kinematics(placement, t).rotation()
        eul = Rotation.from_matrix(R).as_euler("ZXY", degrees=True)  # intrinsic z, x', y''
        assert np.allclose(eul, model.angles_deg(placement, t), atol=1e-9)


def test_standing_is_still():
    m = ImuModel(RunnerParams(stand_s=5.0, seed=2), duration_s=12.0)
    t = np.arange(0.0, 5.0, 1e-3)
    for placement in PLACEMENTS:
        sig = m.signals(placement, t)
        assert np.abs(sig["gyro_dps"]).max() == 0.0
        assert np.allclose(sig["acc_g"], [0.0, 0.0, 1.0], atol=1e-12)
        moving = m.signals(placement, np.arange(6.0, 8.0, 1e-3))["gyro_dps"]
        assert np.abs(moving).max() > 20.0


def test_impacts_start_at_the_insole_contacts():
    runner = RunnerParams(seed=4)
    gait = gait_model(runner, 30.0)
    m = ImuModel(runner, gait)
    steps = gait.steps
    truth = m.truth_steps(2.0, 25.0)
    ins = steps.set_index("ic_s").loc[truth["ic_s"]]
    assert np.array_equal(ins["foot"].to_numpy(), truth["foot"].to_numpy())
    assert np.array_equal(ins["to_s"].to_numpy(), truth["to_s"].to_numpy())
    # The tibial shock rises right after each contact of its foot, not before.
    left = truth[truth["foot"] == "left"]["ic_s"].to_numpy()
    for ic in left[:10]:
        t = ic + np.arange(-0.004, 0.012, 1e-4)
        a = m.signals("tibia_left", t)["acc_g"][:, 2]
        assert a[t <= ic].max() < 2.0 < a.max()
        assert ic + 0.005 < t[np.argmax(a)] < ic + 0.011


def test_truth_equals_the_runner_parameters_without_variability():
    p = RunnerParams(pelvic_drop_left_deg=9.0, pelvic_drop_right_deg=2.5, pelvic_rotation_deg=14.0,
                     pelvic_tilt_deg=6.0, pelvic_tilt_range_deg=7.0, trunk_lean_deg=11.0,
                     vertical_oscillation_mm=95.0, pta_left_g=12.0, pta_right_g=6.0,
                     shock_attenuation_left_pct=70.0, shock_attenuation_right_pct=50.0, **STEADY)
    m = ImuModel(p, duration_s=20.0)
    st = m.truth_steps(5.0, 15.0)
    left, right = st[st["foot"] == "left"], st[st["foot"] == "right"]
    assert np.allclose(left["pelvic_drop_deg"], 9.0, atol=1e-3)
    assert np.allclose(right["pelvic_drop_deg"], 2.5, atol=1e-3)
    assert np.allclose(st["trunk_lean_deg"], 11.0, atol=1e-3)
    assert np.allclose(st["vertical_oscillation_mm"], 95.0, atol=1.5)
    assert np.allclose(left["pta_g"], 12.0, rtol=0.02) and np.allclose(right["pta_g"], 6.0, rtol=0.02)
    assert np.allclose(left["shock_attenuation_pct"], 70.0, atol=2.0)
    assert np.allclose(right["shock_attenuation_pct"], 50.0, atol=2.0)
    sr = m.truth_strides(5.0, 15.0)
    assert np.allclose(sr["pelvic_rotation_deg"], 14.0, atol=1e-2)
    assert np.allclose(sr["pelvic_tilt_mean_deg"], 6.0, atol=1e-3)
    assert np.allclose(sr["pelvic_tilt_range_deg"], 7.0, atol=1e-2)


def test_truth_follows_the_definitions_through_the_public_functions():
    """Each definition evaluated independently (public angles and signals, 0.5 ms grid) matches the truth."""
    m = ImuModel(RunnerParams(stride_cv_pct=5.0, seed=9, pelvic_drop_left_deg=7.0, pta_right_g=10.0),
                 duration_s=20.0)
    st = m.truth_steps(4.0, 12.0).reset_index(drop=True)
    sr = m.truth_strides(4.0, 12.0).reset_index(drop=True)
    all_ic = m.truth_steps(3.0, 14.0)["ic_s"].to_numpy()
    for row in st.itertuples():
        nxt = all_ic[np.searchsorted(all_ic, row.ic_s) + 1]
        t = np.arange(row.ic_s, row.to_s, 5e-4)
        obl = m.angles_deg("pelvis", t)[:, 1]
        drop = (obl if row.foot == "left" else -obl).max()
        assert drop == pytest.approx(row.pelvic_drop_deg, abs=2e-3)
        t = np.linspace(row.ic_s, nxt, 1001)
        assert m.angles_deg("trunk", t)[:, 2].mean() == pytest.approx(row.trunk_lean_deg, abs=0.02)
        z = m.kinematics("pelvis", t).pos[2].v
        assert np.ptp(z) * 1e3 == pytest.approx(row.vertical_oscillation_mm, abs=0.05)
        t = np.arange(row.ic_s, row.ic_s + 0.1, 2e-5)
        pta = m.signals(f"tibia_{row.foot}", t)["acc_g"][:, 2].max()
        ppa = m.signals("pelvis", t)["acc_g"][:, 2].max()
        assert pta == pytest.approx(row.pta_g, abs=2e-3) and ppa == pytest.approx(row.ppa_g, abs=2e-3)
    for row in sr.itertuples():
        t = np.linspace(row.start_s, row.stop_s, 2001)
        rot = m.angles_deg("pelvis", t)[:, 0]
        resid = rot - np.polyval(np.polyfit(t, rot, 1), t)
        assert np.ptp(resid) == pytest.approx(row.pelvic_rotation_deg, abs=5e-3)
        tilt = m.angles_deg("pelvis", t)[:, 2]
        assert tilt.mean() == pytest.approx(row.pelvic_tilt_mean_deg, abs=5e-3)
        assert np.ptp(tilt) == pytest.approx(row.pelvic_tilt_range_deg, abs=5e-3)


def test_signals_do_not_depend_on_the_block_split(model):
    sensor = ImuSensor.random("tibia_right", seed=3)
    t = np.arange(5.0, 9.0, 1e-3)
    whole = model.signals("tibia_right", t, sensor)
    parts = [model.signals("tibia_right", c, sensor) for c in np.array_split(t, 7)]
    for key in whole:
        assert np.array_equal(whole[key], np.concatenate([p[key] for p in parts]))


def test_sensor_errors_mounting_noise_and_counts():
    sensor = ImuSensor.random("pelvis", seed=11)
    angle = np.degrees(Rotation.from_matrix(sensor.misalignment).magnitude())
    assert 0.0 < angle <= 10.0
    assert 0.0 < np.linalg.norm(sensor.gyro_bias_dps) <= 1.0
    n = 20000
    t = np.arange(n) / 500.0
    still = {"acc_g": np.tile([0.0, 0.0, 1.0], (n, 1)), "gyro_dps": np.zeros((n, 3)), "mag_ut": np.zeros((n, 3))}
    read = sensor.read(still, t)
    acc_sd, gyro_sd, _ = sensor.noise_sd()
    assert np.std(read["gyro_dps"], axis=0) == pytest.approx(np.full(3, gyro_sd), rel=0.05)
    assert np.mean(read["gyro_dps"], axis=0) == pytest.approx(sensor.gyro_bias_dps, abs=4 * gyro_sd / np.sqrt(n))
    g_board = np.asarray(sensor.misalignment).T @ [0.0, 0.0, 1.0]
    assert np.mean(read["acc_g"], axis=0) == pytest.approx(g_board + sensor.accel_bias_g, abs=1e-3)
    raw = sensor.raw(read)
    assert raw.dtype == np.dtype("<i2") and raw.shape == (n, 6)
    back = raw * sensor.gain()
    assert np.abs(back[:, :3] - read["acc_g"]).max() <= 16.0 / 32768.0 / 2 + 1e-9
    big = {"acc_g": np.full((3, 3), 40.0), "gyro_dps": np.full((3, 3), -3000.0), "mag_ut": np.zeros((3, 3))}
    clipped = sensor.raw(ImuSensor("pelvis").read(big, np.arange(3) / 500.0))
    assert np.all(clipped[:, :3] == 32767) and np.all(clipped[:, 3:] == -32768)


def test_windowed_models_agree_with_the_whole():
    runner = RunnerParams(stand_s=2.0, stride_cv_pct=6.0, seed=3)
    gait = gait_model(runner, 100.0)
    whole = ImuModel(runner, gait)
    t = np.arange(40.0, 44.0, 2e-3)
    part = ImuModel(runner, gait, window_s=(40.0, 44.0))
    early = ImuModel(runner, gait, window_s=(0.0, 5.0))
    for placement in PLACEMENTS:
        a, b = whole.signals(placement, t), part.signals(placement, t)
        assert np.array_equal(a["acc_g"], b["acc_g"]) and np.array_equal(a["gyro_dps"], b["gyro_dps"])
        te = np.arange(0.0, 5.0, 2e-3)
        assert np.array_equal(whole.signals(placement, te)["acc_g"], early.signals(placement, te)["acc_g"])
    assert whole.truth_steps(40.0, 44.0).equals(part.truth_steps(40.0, 44.0))


def test_a_real_filter_sees_the_model_through_the_noisy_board():
    """Offline VQF (a well-kept library, not ours) on the board's int16 counts recovers the model's pelvis
    obliquity (the board's true mounting undone), and the shock peaks sampled at 1000 / 500 Hz are the truth's."""
    import vqf

    p = RunnerParams(stand_s=6.0, pelvic_drop_left_deg=8.0, pelvic_drop_right_deg=3.0, seed=2)
    m = ImuModel(p, duration_s=40.0)
    fs = 500.0
    t = np.arange(0.0, 38.0, 1.0 / fs)
    sensor = ImuSensor.random("pelvis", seed=5)
    raw = sensor.raw(m.signals("pelvis", t, sensor)).astype(np.float64) * sensor.gain()
    out = vqf.offlineVQF(np.ascontiguousarray(np.radians(raw[:, 3:])), np.ascontiguousarray(raw[:, :3] * G_MPS2),
                         None, 1.0 / fs)
    board = Rotation.from_quat(out["quat6D"][:, [1, 2, 3, 0]])  # board to earth
    seg = board * Rotation.from_matrix(sensor.misalignment).inv()
    still = (t > 1.0) & (t < 5.0)
    rel = Rotation.from_quat(seg[still].as_quat().mean(axis=0)).inv() * seg
    obliquity = rel.as_euler("ZXY", degrees=True)[:, 1]
    truth = m.truth_steps(15.0, 36.0)
    est = np.array([(obliquity if r.foot == "left" else -obliquity)[(t >= r.ic_s) & (t < r.to_s)].max()
                    for r in truth.itertuples()])
    assert np.sqrt(np.mean((est - truth["pelvic_drop_deg"]) ** 2)) < 0.3
    for placement, rate, column, tol in (("tibia_left", 1000.0, "pta_g", 0.03), ("pelvis", 500.0, "ppa_g", 0.05)):
        board = ImuSensor.random(placement, seed=8)
        ts = np.arange(15.0, 36.0, 1.0 / rate)
        acc = (board.raw(m.signals(placement, ts, board))[:, :3] * board.gain()[:3]) @ np.asarray(board.misalignment).T
        rows = truth if placement == "pelvis" else truth[truth["foot"] == "left"]
        peaks = np.array([acc[(ts >= r.ic_s) & (ts < r.ic_s + 0.1), 2].max() for r in rows.itertuples()])
        assert np.median(np.abs(peaks / rows[column].to_numpy() - 1.0)) < tol, placement


def test_a_runner_who_changes_changes_the_imu_steps_too():
    p = RunnerParams(pelvic_drop_left_deg=9.0, variability_pct=0.0,
                     change={"start_s": 10.0, "stop_s": 10.0, "after": {"pelvic_drop_left_deg": 4.0}})
    m = ImuModel(p, gait_model(p, 25.0))
    st = m.truth_steps(2.0, 20.0)
    left = st[st["foot"] == "left"]
    assert np.allclose(left[left["ic_s"] < 10.0]["pelvic_drop_deg"], 9.0, atol=1e-3)
    assert np.allclose(left[left["ic_s"] > 10.0]["pelvic_drop_deg"], 4.0, atol=1e-3)
