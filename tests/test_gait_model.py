"""Gait model: known answers against the model's own ground truth, recomputed independently in the tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim import GaitModel, GaitParamsError, RunnerParams, strike_class
from treadlab.errors import ConfigError

DT_S = 1e-4  # the tests sample the force at 10 kHz


def si(right, left):
    return (right - left) / (0.5 * (right + left)) * 100.0


def _stance(model, row, dt_s=DT_S):
    """Force of one step sampled by the test from vertical_force (not from the model's truth grid)."""
    n = int(np.floor(row.contact_time_ms / 1e3 / dt_s))
    t = row.ic_s + np.arange(n + 1) * dt_s
    return t - row.ic_s, model.vertical_force(row.foot, t)


def _independent_loading(t, f, bw):
    """AVLR and VILR by the definitions, written independently of treadlab.drivers.sim.force."""
    n = len(f)
    window = int(0.3 * (n - 1))
    rising = np.diff(f[: window + 2])
    local_max = np.flatnonzero((rising[:-1] > 0) & (rising[1:] <= 0)) + 1
    impact = None
    for i in local_max:
        later = f[i:]
        back_above = np.flatnonzero(later > f[i])
        dip = later[: back_above[0]].min() if back_above.size else later.min()
        if f[i] - dip >= 0.05 * bw:
            impact = i
            break
    ref = f[impact] if impact is not None else np.interp(0.13 * t[-1], t, f)
    top = impact if impact is not None else int(np.searchsorted(t, 0.13 * t[-1])) + 1
    mono = np.maximum.accumulate(f[: top + 1])  # force rises monotonically up to the reference here
    t20 = np.interp(0.2 * ref, mono, t[: top + 1])
    t80 = np.interp(0.8 * ref, mono, t[: top + 1])
    avlr = 0.6 * ref / (t80 - t20) / bw
    lag = int(round(1e-3 / (t[1] - t[0])))
    sel = (t[:-lag] >= t20 - 1e-9) & (t[:-lag] <= t80 - 1e-3 + 1e-9)
    vilr = np.max((f[lag:] - f[:-lag])[sel]) / 1e-3 / bw
    return (f[impact] / bw if impact is not None else np.nan), avlr, vilr


@pytest.fixture(scope="module")
def mixed():
    params = RunnerParams(strike_left="rearfoot", strike_right="forefoot", seed=3)
    return GaitModel(params, duration_s=20.0)


def test_strike_class_of_each_step_matches_the_cop_at_initial_contact(mixed):
    steps = mixed.steps
    assert set(steps.strike_class[steps.foot == "left"]) == {"rearfoot"}
    assert set(steps.strike_class[steps.foot == "right"]) == {"forefoot"}
    for foot in ("left", "right"):
        rows = steps[steps.foot == foot]
        y = mixed.cop(foot, rows.ic_s.to_numpy())[:, 1]
        index_pct = y / mixed.params.foot_length_mm * 100.0
        np.testing.assert_allclose(index_pct, rows.strike_index_pct, atol=1e-9)
        assert [strike_class(v) for v in index_pct] == list(rows.strike_class)
    # Step-to-step variability never brings a strike index within 8 points of a class boundary.
    edges = np.abs(steps.strike_index_pct.to_numpy()[:, None] - np.array([100 / 3, 200 / 3])[None, :])
    assert edges.min() >= 8.0 - 1e-9
    assert steps.strike_index_pct.std() > 0.5


def test_midfoot_override_and_variability_keep_the_class():
    params = RunnerParams(strike_index_left_pct=45.0, strike_right="midfoot", variability_pct=10.0,
                          contact_time_ms=220.0, seed=8)
    steps = GaitModel(params, 20.0).steps
    assert set(steps.strike_class) == {"midfoot"}
    left = steps.strike_index_pct[steps.foot == "left"]
    assert abs(left.mean() - 45.0) < 2.0 and left.min() >= 100 / 3 + 8 - 1e-9


def test_ground_truth_loading_rates_match_an_independent_computation(mixed):
    steps = mixed.steps
    bw = mixed.bw_n
    for row in list(steps.itertuples())[2:12]:
        t, f = _stance(mixed, row)
        impact, avlr, vilr = _independent_loading(t, f, bw)
        if row.strike_class == "rearfoot":
            assert np.isfinite(row.impact_peak_bw) and row.impact_peak_bw == pytest.approx(impact, rel=2e-3)
            assert 1.3 < row.impact_peak_bw < 2.1
        else:
            assert np.isnan(row.impact_peak_bw) and np.isnan(impact)
        assert row.avlr_bw_s == pytest.approx(avlr, rel=1e-2)
        assert row.vilr_bw_s == pytest.approx(vilr, rel=1e-2)
        assert row.peak_force_bw == pytest.approx(f.max() / bw, rel=1e-3)
        assert row.vilr_bw_s >= row.avlr_bw_s
    rear = steps[steps.strike_class == "rearfoot"]
    fore = steps[steps.strike_class == "forefoot"]
    assert rear.avlr_bw_s.mean() > fore.avlr_bw_s.mean() * 1.5  # rearfoot strikers load faster
    assert 2.0 < steps.peak_force_bw.mean() < 3.0


def test_rearfoot_force_has_impact_transient_then_active_peak():
    model = GaitModel(RunnerParams(variability_pct=0.0), 4.0)
    row = model.steps.iloc[2]
    t, f = _stance(model, row)
    u = t / t[-1]
    bw = model.bw_n
    rising = np.diff(f)
    i_imp = np.flatnonzero((rising[:-1] > 0) & (rising[1:] <= 0))[0] + 1
    assert 0.10 < u[i_imp] < 0.17 and 1.4 < f[i_imp] / bw < 2.0
    assert 0.40 < u[np.argmax(f)] < 0.50 and 2.2 < f.max() / bw < 2.8
    assert f[0] == pytest.approx(0.0, abs=1e-6 * bw) and f[-1] == pytest.approx(0.0, abs=1e-3 * bw)
    assert np.all(model.vertical_force("left", np.array([row.ic_s - 0.01, row.to_s + 0.001])) == 0.0)


@pytest.mark.parametrize(("asym_pct", "strike"), [(10.0, "rearfoot"), (15.0, "forefoot"), (-20.0, "rearfoot")])
def test_loading_rate_asymmetry_in_the_ground_truth(asym_pct, strike):
    params = RunnerParams(loading_rate_asym_pct=asym_pct, strike_left=strike, strike_right=strike, seed=11)
    steps = GaitModel(params, 30.0).steps
    means = steps.groupby("foot")[["avlr_bw_s", "vilr_bw_s", "peak_force_bw", "contact_time_ms"]].mean()
    assert si(means.avlr_bw_s["right"], means.avlr_bw_s["left"]) == pytest.approx(asym_pct, abs=1.0)
    assert si(means.vilr_bw_s["right"], means.vilr_bw_s["left"]) == pytest.approx(asym_pct, abs=1.0)
    assert abs(si(means.peak_force_bw["right"], means.peak_force_bw["left"])) < 1.0
    assert abs(si(means.contact_time_ms["right"], means.contact_time_ms["left"])) < 1.0


def test_contact_time_and_peak_force_asymmetry_in_the_ground_truth():
    params = RunnerParams(contact_time_asym_pct=12.0, peak_force_asym_pct=-10.0, seed=5)
    steps = GaitModel(params, 30.0).steps
    means = steps.groupby("foot")[["peak_force_bw", "contact_time_ms", "avlr_bw_s"]].mean()
    assert si(means.contact_time_ms["right"], means.contact_time_ms["left"]) == pytest.approx(12.0, abs=1.0)
    assert si(means.peak_force_bw["right"], means.peak_force_bw["left"]) == pytest.approx(-10.0, abs=1.0)
    assert abs(si(means.avlr_bw_s["right"], means.avlr_bw_s["left"])) < 1.0


@pytest.mark.parametrize(
    "params",
    [
        RunnerParams(seed=1),
        RunnerParams(speed_mps=4.5, cadence_spm=185.0, contact_time_ms=200.0, body_mass_kg=82.0,
                     strike_left="forefoot", strike_right="midfoot", peak_force_asym_pct=15.0, seed=2),
        RunnerParams(speed_mps=1.3, cadence_spm=110.0, contact_time_ms=650.0, walking=True, seed=4),
    ],
    ids=["default", "fast-forefoot", "walking"],
)
def test_mean_force_over_whole_strides_is_body_weight(params):
    model = GaitModel(params, 25.0)
    left_ic = model.steps.ic_s[model.steps.foot == "left"].to_numpy()
    t = np.arange(left_ic[1], left_ic[-2], 1e-4)  # whole strides, from one left contact to another
    total = model.vertical_force("left", t) + model.vertical_force("right", t)
    assert total.mean() == pytest.approx(model.bw_n, rel=0.02)


def test_cadence_and_contact_time_as_given():
    params = RunnerParams(cadence_spm=176.0, contact_time_ms=240.0, variability_pct=4.0, seed=9)
    steps = GaitModel(params, 60.0).steps
    assert 60e3 / steps.step_time_ms.iloc[1:].mean() == pytest.approx(176.0, rel=0.01)
    assert (len(steps) - 1) / (steps.ic_s.iloc[-1] - steps.ic_s.iloc[0]) * 60 == pytest.approx(176.0, rel=0.01)
    assert steps.contact_time_ms.mean() == pytest.approx(240.0, rel=0.01)
    cv_pct = steps.contact_time_ms.std() / steps.contact_time_ms.mean() * 100
    assert 2.5 < cv_pct < 5.5
    assert list(steps.foot.iloc[:6]) == ["left", "right"] * 3 or list(steps.foot.iloc[:6]) == ["right", "left"] * 3
    assert np.all(np.diff(steps.ic_s) > 0)
    assert np.all(steps.to_s.to_numpy()[:-1] < steps.ic_s.to_numpy()[1:])  # running: a flight phase every step


def test_walking_has_double_support_and_a_double_hump():
    params = RunnerParams(speed_mps=1.3, cadence_spm=110.0, contact_time_ms=650.0, walking=True, seed=6)
    model = GaitModel(params, 10.0)
    t = np.arange(1.0, 9.0, 1e-3)
    both = (model.vertical_force("left", t) > 0) & (model.vertical_force("right", t) > 0)
    assert 0.1 < both.mean() < 0.3
    row = model.steps.iloc[3]
    ts, f = _stance(model, row)
    u = ts / ts[-1]
    bw = model.bw_n
    first, second = f[u < 0.5].max(), f[u > 0.5].max()
    valley = f[(u > 0.4) & (u < 0.6)].min()
    assert 1.0 < first / bw < 1.3 and 1.0 < second / bw < 1.3 and valley < 0.85 * min(first, second)
    # No impact transient: by the definitions the weight-acceptance hump is the first peak in the window.
    impact, avlr, vilr = _independent_loading(ts, f, bw)
    assert row.impact_peak_bw == pytest.approx(first / bw, rel=1e-3) == pytest.approx(impact, rel=1e-3)
    assert 5.0 < row.avlr_bw_s < 20.0 and row.avlr_bw_s == pytest.approx(avlr, rel=1e-2)
    assert row.vilr_bw_s == pytest.approx(vilr, rel=1e-2)


def test_window_and_chunk_independence():
    params = RunnerParams(noise_n=2.0, swing_offset_n=30.0, seed=21)
    lay = load_layout("insole99")
    t = 5.0 + np.arange(1500) / 750.0
    whole = GaitModel(params, 20.0).insole_forces("left", t, lay)
    model = GaitModel(params, 3.0, start_s=4.5)
    parts = np.vstack([model.insole_forces("left", t[:613], lay), model.insole_forces("left", t[613:], lay)])
    np.testing.assert_array_equal(whole, parts)
    other_seed = GaitModel(RunnerParams(noise_n=2.0, swing_offset_n=30.0, seed=22), 20.0)
    assert not np.allclose(other_seed.insole_forces("left", t, lay), whole)


def test_insole_sum_equals_vertical_force_and_noise_is_as_asked():
    lay = load_layout("insole960")
    t = np.arange(0.0, 3.0, 1 / 500)
    quiet = GaitModel(RunnerParams(noise_n=0.0), 3.0)
    forces = quiet.insole_forces("right", t, lay)
    np.testing.assert_allclose(forces.sum(axis=1), quiet.vertical_force("right", t), rtol=1e-9, atol=1e-9)
    assert forces.min() >= 0.0
    noisy = GaitModel(RunnerParams(noise_n=1.5), 3.0).insole_forces("right", t, lay)
    resid = noisy - forces
    assert resid.std() == pytest.approx(1.5, rel=0.02) and abs(resid.mean()) < 0.01


def test_insole_centre_of_pressure_follows_the_model():
    params = RunnerParams(noise_n=0.0, strike_left="rearfoot", strike_right="forefoot", seed=2)
    model = GaitModel(params, 5.0)
    lay = load_layout("insole99")
    for foot in ("left", "right"):
        row = model.steps[model.steps.foot == foot].iloc[1]
        t = row.ic_s + np.array([0.05, 0.3, 0.6, 0.9]) * row.contact_time_ms / 1e3
        forces = model.insole_forces(foot, t, lay)
        centroid = forces @ lay.positions_mm / forces.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(centroid[:3], model.cop(foot, t[:3]), atol=3.0)
        np.testing.assert_allclose(centroid[3], model.cop(foot, t[3:])[0], atol=6.0)  # toes: sensels end there
        heel = lay.positions_mm[:, 1] < 0.3 * lay.foot_length_mm
        heel_share = forces[0, heel].sum() / forces[0].sum()
        assert heel_share > 0.6 if foot == "left" else heel_share < 0.1


def test_swing_offset_sits_between_20_and_40_n():
    model = GaitModel(RunnerParams(noise_n=0.0, swing_offset_n=30.0), 30.0)
    t = np.arange(0.0, 30.0, 0.01)
    swing = model.vertical_force("left", t) == 0
    total = model.insole_forces("left", t, "insole16").sum(axis=1)[swing]
    assert 19.9 < total.min() < 25.0 and 35.0 < total.max() < 40.1
    np.testing.assert_allclose(total, model.baseline_offset_n("left", t[swing]), rtol=1e-9)


@pytest.mark.parametrize("belt_axis", ["rows", "cols"])
def test_mat_footprint_travels_at_belt_speed(belt_axis):
    params = RunnerParams(speed_mps=3.0, seed=4)
    model = GaitModel(params, 5.0)
    row = model.steps.iloc[3]
    pitch = 5.0
    rows, cols = (240, 100) if belt_axis == "rows" else (100, 240)
    t = row.ic_s + np.array([0.02, 0.12, 0.22]) * 1.0
    frames = model.mat_frames(t, rows, cols, pitch, belt_axis=belt_axis)
    assert frames.shape == (3, rows, cols) and frames.min() >= 0.0
    along = frames.sum(axis=2) if belt_axis == "rows" else frames.sum(axis=1)
    across = frames.sum(axis=1) if belt_axis == "rows" else frames.sum(axis=2)
    # Rear edge of the footprint (index 0 is the front of the mat, so the heel is the last loaded cell).
    heel_idx = np.array([np.flatnonzero(a > 0).max() for a in along])
    heel_mm = (along.shape[1] / 2.0 - heel_idx - 0.5) * pitch
    travelled = heel_mm[0] - heel_mm
    np.testing.assert_allclose(travelled, 3000.0 * (t - t[0]), atol=pitch + 1e-6)
    np.testing.assert_allclose(heel_mm, row.y_mm - 3000.0 * (t - row.ic_s), atol=pitch)
    # Footprint size and side: about 26 cm long and 9 cm wide, left foot left of the centre (index 0 = left).
    length = (np.ptp(np.flatnonzero(along[1] > 0)) + 1) * pitch
    width = (np.ptp(np.flatnonzero(across[1] > 0)) + 1) * pitch
    assert 245 <= length <= 270 and 80 <= width <= 105
    centre = (np.flatnonzero(across[1] > 0).mean() + 0.5 - across.shape[1] / 2.0) * pitch
    assert (centre < 0) == (row.foot == "left") and 20 < abs(centre) < 90
    # Pressure times cell area gives the vertical force while the foot is on the mat.
    force = frames.sum(axis=(1, 2)) * pitch * pitch * 1e-3
    np.testing.assert_allclose(force, model.vertical_force(row.foot, t), rtol=0.03)
    assert 150 < frames.max() < 600


def test_mat_separates_the_feet_by_step_width():
    model = GaitModel(RunnerParams(step_width_mm=100.0, seed=7), 10.0)
    steps = model.steps
    gap = steps.x_mm[steps.foot == "right"].mean() - steps.x_mm[steps.foot == "left"].mean()
    assert gap == pytest.approx(100.0, abs=10.0)


def test_same_seed_same_model_and_reproducible_steps():
    a = GaitModel(RunnerParams(seed=12), 10.0).steps
    b = GaitModel(RunnerParams(seed=12), 10.0).steps
    c = GaitModel(RunnerParams(seed=13), 10.0).steps
    assert a.equals(b)
    assert not np.allclose(a.ic_s, c.ic_s)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"strike_left": "heel"}, r"strike_left must be one of rearfoot, midfoot, forefoot, got 'heel'"),
        ({"contact_time_ms": 380.0}, r"no flight phase.*set walking = true"),
        ({"walking": True}, r"walking needs a contact time between one and two step times"),
        ({"strike_index_right_pct": 30.0}, r"strike_index_right_pct=30 is within 8 points of a class boundary"),
        ({"cadence_spm": -1.0}, r"cadence_spm must be in 40..260, got -1"),
        ({"body_mass_kg": float("nan")}, r"body_mass_kg must be a number"),
        ({"seed": -3}, r"seed must be a non-negative integer"),
    ],
)
def test_invalid_parameters_raise_one_clear_error(kwargs, pattern):
    with pytest.raises(GaitParamsError, match=pattern) as info:
        RunnerParams(**kwargs)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)


