"""Before-versus-after statistics of :mod:`treadlab.analysis.compare`, against independent computations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from treadlab.analysis import compare
from treadlab.errors import AnalysisError


def _steps(rng, n_per_foot, means_left, means_right, sd_pct=5.0, strike=("rearfoot", "rearfoot")):
    """A step table with normally distributed metrics around the given per-foot means."""
    rows = []
    for foot, means, cls in (("left", means_left, strike[0]), ("right", means_right, strike[1])):
        block = {"foot": np.full(n_per_foot, foot)}
        for name, mean in means.items():
            block[name] = rng.normal(mean, abs(mean) * sd_pct / 100.0, n_per_foot)
        block["strike_class"] = np.full(n_per_foot, cls)
        rows.append(pd.DataFrame(block))
    return pd.concat(rows, ignore_index=True)


BEFORE = {"vilr_bw_s": 92.0, "avlr_bw_s": 60.0, "strike_index_pct": 18.0, "contact_time_ms": 262.0,
          "step_time_ms": 375.0}
AFTER = {"vilr_bw_s": 63.0, "avlr_bw_s": 41.0, "strike_index_pct": 50.0, "contact_time_ms": 250.0,
         "step_time_ms": 349.0}


def test_welch_interval_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(10, 2, 40)
    b = rng.normal(11, 5, 25)
    diff, low, high = compare.welch_ci(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(b.mean() - a.mean())
    assert low == pytest.approx(ref.low, rel=1e-9) and high == pytest.approx(ref.high, rel=1e-9)


def test_welch_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(400):
        a = rng.normal(0.0, 1.0, 12)
        b = rng.normal(0.7, 3.0, 30)
        _, low, high = compare.welch_ci(a, b)
        hits += low <= 0.7 <= high
    assert 0.91 <= hits / 400 <= 0.99


def test_hedges_g_against_the_formula_and_sign():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([3.0, 4.0, 5.0, 6.0, 7.0])
    sp = np.sqrt((3 * a.var(ddof=1) + 4 * b.var(ddof=1)) / 7)
    expected = (b.mean() - a.mean()) / sp * (1 - 3 / (4 * 9 - 9))
    assert compare.hedges_g(a, b) == pytest.approx(expected)
    assert compare.hedges_g(b, a) == pytest.approx(-expected)
    assert np.isnan(compare.hedges_g([1.0], b))


def test_symmetry_index_and_its_interval():
    rng = np.random.default_rng(3)
    left = rng.normal(100, 5, 200)
    right = rng.normal(112, 5, 200)
    si, low, high = compare.symmetry_index_ci(left, right)
    assert si == pytest.approx(200 * (right.mean() - left.mean()) / (right.mean() + left.mean()))
    assert low < si < high and 10 < low and high < 14
    # A bootstrap of the same statistic gives about the same width (independent check of the delta method).
    il = rng.integers(0, 200, (2000, 200))
    ir = rng.integers(0, 200, (2000, 200))
    ml, mr = left[il].mean(axis=1), right[ir].mean(axis=1)
    boot = 200 * (mr - ml) / (mr + ml)
    assert (high - low) == pytest.approx(np.percentile(boot, 97.5) - np.percentile(boot, 2.5), rel=0.15)


def test_strike_classes_from_index_when_no_class_column():
    tab = pd.DataFrame({"foot": ["left"] * 5, "strike_index_pct": [10.0, 40.0, 80.0, np.nan, 33.0]})
    # one rule for a missing strike index, the step table's: no class ("")
    assert list(compare.strike_classes(tab)) == ["rearfoot", "midfoot", "forefoot", "", "rearfoot"]


def test_known_change_is_found_and_said_plainly():
    rng = np.random.default_rng(4)
    before = _steps(rng, 80, BEFORE, {**BEFORE, "vilr_bw_s": 104.0, "avlr_bw_s": 68.0})
    after = _steps(rng, 90, AFTER, {**AFTER, "vilr_bw_s": 64.0, "avlr_bw_s": 41.5}, strike=("midfoot", "midfoot"))
    comp = compare.compare_steps(before, after)
    vilr = comp.change("vilr_bw_s", "left")
    assert vilr.before_n == 80 and vilr.after_n == 90
    assert vilr.pct_change == pytest.approx(100 * (63 - 92) / 92, abs=3)
    assert vilr.ci_excludes_zero and vilr.beyond_noise and vilr.hedges_g < -3
    assert comp.strike["left"]["rearfoot"]["before_pct"] == 100 and comp.strike["left"]["midfoot"]["after_pct"] == 100
    cad = comp.change("cadence_spm", "both")
    assert cad.before_mean == pytest.approx(60000 / 375, rel=0.02) and cad.after_mean > cad.before_mean
    asym = comp.asymmetry["avlr_bw_s"]
    assert asym["before_si_pct"] == pytest.approx(12.5, abs=2) and abs(asym["after_si_pct"]) < 3
    assert asym["closer"]
    text = " ".join(comp.summary)
    assert "Most steps moved from rearfoot to midfoot landing" in text
    assert f"Left VILR fell {abs(vilr.pct_change):.0f}%" in text
    assert f"from {vilr.before_mean:.0f} to {vilr.after_mean:.0f} BW/s" in text
    assert "Cadence rose" in text and "The sides came closer in AVLR" in text
    # The JSON form holds the same numbers and no NaN.
    data = json.loads(json.dumps(comp.to_dict(), allow_nan=False))
    row = next(c for c in data["changes"] if c["metric"] == "vilr_bw_s" and c["foot"] == "left")
    assert row["diff"] == pytest.approx(vilr.diff) and row["ci_low"] == pytest.approx(vilr.ci_low)


def test_no_change_is_never_claimed():
    rng = np.random.default_rng(5)
    before = _steps(rng, 60, BEFORE, BEFORE, sd_pct=10)
    after = _steps(rng, 60, BEFORE, BEFORE, sd_pct=10)
    comp = compare.compare_steps(before, after)
    claims = [c for c in comp.changes if c.ci_excludes_zero]
    # With 11 comparisons at 95%, at most a couple can be false positives; none may be "beyond noise".
    assert len(claims) <= 3 and not any(c.beyond_noise for c in comp.changes)
    text = " ".join(comp.summary)
    assert "moved from" not in text and "came closer" not in text
    for c in comp.changes:
        label = compare.CADENCE[0] if c.metric == "cadence_spm" else compare.METRICS[c.metric][0]
        if not c.ci_excludes_zero and c.metric in ("vilr_bw_s", "avlr_bw_s", "contact_time_ms"):
            assert f"{c.foot.capitalize()} {label}: no clear change" in text


def test_tiny_samples_give_no_interval_and_no_claim():
    before = pd.DataFrame({"foot": ["left", "right"], "vilr_bw_s": [90.0, 95.0], "step_time_ms": [370.0, 372.0]})
    after = pd.DataFrame({"foot": ["left", "right"], "vilr_bw_s": [60.0, 61.0], "step_time_ms": [350.0, 351.0]})
    comp = compare.compare_steps(before, after)
    c = comp.change("vilr_bw_s", "left")
    assert np.isnan(c.ci_low) and not c.ci_excludes_zero
    assert "Left VILR: no clear change (90 to 60 BW/s)." in comp.summary
    assert not any("landing" in s for s in comp.summary)


def test_empty_segment_is_an_analysis_error():
    with pytest.raises(AnalysisError, match="before segment has no steps"):
        compare.compare_steps(pd.DataFrame({"foot": []}), pd.DataFrame({"foot": ["left"], "vilr_bw_s": [1.0]}))


def test_a_tiny_but_clear_change_is_called_practically_unchanged():
    rng = np.random.default_rng(6)
    before = pd.DataFrame({"foot": ["left"] * 200 + ["right"] * 200, "contact_time_ms": rng.normal(260, 0.5, 400)})
    after = before.assign(contact_time_ms=before["contact_time_ms"] + 0.8)
    comp = compare.compare_steps(before, after)
    c = comp.change("contact_time_ms", "left")
    assert c.ci_excludes_zero and abs(c.pct_change) < compare.TRIVIAL_PCT
    assert "Left contact time: practically unchanged (260 to 261 ms)." in comp.summary
    assert "Contact time asymmetry: no clear change" in " ".join(comp.summary)


def test_strike_shift_interval_stays_sensible_at_0_and_100_percent():
    d, low, high = compare.proportion_difference(1.0, 12, 0.0, 11)
    assert d == -1.0 and -1.0 <= low < -0.6 and -1.0 < high < -0.5
    # Newcombe's interval against a brute-force check: Wilson bounds are where the score test has z = 1.96.
    lo, hi = compare.wilson_interval(0.3, 50)
    z = stats.norm.ppf(0.975)
    for bound in (lo, hi):
        assert abs(0.3 - bound) / np.sqrt(bound * (1 - bound) / 50) == pytest.approx(z, rel=1e-9)
    d, low, high = compare.proportion_difference(0.5, 40, 0.5, 40)
    assert d == 0 and low < 0 < high and high == pytest.approx(-low)


def test_an_interval_close_to_zero_keeps_a_decimal():
    c = compare.MetricChange("contact_time_ms", "right", 248.0, 5.0, 20, 254.0, 5.0, 20, 6.0, 0.5, 12.0,
                             2.4, 0.2, 4.8, 1.2, 5.0, True, True)
    assert compare._change_sentence(c) == "Right contact time rose 2% (95% CI 0.2 to 4.8%), from 248 to 254 ms."


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30), st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30))
def test_swapping_before_and_after_mirrors_every_statistic(a, b):
    d1, lo1, hi1 = compare.welch_ci(a, b)
    d2, lo2, hi2 = compare.welch_ci(b, a)
    assert d1 == pytest.approx(-d2, abs=1e-9)
    if np.isfinite(lo1):
        assert lo1 <= d1 <= hi1 and lo1 == pytest.approx(-hi2, abs=1e-6) and hi1 == pytest.approx(-lo2, abs=1e-6)
    g1, g2 = compare.hedges_g(a, b), compare.hedges_g(b, a)
    assert (np.isnan(g1) and np.isnan(g2)) or g1 == pytest.approx(-g2, abs=1e-9)
