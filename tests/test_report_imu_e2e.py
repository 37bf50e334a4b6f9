"""``lab report`` and ``lab compare`` on IMU session files of simulated runners (the simulator's ``ImuModel``:
pelvis, trunk and both tibiae with random board mountings, biases, noise and step-to-step variability; written by
the real writer, analysed by the real IMU analysis): the pelvis panel shows the analysis' numbers, the comparison
states the known changes against the simulator's ground truth.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from imu_live_support import SimRunner, write_sim_session

from treadlab.analysis import analyze
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.lab.cli import main

PLACEMENTS = ("pelvis", "trunk", "tibia_left", "tibia_right")
BEFORE = RunnerParams(cadence_spm=170.0, stand_s=5.0, seed=1, pelvic_drop_left_deg=7.0, pelvic_drop_right_deg=4.0,
                      pelvic_rotation_deg=10.0, pta_left_g=11.0, pta_right_g=10.0)
AFTER = RunnerParams(cadence_spm=170.0, stand_s=5.0, seed=2, pelvic_drop_left_deg=5.0, pelvic_drop_right_deg=4.0,
                     pelvic_rotation_deg=6.0, pta_left_g=8.0, pta_right_g=10.0)
T0_S = 0.5  # the file's first sample, in simulator time 0


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    d = tmp_path_factory.mktemp("imu_sessions")
    sims = {"before": SimRunner(BEFORE, 85.0, PLACEMENTS, seed=11), "after": SimRunner(AFTER, 85.0, PLACEMENTS,
                                                                                        seed=21),
            "short": SimRunner(BEFORE, 40.0, PLACEMENTS, seed=31)}
    for name, sim in sims.items():
        write_sim_session(d / f"{name}.h5", sim, T0_S)
    return d, sims


def _true_mean(sim: SimRunner, steps, foot: str, metric: str) -> float:
    """The simulator's mean of ``metric`` over the analysed steps of ``foot`` (matched by initial contact)."""
    part = steps[steps.foot == foot]
    return float(np.nanmean(sim.truth_at(foot, part.ic_s.to_numpy() - T0_S, metric)))


def _doc(page: str) -> dict:
    return json.loads(re.search(r'id="treadlab-data">(.*?)</script>', page).group(1))


def _panel(page: str) -> str:
    return re.search(r'<section class="pelvis" id="pelvis-panel">(.*?)</section>', page, re.S).group(1)


def _lookup(doc, path):
    for key in path.split("."):
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    return doc


def test_the_session_report_shows_the_panel_with_the_analysis_numbers(sessions, tmp_path, capsys):
    d, sims = sessions
    out = tmp_path / "before.html"
    assert main(["report", str(d / "before.h5"), "--out", str(out)]) == 0
    page = out.read_text()
    panel = _panel(page)
    with analyze(d / "before.h5", source="imu") as ga:
        summary, steps = ga.summary, ga.summary_steps
        curves = ga.pelvic_obliquity_curves()
    spans = re.findall(r'data-metric="([^"]+)" data-value="([^"]+)"', panel)
    assert len(spans) > 40
    doc = _doc(page)
    for path, value in spans:
        truth = _lookup(summary, path) if not path.startswith("pelvis_panel.") else _lookup(doc, path)
        assert (value == "null") == (truth is None) and (value == "null" or float(value) == pytest.approx(truth)), path
    # known answers of the simulator, through the file and the analysis (the analysis' bounds: 0.5 deg bias)
    for foot in ("left", "right"):
        true = _true_mean(sims["before"], steps, foot, "pelvic_drop_deg")
        assert summary["feet"][foot]["pelvic_drop_deg"]["mean"] == pytest.approx(true, abs=0.5)
    diff = doc["pelvis_panel"]["pelvic_drop_deg"]["diff"]
    right, left = (steps.loc[steps.foot == f, "pelvic_drop_deg"].mean() for f in ("right", "left"))
    assert diff == pytest.approx(right - left) and diff == pytest.approx(-3.0, abs=0.5)
    assert summary["feet"]["left"]["pelvic_drop_deg"]["n"] >= 100 and "few strides" not in panel
    assert 'id="fig-obliquity"' in panel and curves["left"] is not None
    assert "known answers" in panel


def test_a_short_session_shows_the_counts_of_its_few_strides(sessions, tmp_path):
    d, _ = sessions
    out = tmp_path / "short.html"
    assert main(["report", str(d / "short.h5"), "--out", str(out)]) == 0
    panel = _panel(out.read_text())
    row = re.search(r'<tr data-panel-metric="pelvic_drop_deg">(.*?)</tr>', panel).group(1)
    n = int(float(re.search(r'data-metric="feet.left.pelvic_drop_deg.n" data-value="([^"]+)"', row).group(1)))
    assert 10 < n < 100 and row.count("few strides") == 2


def test_compare_states_the_known_changes_with_intervals_and_the_obliquity_figure(sessions, tmp_path, capsys):
    d, sims = sessions
    out = tmp_path / "compare.html"
    assert main(["compare", str(d / "before.h5"), str(d / "after.h5"), "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    changes = {(c["metric"], c["foot"]): c for c in doc["comparison"]["changes"]}
    with analyze(d / "before.h5", source="imu") as gb, analyze(d / "after.h5", source="imu") as ga:
        sb, sa = gb.summary_steps, ga.summary_steps
    for metric, foot, tol in (("pelvic_drop_deg", "left", 0.3), ("pelvic_drop_deg", "right", 0.3),
                              ("pta_g", "left", 0.5), ("pta_g", "right", 0.5)):
        c = changes[(metric, foot)]
        true = _true_mean(sims["after"], sa, foot, metric) - _true_mean(sims["before"], sb, foot, metric)
        # the measured change is the true one within the analysis' error, and its interval holds it
        assert c["diff"] == pytest.approx(true, abs=tol) and c["ci_low"] <= c["diff"] <= c["ci_high"], metric
    drop_l, drop_r = changes[("pelvic_drop_deg", "left")], changes[("pelvic_drop_deg", "right")]
    assert drop_l["ci_high"] < 0 and drop_l["beyond_noise"]  # 7 -> 5 deg
    assert not drop_r["beyond_noise"]  # 4 -> 4 deg
    assert changes[("pta_g", "left")]["beyond_noise"] and changes[("pta_g", "left")]["ci_high"] < 0  # 11 -> 8 g
    rot = changes[("pelvic_rotation_deg", "both")]
    assert rot["diff"] == pytest.approx(-4.0, abs=1.0) and rot["ci_high"] < 0  # range 10 -> 6 deg
    page = out.read_text()
    panel = _panel(page)
    page_doc = _doc(page)
    for path, value in re.findall(r'data-metric="([^"]+)" data-value="([^"]+)"', panel):
        got = _lookup(page_doc, path)
        assert (value == "null") == (got is None) and (value == "null" or float(value) == pytest.approx(got)), path
    assert 'data-panel-metric="pelvic_drop_deg" data-foot="left"' in panel and 'id="fig-obliquity"' in panel
    assert any("Left pelvic drop fell" in s for s in doc["comparison"]["summary"])
    # the left-right difference of pelvic drop: -3 deg before, -1 deg after (the sides came closer)
    asym = doc["comparison"]["asymmetry"]["pelvic_drop_deg"]
    assert asym["before_diff"] == pytest.approx(-3.0, abs=0.5) and asym["after_diff"] == pytest.approx(-1.0, abs=0.5)
    assert asym["closer"]
    assert np.isfinite(asym["change_ci"][0])
