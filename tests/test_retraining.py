"""The retraining numbers against synthetic series with known answers, and the report section on a session file
with a ``/feedback`` group."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pandas as pd
import pytest

from tests.integration_sessions import write_session
from treadlab.analysis.retraining import read_feedback, retention_ratio, retraining_numbers, time_to_criterion
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.feedback.live import feedback_tables
from treadlab.feedback.protocol import parse_protocol
from treadlab.feedback.sinks import NullSink
from treadlab.lab.cli import main


@pytest.mark.parametrize("change_at, seed", [(40, 0), (75, 1), (130, 2)])
def test_time_to_criterion_finds_a_known_change_point(change_at, seed):
    """Strike index 18 +- 4 before the change, 48 +- 4 after; band >= 34; the change is at step change_at."""
    rng = np.random.default_rng(seed)
    n = 240
    ic = 10.0 + np.arange(n) * 0.35
    v = np.where(np.arange(n) < change_at, 18.0, 48.0) + rng.normal(0, 4, n)
    t_s, steps = time_to_criterion(ic, v, 34.0, None, start_s=10.0)
    assert abs(steps - change_at) <= 2
    assert t_s == pytest.approx(ic[steps] - 10.0)


def test_time_to_criterion_is_empty_when_never_reached_or_not_held():
    ic = np.arange(100) * 0.35
    v = np.full(100, 20.0)
    v[50:65] = 50.0  # in band for 15 steps only: not held for 20
    assert time_to_criterion(ic, v, 34.0, None, 0.0) == (pytest.approx(np.nan, nan_ok=True), -1)


@pytest.mark.parametrize("kept", [0.0, 0.3, 0.75, 1.0])
def test_retention_ratio_of_a_known_series(kept):
    rng = np.random.default_rng(3)
    base = 100.0 + rng.normal(0, 8, 300)
    fb = 60.0 + rng.normal(0, 8, 400)
    ret = 100.0 - 40.0 * kept + rng.normal(0, 8, 300)
    assert retention_ratio(base, fb, ret) == pytest.approx(kept, abs=0.05)


def _steps(n_base=200, n_fb=300, n_ret=200, seed=4):
    rng = np.random.default_rng(seed)
    n = n_base + n_fb + n_ret
    ic = np.arange(n) * 0.35
    si = np.concatenate([18 + rng.normal(0, 3, n_base), np.where(np.arange(n_fb) < 30, 18.0, 50.0)
                         + rng.normal(0, 3, n_fb), 44 + rng.normal(0, 3, n_ret)])
    return pd.DataFrame({"foot": np.where(np.arange(n) % 2, "right", "left"), "ic_s": ic, "strike_index_pct": si,
                         "cadence_spm": 170 + rng.normal(0, 2, n), "contact_time_ms": 260 + rng.normal(0, 5, n),
                         "vilr_bw_s": 90 + rng.normal(0, 5, n), "avlr_bw_s": 60 + rng.normal(0, 4, n)}), \
        (n_base * 0.35, (n_base + n_fb) * 0.35, n * 0.35)


def test_retraining_numbers_per_phase():
    steps, (b, f, e) = _steps()
    phases = pd.DataFrame({"start": [0.0, b, f], "stop": [b, f, e], "name": ["baseline", "feedback 1", "retention"]})
    out = retraining_numbers(steps, phases, [0.0, 1.0, 0.0], "strike_index_pct", 34.0, None)
    assert out["time_to_criterion_steps"] == pytest.approx(30, abs=2)
    assert out["in_band_pct_baseline"] < 1.0 and out["in_band_pct_retention"] > 99.0
    assert out["in_band_pct_feedback_1"] == pytest.approx(100.0 * 270 / 300, abs=1.0)
    fb_mean = steps["strike_index_pct"].iloc[200:500].mean()
    want = (steps["strike_index_pct"].iloc[500:].mean() - steps["strike_index_pct"].iloc[:200].mean()) / \
        (fb_mean - steps["strike_index_pct"].iloc[:200].mean())
    assert out["retention_ratio"] == pytest.approx(want)
    bvr = out["baseline_vs_retention"]
    assert bvr["ci_low"] < 26.0 < bvr["ci_high"] and bvr["hedges_g"] > 5
    assert set(out["side_effects"]) == {"cadence_spm", "contact_time_ms", "vilr_bw_s", "avlr_bw_s"}
    assert abs(out["side_effects"]["cadence_spm"]["diff"]) < 1.0


PROTO = """
[target]
metric = "strike_index_pct"
low = 34.0
[cue]
kind = "step-tone"
[[phase]]
name = "baseline"
duration_s = 8
feedback = "off"
[[phase]]
name = "feedback"
duration_s = 8
feedback = "on"
[[phase]]
name = "retention"
duration_s = 8
feedback = "off"
"""


def _add_feedback(path, proto_text, cue_times):
    proto = parse_protocol(proto_text, "test")
    with h5py.File(path, "a") as f:
        for tab in feedback_tables(proto, NullSink()):
            g = f.require_group(tab.group)
            g.attrs.update(tab.attrs)
            for col, dt in tab.columns.items():
                n = len(cue_times) if tab.group == "feedback/cues" else len(proto.phases)
                data = np.zeros(n, dtype=h5py.string_dtype("utf-8", 64) if col == "name" else dt)
                g.create_dataset(col, data=data, maxshape=(None,))
        ph = f["feedback/phases"]
        ph["start"][:] = [p.start_s for p in proto.phases]
        ph["stop"][:] = [p.stop_s for p in proto.phases]
        ph["name"][:] = [p.name.encode() for p in proto.phases]
        f["feedback/cues/time"][:] = cue_times
        f["feedback/cues/ic"][:] = np.asarray(cue_times) - 0.02


def test_the_report_of_a_feedback_session_has_the_retraining_section_first(tmp_path, capsys):
    path = tmp_path / "fb.h5"
    write_session(path, params=RunnerParams(strike_left="midfoot", strike_right="midfoot", seed=3), duration_s=24.0)
    cues = np.arange(8.1, 16.0, 0.35)
    _add_feedback(path, PROTO, cues)
    rec = read_feedback(path)
    assert list(rec.phases["name"]) == ["baseline", "feedback", "retention"] and len(rec.cues) == len(cues)
    out = tmp_path / "r.html"
    assert main(["report", str(path), "--out", str(out)]) == 0
    html = out.read_text()
    assert html.index('id="retraining"') < html.index("<h2>Figures</h2>")
    assert html.index("<h2>Headlines</h2>") < html.index('id="retraining"')
    doc = json.loads(re.search(r'id="treadlab-data">(.*?)</script>', html).group(1))
    for key in ("time_to_criterion_s", "time_to_criterion_steps", "retention_ratio", "in_band_pct_baseline",
                "in_band_pct_feedback", "in_band_pct_retention"):
        assert f'data-metric="{key}"' in html
    assert doc["in_band_pct_baseline"] == pytest.approx(100.0)  # a midfoot runner is in band throughout
    assert doc["time_to_criterion_steps"] == 0 and doc["time_to_criterion_s"] < 0.5
    shown = re.search(r'data-metric="in_band_pct_feedback" data-value="([^"]+)"', html).group(1)
    assert float(shown) == pytest.approx(doc["in_band_pct_feedback"])
    assert doc["retraining"]["cues_n"] == len(cues)
    assert 'id="fig-retraining"' in html
    # a session without feedback has no such section
    plain = tmp_path / "plain.h5"
    write_session(plain, duration_s=10.0)
    assert main(["report", str(plain), "--out", str(tmp_path / "p.html")]) == 0
    assert 'id="retraining"' not in (tmp_path / "p.html").read_text()


def test_compare_of_two_feedback_sessions_with_the_same_target_draws_both_series(tmp_path):
    paths = []
    for i, strike in enumerate(("rearfoot", "midfoot")):
        path = tmp_path / f"s{i}.h5"
        write_session(path, params=RunnerParams(strike_left=strike, strike_right=strike, seed=i + 1), duration_s=24.0)
        _add_feedback(path, PROTO, np.arange(8.1, 16.0, 0.35))
        paths.append(path)
    out = tmp_path / "c.html"
    assert main(["compare", str(paths[0]), str(paths[1]), "--out", str(out)]) == 0
    html = out.read_text()
    assert 'id="retraining-compare"' in html and 'id="fig-retraining-compare"' in html
    doc = json.loads(re.search(r'id="treadlab-data">(.*?)</script>', html).group(1))
    assert doc["retraining"]["before"]["time_to_criterion_s"] is None  # a rearfoot runner never reaches >= 34
    assert doc["retraining"]["after"]["time_to_criterion_steps"] == 0
    assert 'data-metric="retraining.after.retention_ratio"' in html
