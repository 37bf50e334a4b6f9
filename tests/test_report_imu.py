"""The pelvis and shock panel of ``lab report`` and ``lab compare``, and the comparison's statistics of the IMU
metrics, on step tables and summaries built here with known values (the shape the IMU analysis gives: steps-table
columns ``pelvic_drop_deg`` ..., summary ``feet.<side>.<metric>`` and ``pelvis.<key>``).
"""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from treadlab.analysis.compare import (
    compare_steps,
    metric_change,
    side_difference_change,
    stats_change,
    welch_ci,
    welch_ci_from_stats,
)
from treadlab.analysis.summary import metric_stats
from treadlab.lab.report import figures_pelvis as pfigs
from treadlab.lab.report.html import render_compare, render_session
from treadlab.lab.report.model import SessionView
from treadlab.lab.report.pelvis_panel import MIN_STRIDES, VALIDATION

IMU = {"pelvic_drop_deg": (6.0, 1.2), "trunk_lean_deg": (8.0, 1.0), "vertical_oscillation_mm": (85.0, 6.0),
       "pta_g": (9.0, 1.5), "ppa_g": (2.5, 0.4), "shock_attenuation_pct": (72.0, 4.0)}


def _curve(drop_deg: float, k: int = 101) -> np.ndarray:
    x = np.linspace(0, 1, k)
    return drop_deg * np.sin(np.pi * x / 0.4) * (x < 0.4) - drop_deg * 0.8 * np.sin(np.pi * (x - 0.5) / 0.4) * (
        (x > 0.5) & (x < 0.9))


def _view(rng, n_left=150, n_right=150, shift=None, rotation=(9.0, 2.0), imu=True) -> SessionView:
    shift = shift or {}
    rows = []
    for foot, n in (("left", n_left), ("right", n_right)):
        ic = np.arange(n) * 0.7 + (0 if foot == "left" else 0.35)
        d = {"foot": foot, "ic_s": ic, "to_s": ic + 0.26, "contact_time_ms": rng.normal(260, 8, n),
             "step_time_ms": rng.normal(350, 6, n), "vilr_bw_s": rng.normal(80, 5, n)}
        if imu:
            for m, (mean, sd) in IMU.items():
                d[m] = rng.normal(mean + shift.get((m, foot), 0.0) + (1.0 if foot == "right" else 0.0), sd, n)
        rows.append(pd.DataFrame(d))
    steps = pd.concat(rows, ignore_index=True).sort_values("ic_s", ignore_index=True)
    metrics = ["contact_time_ms", "step_time_ms", "vilr_bw_s"] + (list(IMU) if imu else [])
    feet = {f: {m: metric_stats(steps.loc[steps.foot == f, m]) for m in metrics} for f in ("left", "right")}
    for f in feet:
        feet[f]["steps"] = int((steps.foot == f).sum())
        feet[f]["strike_counts"] = {"rearfoot": 0, "midfoot": 0, "forefoot": 0}
    summary = {"duration_s": 120.0, "cadence_spm": 171.0, "step_count": len(steps), "feet": feet,
               "asymmetry_si_pct": {}}
    curves = None
    if imu:
        n_str = min(n_left, n_right)
        summary["pelvis"] = {"rotation_range_deg": metric_stats(rng.normal(*rotation, n_str)),
                             "tilt_mean_deg": metric_stats(rng.normal(2.0, 1.0, n_str)),
                             "tilt_range_deg": metric_stats(rng.normal(5.0, 1.0, n_str))}
        curves = {"left": _curve(6.0), "right": _curve(7.0)}
    return SessionView(source="run.h5", meta={"participant": "P01"}, quality={}, summary=summary, steps=steps,
                       pelvis_obliquity_deg=curves)


def _doc(page: str) -> dict:
    return json.loads(re.search(r'id="treadlab-data">(.*?)</script>', page).group(1))


def _lookup(doc, path):
    for key in path.split("."):
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    return doc


def _panel(page: str) -> str:
    m = re.search(r'<section class="pelvis" id="pelvis-panel">(.*?)</section>', page, re.S)
    assert m, "no pelvis panel"
    return m.group(1)


def _spans(text: str):
    return re.findall(r'<span class="num[^"]*" data-metric="([^"]+)" data-value="([^"]+)">([^<]*)</span>', text)