def test_from_dict_rejects_unknown_keys():
    assert RunnerParams.from_dict({"speed_mps": 3.5}).speed_mps == 3.5
    with pytest.raises(GaitParamsError, match="unknown runner parameter.*speed_kmh"):
        RunnerParams.from_dict({"speed_kmh": 12.0})


def test_model_arguments_are_checked():
    with pytest.raises(ValueError, match="duration_s must be positive"):
        GaitModel(RunnerParams(), 0.0)
    model = GaitModel(RunnerParams(), 1.0)
    with pytest.raises(ValueError, match="foot must be 'left' or 'right'"):
        model.vertical_force("middle", np.zeros(3))
    with pytest.raises(ValueError, match="belt_axis"):
        model.mat_frames(np.zeros(2), 10, 10, 8.0, belt_axis="diagonal")


def test_forces_scale_with_body_mass_and_contact_time():
    t = np.arange(0.5, 4.5, 1e-3)
    light = GaitModel(RunnerParams(body_mass_kg=60.0, variability_pct=0.0), 5.0)
    heavy = GaitModel(RunnerParams(body_mass_kg=90.0, variability_pct=0.0), 5.0)
    np.testing.assert_allclose(heavy.vertical_force("left", t), 1.5 * light.vertical_force("left", t), rtol=1e-9)
    short = GaitModel(RunnerParams(contact_time_ms=210.0, variability_pct=0.0), 5.0).steps
    long = GaitModel(RunnerParams(contact_time_ms=300.0, variability_pct=0.0), 5.0).steps
    # Same impulse per step over a shorter contact: higher peaks, and faster loading.
    assert short.peak_force_bw.mean() > 1.25 * long.peak_force_bw.mean()
    assert short.avlr_bw_s.mean() > 1.5 * long.avlr_bw_s.mean()


