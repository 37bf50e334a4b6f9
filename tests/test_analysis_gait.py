"""Irregular steps, standing and walking (issue 11, items 2 and 3): known answers from the gait model, and real
footswitch recordings against a plain threshold.

- Irregular runners (stride-time coefficient of variation up to 20 %, stumbles: a short step then a long one):
  at least 99 % of steps, no false ones, every step of quality "ok" and classified running.
- A session that starts with 5 s of standing and 20 s of walking, then runs: standing is reported as standing
  (no step of several seconds), walking steps are found as walking steps, the summary averages running.
- Real insole walking (PhysioNet gaitpdb), as footswitches (one total force per foot), as recorded and with its
  stride times made irregular: every contact a plain threshold finds is in the step table.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from sessionfactory import InsoleSpec, MatSpec, truth_in, write_session
from test_analysis_known import match_steps

from treadlab import fileformat as ff
from treadlab.analysis import analyze
from treadlab.analysis.gaitclass import STANDING_MIN_MS
from treadlab.analysis.timing import add_timing
from treadlab.drivers.sim.gait import RunnerParams

START_S = 0.5
DATA = Path(__file__).parent / "data"


def _score(steps: pd.DataFrame, truth: pd.DataFrame, lo: float, hi: float) -> tuple[int, int, pd.DataFrame,
                                                                                     pd.DataFrame]:
    """(missed, false, found, truth) for the non-standing rows, false ones counted inside ``[lo, hi]``."""
    rows = steps[steps["gait"] != "standing"]
    f, t, missed, _ = match_steps(rows, truth)
    inner = rows[(rows["ic_s"] > lo) & (rows["to_s"] < hi)]
    _, _, _, false = match_steps(inner, truth)
    return missed, false, f, t


# Irregular runners ------------------------------------------------------------------------------------------
IRREGULAR = [  # strike, stride CV %, stumbles %, rate, layout, seed
    ("rearfoot", 10.0, 4.0, 500, "insole16", 1),
    ("midfoot", 20.0, 4.0, 1000, "insole99", 2),
    ("forefoot", 20.0, 6.0, 200, "insole16", 3),
    ("rearfoot", 20.0, 4.0, 200, "insole99", 6),
]


@pytest.fixture(scope="module", params=IRREGULAR, ids=lambda c: f"{c[0]}-cv{c[1]:g}-stumble{c[2]:g}-{c[3]}Hz")
def irregular(request, tmp_path_factory):
    strike, cv, stumble, rate, layout, seed = request.param
    runner = RunnerParams(strike_left=strike, strike_right=strike, stride_cv_pct=cv, stumble_pct=stumble,
                          swing_offset_n=30.0, seed=seed)
    path = tmp_path_factory.mktemp("irregular") / "run.h5"
    model = write_session(path, runner, duration_s=30.0, start_s=START_S, mat=MatSpec() if seed <= 2 else None,
                          insoles=InsoleSpec(layout=layout, rate_hz=rate))
    with analyze(path) as ga:
        insole = ga.steps.copy()
    mat = None
    if seed <= 2:
        with analyze(path, source="mat") as ga:
            mat = ga.steps.copy()
    return request.param, model, insole, mat


def test_irregular_runner_every_step_found(irregular):
    params, model, insole, mat = irregular
    truth = truth_in(model, START_S + 0.05, START_S + 30.0 - 0.05)
    stride = truth[truth["foot"] == "left"]["ic_s"].diff().dropna()
    assert stride.std() / stride.mean() >= 0.8 * params[1] / 100.0  # the runner is as irregular as asked
    assert truth["stumble"].sum() >= 3
    for steps in (insole, mat) if mat is not None else (insole,):
        missed, false, f, t = _score(steps, truth, START_S + 0.05, START_S + 30.0 - 0.05)
        assert missed <= 0.01 * len(truth)
        assert false == 0
        assert (f["quality"] == "ok").all()
        assert (f["gait"] == "running").mean() >= 0.99
        # The long step after a stumble keeps its stride time: irregular is not missed.
        stumbles = f[t["stumble"].to_numpy()]
        assert np.isfinite(stumbles["stride_time_ms"]).mean() >= 0.9


def test_irregular_runner_initial_contact(irregular):
    params, model, insole, _ = irregular
    truth = truth_in(model, START_S + 0.05, START_S + 30.0 - 0.05)
    _, _, f, t = _score(insole, truth, START_S + 0.05, START_S + 30.0 - 0.05)
    err_ms = np.abs(f["ic_s"] - t["ic_s"]).to_numpy() * 1e3
    assert np.median(err_ms) <= 3.5


# Standing, walking, running ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def phases(tmp_path_factory):
    runner = RunnerParams(stand_s=5.0, walk_s=20.0, seed=3)
    path = tmp_path_factory.mktemp("phases") / "session.h5"
    model = write_session(path, runner, duration_s=40.0, start_s=START_S, mat=MatSpec(),
                          markers=[(8.0, "walk"), (24.0, "run")])
    return path, model


def test_standing_is_standing_and_walking_steps_are_steps(phases):
    path, model = phases
    truth = truth_in(model, START_S + 0.05, START_S + 40.0 - 0.05)
    with analyze(path) as ga:
        steps, summary = ga.steps.copy(), ga.summary
        run_steps = ga.summary_steps.copy()
    standing = steps[steps["gait"] == "standing"]
    assert set(standing["foot"]) == {"left", "right"}
    for row in model.standing.itertuples():  # each foot stands from the start until it lifts
        mine = standing[standing["foot"] == row.foot]
        assert mine["to_s"].iloc[0] == pytest.approx(row.stop_s, abs=0.4)
        assert mine["ic_s"].iloc[0] <= START_S + 0.1
    assert (standing["quality"] == "standing").all() and standing["avlr_bw_s"].isna().all()
    moving = steps[steps["gait"] != "standing"]
    assert moving["contact_time_ms"].max() < STANDING_MIN_MS
    missed, false, f, t = _score(steps, truth, START_S + 0.05, START_S + 40.0 - 0.05)
    assert missed <= 0.01 * len(truth) and false == 0
    assert (f["gait"].to_numpy() == t["gait"].to_numpy()).mean() >= 0.98
    assert (t["gait"] == "walking").sum() >= 30
    walk = f[t["gait"].to_numpy() == "walking"]
    assert (walk["flight_time_ms"].dropna() < 0).all()  # double support
    err_ms = np.abs(f["ic_s"] - t["ic_s"]).to_numpy() * 1e3
    assert err_ms[t["gait"].to_numpy() == "running"].max() <= 5.0
    # The summary averages running only; walking and standing are reported beside it.
    assert summary["gait"] == "running"
    assert (run_steps["gait"] == "running").all()
    assert summary["step_count"] == len(run_steps)
    assert summary["cadence_spm"] == pytest.approx(170.0, rel=0.03)
    assert summary["feet"]["left"]["contact_time_ms"]["mean"] == pytest.approx(260.0, rel=0.05)
    assert summary["gaits"]["walking"]["steps"] == (steps["gait"] == "walking").sum()
    assert summary["gaits"]["walking"]["cadence_spm"] == pytest.approx(110.0, rel=0.03)
    stand = summary["gaits"]["standing"]
    assert stand["periods"] == 1 and stand["duration_s"] == pytest.approx(model.standing["stop_s"].max() - START_S,
                                                                          abs=0.4)
    json.dumps(summary, default=float)


def test_gait_option_and_segments(phases):
    path, _ = phases
    with analyze(path, gait="walking") as ga:
        assert ga.summary["gait"] == "walking"
        assert ga.summary["cadence_spm"] == pytest.approx(110.0, rel=0.03)
        assert ga.summary["feet"]["left"]["contact_time_ms"]["mean"] == pytest.approx(650.0, rel=0.05)
    with analyze(path) as ga:
        walk = ga.select(from_marker="walk", to_marker="run")
        assert walk.summary["gait"] == "walking"  # auto: no running in the segment
        assert (walk.steps["gait"] == "walking").all() and walk.summary["gaits"]["standing"]["periods"] == 0
        assert walk.summary["step_count"] == len(walk.steps) >= 25
        start = ga.select(0.0, 3.0)
        assert start.summary["gaits"]["standing"]["periods"] == 1  # a standing period overlapping the segment
    with analyze(path, gait="all") as ga:
        assert ga.summary["step_count"] == (ga.steps["gait"] != "standing").sum()
        assert len(ga.force_curves("left")) == ((ga.steps["gait"] != "standing") & (ga.steps["foot"] == "left")).sum()


def test_mat_standing_walking_running(phases):
    path, model = phases
    truth = truth_in(model, START_S + 0.05, START_S + 40.0 - 0.05)
    with analyze(path, source="mat") as ga:
        steps = ga.steps
        assert steps.loc[steps["gait"] != "standing", "contact_time_ms"].max() < STANDING_MIN_MS
        standing = steps[steps["gait"] == "standing"]  # both feet on the still mat: one footprint, standing
        assert len(standing) >= 1 and standing["to_s"].max() == pytest.approx(model.standing["stop_s"].max(),
                                                                               abs=0.4)
        assert ga.summary["gait"] == "running"
        missed, false, f, t = _score(steps, truth, START_S + 0.05, START_S + 40.0 - 0.05)
        assert missed <= 0.01 * len(truth) and false == 0  # walking in double support included
        assert (f["gait"].to_numpy() == t["gait"].to_numpy()).mean() >= 0.98
        run = t["gait"].to_numpy() == "running"
        assert np.abs(f["ic_s"] - t["ic_s"]).to_numpy()[run].max() * 1e3 <= 5.0


def test_lab_analyze_gait_option(phases, tmp_path):
    from treadlab.lab.cli import main

    path, _ = phases
    csv = tmp_path / "steps.csv"
    assert main(["analyze", str(path), "--gait", "walking", "--steps", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert {"gait", "quality"} <= set(table.columns)
    assert set(table["gait"]) == {"standing", "walking", "running"}


# Timing never rejects a step --------------------------------------------------------------------------------
def test_missed_step_told_by_contact_order_not_interval_length():
    # Left strides of 1.0 s, then one of 2.0 s that holds one right contact: irregular, not a missed step.
    left = [0.0, 1.0, 3.0, 4.0]
    right = [0.5, 2.0, 3.5]
    steps = pd.DataFrame({"foot": ["left"] * 4 + ["right"] * 3, "ic_s": left + right})
    steps["to_s"] = steps["ic_s"] + 0.3
    t = add_timing(steps)
    lt = t[t["foot"] == "left"].set_index("ic_s")["stride_time_ms"]
    assert lt[1.0] == pytest.approx(2000.0)  # 2.2 x the median: kept
    # A right contact missing between two left ones: that stride spans a missed step.
    t2 = add_timing(steps[steps["ic_s"] != 2.0])
    assert np.isnan(t2[(t2["foot"] == "left") & (t2["ic_s"] == 1.0)]["stride_time_ms"]).all()


def test_short_contact_kept_and_flagged(tmp_path):
    # A 40-ms touch between steps (shorter than min_contact_ms) is a row with quality "short_contact", not dropped,
    # and out of the means.
    runner = RunnerParams(seed=4)
    path = tmp_path / "touch.h5"
    write_session(path, runner, duration_s=6.0, start_s=START_S)
    with h5py.File(path, "r+") as f:
        g = f[f"{ff.DEVICES}/insole_left"]
        t = g[ff.TIME][()]
        raw = g[ff.RAW][()].astype(np.int64)
        with analyze(path) as ga:
            left = ga.steps[ga.steps["foot"] == "left"]
        gap_start = float(left["to_s"].iloc[3]) + 0.12  # in the swing after the fourth left step
        touch = (t >= gap_start) & (t < gap_start + 0.04)
        raw[touch] += 600  # 600 counts x 16 sensels x 0.05 N: 480 N for 40 ms
        g[ff.RAW][...] = np.clip(raw, 0, 65535).astype(g[ff.RAW].dtype)
    with analyze(path) as ga:
        flagged = ga.steps[ga.steps["quality"] == "short_contact"]
        assert len(flagged) == 1 and flagged["ic_s"].iloc[0] == pytest.approx(gap_start, abs=0.02)
        assert ga.summary["quality"]["short_contact"] == 1
        ok_left = ((ga.steps["quality"] == "ok") & (ga.steps["foot"] == "left")).sum()
        assert ga.summary["feet"]["left"]["steps"] == ok_left == len(left)


# Real footswitch recordings ---------------------------------------------------------------------------------
def _real_walk() -> np.ndarray:
    """PhysioNet GaCo01 (40 s): time and the total force of each foot (N), 100 Hz."""
    data = np.loadtxt(DATA / "gaitpdb_GaCo01_01_first40s.txt")
    return np.column_stack([data[:, 0], data[:, 17], data[:, 18]])


def _irregular(walk: np.ndarray, cv: float, seed: int) -> np.ndarray:
    """The same recording with its pace changed every 1.2 s (factor 1 + cv z, clipped to 0.5..1.8): stride times
    vary widely from stride to stride, each stride's force shape is the real one, resampled at 100 Hz."""
    rng = np.random.default_rng(seed)
    t = walk[:, 0]
    knots = np.arange(0.0, t[-1] + 2.4, 1.2)
    factor = np.clip(1.0 + cv * rng.standard_normal(len(knots) - 1), 0.5, 1.8)
    warped = np.interp(t, knots, np.concatenate([[0.0], np.cumsum(factor * 1.2)]))
    tu = np.arange(0.0, warped[-1], 0.01)
    return np.column_stack([tu] + [np.interp(tu, warped, walk[:, i]) for i in (1, 2)])


