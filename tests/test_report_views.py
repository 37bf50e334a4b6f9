"""Views for reports (:mod:`treadlab.analysis.matviews`, :mod:`treadlab.analysis.insoleviews`): butterflies, mean
footprints and pressure maps, against the simulator."""

from __future__ import annotations

import numpy as np
import pytest
from sessionfactory import InsoleSpec, MatSpec, write_session

from treadlab.analysis import analyze
from treadlab.analysis.insoleviews import ASSUMED_STEP_WIDTH_MM, insole_cop_trace
from treadlab.analysis.insoleviews import pressure_maps as insole_pressure_maps
from treadlab.analysis.matviews import cop_trace, mean_footprints
from treadlab.drivers.sim.gait import RunnerParams

RUNNER = RunnerParams(cadence_spm=170.0, speed_mps=3.0, step_width_mm=90.0, seed=4)


@pytest.fixture(scope="module")
def mat_analysis(tmp_path_factory):
    path = tmp_path_factory.mktemp("mat") / "mat.h5"
    write_session(path, RUNNER, duration_s=8.0, insoles=InsoleSpec(layout="insole16"),
                  mat=MatSpec(rows=112, cols=48))
    with analyze(path) as ga:
        res = ga.mat_result
        yield ga, res, ga.session.mats[0]


def test_butterfly_has_two_lanes_a_step_width_apart_carried_back_by_the_belt(mat_analysis):
    ga, res, mat = mat_analysis
    tr = cop_trace(mat, res.belt_axis_, res.forward_sign_)
    on = tr.dropna()
    assert 0.3 < len(on) / len(tr) < 0.9  # running: flight frames have no COP
    right, forward, t = on["right_mm"].to_numpy(), on["forward_mm"].to_numpy(), on["time_s"].to_numpy()
    lanes = right > 0
    assert 0.35 < lanes.mean() < 0.65
    assert right[lanes].mean() - right[~lanes].mean() == pytest.approx(RUNNER.step_width_mm, abs=25)
    # The COP moves backward during each contact: the belt (3 m/s) minus the roll from heel to toe.
    same = np.diff(t) < 0.02
    v = np.diff(forward)[same] / np.diff(t)[same] * 1e-3
    assert -3.2 < np.median(v) < -1.0
    # Left and right are the runner's sides: they agree with the analysis' footprint sides.
    steps = res.steps_
    lat = {f: steps.loc[steps.foot == f, "lateral_mm"].mean() for f in ("left", "right")}
    assert abs(lat["left"] - lat["right"]) == pytest.approx(RUNNER.step_width_mm, abs=25)


def test_mean_footprint_follows_the_foot_along_the_belt(mat_analysis):
    ga, res, mat = mat_analysis
    fps = mean_footprints(mat, res.steps_, res.belt_axis_, res.forward_sign_, res.belt_speed_mps_)
    still = mean_footprints(mat, res.steps_, res.belt_axis_, res.forward_sign_, 0.0)
    pitch = fps["pitch_mm"]

    def extent_mm(img):
        rows = np.flatnonzero(np.nanmax(img, axis=1) > 0.2 * np.nanmax(img))
        return (rows[-1] - rows[0] + 1) * pitch

    for foot in ("left", "right"):
        img = fps[foot]["mean"]
        assert fps[foot]["steps"] == int((res.steps_.foot == foot).sum()) and fps[foot]["frames"] > 50
        assert extent_mm(img) < RUNNER.foot_length_mm + 60
        # The window caught (nearly) all the load of the foot's contact frames; one that does not follow the
        # belt loses most of it as the foot is carried away.
        part = res.steps_[res.steps_.foot == foot]
        t = mat.time
        inside = np.zeros(len(t), dtype=bool)
        for ic, to in zip(part.ic_s, part.to_s):
            inside |= (t >= ic) & (t <= to)
        total = float(mat.frames()[inside].sum(dtype=np.float64))
        # (0.75, not 0.95: the mat analysis sometimes splits one contact into heel and forefoot footprints.)
        assert fps[foot]["window_sum"] > 0.75 * total
        assert still[foot]["window_sum"] < 0.5 * fps[foot]["window_sum"]
        # The window is centred on the foot: the load does not touch the sides.
        assert np.nanmax(img[:, [0, -1]]) < 0.2 * np.nanmax(img)
    # A symmetric runner's two footprints look alike (mirror images in the runner's left-right).
    a, b = np.nan_to_num(fps["left"]["mean"]), np.nan_to_num(fps["right"]["mean"][:, ::-1])
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8


