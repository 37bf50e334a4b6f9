"""The IMU analysis of whole sessions: known answers against the simulator's kinematic model (random mounting up
to 10 deg, gyroscope bias, noise, int16 counts; files written by the real writer), the steps-table columns and
summary keys, the ``imu`` source, clipping, accelerometer-only sensors, a separate standing recording, options."""

from __future__ import annotations

import json

import numpy as np
import pytest
from imu_files import runner_session, sim_session
from imu_synth import Runner
from imu_truth import known_answers, print_figures

from treadlab.analysis import analyze, read_session
from treadlab.analysis.imu.orientation import VqfSettings
from treadlab.analysis.imu.process import standing_from_device
from treadlab.analysis.imu.session import FOOT_METRICS, PELVIS_METRICS, STEP_COLUMNS, ImuOptions
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.errors import AnalysisError
from treadlab.lab.cli import main

DURATION_S = 60.0
STAND_S = 8.0


def _window():
    return 0.5 + STAND_S + 4.0, 0.5 + DURATION_S - 2.0


@pytest.fixture(scope="module")
def with_insoles(tmp_path_factory):
    """Insoles and four IMUs of one simulated runner (drop 8 left, 3 right)."""
    path = tmp_path_factory.mktemp("imu") / "insoles_imus.h5"
    params = RunnerParams(stand_s=STAND_S, seed=21, pelvic_drop_left_deg=8.0, pelvic_drop_right_deg=3.0,
                          pta_left_g=11.0, pta_right_g=7.0)
    model, _, _ = sim_session(path, params, DURATION_S, insoles=True, seed=21)
    return path, model


@pytest.fixture(scope="module")
def pelvis_only(tmp_path_factory):
    path = tmp_path_factory.mktemp("imu") / "pelvis.h5"
    params = RunnerParams(stand_s=STAND_S, seed=22, pelvic_drop_left_deg=2.0, pelvic_drop_right_deg=10.0)
    model, _, _ = sim_session(path, params, DURATION_S, placements=("pelvis",), seed=22)
    return path, model


def test_known_answers_with_insoles_and_four_imus(with_insoles):
    path, model = with_insoles
    with analyze(path) as ga:
        assert ga.source == "insoles"
        fig = known_answers(ga.steps, model, *_window())
        summary = ga.summary
        curves = ga.pelvic_obliquity_curves()
    print_figures("insoles + 4 IMUs", fig)
    assert fig["found_pct"] >= 99 and fig["foot_right_pct"] == 100
    for side in ("left", "right"):
        e = fig[f"pelvic_drop_{side}"]
        assert e["n"] > 40 and e["rmse"] <= 1.5 and abs(e["bias"]) <= 0.5, (side, e)
    assert abs(fig["pelvic_rotation"]["bias"]) <= 2.0 and fig["pelvic_rotation"]["rmse"] <= 2.0
    assert fig["pelvic_tilt_range"]["rmse"] <= 1.5
    assert fig["trunk_lean"]["rmse"] <= 1.5
    assert abs(fig["pta_median_rel_pct"]) <= 10
    assert fig["shock_attenuation"]["rmse"] <= 5
    assert fig["vertical_oscillation"]["rmse"] <= 10
    # summary: per-foot metrics in the shape of the others, per-stride pelvis metrics, the rig self-check
    for side in ("left", "right"):
        for m in FOOT_METRICS:
            assert set(summary["feet"][side][m]) == {"mean", "sd", "median", "n"}
            assert summary["feet"][side][m]["n"] > 20, (side, m)
    assert summary["feet"]["left"]["pelvic_drop_deg"]["mean"] == pytest.approx(8.0, abs=0.5)
    assert summary["feet"]["right"]["pelvic_drop_deg"]["mean"] == pytest.approx(3.0, abs=0.5)
    for k in PELVIS_METRICS:
        assert summary["pelvis"][k]["n"] > 40
    checks = summary["imu"]["ic_diff_ms"]
    assert set(checks) == {"pelvis_imu", "tibia_left_imu", "tibia_right_imu"}
    for v in checks.values():
        assert v["n"] > 40 and abs(v["median_ms"]) < 15
    # the mean obliquity over the stride, signed as drop: its stance peak is about the side's drop
    assert curves["left"].shape == (101,) and curves["right"].shape == (101,)
    assert curves["left"][:40].max() == pytest.approx(8.0, abs=0.7)
    assert curves["right"][:40].max() == pytest.approx(3.0, abs=0.7)


