"""The runner screen and the feedback panel (pytest-qt, offscreen), and a feedback capture from the main window on
the simulated rig."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from pathlib import Path

import h5py
import numpy as np
import pytest

from treadlab.drivers.sim.gait import RunnerParams
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.errors import ConfigError
from treadlab.lab.gui.app import build_window
from treadlab.lab.gui.feedback_panel import FeedbackPanel
from treadlab.lab.gui.runner_screen import RunnerScreen, light

DOC_IMAGE = Path(__file__).resolve().parents[1] / "docs" / "images" / "runner-screen.png"


def test_traffic_light():
    assert light(40.0, 34.0, None) == "green"
    assert light(33.0, 34.0, None) == "amber"  # within 5 % of the bound
    assert light(20.0, 34.0, None) == "red"
    assert light(101.0, None, 100.0) == "amber" and light(130.0, None, 100.0) == "red"
    assert light(float("nan"), 34.0, None) == "none" and light(5.0, None, None) == "none"


def test_runner_screen_shows_a_new_value_within_100_ms_at_30_frames_per_second(qtbot, tmp_path):
    screen = RunnerScreen("strike_index_pct", 34.0, 100.0)
    qtbot.addWidget(screen)
    screen.resize(1280, 720)
    screen.show()
    clock_t0 = time.monotonic()
    screen.set_phase("feedback", 180.0, lambda: time.monotonic() - clock_t0)
    values = [18, 22, 25, 31, 33, 36, 41, 45, 48, 52, 55]
    for v in values:  # a step every 350 ms, as at 170 steps/min
        screen.push(float(v))
        qtbot.wait(350)
    assert screen.value_text() == "55" and screen.light_ == "green" and len(screen.trend) == 10
    assert "feedback" in screen.phase_text_ and "2:5" in screen.phase_text_
    lat = np.array(screen.shown_latency_s_)
    assert len(lat) >= len(values) - 1 and lat.max() <= 0.100
    assert screen.frame_rate_hz() >= 30.0
    screen.push(20.0)
    qtbot.waitUntil(lambda: screen.light_ == "red", timeout=200)
    screen.push(45.0)
    img = screen.grab()
    out = tmp_path / "runner.png"
    assert img.save(str(out)) and out.stat().st_size > 5000
    qtbot.wait(100)
    if os.environ.get("TREADLAB_DOC_IMAGES"):  # TREADLAB_DOC_IMAGES=1 pytest ...: the documentation's picture
        screen.grab().save(str(DOC_IMAGE))
    screen.close()


def test_feedback_panel_builds_the_protocol_of_the_next_capture(qtbot):
    panel = FeedbackPanel()
    qtbot.addWidget(panel)
    p = panel.protocol()
    assert p.name == "five-minute" and p.metric == "strike_index_pct" and p.low == 34.0
    panel.metric_box.setCurrentText("vilr_bw_s")
    panel.low_edit.setText("")
    panel.high_edit.setText("70")
    panel.cue_box.setCurrentText("bandwidth")
    p = panel.protocol()
    assert (p.metric, p.low, p.high, p.cue_kind) == ("vilr_bw_s", None, 70.0, "bandwidth")
    assert [ph.name for ph in p.phases] == ["baseline", "feedback", "retention"]
    panel.low_edit.setText("90")
    with pytest.raises(ConfigError, match="above its high"):
        panel.protocol()
    panel.protocol_box.setCurrentText("2x5+5")
    p = panel.protocol()
    assert p.relative and p.high_pct == 80.0 and p.low is None and p.high is None
    assert not panel.mute_button.isEnabled()
    panel.set_running(True)
    got = []
    panel.mute_toggled.connect(got.append)
    panel.mute_button.click()
    panel.mute_button.click()
    assert got == [True, False] and not panel.start_button.isEnabled()
    started = []
    panel.set_running(False)
    panel.start_requested.connect(lambda: started.append(1))
    panel.start_button.click()
    assert started == [1] and panel.armed()


PROTO = """
[target]
metric = "strike_index_pct"
low = 34.0
[cue]
kind = "screen"
[[phase]]
name = "baseline"
duration_s = 5
feedback = "off"
[[phase]]
name = "feedback"
duration_s = 60
feedback = "on"
"""


def test_a_feedback_capture_from_the_main_window(qtbot, tmp_path, monkeypatch):
    runner = RunnerParams(strike_left="midfoot", strike_right="midfoot", seed=6)
    with SimulatedRig.default(tmp_path / "dev", runner=runner, seed=6) as sim, ExitStack() as stack:
        rig_path = sim.write_rig(tmp_path / "rig.toml", body_mass_kg=70.0)
        win = build_window(stack, rig_path, tmp_path, refresh_hz=30.0, title="fb", confirm=lambda *a: True)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: all(win.devices.state_of(n) == "streaming" for n in win.source.configs),
                        timeout=20000)
        from treadlab.feedback import protocol as protocol_module

        monkeypatch.setattr(win.feedback, "protocol", lambda: protocol_module.parse_protocol(PROTO, "gui-test"))
        screen = win.open_runner_screen(0, full_screen=False)
        qtbot.addWidget(screen)
        win.session.participant.setText("P31")
        win.feedback.start_button.click()
        assert win.source.recording and win.feedback_run is not None and win.feedback.mute_button.isEnabled()
        qtbot.waitUntil(lambda: screen.light_ == "green", timeout=20000)  # midfoot: in band
        qtbot.waitUntil(lambda: len(win.feedback_run.engine.cues_) >= 6, timeout=10000)
        assert "phase feedback" in win.feedback.status_label.text()
        win.feedback.mute_button.click()
        assert win.feedback_run.engine.muted
        win.session.stop_button.click()
        assert not win.source.recording and not win.feedback.mute_button.isEnabled()
        with h5py.File(win.last_path, "r") as f:
            assert f["feedback"].attrs["protocol_name"] == "gui-test"
            assert f["feedback/cues/time"].shape[0] > 3
            assert [n.decode() for n in f["feedback/phases/name"][()]] == ["baseline", "feedback"]
        win.timer.stop()
        screen.close()
