"""The pressure mat: footprints in space and time, left/right, strike class, belt speed, step width.

Known answers are the gait model's steps. The issue's targets: every step found and no false ones, initial contact
within 5 ms (the mat's frames last 8.3 ms), strike class right for >= 95 % of steps, each asymmetry within 3 SI
points; for the mat also left/right, step length and width, and the belt speed from the footprints' motion.
"""

from __future__ import annotations

import numpy as np
import pytest
from sessionfactory import InsoleSpec, MatSpec, truth_in, write_session
from test_analysis_known import match_steps

from treadlab.analysis import analyze, symmetry_index
from treadlab.analysis.mat import _pooled_onset
from treadlab.analysis.matviews import mean_footprints
from treadlab.drivers.sim.gait import RunnerParams

DURATION_S = 6.0


@pytest.fixture(scope="module")
def mat_run(tmp_path_factory):
    p = tmp_path_factory.mktemp("mat") / "mat.h5"
    runner = RunnerParams(strike_left="rearfoot", strike_right="forefoot", speed_mps=3.2, cadence_spm=172,
                          step_width_mm=100.0, seed=12)
    model = write_session(p, runner, duration_s=DURATION_S, mat=MatSpec(rows=176, cols=48))
    with analyze(p, source="mat") as ga:
        yield ga.steps.copy(), ga.summary, truth_in(model, 0.6, 6.4), runner


def test_footprints_are_the_steps(mat_run):
    steps, summary, truth, _ = mat_run
    inner = steps[(steps["ic_s"] > 0.6) & (steps["to_s"] < 6.4)]
    found, tr, missed, false = match_steps(inner, truth)
    assert missed == 0 and false == 0
    # A frame lasts 8.3 ms; the onset is found from the first frames' force rise.
    err_ms = np.abs(found["ic_s"] - tr["ic_s"]).to_numpy() * 1e3
    assert err_ms.max() <= 5.0
    assert np.abs(found["contact_time_ms"] - tr["contact_time_ms"]).median() <= 30.0
    assert summary["cadence_spm"] == pytest.approx(172, rel=0.03)


def test_left_right_and_strike_class(mat_run):
    steps, _, truth, _ = mat_run
    found, tr, _, _ = match_steps(steps, truth)
    assert (found["foot"] == tr["foot"]).all()
    assert (found["strike_class"].to_numpy() == tr["strike_class"].to_numpy()).mean() >= 0.95


def test_belt_speed_and_step_width(mat_run):
    steps, summary, _, runner = mat_run
    assert summary["belt_speed_mps"] == pytest.approx(runner.speed_mps, rel=0.07)
    assert summary["mat"]["step_width_m"]["mean"] == pytest.approx(runner.step_width_mm / 1e3, abs=0.015)
    # Step length on a treadmill: belt speed x step time.
    assert summary["mat"]["step_length_m"]["mean"] == pytest.approx(runner.speed_mps * 60 / 172, rel=0.03)
    assert np.nanmean(steps["peak_force_bw"]) == pytest.approx(2.4, rel=0.15)


def test_mean_footprint(tmp_path):
    p = tmp_path / "fp.h5"
    write_session(p, RunnerParams(seed=13), duration_s=3.0, mat=MatSpec(rows=176, cols=48))
    with analyze(p) as ga:
        fp = ga.mat_footprint("left")
        img = fp["mean"]
        assert fp["steps"] >= 3 and img.shape[0] > img.shape[1]
        loaded = img > 0.1 * np.nanmax(img)
        rows = np.flatnonzero(loaded.any(axis=1))
        # The foot (260 mm) stays in place in the belt frame: the heel within 30 mm of the heel mark (the window
        # starts 30 mm behind it), the toes ~30 cells further.
        assert rows[0] * fp["pitch_mm"] <= 30.0 + 30.0 and 24 <= rows[-1] - rows[0] <= 36
        covered = np.isfinite(img)
        assert covered.mean() > 0.5 and np.all(fp["peak"][covered] >= img[covered])
        # one definition: the footprint the report draws
        res = ga.mat_result
        steps = res.steps_[ga.segment.contains(res.steps_["ic_s"])]
        drawn = mean_footprints(res.mat, steps, res.belt_axis_, res.forward_sign_, res.belt_speed_mps_)["left"]
        np.testing.assert_array_equal(img, drawn["mean"])
        np.testing.assert_array_equal(fp["peak"], drawn["peak"])


# --------------------------------------------------------------------------------------------- the matrix

# strike left, strike right, cadence spm, speed m/s, asymmetry % (loading rate; contact time and peak force get
# half), belt along the mat's rows or columns, seed
FAST = [
    ("forefoot", "forefoot", 172, 3.2, 0.0, "rows", 12),
    ("midfoot", "midfoot", 160, 3.0, -10.0, "cols", 21),
    ("rearfoot", "midfoot", 185, 3.8, 20.0, "cols", 5),
]
SLOW = [
    ("rearfoot", "rearfoot", 172, 3.2, 0.0, "rows", 12),
    ("midfoot", "midfoot", 172, 3.2, 0.0, "rows", 12),
    ("rearfoot", "rearfoot", 140, 2.6, 15.0, "cols", 3),
    ("forefoot", "forefoot", 190, 4.0, 20.0, "cols", 21),
    ("midfoot", "forefoot", 180, 3.6, 10.0, "rows", 3),
    ("forefoot", "rearfoot", 150, 2.8, -20.0, "cols", 12),
    ("midfoot", "rearfoot", 185, 3.8, 0.0, "cols", 21),
    ("forefoot", "midfoot", 140, 2.6, -15.0, "rows", 7),
    ("rearfoot", "forefoot", 190, 4.0, 10.0, "rows", 9),
]