def _footswitch_session(path: Path, walk: np.ndarray) -> None:
    """A session file with one sensel per foot (a footswitch: the insole's total force), unit N."""
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": ff.FORMAT, "format_version": ff.FORMAT_VERSION, "body_mass_kg": 83.0,
                        "treadmill_speed_mps": float("nan"), "participant": "GaCo01", "condition": "walk",
                        "rig": "", "shoe": "", "notes": "PhysioNet gaitpdb, total force per foot"})
        for side, col in (("left", 1), ("right", 2)):
            g = f.create_group(f"{ff.DEVICES}/insole_{side}")
            g.attrs.update({"kind": "insole", "side": side, "protocol": "line", "rate_hz": 100.0,
                            "info_json": json.dumps({"sensels": 1})})
            g.create_dataset(ff.RAW, data=walk[:, col:col + 1].astype("f4"))
            g.create_dataset(ff.TIME, data=walk[:, 0])
            g.create_dataset(ff.SEQ, data=np.arange(len(walk), dtype="u4"))
            g.create_dataset(ff.GAPS, data=np.empty((0, 3)))
            g.create_dataset(f"{ff.CALIBRATION}/gain", data=np.ones(1, "f4"))
            g.create_dataset(f"{ff.CALIBRATION}/offset", data=np.zeros(1, "f4"))
            g[ff.CALIBRATION].attrs["unit"] = "N"
            g.create_dataset(f"{ff.LAYOUT}/positions_mm", data=np.array([[0.0, 130.0]]))
            g.create_dataset(f"{ff.LAYOUT}/areas_mm2", data=np.full(1, 300.0))
            g[ff.LAYOUT].attrs["foot_length_mm"] = 260.0


