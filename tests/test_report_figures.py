"""Report figures and page building blocks, fed with arrays generated here (no session file needed)."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from treadlab.analysis.compare import compare_steps
from treadlab.drivers.layouts import load_layout
from treadlab.lab.report import figures as figs
from treadlab.lab.report import figures_compare as cfigs
from treadlab.lab.report.html import render_compare, render_session
from treadlab.lab.report.model import FootView, SessionView
from treadlab.lab.report.page import band, fmt, num


def _decode_png(b64: str) -> np.ndarray:
    raw = base64.b64decode(b64, validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(io.BytesIO(raw), format="png")


def _foot_view(rng, n_steps: int, strike_y_mm: float, scale: float) -> FootView:
    lay = load_layout("insole99")
    x = np.linspace(0, 1, 101)
    curves = scale * (2.4 * np.sin(np.pi * x) + 0.8 * np.exp(-((x - 0.12) / 0.04) ** 2))
    curves = curves[None, :] * rng.normal(1, 0.03, (n_steps, 1))
    y = strike_y_mm + (240 - strike_y_mm) * x
    cop = np.stack([np.broadcast_to(5 * np.sin(np.pi * x), (n_steps, 101)), np.broadcast_to(y, (n_steps, 101))], -1)
    cop = cop + rng.normal(0, 2, cop.shape)
    d = np.hypot(lay.positions_mm[:, 0], lay.positions_mm[:, 1] - 60)
    return FootView(curves_bw=curves, cop_mm=cop, positions_mm=lay.positions_mm, areas_mm2=lay.areas_mm2,
                    peak_kpa=400 * np.exp(-d / 80), mean_kpa=120 * np.exp(-d / 80), outline_mm=lay.outline_mm)


def _view(rng, n_steps=40, strike=("rearfoot", 15.0), vilr=(90.0, 104.0), cadence=160.0) -> SessionView:
    rows = []
    for foot, v in zip(("left", "right"), vilr):
        ic = np.arange(n_steps) * 120 / cadence + (0 if foot == "left" else 60 / cadence)
        rows.append(pd.DataFrame({
            "foot": foot, "ic_s": ic, "to_s": ic + 0.26, "vilr_bw_s": rng.normal(v, 4, n_steps),
            "avlr_bw_s": rng.normal(0.65 * v, 3, n_steps), "strike_index_pct": rng.normal(strike[1], 4, n_steps),
            "strike_class": strike[0], "contact_time_ms": rng.normal(260, 8, n_steps),
            "step_time_ms": rng.normal(60000 / cadence, 6, n_steps)}))
    steps = pd.concat(rows, ignore_index=True)
    feet = {}
    metrics = ("vilr_bw_s", "avlr_bw_s", "strike_index_pct", "contact_time_ms", "step_time_ms")
    for foot in ("left", "right"):
        part = steps[steps.foot == foot]
        feet[foot] = {m: {"mean": part[m].mean(), "sd": part[m].std(), "median": part[m].median(), "n": len(part)}
                      for m in metrics}
        feet[foot]["steps"] = len(part)
        feet[foot]["strike_counts"] = {"rearfoot": int((part.strike_class == "rearfoot").sum()),
                                       "midfoot": int((part.strike_class == "midfoot").sum()), "forefoot": 0}
    asym = {m: 200 * (feet["right"][m]["mean"] - feet["left"][m]["mean"])
            / (feet["right"][m]["mean"] + feet["left"][m]["mean"]) for m in metrics}
    summary = {"duration_s": 30.0, "cadence_spm": cadence, "step_count": len(steps), "feet": feet,
               "asymmetry_si_pct": asym}
    meta = {"participant": "P<1>&", "condition": "baseline", "date": "2026-11-25 08:00 UTC",
            "treadmill_speed_mps": 3.0, "shoe": "A", "body_mass_kg": 70.0, "devices": ["insole_left (insole)"]}
    return SessionView(source="run.h5", meta=meta, quality={"lost_samples": 0, "gaps": 0, "crc_errors": 3,
                                                            "clock": "ok"},
                       summary=summary, steps=steps,
                       feet={"left": _foot_view(rng, n_steps, strike[1] * 2.6, 1.0),
                             "right": _foot_view(rng, n_steps, strike[1] * 2.6, 1.1)},
                       footprints_kpa={"left": rng.random((38, 17)), "right": rng.random((38, 17))}, pitch_mm=8.47,
                       butterfly_mm={"both": rng.normal(0, 50, (500, 2))}, markers=[(10.0, "cue")])


def test_every_figure_renders_to_a_decodable_png_of_the_page_width():
    rng = np.random.default_rng(0)
    v = _view(rng)
    feet = {f: {"positions_mm": v.feet[f].positions_mm, "areas_mm2": v.feet[f].areas_mm2,
                "peak_kpa": v.feet[f].peak_kpa, "mean_kpa": v.feet[f].mean_kpa, "outline_mm": v.feet[f].outline_mm,
                "diff_kpa": v.feet[f].mean_kpa - 50} for f in ("left", "right")}
    per_foot = {f: {m: v.step_values(f, m) for m in ("avlr_bw_s", "strike_index_pct", "contact_time_ms")}
                for f in ("left", "right")}
    made = [
        figs.force_curves({f: v.feet[f].curves_bw for f in v.feet}),
        figs.gait_lines({f: v.feet[f].cop_mm for f in v.feet}, {f: v.feet[f].outline_mm for f in v.feet}),
        figs.butterfly(v.butterfly_mm),
        figs.butterfly({"left": rng.normal(-50, 5, (300, 2)), "right": rng.normal(50, 5, (300, 2))}),
        figs.pressure_maps(feet),
        figs.footprints(v.footprints_kpa, v.pitch_mm),
        figs.strike_distribution({f: v.step_values(f, "strike_index_pct") for f in v.feet}),
        figs.over_time({f: {"t_s": v.step_values(f, "ic_s"), "avlr_bw_s": v.step_values(f, "avlr_bw_s"),
                            "strike_index_pct": v.step_values(f, "strike_index_pct")} for f in v.feet}, v.markers),
        cfigs.force_curves({"left": v.feet["left"].curves_bw}, {"left": v.feet["left"].curves_bw * 0.9}),
        cfigs.gait_lines({f: v.feet[f].cop_mm for f in v.feet}, {f: v.feet[f].cop_mm + 20 for f in v.feet},
                         {f: v.feet[f].outline_mm for f in v.feet}),
        cfigs.pressure_difference(feet),
        cfigs.distributions(per_foot, per_foot),
    ]
    for i, fig in enumerate(made):
        img = _decode_png(figs.png_base64(fig))
        assert img.shape[1] == round(figs.WIDTH_IN * figs.DPI)
        assert img[..., :3].std() > 0.05  # not blank
        axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert all(ax.get_ylabel() for ax in axes), f"figure {i}: an axis without a label (unit)"
        assert any(ax.get_xlabel() for ax in axes) or all(ax.get_xticklabels()[0].get_text() for ax in axes)


def test_left_foot_is_mirrored_for_display_and_colours_are_fixed():
    pts = np.array([[10.0, 50.0], [-5.0, 80.0]])
    assert np.array_equal(figs._display_x("left", pts)[:, 0], [-10.0, 5.0])
    assert np.array_equal(figs._display_x("right", pts), pts)
    assert figs.COLOURS["left"] != figs.COLOURS["right"]
    fig = figs.force_curves({"left": np.ones((3, 101)), "right": 2 * np.ones((3, 101))})
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label() and not ln.get_label().startswith("_")]
    assert {ln.get_color() for ln in lines} == set(figs.COLOURS.values())


def test_numbers_bands_and_escaping():
    assert band(4.9) == "fine" and band(-7) == "watch" and band(10.5) == "flag" and band(float("nan")) == "none"
    assert band(6, (8, 12)) == "fine"
    assert fmt(float("nan"), 1) == "–" and fmt(-3.25, 1) == "−3.2" and fmt(1234.5, 0) == "1,234"
    span = num("feet.left.x.mean", 1.23456, 2)
    assert 'data-value="1.23456"' in span and ">1.23<" in span


def _spans(page: str) -> list[tuple[str, str, str]]:
    return re.findall(r'<span class="num[^"]*" data-metric="([^"]+)" data-value="([^"]+)">([^<]*)</span>', page)


def _lookup(doc, path):
    for key in path.split("."):
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    return doc


def test_session_page_numbers_trace_to_the_summary_and_the_page_is_self_contained():
    rng = np.random.default_rng(1)
    v = _view(rng)
    page = render_session(v)
    assert "P&lt;1&gt;&amp;" in page and "P<1>&" not in page.split("<script")[0]
    doc = json.loads(re.search(r'<script type="application/json" id="treadlab-data">(.*?)</script>', page).group(1))
    spans = _spans(page)
    assert len(spans) > 40
    for path, value, _text in spans:
        expected = _lookup(v.summary, path)
        assert (value == "null") == (expected is None) and (value == "null" or float(value) == expected), path
        assert _lookup(doc, path) == pytest.approx(expected), path
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from anywhere
    # Printing: figures, cards and table rows are never split across pages.
    for rule in ("figure { margin: 4mm 0; break-inside: avoid; page-break-inside: avoid; }", "@page",
                 "tr { break-inside: avoid; page-break-inside: avoid; }"):
        assert rule in page
    assert page.count("data:image/png;base64,") == 7


def test_compare_page_numbers_trace_to_the_comparison():
    rng = np.random.default_rng(2)
    before = _view(rng)
    after = _view(rng, strike=("midfoot", 50.0), vilr=(63.0, 64.0), cadence=172.0)
    comp = compare_steps(before.steps, after.steps)
    page = render_compare(before, after, comp)
    doc = json.loads(re.search(r'id="treadlab-data">(.*?)</script>', page).group(1))
    for path, value, _text in _spans(page):
        got = _lookup(doc, path)
        assert (value == "null") == (got is None) and (value == "null" or float(value) == pytest.approx(got)), path
    assert comp.summary[0] in page.replace("&#x27;", "'")
    assert "Most steps moved from rearfoot to midfoot landing" in comp.summary[0]
    assert page.count("data:image/png;base64,") == 4


def test_touchdown_is_marked_at_the_strike_position_not_at_the_noisy_first_sample():
    y = np.r_[125.0, np.linspace(57, 230, 100)]  # first point: COP of almost no load, mid-foot
    path = np.column_stack([np.linspace(-5, 5, 101), y])
    td = figs.touchdown_point(path, 57.0)
    assert td[1] == 57.0 and td[0] == pytest.approx(path[1, 0])
    assert np.array_equal(figs.touchdown_point(path, None), path[0])


def test_steps_with_undefined_points_draw_without_warnings():
    cop = np.full((5, 101, 2), np.nan)
    cop[:, 10:90, 0] = 1.0
    cop[:, 10:90, 1] = np.linspace(40, 200, 80)
    curves = np.where(np.arange(101) < 95, 1.0, np.nan) * np.ones((5, 101))
    figs.gait_lines({"left": cop}, {"left": None}, {"left": 40.0})
    figs.force_curves({"right": curves})
    cfigs.gait_lines({"left": cop}, {"left": cop}, {"left": None})
    mean, sd = figs._mean_sd(curves)
    assert np.isnan(mean[-1]) and mean[0] == 1.0 and sd[0] == 0.0
