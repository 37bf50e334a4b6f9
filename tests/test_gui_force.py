"""The app's live view of a force device (an instrumented treadmill): vertical force per belt and the COP on the
belt, offscreen, on the simulated split-belt treadmill in its own process; and its Qt-free derivation against the
simulator's model.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest

from treadlab.drivers.sim.change import gait_model
from treadlab.drivers.sim.params import RunnerParams
from treadlab.drivers.sim.rig import SimulatedRig, treadmill_spec
from treadlab.drivers.sim.treadmill import COP_MIN_FZ_N, TreadmillModel, channel_names, force_info
from treadlab.lab.gui.app import build_window
from treadlab.lab.gui.force_view import COP_MIN_N, PlateMap


@pytest.mark.parametrize("outputs", ["moments", "cop"])
def test_plate_map_gives_each_belts_load_and_cop_in_the_runners_frame(outputs):
    g = gait_model(RunnerParams(seed=1), 20.0)
    params = {"belts": "split", "outputs": outputs, "noise_n": 0, "noise_cop_mm": 0, "noise_speed_mps": 0}
    model = TreadmillModel(g, params)
    t = np.arange(2.0, 6.0, 1e-3)
    pm = PlateMap(channel_names("split", outputs), force_info(model.params))
    got = pm.derive(model.values(t)).reshape(len(t), 2, 3)
    for i, foot in enumerate(("left", "right")):
        fz = g.vertical_force(foot, t)
        np.testing.assert_allclose(got[:, i, 0], fz, atol=1e-6)
        cop = model.foot(foot, t).cop  # treadmill frame: x forward, y left
        on = fz >= max(COP_MIN_N, COP_MIN_FZ_N)
        np.testing.assert_allclose(got[on, i, 2], cop[on, 0], atol=1e-6)  # forward
        np.testing.assert_allclose(got[on, i, 1], -cop[on, 1], atol=1e-6)  # to the right = -y
        assert np.isnan(got[~on, i, 1:]).all()
    assert np.nanmax(got[:, 0, 1]) < 0 < np.nanmin(got[:, 1, 1])  # left belt on the runner's left


def test_a_mirrored_plate_frame_is_turned_into_the_runners_frame():
    # A Bertec-like frame: y forward, z down. Loaded 700 N at 100 mm forward, 50 mm to the right.
    labels = ["Fx", "Fy", "Fz", "Mx", "My", "Mz"]
    info = {"belts": "single", "axes": {"vertical": "-z", "forward": "y"}, "origin_mm": [0.0, 0.0, 0.0]}
    fz = -700.0  # z down: the load pushes along -z
    # right = forward x up = y x (-z) = -x: 50 mm to the right is x = -50; forward 100 mm is y = 100
    cop = np.array([-50.0, 100.0])
    mx, my = cop[1] * fz, -cop[0] * fz
    values = np.array([[0.0, 0.0, fz, mx, my, 0.0]])
    got = PlateMap(labels, info).derive(values)[0]
    np.testing.assert_allclose(got, [700.0, 50.0, 100.0])


@pytest.fixture(scope="module")
def treadmill_rig(tmp_path_factory):
    work = tmp_path_factory.mktemp("gui-tm")
    sim = SimulatedRig([treadmill_spec("split", seed=4)], work, runner=RunnerParams(seed=4), seed=4)
    sim.start()
    try:
        yield sim, sim.write_rig(work / "rig.toml")
    finally:
        sim.stop()


def test_the_app_shows_the_treadmills_belts_and_cop(qtbot, treadmill_rig, tmp_path):
    sim, rig_path = treadmill_rig
    with ExitStack() as stack:
        win = build_window(stack, rig_path, tmp_path, refresh_hz=30.0, title="treadmill rig")
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: win.devices.state_of("treadmill") == "streaming", timeout=20000)
        panel = win.force_plates

        def filled() -> bool:
            x = panel.curves["_l"].getData()[0] if "_l" in panel.curves else None
            return panel.isVisible() and x is not None and len(x) > 1000

        qtbot.waitUntil(filled, timeout=10000)
        qtbot.wait(1500)
        for s in ("_l", "_r"):
            x, y = panel.curves[s].getData()
            assert x.min() >= -panel.window_s - 0.1 and x.max() <= 0.1
            assert 1.5 * 686 < np.nanmax(y) < 3.5 * 686  # a running stance: 2-3 body weights on each belt
            cx, cy = panel.paths[s].getData()
            finite = np.isfinite(cx)
            assert finite.sum() > 200  # the COP of the last 2 s
            assert (cx[finite] < 0).all() if s == "_l" else (cx[finite] > 0).all()
            assert np.ptp(cy[finite]) > 300  # carried back by the belt through each stance
        win.timer.stop()
