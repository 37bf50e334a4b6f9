"""The IMU live view in the app, offscreen with pytest-qt: pelvis obliquity and rotation traces, the last steps'
pelvic drop per side and PTA per step, from a simulated runner's insoles (the steps) and IMUs (the values) fed
through the views as :meth:`LiveSource.poll` feeds them.
"""

from __future__ import annotations

import numpy as np
import pytest
from imu_live_support import GaitImu

from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.kinds import Calibration, DeviceDescription
from treadlab.lab.gui.imu_live import LiveImuSteps
from treadlab.lab.gui.imu_view import ImuLiveView, ImuPanel
from treadlab.lab.gui.insole_view import InsoleLiveView

RUNNER = RunnerParams(cadence_spm=170.0, stand_s=5.0, seed=3)
SECONDS = 32.0
ACC_G, GYRO_DPS = 16.0, 2000.0


def _imu_desc(name: str, placement: str, gyro: bool) -> DeviceDescription:
    channels = ["ax", "ay", "az"] + (["gx", "gy", "gz"] if gyro else [])
    gain = np.array([ACC_G / 32768] * 3 + [GYRO_DPS / 32768] * (3 if gyro else 0), np.float32)
    info = {"kind": "imu", "dtype": "i16", "channels": channels, "placement": placement, "range_g": ACC_G,
            "rate_hz": 500}
    if gyro:
        info["range_dps"] = GYRO_DPS
    return DeviceDescription(name=name, kind="imu", protocol="binary", shape=(len(channels),), dtype=np.dtype("<i2"),
                             rate_hz=500.0, clock_hz=1e6, info=info,
                             calibration=Calibration("imu", gain, np.zeros_like(gain)), channel_labels=tuple(channels))


def _insole_desc(foot: str) -> DeviceDescription:
    lay = load_layout("insole16")
    n = len(lay.positions_mm)
    return DeviceDescription(name=f"insole_{foot}", kind="insole", side=foot, protocol="binary", rate_hz=200.0,
                             clock_hz=1e6, shape=(n,), dtype=np.dtype("<f4"), info={},
                             calibration=Calibration("N", np.ones(n, np.float32), np.zeros(n, np.float32)),
                             layout={"positions_mm": lay.positions_mm, "areas_mm2": lay.areas_mm2,
                                     "foot_length_mm": lay.foot_length_mm})


def _raw(values: np.ndarray, gain: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values / gain), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def live():
    imu = GaitImu(RUNNER, SECONDS, drop_deg=(7.0, 3.0), pta_g=(8.0, 11.0), gyro_bias_dps=(0.3, -0.2, 0.1),
                  gyro_noise_dps=0.3, acc_noise_g=0.01, mount_deg=(6.0, -5.0, 8.0))
    gyro, acc = imu.pelvis()
    imus = {"pelvis_imu": (_imu_desc("pelvis_imu", "pelvis", True), np.column_stack([acc, gyro])),
            "tibia_l": (_imu_desc("tibia_l", "tibia_left", False), imu.tibia("left")),
            "tibia_r": (_imu_desc("tibia_r", "tibia_right", False), imu.tibia("right"))}
    views = {n: ImuLiveView(d, 10.0) for n, (d, _) in imus.items()}
    raws = {n: _raw(v, np.asarray(d.calibration.gain, np.float64)) for n, (d, v) in imus.items()}
    insoles = {f: InsoleLiveView(_insole_desc(f), 10.0) for f in ("left", "right")}
    t_ins = np.arange(int(SECONDS * 200)) / 200.0
    forces = {f: imu.insole_forces(f, t_ins).astype(np.float32) for f in insoles}
    return imu, views, raws, insoles, t_ins, forces


def _poll(views, raws, insoles, t_ins, forces, imu_t, t0: float, t1: float) -> None:
    """What LiveSource.poll does for the samples of [t0, t1): each view takes its new samples."""
    a, b = np.searchsorted(imu_t, [t0, t1])
    for n, v in views.items():
        if b > a:
            v.take(imu_t[a:b], raws[n][a:b])
    a, b = np.searchsorted(t_ins, [t0, t1])
    for f, v in insoles.items():
        if b > a:
            v.take(t_ins[a:b], forces[f][a:b])


def test_the_panel_shows_the_pelvis_traces_and_the_last_steps_values_of_the_state(live, qtbot):
    imu, views, raws, insoles, t_ins, forces = live
    panel = ImuPanel()
    qtbot.addWidget(panel)
    panel.set_views(list(views.values()))
    panel.set_all_views([*views.values(), *insoles.values()])
    assert panel.pelvis is not None and panel.step_values.isVisibleTo(panel)
    t, frame_s = 0.0, 0.025
    while t < SECONDS:  # one display frame per 25 ms of data
        _poll(views, raws, insoles, t_ins, forces, imu.t, t, t + frame_s)
        t += frame_s
        panel.refresh(t, slow=True)
    steps = panel.steps
    # every aligned stance's values: pelvic drop per side, PTA per step, as the runner was made
    for foot, drop, pta in (("left", 7.0, 8.0), ("right", 3.0, 11.0)):
        drops = steps.last("pelvic_drop_deg", foot, 50)
        ptas = steps.last("pta_g", foot, 50)
        assert len(drops) >= 10 and len(ptas) >= 10
        assert np.median(drops) == pytest.approx(drop, abs=0.6)
        assert np.median(ptas) == pytest.approx(pta, rel=0.05)
    # the labels show the state's numbers
    texts = steps.texts()
    for key, lab in panel.step_values.labels.items():
        assert lab.text() == texts[key] != "–"
    shown = [float(x) for x in panel.step_values.labels["pelvic_drop_deg_left"].text().split("(")[0].split()]
    assert shown == pytest.approx(steps.last("pelvic_drop_deg", "left"), abs=0.051)
    # the traces are the state's angles of the last 5 s
    ang = views["pelvis_imu"].online.angles(5.0)
    x, y = panel.pelvis.curves["obliquity"].getData()
    assert len(x) == len(ang) > 2000 and np.allclose(y, ang[:, 2]) and np.allclose(x, ang[:, 0] - t)
    _, rot = panel.pelvis.curves["rotation"].getData()
    assert np.allclose(rot, ang[:, 1])
    assert 5.0 < np.ptp(ang[:, 2]) < 12.0  # obliquity swings between +7 and -3 deg
    assert "ready" in panel.pelvis.title.text()
    panel.reset()
    assert steps.last("pelvic_drop_deg", "left") == []


def test_without_insoles_there_are_no_step_values_but_the_traces_go_on(qtbot):
    imu = GaitImu(RUNNER, 20.0)
    gyro, acc = imu.pelvis()
    desc = _imu_desc("pelvis_imu", "pelvis", True)
    view = ImuLiveView(desc, 10.0)
    panel = ImuPanel()
    qtbot.addWidget(panel)
    panel.set_views([view])
    panel.set_all_views([view])
    assert not panel.step_values.isVisibleTo(panel)
    raw = _raw(np.column_stack([acc, gyro]), np.asarray(desc.calibration.gain, np.float64))
    view.take(imu.t, raw)
    panel.refresh(20.0, slow=True)
    assert view.online.state == "ready" and panel.pelvis.curves["obliquity"].getData()[0] is not None
    assert isinstance(panel.steps, LiveImuSteps) and not panel.steps.has_steps
