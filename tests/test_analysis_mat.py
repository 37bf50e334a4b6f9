"""The pressure mat: footprints in space and time, left/right, strike class, belt speed, step width."""

from __future__ import annotations

import numpy as np
import pytest
from sessionfactory import MatSpec, truth_in, write_session
from test_analysis_known import match_steps

from treadlab.analysis import analyze
from treadlab.drivers.sim.gait import RunnerParams


@pytest.fixture(scope="module")
def mat_run(tmp_path_factory):
    p = tmp_path_factory.mktemp("mat") / "mat.h5"
    runner = RunnerParams(strike_left="rearfoot", strike_right="forefoot", speed_mps=3.2, cadence_spm=172,
                          step_width_mm=100.0, seed=12)
    model = write_session(p, runner, duration_s=6.0, mat=MatSpec(rows=176, cols=48))
    with analyze(p, source="mat") as ga:
        yield ga.steps.copy(), ga.summary, truth_in(model, 0.6, 6.4), runner


def test_footprints_are_the_steps(mat_run):
    steps, summary, truth, _ = mat_run
    inner = steps[(steps["ic_s"] > 0.6) & (steps["to_s"] < 6.4)]
    found, tr, missed, false = match_steps(inner, truth)
    assert missed == 0 and false == 0
    # A frame lasts 8.3 ms; the onset is found from the first frames' force rise.
    err_ms = np.abs(found["ic_s"] - tr["ic_s"]).to_numpy() * 1e3
    assert np.percentile(err_ms, 95) <= 5.0 and err_ms.max() <= 6.0
    assert np.abs(found["contact_time_ms"] - tr["contact_time_ms"]).median() <= 30.0
    assert summary["cadence_spm"] == pytest.approx(172, rel=0.03)


def test_left_right_and_strike_class(mat_run):
    steps, _, truth, _ = mat_run
    found, tr, _, _ = match_steps(steps, truth)
    assert (found["foot"] == tr["foot"]).all()
    assert (found["strike_class"].to_numpy() == tr["strike_class"].to_numpy()).mean() >= 0.9


def test_belt_speed_and_step_width(mat_run):
    steps, summary, _, runner = mat_run
    assert summary["belt_speed_mps"] == pytest.approx(runner.speed_mps, rel=0.1)
    assert summary["mat"]["step_width_m"]["mean"] == pytest.approx(runner.step_width_mm / 1e3, abs=0.02)
    # Step length on a treadmill: belt speed x step time.
    assert summary["mat"]["step_length_m"]["mean"] == pytest.approx(runner.speed_mps * 60 / 172, rel=0.15)
    assert np.nanmean(steps["peak_force_bw"]) == pytest.approx(2.4, rel=0.15)


def test_mean_footprint(tmp_path):
    p = tmp_path / "fp.h5"
    write_session(p, RunnerParams(seed=13), duration_s=3.0, mat=MatSpec(rows=176, cols=48))
    with analyze(p) as ga:
        fp = ga.mat_footprint("left")
        img = fp["mean"]
        assert fp["steps"] >= 3 and img.shape[0] > img.shape[1]
        loaded = img > 0.1 * img.max()
        rows = np.flatnonzero(loaded.any(axis=1))
        # The foot (260 mm) stays in place in the belt frame: heel near the start, toes ~30 cells further.
        assert rows[0] <= 4 and 24 <= rows[-1] - rows[0] <= 36
        assert np.all(fp["peak"] >= img)