def _plain_threshold(t: np.ndarray, force: np.ndarray) -> np.ndarray:
    """Contacts of a plain threshold (20 % of the range between the 5th and 99th percentile), not cut by the
    recording's ends: their (start, stop) times."""
    lo, hi = np.percentile(force, 5), np.percentile(force, 99)
    on = np.r_[False, force > lo + 0.2 * (hi - lo), False]
    d = np.diff(on.astype(np.int8))
    a, b = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    whole = (a > 0) & (b < len(force))
    return np.column_stack([t[a[whole]], t[np.minimum(b[whole], len(t) - 1)]])


@pytest.mark.parametrize("cv", [0.0, 0.25, 0.4], ids=["as-recorded", "irregular-cv25", "irregular-cv40"])
def test_real_footswitch_finds_every_threshold_contact(tmp_path, cv):
    walk = _real_walk() if cv == 0 else _irregular(_real_walk(), cv, seed=11)
    path = tmp_path / "footswitch.h5"
    _footswitch_session(path, walk)
    with analyze(path) as ga:  # footswitches: timing only, forces normalised by the insoles' own mean
        steps = ga.steps
        for i, foot in ((1, "left"), (2, "right")):
            plain = _plain_threshold(walk[:, 0], walk[:, i])
            mine = steps[steps["foot"] == foot]
            # Every contact of the plain threshold overlaps a row of the step table (a step or, at the start of
            # the recording, standing), and no row is without one.
            overlap = (mine["ic_s"].to_numpy()[None, :] < plain[:, 1:2]) & \
                      (mine["to_s"].to_numpy()[None, :] > plain[:, 0:1])
            assert overlap.any(axis=1).all(), f"{foot}: {(~overlap.any(axis=1)).sum()} of {len(plain)} missed"
            inner = (mine["ic_s"] > walk[0, 0] + 0.05) & (mine["to_s"] < walk[-1, 0] - 0.05)
            assert overlap.any(axis=0)[inner.to_numpy()].all()
            assert (mine["quality"] == "ok").sum() >= len(plain) - 2
        assert (steps.loc[steps["gait"] != "standing", "gait"] == "walking").mean() >= 0.95
        strides = steps.loc[steps["quality"] == "ok", "stride_time_ms"]
        assert np.isfinite(strides).mean() >= 0.9


