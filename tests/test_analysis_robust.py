"""Robustness: gaps, raw counts, footswitches, walking, segments and markers, body-weight checks, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sessionfactory import InsoleSpec, MatSpec, truth_in, write_session

from treadlab.analysis import InsoleScaleWarning, analyze
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.errors import AnalysisError
from treadlab.lab.cli import main

FOOTSWITCH = {"foot_length_mm": 260, "positions_mm": [[0, 120]], "areas_mm2": [400]}


def _nearest_ms(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.abs(found[:, None] - truth[None, :]).min(axis=1) * 1e3


def test_no_step_across_a_gap(tmp_path):
    p = tmp_path / "gap.h5"
    drop = [(3.0, 3.4)]
    model = write_session(p, RunnerParams(seed=2), duration_s=6.0,
                          insoles={"left": InsoleSpec(drop=drop), "right": InsoleSpec()})
    with analyze(p) as ga:
        left = ga.steps[ga.steps["foot"] == "left"]
        assert not ((left["ic_s"] < 3.4) & (left["to_s"] > 2.998)).any()
        truth = model.steps[(model.steps["foot"] == "left") & (model.steps["ic_s"] > 0.6)
                            & (model.steps["to_s"] < 6.4)]
        outside = truth[(truth["to_s"] < 2.998) | (truth["ic_s"] > 3.4)]
        assert _nearest_ms(outside["ic_s"].to_numpy(), left["ic_s"].to_numpy()).max() < 8
        assert ga.summary["gaps"]["insole_left"] == 1
        gaps = ga.session.gaps
        assert list(gaps["device"]) == ["insole_left"] and gaps["count"].iloc[0] == pytest.approx(0.4 * 500, abs=2)
        # Stride times never span the gap.
        assert np.nanmax(left["stride_time_ms"]) < 1.5 * np.nanmedian(left["stride_time_ms"])


def test_uncalibrated_counts_give_the_same_steps(tmp_path):
    a, b = tmp_path / "n.h5", tmp_path / "counts.h5"
    runner = RunnerParams(strike_left="midfoot", strike_right="midfoot", swing_offset_n=30.0, seed=4)
    write_session(a, runner, duration_s=6.0)
    write_session(b, runner, duration_s=6.0, insoles=InsoleSpec(gain=1.0, offset=100.0, unit="counts"),
                  body_mass_kg=95.0)
    with analyze(a) as ga, analyze(b) as gb:
        assert gb.summary["normalised_by"] == "insole"
        assert len(ga.steps) == len(gb.steps)
        assert np.abs(ga.steps["ic_s"] - gb.steps["ic_s"]).max() < 0.003
        # Normalised by the insoles' own whole-stride mean, peak force in BW agrees with the calibrated file.
        assert gb.steps["peak_force_bw"].mean() == pytest.approx(ga.steps["peak_force_bw"].mean(), rel=0.05)


def test_footswitch_gives_timing_only(tmp_path):
    p = tmp_path / "switch.h5"
    model = write_session(p, RunnerParams(seed=5), duration_s=6.0, insoles=InsoleSpec(layout=FOOTSWITCH))
    with analyze(p) as ga:
        truth = truth_in(model, 0.6, 6.4)
        assert len(ga.steps[(ga.steps["ic_s"] > 0.6) & (ga.steps["to_s"] < 6.4)]) == len(truth)
        assert ga.steps["strike_index_pct"].isna().all() and ga.steps["avlr_bw_s"].isna().all()
        assert ga.summary["cadence_spm"] == pytest.approx(170, rel=0.03)
        assert np.isfinite(ga.steps["contact_time_ms"]).all()


def test_walking_double_support(tmp_path):
    p = tmp_path / "walk.h5"
    runner = RunnerParams(walking=True, speed_mps=1.3, cadence_spm=110, contact_time_ms=650, swing_offset_n=30.0)
    model = write_session(p, runner, duration_s=8.0, insoles=InsoleSpec(rate_hz=100))
    with analyze(p) as ga:
        truth = truth_in(model, 0.6, 8.4)
        found = ga.steps[(ga.steps["ic_s"] > 0.6) & (ga.steps["to_s"] < 8.4)]
        assert len(found) == len(truth)
        assert _nearest_ms(truth["ic_s"].to_numpy(), found["ic_s"].to_numpy()).max() < 10
        assert (ga.steps["flight_time_ms"].dropna() < 0).all()  # double support
        assert ga.summary["cadence_spm"] == pytest.approx(110, rel=0.03)


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    p = tmp_path_factory.mktemp("marks") / "marks.h5"
    write_session(p, RunnerParams(seed=6), duration_s=8.0, markers=[(2.0, "start"), (6.0, "end")],
                  mat=MatSpec(rows=176, cols=48))
    return p


def test_segment_by_markers_and_time(marked):
    with analyze(marked) as ga:
        seg = ga.select(from_marker="start", to_marker="end")
        assert seg.steps["ic_s"].between(2.0, 6.0).all()
        assert seg.summary["duration_s"] == pytest.approx(4.0)
        assert [m["label"] for m in seg.summary["markers"]] == ["start"]
        by_time = ga.select(2.0, 6.0)
        pd.testing.assert_frame_equal(seg.steps, by_time.steps)
        assert seg.force_curves("left").shape == (int((seg.steps["foot"] == "left").sum()), 101)
        assert seg.cop_paths("right").shape[1:] == (101, 2)
        with pytest.raises(AnalysisError, match="no marker 'nope'"):
            ga.select(from_marker="nope")


def test_report_arrays(marked):
    with analyze(marked) as ga:
        curves = ga.force_curves("left")
        assert np.nanmax(curves) == pytest.approx(ga.steps.loc[ga.steps["foot"] == "left", "peak_force_bw"].max(),
                                                  rel=0.05)
        assert np.all(curves[:, [0, -1]] < 0.2)
        maps = ga.pressure_maps("right")
        assert maps["peak"].shape == (16,) and np.all(maps["peak"] >= maps["mean"])
        heel, toe = maps["positions_mm"][:, 1] < 60, maps["positions_mm"][:, 1] > 170
        assert maps["mean"][heel].mean() > 0 and maps["mean"][toe].mean() > 0
        cop = ga.cop_paths("left")
        assert np.nanmean(cop[:, 90, 1]) > np.nanmean(cop[:, 5, 1]) + 80  # heel to toe
        assert "mat" in ga.summary and ga.info["mat_agreement"]["matched"] > 0


def test_insole_scale_warning(tmp_path):
    p = tmp_path / "heavy.h5"
    write_session(p, RunnerParams(seed=8), duration_s=5.0, body_mass_kg=90.0)
    with pytest.warns(InsoleScaleWarning, match="body weight"):
        ga = analyze(p)
    with ga:
        assert ga.summary["insole_scale"] == pytest.approx(70 / 90, rel=0.03)
        assert ga.summary["warnings"]
    with pytest.warns(InsoleScaleWarning), analyze(p, normalise="insole") as gi:
        assert gi.steps["peak_force_bw"].mean() > ga.steps["peak_force_bw"].mean() * 1.2


def test_cli_json_and_steps_csv(marked, tmp_path, capsys):
    csv = tmp_path / "steps.csv"
    assert main(["analyze", str(marked), "--json", "--steps", str(csv), "--from", "start", "--to", "end"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("duration_s", "body_weight_n", "insole_scale", "cadence_spm", "step_count"):
        assert key in out
    for foot in ("left", "right"):
        f = out["feet"][foot]
        assert set(f["strike_counts"]) == {"rearfoot", "midfoot", "forefoot"}
        for m in ("strike_index_pct", "avlr_bw_s", "vilr_bw_s", "impact_peak_bw", "peak_force_bw",
                  "contact_time_ms", "flight_time_ms", "step_time_ms"):
            assert set(f[m]) == {"mean", "sd", "median", "n"}
            assert m in out["asymmetry_si_pct"]
    steps = pd.read_csv(csv)
    assert len(steps) == out["step_count"]
    for c in ("foot", "ic_s", "to_s", "strike_index_pct", "avlr_bw_s", "vilr_bw_s", "contact_time_ms"):
        assert c in steps


def test_cli_mat_source_and_table(marked, capsys):
    assert main(["analyze", str(marked), "--source", "mat"]) == 0
    out = capsys.readouterr().out
    assert "mat" in out and "contact time" in out


@pytest.mark.parametrize("args, code, text", [
    (["analyze", "/nonexistent/run.h5"], 4, "not found"),
    (["analyze", "{file}", "--from", "nope"], 6, "no marker 'nope'"),
    (["analyze", "{file}", "--filter-hz", "fast"], 2, "--filter-hz"),
])
def test_cli_errors_one_line(marked, capsys, args, code, text):
    args = [a.replace("{file}", str(marked)) for a in args]
    assert main(args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0]
