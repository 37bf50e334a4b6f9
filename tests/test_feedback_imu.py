"""The feedback engine with IMU targets (pelvic drop, PTA): a simulated runner's insoles give the steps, its pelvis
and tibia IMUs the values; batch by batch on a fake clock (deterministic), as ``tests/test_feedback_engine.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from imu_live_support import SimRunner

from tests.feedback_support import FakeClock, insole_feet
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.feedback.engine import FOOT_CODE, FeedbackEngine
from treadlab.feedback.protocol import parse_protocol

RUNNER = RunnerParams(cadence_spm=170.0, stand_s=5.0, seed=3, pelvic_drop_left_deg=7.0, pelvic_drop_right_deg=3.0,
                      pta_left_g=8.0, pta_right_g=11.0)
SECONDS = 40.0
PROTOCOL = """
[target]
metric = "{metric}"
high = {high}
[cue]
kind = "bandwidth"
[[phase]]
name = "baseline"
duration_s = 20
feedback = "off"
[[phase]]
name = "feedback"
duration_s = 20
feedback = "on"
"""


def _run(metric: str, high: float, sim: SimRunner, rate_hz: float = 200.0, batch_s: float = 0.01):
    """Feed the insoles and the IMUs of ``sim``'s runner to an engine with ``metric`` <= ``high``."""
    feet, _ = insole_feet()
    clock = FakeClock()
    eng = FeedbackEngine(parse_protocol(PROTOCOL.format(metric=metric, high=high), "test"), feet,
                         RUNNER.body_mass_kg * 9.80665, clock, imus=[b.channels() for b in sim.boards.values()])
    n = int(SECONDS * rate_hz)
    t = np.arange(n) / rate_hz
    forces = {f: sim.insole_forces(f, t) for f in ("left", "right")}
    k = max(1, int(batch_s * rate_hz))
    ends = dict.fromkeys(sim.boards, 0)
    for a in range(0, n, k):  # one iteration per batch
        b = min(a + k, n)
        clock.now = t[b - 1] + 0.002
        eng.tick()
        for f in ("left", "right"):
            eng._feed(f"insole_{f}", t[a:b], forces[f][a:b], clock.now)
        for name, board in sim.boards.items():  # each IMU's samples up to the insoles' last
            ia, ends[name] = ends[name], int(np.searchsorted(board.t, t[b - 1], side="right"))
            eng._feed(name, board.t[ia:ends[name]], board.raw[ia:ends[name]], clock.now)
    return eng


@pytest.fixture(scope="module")
def drop_run():
    sim = SimRunner(RUNNER, SECONDS, ("pelvis",))
    return sim, _run("pelvic_drop_deg", 5.0, sim)


def _feedback_steps(eng, sim):
    phase = 1
    truth = sim.truth[(sim.truth.ic_s >= eng.protocol.phases[phase].start_s)
                      & (sim.truth.to_s < eng.protocol.phases[phase].stop_s - 0.2)]
    steps = [s for s in eng.steps_ if s[0] == phase]
    return truth, steps


def test_pelvic_drop_of_every_step_is_evaluated_and_matches_the_simulator(drop_run):
    sim, eng = drop_run
    assert eng.errors_ == 0, eng.last_error_
    truth, steps = _feedback_steps(eng, sim)
    for foot, drop in (("left", 7.0), ("right", 3.0)):
        vals = np.array([s[3] for s in steps if s[1] == foot])
        n_true = int((truth.foot == foot).sum())
        assert len(vals) >= n_true - 1 and np.isfinite(vals).all()
        true = sim.truth_at(foot, np.array([s[2] for s in steps if s[1] == foot]), "pelvic_drop_deg")
        known = np.isfinite(true)  # the truth of the last step needs the next contact
        assert known.sum() >= len(vals) - 1 and np.median(true[known]) == pytest.approx(drop, rel=0.1)
        err = vals[known] - true[known]
        # the causal orientation filter (live) is within a few tenths of a degree of the definition
        assert abs(np.mean(err)) < 0.6 and np.sqrt(np.mean(err ** 2)) < 1.0


def test_a_cue_fires_when_pelvic_drop_exceeds_the_target(drop_run):
    sim, eng = drop_run
    truth, steps = _feedback_steps(eng, sim)
    cues = [c for c in eng.cues_ if c.phase == 1]
    # left stances (7 deg > 5) are cued, every one; right stances (3 deg) are in band and silent
    left_steps = [s for s in steps if s[1] == "left"]
    assert all(s[3] > 5.0 for s in left_steps)
    assert len(cues) == len(left_steps) >= int((truth.foot == "left").sum()) - 1
    assert {c.foot for c in cues} == {FOOT_CODE["left"]}
    assert all(c.in_band == 0 and c.value > 5.0 for c in cues)
    assert all(s[4] == 1 for s in steps if s[1] == "right")
    # each cue is of one real stance, decided after its toe-off
    for c in cues:
        near = sim.truth.loc[(sim.truth.foot == "left"), ["ic_s", "to_s"]].to_numpy()
        j = int(np.argmin(np.abs(near[:, 0] - c.ic)))
        assert abs(near[j, 0] - c.ic) < 0.03 and c.decided_s >= near[j, 1] - 0.03
    assert not [c for c in eng.cues_ if c.phase == 0]  # the baseline phase has no feedback
    assert "imu:" not in eng.status_line()  # aligned: nothing to wait for