@settings(max_examples=12, deadline=None)
@given(
    strike_left=st.sampled_from(["rearfoot", "midfoot", "forefoot"]),
    strike_right=st.sampled_from(["rearfoot", "midfoot", "forefoot"]),
    lr_asym=st.floats(-25.0, 25.0),
    pk_asym=st.floats(-20.0, 20.0),
    ct_asym=st.floats(-10.0, 10.0),
    variability=st.floats(0.0, 6.0),
    seed=st.integers(0, 2**31),
    split=st.integers(1, 299),
)
def test_invariants_hold_for_any_runner(strike_left, strike_right, lr_asym, pk_asym, ct_asym, variability, seed,
                                        split):
    params = RunnerParams(strike_left=strike_left, strike_right=strike_right, loading_rate_asym_pct=lr_asym,
                          peak_force_asym_pct=pk_asym, contact_time_asym_pct=ct_asym, variability_pct=variability,
                          noise_n=0.0, seed=seed)
    model = GaitModel(params, 6.0, start_s=100.0)
    steps = model.steps
    assert (steps.impact_peak_bw.notna() == (steps.strike_class == "rearfoot")).all()
    assert np.all(np.isfinite(steps[["avlr_bw_s", "vilr_bw_s", "peak_force_bw"]].to_numpy()))
    assert np.all(steps.vilr_bw_s >= steps.avlr_bw_s - 1e-9)
    edges = np.abs(steps.strike_index_pct.to_numpy()[:, None] - np.array([100 / 3, 200 / 3])[None, :])
    assert edges.min() >= 8.0 - 1e-9
    t = 101.0 + np.arange(300) / 100.0
    f = model.vertical_force("right", t)
    assert f.min() >= 0.0
    lay = load_layout("insole16")
    whole = model.insole_forces("right", t, lay)
    parts = np.vstack([model.insole_forces("right", t[:split], lay), model.insole_forces("right", t[split:], lay)])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_allclose(whole.sum(axis=1), f, rtol=1e-9, atol=1e-9)