def _png(page: str, name: str) -> np.ndarray:
    src = re.search(rf'<figure id="fig-{name}"><img [^>]*src="data:image/png;base64,([^"]+)"', page).group(1)
    return imread(io.BytesIO(base64.b64decode(src, validate=True)), format="png")


def test_session_panel_shows_each_metric_per_side_with_the_right_numbers_and_the_difference():
    v = _view(np.random.default_rng(0))
    page = render_session(v)
    panel = _panel(page)
    doc = _doc(page)
    spans = _spans(panel)
    assert len(spans) > 40
    for path, value, _ in spans:  # every number of the panel is the page's JSON
        got = _lookup(doc, path)
        assert (value == "null") == (got is None) and (value == "null" or float(value) == pytest.approx(got)), path
    for m in IMU:  # the means are the steps' means; the difference is right minus left
        left, right = v.step_values("left", m), v.step_values("right", m)
        assert doc["feet"]["left"][m]["mean"] == pytest.approx(left.mean())
        assert f'data-metric="feet.right.{m}.mean" data-value="{float(right.mean())!r}"' in panel
        d = doc["pelvis_panel"][m]
        assert d["diff"] == pytest.approx(right.mean() - left.mean())
        assert d["ci_low"] < 1.0 < d["ci_high"]  # the simulated right side is 1 unit higher
        assert f'data-panel-metric="{m}"' in panel
    for key in ("rotation_range_deg", "tilt_mean_deg", "tilt_range_deg"):
        assert f'data-metric="pelvis.{key}.mean"' in panel
    assert "few strides" not in panel  # 150 strides per side
    for m in IMU:
        assert VALIDATION[m][0] in panel.replace("&#x27;", "'")
    assert "known answers" in panel and "motion capture" in panel
    img = _png(page, "obliquity")
    assert img.shape[1] > 600 and img[..., :3].std() > 0.05


def test_a_metric_with_fewer_than_100_strides_shows_its_count_and_is_marked():
    v = _view(np.random.default_rng(1), n_left=60, n_right=140)
    panel = _panel(render_session(v))
    row = re.search(r'<tr data-panel-metric="pelvic_drop_deg">(.*?)</tr>', panel).group(1)
    left_cell, right_cell = re.findall(r"<td>(.*?)</td>", row)[1:3]
    assert 'data-metric="feet.left.pelvic_drop_deg.n" data-value="60.0">60<' in left_cell
    assert "few strides" in left_cell and "few strides" not in right_cell
    assert MIN_STRIDES == 100


def test_no_panel_without_imu_metrics():
    page = render_session(_view(np.random.default_rng(2), imu=False))
    assert 'id="pelvis-panel"' not in page and "pelvis_panel" not in _doc(page)


def test_compare_gives_each_imu_metric_its_change_ci_and_noise_verdict():
    rng = np.random.default_rng(3)
    before = _view(rng)
    after = _view(rng, shift={("pelvic_drop_deg", "left"): -2.0, ("pta_g", "right"): -3.0}, rotation=(6.0, 2.0))
    comp = compare_steps(before.steps, after.steps, summaries=(before.summary, after.summary))
    c = comp.change("pelvic_drop_deg", "left")
    assert c.ci_low < -2.0 < c.ci_high and c.ci_high < 0
    assert c.beyond_noise  # 2 deg against a step-to-step SD of 1.2 deg
    assert comp.change("pta_g", "right").ci_low < -3.0 < comp.change("pta_g", "right").ci_high
    same = comp.change("pelvic_drop_deg", "right")
    assert same.ci_low < 0 < same.ci_high and not same.beyond_noise
    rot = comp.change("pelvic_rotation_deg", "both")
    assert rot.ci_low < -3.0 < rot.ci_high and rot.beyond_noise
    # the left-right difference of pelvic drop: +1 before, +3 after (the left side's drop fell 2 deg)
    a = comp.asymmetry["pelvic_drop_deg"]
    assert abs(a["before_diff"] - 1.0) < 0.5 and abs(a["after_diff"] - 3.0) < 0.5
    assert a["before_ci"][0] < a["before_diff"] < a["before_ci"][1]
    assert abs(a["change"] - 2.0) < 0.6 and a["change_ci"][0] < a["change"] < a["change_ci"][1] and a["clear"]
    assert "before_si_pct" not in a  # a difference in degrees, not a symmetry index
    text = " ".join(comp.summary)
    assert "Left pelvic drop fell" in text and "deg (95% CI" in text
    assert "Right pelvic drop: no clear change" in text