def _id(c) -> str:
    return f"{c[0][:4]}-{c[1][:4]}-{c[2]}spm-asym{c[4]:g}-{c[5]}-s{c[6]}"


def _run_case(case, tmp_path, insoles=None):
    sl, sr, cad, speed, asym, along, seed = case
    runner = RunnerParams(strike_left=sl, strike_right=sr, cadence_spm=cad, speed_mps=speed,
                          contact_time_ms=float(np.interp(cad, [140, 190], [290, 220])),
                          loading_rate_asym_pct=asym, contact_time_asym_pct=asym / 2, peak_force_asym_pct=asym / 2,
                          step_width_mm=100.0, seed=seed)
    spec = MatSpec(rows=176, cols=48) if along == "rows" else MatSpec(rows=48, cols=176, belt_axis="cols")
    p = tmp_path / "mat.h5"
    model = write_session(p, runner, duration_s=DURATION_S, insoles=insoles, mat=spec)
    with analyze(p, source="mat") as ga:
        return runner, model, ga.steps.copy(), ga.summary, ga.mat_result


def _check_targets(runner, model, steps, summary):
    truth = truth_in(model, 0.6, DURATION_S + 0.4)
    inner = steps[(steps["ic_s"] > 0.6) & (steps["to_s"] < DURATION_S + 0.4)]
    found, tr, missed, false = match_steps(inner, truth)
    assert len(tr) >= 12 and missed == 0 and false == 0
    assert (found["foot"].to_numpy() == tr["foot"].to_numpy()).all()
    err_ms = np.abs(found["ic_s"] - tr["ic_s"]).to_numpy() * 1e3
    assert err_ms.max() <= 5.0, f"IC error up to {err_ms.max():.1f} ms"
    assert (found["strike_class"].to_numpy() == tr["strike_class"].to_numpy()).mean() >= 0.95
    for col in ("contact_time_ms", "peak_force_bw"):
        want = symmetry_index(tr.loc[tr["foot"] == "left", col].mean(), tr.loc[tr["foot"] == "right", col].mean())
        assert abs(summary["asymmetry_si_pct"][col] - want) <= 3.0, col
    mat = summary["mat"]
    assert mat["step_length_m"]["mean"] == pytest.approx(runner.speed_mps * 60 / runner.cadence_spm, rel=0.03)
    width_mm = np.mean(np.abs(np.diff(model.steps["x_mm"].to_numpy())))  # lateral heel distance, consecutive
    assert mat["step_width_m"]["mean"] * 1e3 == pytest.approx(width_mm, abs=15.0)
    assert summary["belt_speed_mps"] == pytest.approx(runner.speed_mps, rel=0.07)


@pytest.mark.parametrize("case", FAST, ids=_id)
def test_mat_matrix(case, tmp_path):
    _check_targets(*_run_case(case, tmp_path)[:4])


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=_id)
def test_mat_matrix_broad(case, tmp_path):
    _check_targets(*_run_case(case, tmp_path)[:4])


def test_foot_length_from_the_insoles_or_the_width(tmp_path):
    """A fore-foot striker never loads the heel: the mat takes the foot length from the insoles' layout, else
    from the loaded width (breadth ~0.38 of length), not from the short footprints."""
    case = ("forefoot", "forefoot", 172, 3.2, 0.0, "rows", 12)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    *_, res = _run_case(case, tmp_path / "a", insoles=InsoleSpec())
    assert res.foot_length_mm_ == pytest.approx(260.0)
    runner, model, steps, summary, res = _run_case(case, tmp_path / "b")
    assert 220.0 <= res.foot_length_mm_ <= 290.0  # the footprints are ~120 mm long
    assert (steps["strike_class"] == "forefoot").mean() >= 0.95


def test_pooled_onset_recovers_a_power_law():
    rng = np.random.default_rng(1)
    x_true = rng.uniform(0.02, 1.0, 40)
    group = np.repeat([0, 1], 20)
    p = np.where(group == 0, 1.8, 2.5)
    amp = rng.uniform(50, 150, 40)  # N per frame^p
    f = [amp * (x_true + k) ** p for k in range(3)]
    assert np.allclose(_pooled_onset(*f, group, 1.5), x_true, atol=1e-3)
    # Forces rounded to 1 N (a detected first frame holds several): still within a tenth of a frame.
    late = x_true > 0.25
    fq = [np.round(v)[late] for v in f]
    assert np.abs(_pooled_onset(*fq, group[late], 1.5) - x_true[late]).max() <= 0.1
    # An exponent under the floor (a rise that bends within the first frames) is raised to it.
    f_lin = [amp * (x_true + k) ** 1.0 for k in range(3)]
    assert (_pooled_onset(*f_lin, group, 1.5) > x_true).all()