# Irregular timing and gait phases (drivers/sim/schedule.py) --------------------------------------------------
@pytest.mark.parametrize("cv", [10.0, 20.0])
def test_stride_time_variability_and_stumbles(cv):
    plain = GaitModel(RunnerParams(stride_cv_pct=cv, seed=8), 120.0).steps
    for foot in ("left", "right"):
        stride = np.diff(plain.ic_s[plain.foot == foot].to_numpy())
        assert stride.std() / stride.mean() == pytest.approx(cv / 100.0, abs=0.015)
    params = RunnerParams(stride_cv_pct=cv, stumble_pct=5.0, seed=8)
    steps = GaitModel(params, 120.0).steps
    assert steps.step_time_ms.iloc[1:].mean() == pytest.approx(60e3 / 170.0, rel=0.05)
    # Stumbles: the step into one is short, the one after it long.
    st = steps.step_time_ms.to_numpy()
    hit = np.flatnonzero(steps.stumble.to_numpy())
    hit = hit[(hit > 0) & (hit < len(st) - 1)]
    assert 0.02 * len(steps) < len(hit) < 0.08 * len(steps)
    assert np.median(st[hit] / st[hit + 1]) < 0.6
    # Running throughout: a flight phase before every contact, contacts of at least 80 ms.
    assert np.all(steps.to_s.to_numpy()[:-1] < steps.ic_s.to_numpy()[1:])
    assert steps.contact_time_ms.min() >= 80.0 and (steps.gait == "running").all()


