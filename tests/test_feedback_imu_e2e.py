"""Feedback on pelvic drop through the real path: simulated insoles and a pelvis IMU in their own processes,
serial, the recorder, the engine and the session file, against the simulator's ground truth."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from treadlab.acquisition.recorder import Recorder
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.feedback.check import match_contacts
from treadlab.feedback.live import FeedbackRun
from treadlab.feedback.protocol import parse_protocol
from treadlab.lab.rig import load_rig

# The runner stands for 16 s from the start of the simulated devices: the recording starts a few seconds later
# (processes, identification), and the live alignment needs 3 s of that standing in the recording.
RUNNER = RunnerParams(cadence_spm=170.0, stand_s=16.0, seed=4, pelvic_drop_left_deg=8.0, pelvic_drop_right_deg=3.0)
PROTOCOL = """
[target]
metric = "pelvic_drop_deg"
high = 5.5
[cue]
kind = "bandwidth"
[[phase]]
name = "warm-up"
duration_s = 8
feedback = "off"
[[phase]]
name = "feedback"
duration_s = 26
feedback = "on"
"""
DURATION_S = 34.0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("fbimu")
    with SimulatedRig.default(work / "devices", runner=RUNNER, seed=4, mat=False, imus=("pelvis",)) as rig:
        rig_file = load_rig(str(rig.write_rig(work / "rig.toml")))
        rec = Recorder(list(rig_file.devices), {"body_mass_kg": RUNNER.body_mass_kg}, str(work / "s.h5"),
                       rig_file.text)
        rec.open()
        fb = FeedbackRun(parse_protocol(PROTOCOL, "drop")).attach(rec)
        rec.start()
        fb.start()
        try:
            while rec.elapsed_s < DURATION_S:
                time.sleep(0.1)
        finally:
            fb.stop()
            rec.stop()
        steps, _ = rig.imu_truth()
    steps = steps.assign(ic_session_s=(steps["ic_ns"] - rec.start_ns) / 1e9).sort_values("ic_session_s")
    return {"fb": fb, "true": steps, "path": work / "s.h5"}


def test_every_left_stance_above_the_target_is_cued_and_recorded(run):
    eng = run["fb"].engine
    assert eng.errors_ == 0, eng.last_error_
    with h5py.File(run["path"], "r") as f:
        cues = {k: f["feedback/cues"][k][()] for k in f["feedback/cues"]}
        assert f["feedback"].attrs["target_metric"] == "pelvic_drop_deg"
    assert len(cues["time"]) == len(eng.cues_) > 5
    true = run["true"]
    tic = true["ic_session_s"].to_numpy()
    j = match_contacts(cues["ic"], tic)
    assert (j >= 0).all() and set(cues["foot"]) == {0}  # left stances only (8 deg drop; the right 3 deg)
    assert (true["foot"].to_numpy()[j] == "left").all()
    # every left stance from the second after the pelvis was aligned (standing, then 10 s of running) got its cue
    sensor = next(iter(eng.imu.sensors.values()))
    assert sensor.ready and sensor.ready_s_ < DURATION_S - 8.0
    on = np.flatnonzero((tic > sensor.ready_s_ + 1.0) & (tic < DURATION_S - 0.6) & (true["foot"].to_numpy() == "left"))
    assert len(on) >= 5 and np.isin(on, j).all()
    # the value of each cue is the stance's true pelvic drop (the causal filter, live)
    err = cues["value"] - true["pelvic_drop_deg"].to_numpy()[j]
    assert np.sqrt(np.mean(err ** 2)) < 1.0
    # the right stances were evaluated too, in band
    right = [s for s in eng.steps_ if s[1] == "right" and s[0] == 1]
    assert right and all(s[4] == 1 for s in right)
