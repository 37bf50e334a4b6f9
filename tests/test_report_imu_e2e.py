"""``lab report`` and ``lab compare`` on IMU session files (written by the real writer, analysed by the real IMU
analysis) of synthetic runners with known pelvic drop, rotation and tibial peaks: the pelvis panel shows the
analysis' numbers, the comparison states the known changes.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from imu_files import runner_session
from imu_synth import Runner

from treadlab.analysis import analyze
from treadlab.lab.cli import main

NOISE = {"gyro_noise_dps": 0.2, "acc_noise_g": 0.01, "gyro_bias_dps": (0.2, -0.1, 0.1), "mount_deg": (4.0, -6.0, 5.0)}
BEFORE = Runner(run_s=85.0, drop_deg=(6.0, 4.0), rotation_amp_deg=5.0, pta_g=(9.0, 10.0), seed=1, **NOISE)
AFTER = Runner(run_s=85.0, drop_deg=(4.0, 4.0), rotation_amp_deg=3.0, pta_g=(6.0, 10.0), seed=2, **NOISE)
SHORT = Runner(run_s=30.0, seed=3, **NOISE)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    d = tmp_path_factory.mktemp("imu_sessions")
    for name, runner in (("before", BEFORE), ("after", AFTER), ("short", SHORT)):
        runner_session(d / f"{name}.h5", runner)
    return d


def _doc(page: str) -> dict:
    return json.loads(re.search(r'id="treadlab-data">(.*?)</script>', page).group(1))


def _panel(page: str) -> str:
    return re.search(r'<section class="pelvis" id="pelvis-panel">(.*?)</section>', page, re.S).group(1)


def _lookup(doc, path):
    for key in path.split("."):
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    return doc


def test_the_session_report_shows_the_panel_with_the_analysis_numbers(sessions, tmp_path, capsys):
    out = tmp_path / "before.html"
    assert main(["report", str(sessions / "before.h5"), "--out", str(out)]) == 0
    page = out.read_text()
    panel = _panel(page)
    with analyze(sessions / "before.h5", source="imu") as ga:
        summary, steps = ga.summary, ga.summary_steps
        curves = ga.pelvic_obliquity_curves()
    spans = re.findall(r'data-metric="([^"]+)" data-value="([^"]+)"', panel)
    assert len(spans) > 40
    doc = _doc(page)
    for path, value in spans:
        truth = _lookup(summary, path) if not path.startswith("pelvis_panel.") else _lookup(doc, path)
        assert (value == "null") == (truth is None) and (value == "null" or float(value) == pytest.approx(truth)), path
    # known answers of the runner, through the file and the analysis
    assert summary["feet"]["left"]["pelvic_drop_deg"]["mean"] == pytest.approx(6.0, abs=0.5)
    assert summary["feet"]["right"]["pelvic_drop_deg"]["mean"] == pytest.approx(4.0, abs=0.5)
    diff = doc["pelvis_panel"]["pelvic_drop_deg"]["diff"]
    right, left = (steps.loc[steps.foot == f, "pelvic_drop_deg"].mean() for f in ("right", "left"))
    assert diff == pytest.approx(right - left) and diff == pytest.approx(-2.0, abs=0.5)
    assert summary["feet"]["left"]["pelvic_drop_deg"]["n"] >= 100 and "few strides" not in panel
    assert 'id="fig-obliquity"' in panel and curves["left"] is not None
    assert "known answers" in panel


def test_a_short_session_shows_the_counts_of_its_few_strides(sessions, tmp_path):
    out = tmp_path / "short.html"
    assert main(["report", str(sessions / "short.h5"), "--out", str(out)]) == 0
    panel = _panel(out.read_text())
    row = re.search(r'<tr data-panel-metric="pelvic_drop_deg">(.*?)</tr>', panel).group(1)
    n = int(float(re.search(r'data-metric="feet.left.pelvic_drop_deg.n" data-value="([^"]+)"', row).group(1)))
    assert 10 < n < 100 and row.count("few strides") == 2


def test_compare_states_the_known_changes_with_intervals_and_the_obliquity_figure(sessions, tmp_path, capsys):
    out = tmp_path / "compare.html"
    assert main(["compare", str(sessions / "before.h5"), str(sessions / "after.h5"), "--out", str(out),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    changes = {(c["metric"], c["foot"]): c for c in doc["comparison"]["changes"]}
    drop_l, drop_r = changes[("pelvic_drop_deg", "left")], changes[("pelvic_drop_deg", "right")]
    assert drop_l["diff"] == pytest.approx(-2.0, abs=0.3) and drop_l["ci_high"] < 0 and drop_l["beyond_noise"]
    assert drop_l["ci_low"] <= drop_l["diff"] <= drop_l["ci_high"]
    assert abs(drop_r["diff"]) < 0.3
    pta_l = changes[("pta_g", "left")]
    assert pta_l["diff"] == pytest.approx(-3.0, rel=0.1) and pta_l["beyond_noise"]
    rot = changes[("pelvic_rotation_deg", "both")]
    assert rot["diff"] == pytest.approx(-4.0, abs=0.8) and rot["ci_high"] < 0  # range 2 x amplitude: 10 -> 6 deg
    page = out.read_text()
    panel = _panel(page)
    page_doc = _doc(page)
    for path, value in re.findall(r'data-metric="([^"]+)" data-value="([^"]+)"', panel):
        got = _lookup(page_doc, path)
        assert (value == "null") == (got is None) and (value == "null" or float(value) == pytest.approx(got)), path
    assert 'data-panel-metric="pelvic_drop_deg" data-foot="left"' in panel and 'id="fig-obliquity"' in panel
    assert any("Left pelvic drop fell" in s for s in doc["comparison"]["summary"])
    # the left-right difference of pelvic drop: -2 deg before, about 0 after
    asym = doc["comparison"]["asymmetry"]["pelvic_drop_deg"]
    assert asym["before_diff"] == pytest.approx(-2.0, abs=0.5) and abs(asym["after_diff"]) < 0.5 and asym["closer"]
    assert np.isfinite(asym["change_ci"][0])