def test_the_status_line_says_what_an_imu_waits_for():
    sim = SimRunner(RUNNER, 8.0, ("pelvis",))
    feet, _ = insole_feet()
    clock = FakeClock()
    eng = FeedbackEngine(parse_protocol(PROTOCOL.format(metric="pelvic_drop_deg", high=5.0), "t"), feet, 700.0,
                         clock, imus=[b.channels() for b in sim.boards.values()])
    assert eng.status_line().endswith("imu: pelvis_imu stand still")
    b = sim.boards["pelvis_imu"]
    eng._feed("pelvis_imu", b.t, b.raw, 8.0)  # 5 s standing, then running: the forward direction needs 10 s
    assert eng.status_line().endswith("imu: pelvis_imu run")


def test_a_cue_fires_on_the_side_whose_peak_tibial_acceleration_exceeds_the_target():
    sim = SimRunner(RUNNER, SECONDS, ("tibia_left", "tibia_right"))
    eng = _run("pta_g", 9.5, sim)
    assert eng.errors_ == 0, eng.last_error_
    truth, steps = _feedback_steps(eng, sim)
    for foot in ("left", "right"):
        vals = np.array([s[3] for s in steps if s[1] == foot])
        assert len(vals) >= int((truth.foot == foot).sum()) - 1
        true = sim.truth_at(foot, np.array([s[2] for s in steps if s[1] == foot]), "pta_g")
        known = np.isfinite(true)
        assert known.sum() >= len(vals) - 1
        assert np.median(np.abs(vals[known] / true[known] - 1.0)) < 0.10  # the known-answer bound: within 10 %
    cues = [c for c in eng.cues_ if c.phase == 1]
    # a cue for every step above the target (bandwidth: none in band): all on the right, most right steps
    assert cues and {c.foot for c in cues} == {FOOT_CODE["right"]}
    over = [s for s in steps if s[3] > 9.5]
    assert len(cues) == len(over) >= 0.8 * len([s for s in steps if s[1] == "right"])
    assert sorted(c.ic for c in cues) == sorted(s[2] for s in over)
    # PTA is decided once IC + 100 ms has arrived, not at toe-off
    assert all(0.1 <= c.decided_s - c.ic < 0.2 for c in cues)


def test_protocol_files_accept_the_imu_metrics():
    for metric in ("pelvic_drop_deg", "pta_g"):
        p = parse_protocol(PROTOCOL.format(metric=metric, high=5.0), "p.toml")
        assert p.metric == metric and p.in_band(4.0) == 1 and p.in_band(6.0) == 0


class _Rec:
    """What FeedbackRun.attach uses of a recorder."""

    def __init__(self, descriptions: dict) -> None:
        self.descriptions = descriptions
        self.meta = {"body_mass_kg": 70.0}
        self.tables: list = []
        self.elapsed_s = 0.0

    def put_rows(self, group, columns):
        return True

    def mark(self, label, time_s=None):
        return 0.0


def _insole(foot: str):
    from treadlab.drivers.layouts import load_layout
    from treadlab.kinds import Calibration, DeviceDescription

    lay = load_layout("insole16")
    n = len(lay.positions_mm)
    return DeviceDescription(name=f"insole_{foot}", kind="insole", side=foot, protocol="binary", rate_hz=200.0,
                             clock_hz=1e6, shape=(n,), dtype=np.dtype("<f4"), info={},
                             calibration=Calibration("N", np.ones(n, np.float32), np.zeros(n, np.float32)),
                             layout={"positions_mm": lay.positions_mm, "areas_mm2": lay.areas_mm2,
                                     "foot_length_mm": lay.foot_length_mm})


def test_a_run_takes_the_rig_s_imus_and_refuses_a_target_without_its_sensor():
    from imu_files import ACC3, ACC6, imu_description

    from treadlab.errors import ConfigError
    from treadlab.feedback.live import FeedbackRun

    feet = {f"insole_{f}": _insole(f) for f in ("left", "right")}
    pelvis = imu_description("pelvis_imu", "pelvis", ACC6, 500.0)
    tibia = imu_description("tl_imu", "tibia_left", ACC3, 1000.0)
    drop = parse_protocol(PROTOCOL.format(metric="pelvic_drop_deg", high=5.0), "p.toml")
    with pytest.raises(ConfigError, match="needs an IMU placed on the pelvis in the rig"):
        FeedbackRun(drop).attach(_Rec({**feet, "tl_imu": tibia}))
    run = FeedbackRun(drop).attach(_Rec({**feet, "pelvis_imu": pelvis, "tl_imu": tibia}))
    assert run.engine.imu.devices == {"pelvis_imu"}
    ch = run.engine.imu.sensors["pelvis_imu"].channels
    assert ch.acc == (0, 1, 2) and ch.gyro == (3, 4, 5) and ch.gain[0] == pytest.approx(16.0 / 32768)
    pta = FeedbackRun(parse_protocol(PROTOCOL.format(metric="pta_g", high=9.0), "p.toml"))
    assert pta.attach(_Rec({**feet, "pelvis_imu": pelvis, "tl_imu": tibia})).engine.imu.devices == {"tl_imu"}