def test_pelvis_alone_finds_the_steps_and_the_feet(pelvis_only):
    path, model = pelvis_only
    with analyze(path, source="imu") as ga:
        fig = known_answers(ga.steps, model, *_window())
        steps = ga.steps
        assert "ic_diff_ms" not in ga.summary["imu"]
    print_figures("pelvis alone", fig)
    assert fig["found_pct"] >= 98
    assert fig["foot_right_pct"] >= 98
    assert abs(fig["ic_median_ms"]) <= 15
    for side in ("left", "right"):
        e = fig[f"pelvic_drop_{side}"]
        assert e["rmse"] <= 1.5 and abs(e["bias"]) <= 0.5, (side, e)
    # no tibia, no trunk: their columns are there, NaN
    for c in STEP_COLUMNS:
        assert c in steps
    assert steps["pta_g"].isna().all() and steps["trunk_lean_deg"].isna().all()
    assert steps["shock_attenuation_pct"].isna().all()
    assert np.isfinite(steps["ppa_g"]).mean() > 0.9


def test_the_source_is_chosen_and_offered_on_the_command_line(pelvis_only, capsys):
    path, _ = pelvis_only
    assert main(["analyze", str(path), "--source", "imu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "imu"
    assert out["feet"]["right"]["pelvic_drop_deg"]["mean"] == pytest.approx(10.0, abs=0.5)
    assert out["pelvis"]["rotation_range_deg"]["n"] > 40
    with read_session(path) as s:
        from treadlab.analysis.api import default_source

        assert default_source(s) == "imu"


def test_a_selection_summarises_its_own_steps(pelvis_only):
    path, _ = pelvis_only
    with analyze(path, source="imu") as ga:
        part = ga.select(20.0, 40.0)
        n_all = ga.summary["pelvis"]["rotation_range_deg"]["n"]
        n_part = part.summary["pelvis"]["rotation_range_deg"]["n"]
        assert 0 < n_part < n_all
        assert part.summary["feet"]["left"]["pelvic_drop_deg"]["n"] == int(
            ((part.summary_steps["foot"] == "left") & np.isfinite(part.summary_steps["pelvic_drop_deg"])).sum())
        assert part.pelvic_obliquity_curves()["left"].shape == (101,)


def test_clipping_flags_the_step_and_reports_no_pta(tmp_path):
    r = Runner(rate_hz=500.0, run_s=30.0, pta_g=(8.0, 14.0))
    path = tmp_path / "clip.h5"
    runner_session(path, r, tibia_range_g=10.0)  # the right tibia's 14 g peaks clip at 9.5 g
    with analyze(path, source="imu") as ga:
        st = ga.steps[ga.steps["gait"] != "standing"]
        right, left = st[st["foot"] == "right"], st[st["foot"] == "left"]
        assert right["pta_g"].isna().all()
        assert (right["imu_flag"].str.contains("pta_clipped")).all()
        assert left["pta_g"].notna().mean() > 0.9
        assert not left["imu_flag"].str.contains("pta_clipped").any()
        assert ga.summary["imu"]["devices"]["tibia_right_imu"]["clipped_samples"] > 0
        assert ga.summary["imu"]["devices"]["tibia_left_imu"]["clipped_samples"] == 0


def test_accelerometer_only_pelvis_gives_shock_but_no_angles(tmp_path):
    """An accelerometer-only pelvis: PTA/PPA along the axis found from gravity while standing, steps, no angles."""
    from imu_files import ACC3, imu_description, to_raw, write_imu_session

    r = Runner(rate_hz=500.0, run_s=30.0, mount_deg=(8, -6, 4))
    gyro, acc = r.pelvis()
    d = imu_description("pelvis_imu", "pelvis", ACC3, r.rate_hz)
    path = tmp_path / "acc_only.h5"
    write_imu_session(path, [(d, to_raw(d, acc, None))], 0.5 + r.t)
    with analyze(path, source="imu") as ga:
        st = ga.steps[ga.steps["gait"] != "standing"]
        assert len(st) > 0.9 * sum(len(v[0]) for v in r.events().values())
        assert st["pelvic_drop_deg"].isna().all() and st["vertical_oscillation_mm"].isna().all()
        assert np.isfinite(st["ppa_g"]).mean() > 0.9
        assert ga.summary["imu"]["devices"]["pelvis_imu"]["orientation"] is False
        assert ga.pelvic_obliquity_curves() == {"left": None, "right": None}


def test_a_separate_standing_recording(tmp_path):
    """A session that starts running at once has no standing period: one clear error; with the same sensor's
    standing recording the angles are right."""
    mount = (6.0, -9.0, 3.0)
    run = Runner(rate_hz=500.0, stand_s=1.0, run_s=40.0, mount_deg=mount, drop_deg=(7.0, 3.0))
    stand = Runner(rate_hz=500.0, stand_s=8.0, run_s=0.0, mount_deg=mount)
    runner_session(tmp_path / "run.h5", run, placements=("pelvis",))
    runner_session(tmp_path / "stand.h5", stand, placements=("pelvis",))
    with pytest.raises(AnalysisError, match="no standing period"):
        analyze(tmp_path / "run.h5", source="imu").close()
    with read_session(tmp_path / "stand.h5") as s:
        ref = standing_from_device(s.of_kind("imu")[0])
    assert ref.source == "recording"
    with analyze(tmp_path / "run.h5", source="imu", options={"imu": ImuOptions(standing={"pelvis": ref})}) as ga:
        st = ga.steps[ga.steps["gait"] != "standing"]
        assert st.loc[st["foot"] == "left", "pelvic_drop_deg"].median() == pytest.approx(7.0, abs=0.5)
        assert st.loc[st["foot"] == "right", "pelvic_drop_deg"].median() == pytest.approx(3.0, abs=0.5)


def test_filter_settings_reach_the_analysis(pelvis_only):
    path, _ = pelvis_only
    slow = ImuOptions(vqf=VqfSettings(tau_acc_s=30.0))
    with analyze(path, source="imu") as a, analyze(path, source="imu", options={"imu": slow}) as b:
        assert a.summary["imu"]["devices"]["pelvis_imu"]["vqf"]["tauAcc"] == pytest.approx(3.0)
        assert b.summary["imu"]["devices"]["pelvis_imu"]["vqf"]["tauAcc"] == pytest.approx(30.0)
        da = a.steps["pelvic_drop_deg"].to_numpy()
        db = b.steps["pelvic_drop_deg"].to_numpy()
        assert len(da) == len(db) and np.nanmax(np.abs(da - db)) > 0.01


def test_sessions_without_imus_are_unchanged(tmp_path):
    from sessionfactory import write_session

    path = tmp_path / "insoles.h5"
    write_session(path, RunnerParams(seed=2), duration_s=6.0)
    with analyze(path) as ga:
        assert "pelvic_drop_deg" not in ga.steps and "pelvis" not in ga.summary
        assert not ga.enrichments


def test_known_answers_of_a_constructed_runner(tmp_path):
    """Constructed orientation series (tests/imu_synth.py): known drop, rotation, tilt, lean, VO and PTA pulses,
    through a board misaligned by 10 deg, gyroscope bias, noise and a heading drift."""
    r = Runner(rate_hz=500.0, run_s=40.0, mount_deg=(10.0, 0.0, 0.0), gyro_bias_dps=(0.8, -0.6, 0.5),
               gyro_noise_dps=0.3, acc_noise_g=0.01, heading_drift_dps=0.05, drop_deg=(6.5, 2.5))
    t0 = 0.5
    runner_session(tmp_path / "c.h5", r, t0=t0)
    with analyze(tmp_path / "c.h5", source="imu") as ga:
        st = ga.steps[(ga.steps["gait"] != "standing") & (ga.steps["ic_s"] > t0 + r.stand_s + 2)]
    left, right = st[st["foot"] == "left"], st[st["foot"] == "right"]
    assert len(left) > 20 and len(right) > 20
    assert left["pelvic_drop_deg"].mean() == pytest.approx(6.5, abs=0.3)
    assert right["pelvic_drop_deg"].mean() == pytest.approx(2.5, abs=0.3)
    assert st["pelvic_tilt_mean_deg"].mean() == pytest.approx(r.tilt_mean_deg, abs=0.3)
    assert st["pelvic_tilt_range_deg"].mean() == pytest.approx(2 * r.tilt_amp_deg, abs=0.3)
    assert st["trunk_lean_deg"].mean() == pytest.approx(r.lean_deg, abs=0.3)
    assert st["vertical_oscillation_mm"].median() == pytest.approx(r.vo_mm, abs=3.0)
    assert left["pta_g"].median() == pytest.approx(r.pta_g[0], rel=0.03)
    assert right["pta_g"].median() == pytest.approx(r.pta_g[1], rel=0.03)
    # rotation: the range of 5 sin(phase) over a stride from the foot's IC, less its least-squares line
    u = np.linspace(0.0, 2 * np.pi, 357)
    for part, phase in ((left, 0.0), (right, np.pi)):
        x = r.rotation_amp_deg * np.sin(u + phase)
        want = np.ptp(x - np.polyval(np.polyfit(u, x, 1), u))
        assert part["pelvic_rotation_deg"].median() == pytest.approx(want, abs=0.4)


def test_an_imu_without_standing_does_not_stop_the_insole_analysis(tmp_path):
    """Insoles and a pelvis IMU whose recording has no still period: the steps and insole metrics are there, the
    IMU columns NaN, the reason in the warnings and under imu.devices."""
    params = RunnerParams(stand_s=0.0, seed=5)
    sim_session(tmp_path / "s.h5", params, 20.0, placements=("pelvis",), insoles=True, seed=5)
    with analyze(tmp_path / "s.h5") as ga:
        assert len(ga.steps) > 20 and ga.steps["avlr_bw_s"].notna().any()
        assert ga.steps["pelvic_drop_deg"].isna().all()
        assert "no standing period" in ga.summary["imu"]["devices"]["pelvis_imu"]["error"]
        assert any("no standing period" in w for w in ga.summary["warnings"])
    with pytest.raises(AnalysisError, match="no standing period"):
        analyze(tmp_path / "s.h5", source="imu").close()