def test_the_95_percent_interval_of_a_known_change_covers_it_95_percent_of_the_time():
    rng = np.random.default_rng(4)
    hits = hits_stats = hits_side = 0
    trials = 400
    for _ in range(trials):
        b = rng.normal(6.0, 1.5, 120)
        a = rng.normal(4.5, 1.5, 110)
        c = metric_change("pelvic_drop_deg", "left", b, a)
        hits += c.ci_low < -1.5 < c.ci_high
        s = stats_change("pelvic_rotation_deg", "both", metric_stats(b), metric_stats(a))
        hits_stats += s.ci_low < -1.5 < s.ci_high
        # the change of the left-right difference: right side 1 deg higher before, 3 deg after
        tb = pd.DataFrame({"foot": ["left"] * 120 + ["right"] * 120, "pelvic_drop_deg": np.r_[b, b + 1.0
                           + rng.normal(0, 1.5, 120)]})
        ta = pd.DataFrame({"foot": ["left"] * 110 + ["right"] * 110, "pelvic_drop_deg": np.r_[a, a + 3.0
                           + rng.normal(0, 1.5, 110)]})
        lo, hi = side_difference_change(tb, ta, "pelvic_drop_deg")["change_ci"]
        hits_side += lo < 2.0 < hi
    assert 0.92 <= hits / trials <= 0.98
    assert 0.92 <= hits_stats / trials <= 0.98
    assert 0.90 <= hits_side / trials


def test_the_interval_from_a_summary_s_statistics_is_the_interval_from_the_samples():
    rng = np.random.default_rng(5)
    b, a = rng.normal(9, 2, 80), rng.normal(7, 3, 95)
    assert welch_ci_from_stats(metric_stats(b), metric_stats(a)) == pytest.approx(welch_ci(b, a), rel=1e-9)
    assert np.isnan(welch_ci_from_stats({"n": 0}, metric_stats(a))[0])
    assert np.isnan(welch_ci_from_stats(metric_stats(b[:1]), metric_stats(a))[1])


def test_compare_page_has_the_panel_and_the_obliquity_figure_before_dashed_after_solid():
    rng = np.random.default_rng(6)
    before, after = _view(rng), _view(rng, shift={("pelvic_drop_deg", "left"): -2.0})
    after.pelvis_obliquity_deg = {"left": _curve(4.0), "right": _curve(7.0)}
    comp = compare_steps(before.steps, after.steps, summaries=(before.summary, after.summary))
    page = render_compare(before, after, comp)
    panel = _panel(page)
    doc = _doc(page)
    for path, value, _ in _spans(panel):
        got = _lookup(doc, path)
        assert (value == "null") == (got is None) and (value == "null" or float(value) == pytest.approx(got)), path
    c = comp.change("pelvic_drop_deg", "left")
    row = re.search(r'<tr data-panel-metric="pelvic_drop_deg" data-foot="left">(.*?)</tr>', panel).group(1)
    assert f'data-value="{c.ci_low!r}"' in row and f'data-value="{c.ci_high!r}"' in row
    assert '<span class="yes">yes</span>' in row
    assert 'data-panel-metric="pelvic_rotation_deg" data-foot="both"' in panel
    assert _png(page, "obliquity").shape[1] > 600
    fig = pfigs.pelvic_obliquity_compare(before.pelvis_obliquity_deg, after.pelvis_obliquity_deg)
    styles = {ln.get_label(): ln.get_linestyle() for ln in fig.axes[0].get_lines() if "stance" in ln.get_label()}
    assert styles == {"left stance, before": "--", "left stance, after": "-", "right stance, before": "--",
                      "right stance, after": "-"}
    # the asymmetry table of the page keeps the symmetry indices only; the IMU differences are in the panel
    assert 'data-metric="asymmetry.pelvic_drop_deg.before_diff"' in panel
