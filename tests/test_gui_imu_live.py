"""The IMU live view in the app, offscreen with pytest-qt: pelvis obliquity and rotation traces, the last steps'
pelvic drop per side and PTA per step, from a simulated runner's insoles (the steps) and IMUs (the values) fed
through the views as :meth:`LiveSource.poll` feeds them.
"""

from __future__ import annotations

import numpy as np
import pytest
from imu_live_support import SimRunner

from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.kinds import Calibration, DeviceDescription
from treadlab.lab.gui.imu_live import LiveImuSteps
from treadlab.lab.gui.imu_view import ImuLiveView, ImuPanel
from treadlab.lab.gui.insole_view import InsoleLiveView

RUNNER = RunnerParams(cadence_spm=170.0, stand_s=5.0, seed=3, pelvic_drop_left_deg=7.0, pelvic_drop_right_deg=3.0,
                      pta_left_g=8.0, pta_right_g=11.0)
SECONDS = 32.0


def _imu_desc(board) -> DeviceDescription:
    """The description an identified simulated board gives (INFO, CALIBRATION unit "imu")."""
    s = board.sensor
    info = {"kind": "imu", "dtype": "i16", "channels": list(s.channels), "placement": s.placement,
            "range_g": s.range_g, "range_dps": s.range_dps, "rate_hz": s.rate_hz}
    gain = board.gain.astype(np.float32)
    return DeviceDescription(name=board.name, kind="imu", protocol="binary", shape=(len(s.channels),),
                             dtype=np.dtype("<i2"), rate_hz=float(s.rate_hz), clock_hz=1e6, info=info,
                             calibration=Calibration("imu", gain, np.zeros_like(gain)),
                             channel_labels=tuple(s.channels))


def _insole_desc(foot: str) -> DeviceDescription:
    lay = load_layout("insole16")
    n = len(lay.positions_mm)
    return DeviceDescription(name=f"insole_{foot}", kind="insole", side=foot, protocol="binary", rate_hz=200.0,
                             clock_hz=1e6, shape=(n,), dtype=np.dtype("<f4"), info={},
                             calibration=Calibration("N", np.ones(n, np.float32), np.zeros(n, np.float32)),
                             layout={"positions_mm": lay.positions_mm, "areas_mm2": lay.areas_mm2,
                                     "foot_length_mm": lay.foot_length_mm})


@pytest.fixture(scope="module")
def live():
    sim = SimRunner(RUNNER, SECONDS, ("pelvis", "tibia_left", "tibia_right"))
    views = {n: ImuLiveView(_imu_desc(b), 10.0) for n, b in sim.boards.items()}
    insoles = {f: InsoleLiveView(_insole_desc(f), 10.0) for f in ("left", "right")}
    t_ins = np.arange(int(SECONDS * 200)) / 200.0
    forces = {f: sim.insole_forces(f, t_ins).astype(np.float32) for f in insoles}
    return sim, views, insoles, t_ins, forces


def _poll(sim, views, insoles, t_ins, forces, t0: float, t1: float) -> None:
    """What LiveSource.poll does for the samples of [t0, t1): each view takes its new samples."""
    for n, v in views.items():
        board = sim.boards[n]
        a, b = np.searchsorted(board.t, [t0, t1])
        if b > a:
            v.take(board.t[a:b], board.raw[a:b])
    a, b = np.searchsorted(t_ins, [t0, t1])
    for f, v in insoles.items():
        if b > a:
            v.take(t_ins[a:b], forces[f][a:b])


def test_the_panel_shows_the_pelvis_traces_and_the_last_steps_values_of_the_state(live, qtbot):
    sim, views, insoles, t_ins, forces = live
    panel = ImuPanel()
    qtbot.addWidget(panel)
    panel.set_views(list(views.values()))
    panel.set_all_views([*views.values(), *insoles.values()])
    assert panel.pelvis is not None and panel.step_values.isVisibleTo(panel)
    t, frame_s = 0.0, 0.05
    while t < SECONDS:  # one display frame per 50 ms of data
        _poll(sim, views, insoles, t_ins, forces, t, t + frame_s)
        t += frame_s
        panel.refresh(t, slow=True)
    steps = panel.steps
    # every aligned stance's values: pelvic drop per side, PTA per step, against the simulator's truth per step
    for foot in ("left", "right"):
        for metric in ("pelvic_drop_deg", "pta_g"):
            ic, vals = (np.array(x) for x in zip(*steps.values_[(metric, foot)]))
            true = sim.truth_at(foot, ic, metric)
            known = np.isfinite(true)
            assert len(vals) >= 10 and known.sum() >= len(vals) - 1
            if metric == "pelvic_drop_deg":
                assert np.sqrt(np.mean((vals[known] - true[known]) ** 2)) < 1.0
            else:
                assert np.median(np.abs(vals[known] / true[known] - 1.0)) < 0.10
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
    sim = SimRunner(RUNNER, 20.0, ("pelvis",))
    board = sim.boards["pelvis_imu"]
    view = ImuLiveView(_imu_desc(board), 10.0)
    panel = ImuPanel()
    qtbot.addWidget(panel)
    panel.set_views([view])
    panel.set_all_views([view])
    assert not panel.step_values.isVisibleTo(panel)
    view.take(board.t, board.raw)
    panel.refresh(20.0, slow=True)
    assert view.online.state == "ready" and panel.pelvis.curves["obliquity"].getData()[0] is not None
    assert isinstance(panel.steps, LiveImuSteps) and not panel.steps.has_steps