def test_insole_butterfly_places_each_contact_on_the_belt(mat_analysis):
    ga, _, _ = mat_analysis
    tr = insole_cop_trace(ga.signals, ga.steps, RUNNER.speed_mps)
    for foot, side in (("left", -1), ("right", 1)):
        part = tr[tr.foot == foot]
        assert int(part["right_mm"].isna().sum()) == int((ga.steps.foot == foot).sum())  # one break per contact
        on = part.dropna()
        assert (np.sign(on["right_mm"]) == side).all() and abs(on["right_mm"]).min() > ASSUMED_STEP_WIDTH_MM / 4
        dt = np.diff(on["time_s"].to_numpy())
        same = (dt > 0) & (dt < 0.01)
        v = np.diff(on["forward_mm"].to_numpy())[same] / dt[same] * 1e-3
        assert -3.2 < np.median(v) < -1.0  # carried back at the belt speed minus the roll to the toes
    assert insole_cop_trace(ga.signals, ga.steps, float("nan")).empty


def test_pressure_maps_of_long_segments_come_from_a_spread_sample_of_steps(mat_analysis):
    ga, _, _ = mat_analysis
    full = ga.pressure_maps("left")
    same = insole_pressure_maps(ga, "left", max_steps=10_000)
    assert np.array_equal(same["peak"], full["peak"]) and np.array_equal(same["mean"], full["mean"])
    assert same["sampled_steps"] == full["steps"]
    part = insole_pressure_maps(ga, "left", max_steps=8, runs_n=4)
    assert part["sampled_steps"] == 8 and part["steps"] == full["steps"] > 8
    assert np.all(part["peak"] <= full["peak"] + 1e-9)
    loaded = full["mean"] > 0.1 * full["mean"].max()
    assert np.corrcoef(part["mean"], full["mean"])[0, 1] > 0.98
    assert np.allclose(part["mean"][loaded], full["mean"][loaded], rtol=0.15)


def test_long_sessions_are_sampled_in_runs(mat_analysis):
    from treadlab.analysis.ragged import sampled_runs

    assert sampled_runs(10, 20, 4) == [(0, 10)]
    runs = sampled_runs(1000, 60, 6)
    assert len(runs) == 6 and all(b - a == 10 for a, b in runs) and runs[0][0] == 0 and runs[-1][1] == 1000
    assert len(sampled_runs(1000, 4, 12)) == 4
    ga, res, mat = mat_analysis
    full = mean_footprints(mat, res.steps_, res.belt_axis_, res.forward_sign_, res.belt_speed_mps_)
    part = mean_footprints(mat, res.steps_, res.belt_axis_, res.forward_sign_, res.belt_speed_mps_, max_steps=6)
    for foot in ("left", "right"):
        n = int((res.steps_.foot == foot).sum())
        assert full[foot]["sampled_steps"] == n > 6 and part[foot]["sampled_steps"] == 6
        a, b = np.nan_to_num(full[foot]["mean"]), np.nan_to_num(part[foot]["mean"])
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95  # a sample of steps looks like all of them
        assert part[foot]["window_sum"] < 0.8 * full[foot]["window_sum"]
    tr = cop_trace(mat, res.belt_axis_, res.forward_sign_, max_points=240)
    assert len(tr) == 240
    gaps = np.diff(tr["time_s"].to_numpy())
    assert (gaps > 0.1).sum() == 11  # 12 runs of consecutive frames spread over the session