def test_lab_simulate_phase_options():
    from treadlab.lab.cli import build_parser
    from treadlab.lab.commands.simulate import _runner

    args = build_parser().parse_args(["simulate", "--stand-s", "5", "--walk-s", "20", "--stride-cv", "12",
                                      "--stumbles", "3", "--walk-cadence", "104", "--walk-speed", "1.2"])
    r = _runner(args)
    assert (r.stand_s, r.walk_s, r.stride_cv_pct, r.stumble_pct, r.walk_cadence_spm, r.walk_speed_mps) == \
        (5.0, 20.0, 12.0, 3.0, 104.0, 1.2)
    from treadlab.errors import ConfigError

    with pytest.raises(ConfigError, match="stride_cv_pct"):
        _runner(build_parser().parse_args(["simulate", "--stride-cv", "40"]))


def test_recorded_session_starts_standing_then_walks(tmp_path):
    """Through the real acquisition path: simulated devices in their own processes, serial, the Recorder."""
    from test_analysis_e2e import _record

    # The rig's clock (the runner's zero) starts with the device processes, seconds before the recording (8 s on
    # a loaded 2-core machine, less when idle): 14 s of standing leave several recorded, and 24 s of recording
    # reach well into the running (from ~18.4 s) however early it starts.
    runner = RunnerParams(stand_s=14.0, walk_s=4.0, seed=5)
    out, truth = _record(tmp_path, runner, 24.0)
    with analyze(out) as ga:
        steps = ga.steps
        t0, t1 = ga.session.time_range_s
        standing = steps[steps["gait"] == "standing"]
        lift = truth.loc[truth["gait"] == "walking", "ic_s"].min()  # the first step after standing
        assert lift - t0 > 3.0, f"the recording started {14.0 - (lift - t0):.1f} s into the standing"
        assert len(standing) >= 1 and (standing["ic_s"] <= t0 + 0.1).all()
        assert standing["to_s"].max() == pytest.approx(lift, abs=0.5)
        assert steps.loc[steps["gait"] != "standing", "contact_time_ms"].max() < STANDING_MIN_MS
        inner = truth[(truth["ic_s"] > t0 + 0.3) & (truth["to_s"] < t1 - 0.1)]
        assert (inner["gait"] == "walking").sum() >= 5 and (inner["gait"] == "running").sum() >= 10
        missed, false, f, t = _score(steps, inner, t0 + 0.3, t1 - 0.1)
        assert missed == 0 and false == 0
        assert (f["gait"].to_numpy() == t["gait"].to_numpy()).mean() >= 0.95
        assert ga.summary["gait"] == "running" and ga.summary["gaits"]["walking"]["steps"] >= 5
