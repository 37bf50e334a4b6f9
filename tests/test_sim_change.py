"""A simulated runner whose strike changes over time on a schedule (RunnerParams.change)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.change import ScheduledGait, gait_model
from treadlab.drivers.sim.gait import GaitModel
from treadlab.drivers.sim.params import GaitParamsError, RunnerParams

CHANGE = {"start_s": 20.0, "stop_s": 60.0, "after": {"strike_left": "midfoot", "strike_right": "midfoot",
                                                     "loading_rate_asym_pct": 0.0}}
RUNNER = RunnerParams(strike_left="rearfoot", strike_right="rearfoot", loading_rate_asym_pct=10.0, seed=5,
                      change=CHANGE)


def test_the_share_of_new_steps_ramps_from_start_to_stop():
    g = gait_model(RUNNER, 100.0)
    assert isinstance(g, ScheduledGait)
    st = g.steps
    mid = st["strike_class"] == "midfoot"
    assert not mid[st["ic_s"] < 20].any() and mid[st["ic_s"] > 60].all()
    ramp = st[(st["ic_s"] > 20) & (st["ic_s"] < 60)]
    assert 0.3 < (ramp["strike_class"] == "midfoot").mean() < 0.7
    first_half = ramp[ramp["ic_s"] < 40]["strike_class"] == "midfoot"
    second_half = ramp[ramp["ic_s"] >= 40]["strike_class"] == "midfoot"
    assert first_half.mean() < second_half.mean()
    assert (st["model"] == np.where(mid, "after", "before")).all()


def test_signals_follow_the_model_of_each_step_and_windows_agree():
    g = gait_model(RUNNER, 100.0)
    before = GaitModel(dataclasses.replace(RUNNER, change=None), 100.0)
    after = GaitModel(dataclasses.replace(RUNNER, change=None, **CHANGE["after"]), 100.0)
    lay = load_layout("insole16")
    t_early, t_late = np.arange(0, 19, 0.005), np.arange(62, 80, 0.005)
    np.testing.assert_array_equal(g.insole_forces("left", t_early, lay), before.insole_forces("left", t_early, lay))
    np.testing.assert_array_equal(g.insole_forces("right", t_late, lay), after.insole_forces("right", t_late, lay))
    # a window of the model gives the same values as the whole
    part = ScheduledGait(RUNNER, 30.0, start_s=30.0)
    t = np.arange(35, 55, 0.005)
    np.testing.assert_array_equal(part.insole_forces("left", t, lay), g.insole_forces("left", t, lay))
    assert set(part.steps["model"]) == {"before", "after"}
    # both models share every initial contact
    np.testing.assert_array_equal(g.steps["ic_s"], before.steps["ic_s"])


def test_a_change_of_the_step_timing_or_a_bad_table_is_refused():
    for change, words in (({"start_s": 1, "stop_s": 2, "after": {"cadence_spm": 180}}, "cannot change"),
                          ({"start_s": 5, "stop_s": 2, "after": {"strike_left": "midfoot"}}, "start_s <= stop_s"),
                          ({"start_s": 1, "stop_s": 2, "after": {"strike_left": "heel"}}, "strike_left"),
                          ({"start_s": 1, "stop_s": 2}, "after"), ({"at": 1}, "unknown key")):
        with pytest.raises(GaitParamsError, match=words):
            RunnerParams(change=change)
    assert RunnerParams.from_dict(RUNNER.to_dict()) == RUNNER
