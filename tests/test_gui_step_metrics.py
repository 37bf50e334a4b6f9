"""Live step metrics from ring-buffer windows, against a synthetic runner with known cadence and strike."""

from __future__ import annotations

import numpy as np
import pytest

from treadlab.lab.gui.step_metrics import LiveStepMetrics


def _runner(t, offset_s, stride_s, contact_s, impact, cop_y_mm, seed):
    ph = (t - offset_s) % stride_s
    on = (ph < contact_s) & (t >= offset_s)
    f = np.where(on, 1800.0 * np.sin(np.pi * ph / contact_s), 0.0)
    if impact:
        f += np.where(on, 900.0 * np.exp(-(((ph - 0.03) / 0.01) ** 2)), 0.0)
    # The contact force acts at a COP moving from cop_y_mm towards the toes; a swing-phase reading of about
    # 15 N (sensor offset and noise) sits at mid-foot all the time. Moment = sum of force x position.
    offset = 15.0 + np.random.default_rng(seed).normal(0.0, 2.0, len(t))
    moment_y = f * (cop_y_mm + 150.0 * ph / contact_s) + offset * 130.0
    return f + offset, moment_y


def test_live_step_metrics_known_answer_from_a_synthetic_runner():
    fs_hz, cadence_spm, contact_s, foot_mm = 750.0, 172.0, 0.24, 270.0
    step_s = 60.0 / cadence_spm
    t = np.arange(0.0, 12.0, 1.0 / fs_hz)
    fl, myl = _runner(t, 0.1, 2 * step_s, contact_s, True, 20.0, 1)      # rearfoot with an impact peak
    fr, myr = _runner(t, 0.1 + step_s, 2 * step_s, contact_s, False, 200.0, 2)  # forefoot, no impact peak
    m = LiveStepMetrics(body_mass_kg=70.0)
    added = 0
    for end in np.arange(2.0, 12.0, 0.2):  # polls at 5 Hz over a 5 s ring window
        sel = (t >= end - 5.0) & (t < end)
        added += m.update("left", t[sel], fl[sel], myl[sel], foot_mm)
        added += m.update("right", t[sel], fr[sel], myr[sel], foot_mm)
    left, right = m.table("left"), m.table("right")
    assert added == len(left) + len(right)
    assert len(left) >= 14 and len(right) >= 14
    assert np.all(np.diff(left["ic_s"]) == pytest.approx(2 * step_s, abs=0.01))  # each step counted once
    assert m.cadence_spm() == pytest.approx(cadence_spm, rel=0.01)
    assert left["contact_ms"].median() == pytest.approx(contact_s * 1e3, rel=0.05)
    assert left["strike_index_pct"].median() == pytest.approx(100 * 20.0 / foot_mm, abs=2.0)
    assert right["strike_index_pct"].median() == pytest.approx(100 * 200.0 / foot_mm, abs=2.0)
    assert left["vilr_bw_s"].median() > 2 * right["vilr_bw_s"].median() > 0
    texts = m.texts()
    assert texts["cadence"] == f"{cadence_spm:.0f} steps/min"
    assert texts["strike_left"].startswith("R R R R R") and texts["strike_right"].startswith("F F F F F")
    assert texts["vilr_left"].endswith("BW/s") and texts["asymmetry"].startswith("VILR -")
    m.reset(body_mass_kg=80.0)
    assert m.table("left").empty and m.texts()["cadence"] == "–" and m.body_mass_kg == 80.0


def test_toe_off_trigger_fires_once_per_step():
    from treadlab.lab.gui.step_metrics import ToeOffTrigger

    fs_hz, step_s, contact_s = 750.0, 60.0 / 170.0, 0.25
    t = np.arange(0.0, 10.0, 1.0 / fs_hz)
    f, my = _runner(t, 0.1, 2 * step_s, contact_s, True, 20.0, 3)
    trig = ToeOffTrigger()
    m = LiveStepMetrics()
    fired = []
    for end in np.arange(0.2, 10.0, 1 / 30.0):  # display frames at 30 Hz, each with the last 5 s
        sel = (t >= end - 5.0) & (t < end)
        if trig.due(t[sel], f[sel]):
            fired.append(end)
            m.update("left", t[sel], f[sel], my[sel], 270.0)
    toe_offs = 0.1 + contact_s + 2 * step_s * np.arange(20)
    toe_offs = toe_offs[toe_offs < 10.0 - 1 / 30.0]
    assert len(fired) == len(toe_offs)
    np.testing.assert_allclose(fired, toe_offs, atol=1 / 30.0 + 0.01)  # within a frame of each toe-off
    assert len(m.table("left")) >= len(toe_offs) - 1  # every step but possibly the first is analysed
    trig.reset()
    assert trig.checked_s_ == -np.inf and not trig.in_contact_
