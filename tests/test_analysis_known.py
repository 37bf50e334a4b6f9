"""Known answers: simulated runners written to session files, analysed, compared with the gait model's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sessionfactory import InsoleSpec, truth_in, write_session

from treadlab.analysis import analyze, symmetry_index
from treadlab.drivers.sim.gait import RunnerParams

DURATION_S = 8.0
START_S = 0.5


def match_steps(found: pd.DataFrame, truth: pd.DataFrame, tol_s: float = 0.04):
    """Pairs (found row, truth row) per foot by nearest initial contact; unmatched counts."""
    pairs, missed, false = [], 0, 0
    for foot in ("left", "right"):
        a = found[found["foot"] == foot].reset_index(drop=True)
        b = truth[truth["foot"] == foot].reset_index(drop=True)
        ai, bi = a["ic_s"].to_numpy(), b["ic_s"].to_numpy()
        d = np.abs(ai[:, None] - bi[None, :])
        best_b = d.argmin(axis=1)
        ok_a = d[np.arange(len(ai)), best_b] <= tol_s
        false += int((~ok_a).sum())
        best_a = d.argmin(axis=0)
        ok_b = d[best_a, np.arange(len(bi))] <= tol_s
        missed += int((~ok_b).sum())
        pairs.append((a.iloc[best_a[ok_b]].reset_index(drop=True), b[ok_b].reset_index(drop=True)))
    f = pd.concat([p[0] for p in pairs], ignore_index=True)
    t = pd.concat([p[1] for p in pairs], ignore_index=True)
    return f, t, missed, false


CASES = [
    # strike, cadence, contact ms, rate, layout, asymmetry %
    ("rearfoot", 170, 250, 500, "insole16", 0.0),
    ("rearfoot", 190, 220, 1000, "insole99", 15.0),
    ("midfoot", 160, 260, 200, "insole16", -10.0),
    ("forefoot", 140, 300, 200, "insole99", 20.0),
    ("forefoot", 180, 230, 500, "insole99", 0.0),
    ("rearfoot", 170, 250, 200, "insole99", 15.0),  # heel impact on a noisy 200-Hz insole (fitted edge, VILR)
] + [  # the broad matrix: make test -m slow
    pytest.param(c, marks=pytest.mark.slow) for c in (
        ("rearfoot", 140, 300, 200, "insole16", 15.0),
        ("rearfoot", 160, 270, 500, "insole99", -15.0),
        ("midfoot", 190, 220, 1000, "insole16", 20.0),
        ("midfoot", 150, 280, 500, "insole99", 0.0),
        ("forefoot", 170, 240, 1000, "insole16", -20.0),
        ("forefoot", 190, 210, 200, "insole16", 10.0),
        ("rearfoot", 180, 240, 1000, "insole99", 20.0),
        ("midfoot", 140, 300, 200, "insole99", 0.0),
        ("rearfoot", 180, 240, 200, "insole99", 0.0),
    )
]


def _case_id(c) -> str:
    c = c.values[0] if hasattr(c, "values") else c
    return f"{c[0]}-{c[1]}spm-{c[3]}Hz-{c[4]}-asym{c[5]:g}"


@pytest.fixture(scope="module", params=CASES, ids=_case_id)
def case(request, tmp_path_factory):
    strike, cadence, ct, rate, layout, asym = request.param
    runner = RunnerParams(strike_left=strike, strike_right=strike, cadence_spm=cadence, contact_time_ms=ct,
                          loading_rate_asym_pct=asym, contact_time_asym_pct=asym / 2, peak_force_asym_pct=asym / 2,
                          swing_offset_n=30.0, seed=7)
    path = tmp_path_factory.mktemp("known") / "run.h5"
    model = write_session(path, runner, duration_s=DURATION_S, start_s=START_S,
                          insoles=InsoleSpec(layout=layout, rate_hz=rate))
    with analyze(path) as ga:
        yield request.param, ga.steps.copy(), ga.summary, model


def _inner(model, params):
    """Truth of the whole steps inside the recording, as a device at the case's rate should see it (VILR over
    the 5-ms sample interval at 200 Hz)."""
    return truth_in(model, START_S + 0.05, START_S + DURATION_S - 0.05, rate_hz=params[3])


def test_steps_recovered_without_false_ones(case):
    params, steps, _, model = case
    truth = _inner(model, params)
    _, _, missed, _ = match_steps(steps, truth)
    assert missed <= 0.01 * len(truth)
    inner = steps[(steps["ic_s"] > START_S + 0.05) & (steps["to_s"] < START_S + DURATION_S - 0.05)]
    _, _, _, false = match_steps(inner, model.steps)
    assert false == 0
    assert len(inner) >= 0.99 * len(truth)


def test_initial_contact_timing(case):
    params, steps, _, model = case
    f, t, _, _ = match_steps(steps, _inner(model, params))
    err_ms = np.abs(f["ic_s"] - t["ic_s"]).to_numpy() * 1e3
    assert err_ms.max() <= 5.0
    assert np.median(err_ms) <= 3.0


def test_strike_class(case):
    params, steps, summary, model = case
    f, t, _, _ = match_steps(steps, _inner(model, params))
    assert (f["strike_class"].to_numpy() == t["strike_class"].to_numpy()).mean() >= 0.95
    counts = summary["feet"]["left"]["strike_counts"]
    assert counts[t["strike_class"].iloc[0]] == summary["feet"]["left"]["steps"]


def test_loading_rates_within_10_percent(case):
    params, steps, _, model = case
    f, t, _, _ = match_steps(steps, _inner(model, params))
    rel = np.abs(f["vilr_bw_s"].to_numpy() / t["vilr_bw_s"].to_numpy() - 1)
    assert np.nanmax(rel) <= 0.10, "vilr_bw_s"
    has_truth = np.isfinite(t["impact_peak_bw"].to_numpy())
    assert (np.isfinite(f["impact_peak_bw"].to_numpy()) == has_truth).mean() >= 0.95
    rel = np.abs(f["avlr_bw_s"].to_numpy() / t["avlr_bw_s"].to_numpy() - 1)
    assert np.nanmax(rel) <= 0.10, "avlr_bw_s"


def test_asymmetry_within_3_points(case):
    params, _, summary, model = case
    truth = _inner(model, params)
    # Not the strike index: an SI of values near 15 % of foot length is dominated by tiny differences.
    for col in ("avlr_bw_s", "vilr_bw_s", "contact_time_ms", "peak_force_bw", "impulse_bw_s"):
        if col not in truth:
            continue
        left = truth.loc[truth["foot"] == "left", col].mean()
        right = truth.loc[truth["foot"] == "right", col].mean()
        assert abs(summary["asymmetry_si_pct"][col] - symmetry_index(left, right)) <= 3.0, col


def test_body_weight_and_cadence(case):
    params, _, summary, model = case
    assert summary["insole_scale"] == pytest.approx(1.0, abs=0.03)
    assert summary["cadence_spm"] == pytest.approx(params[1], rel=0.03)
    assert summary["normalised_by"] == "body_mass"