def test_irregular_model_windows_agree():
    params = RunnerParams(stride_cv_pct=15.0, stumble_pct=4.0, noise_n=1.0, seed=2)
    whole = GaitModel(params, 40.0)
    part = GaitModel(params, 6.0, start_s=17.0)
    a = part.steps
    b = whole.steps[whole.steps.ic_s.isin(a.ic_s)]
    assert len(b) == len(a) >= 10
    t = np.arange(17.5, 22.5, 2e-3)
    lay = load_layout("insole16")
    np.testing.assert_array_equal(part.insole_forces("left", t, lay), whole.insole_forces("left", t, lay))


def test_standing_then_walking_then_running():
    params = RunnerParams(stand_s=5.0, walk_s=20.0, seed=3)
    model = GaitModel(params, 40.0)
    steps, bw = model.steps, model.bw_n
    assert list(model.standing.foot) == ["left", "right"]
    assert model.standing.stop_s.iloc[0] == 5.0 < model.standing.stop_s.iloc[1] < steps.ic_s.iloc[1]
    t = np.arange(0.0, 40.0, 1e-3)
    left, right = model.vertical_force("left", t), model.vertical_force("right", t)
    stand = t < 4.5
    assert np.all(left[stand] > 0.3 * bw) and np.all(right[stand] > 0.3 * bw)  # both feet loaded
    assert np.allclose(left[stand] + right[stand], bw)
    assert left[stand].std() > 0.05 * bw  # weight shifting
    cop = model.cop("left", t[stand])
    assert np.all(np.isfinite(cop)) and np.ptp(cop[:, 1]) < 0.1 * params.foot_length_mm
    walk, run = steps[steps.gait == "walking"], steps[steps.gait == "running"]
    assert steps.ic_s.iloc[0] > 5.0 and walk.ic_s.max() < 25.5 < run.ic_s.min()
    assert len(walk) == pytest.approx(20.0 / (60.0 / 110.0), abs=1)
    assert 60e3 / walk.step_time_ms.iloc[1:].mean() == pytest.approx(110.0, rel=0.02)
    assert walk.contact_time_ms.mean() == pytest.approx(650.0, rel=0.03)
    ic, to = walk.ic_s.to_numpy(), walk.to_s.to_numpy()
    assert np.all(to[:-1] > ic[1:])  # walking: double support, no flight
    assert np.all(run.to_s.to_numpy()[:-1] < run.ic_s.to_numpy()[1:])  # running: flight
    for lo, hi in ((6.0, 24.0), (27.0, 39.0)):  # body weight over whole strides in each phase
        sel = (t >= lo) & (t < hi)
        assert (left[sel] + right[sel]).mean() == pytest.approx(bw, rel=0.03)
    # The mat: a standing foot stays put on the still belt; walking moves at the walking speed.
    frames = model.mat_frames(np.array([1.0, 3.0]), 176, 48, 8.47)
    assert frames.sum() > 0 and np.allclose(frames[0] > 0, frames[1] > 0)


def test_phase_parameters_are_validated():
    with pytest.raises(GaitParamsError, match="stride_cv_pct"):
        RunnerParams(stride_cv_pct=30.0)
    with pytest.raises(GaitParamsError, match="walking needs"):
        RunnerParams(walk_s=10.0, walk_contact_time_ms=400.0)
    assert not RunnerParams().scheduled and RunnerParams(stand_s=1.0).scheduled
