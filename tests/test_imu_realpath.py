"""The IMU analysis through the real path: simulated insoles and IMUs in their own processes on pseudo-terminals,
the recorder, the session file, the analysis; known answers from the simulator's ground truth."""

from __future__ import annotations

import time

import h5py
import pytest
from imu_truth import known_answers, print_figures

from treadlab.acquisition.recorder import Recorder
from treadlab.analysis import analyze
from treadlab.drivers.sim.params import RunnerParams
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.lab.rig import load_rig

RECORD_S = 40.0
STAND_S = 14.0


@pytest.mark.slow
def test_simulated_insoles_and_imus_recorded_and_analysed(tmp_path):
    runner = RunnerParams(seed=8, stand_s=STAND_S, pelvic_drop_left_deg=9.0, pelvic_drop_right_deg=4.0,
                          pta_left_g=10.0, pta_right_g=7.0)
    with SimulatedRig.default(tmp_path / "sim", runner=runner, seed=8, mat=False,
                              imus=("pelvis", "trunk", "tibia_left", "tibia_right")) as sim:
        rig = load_rig(sim.write_rig(tmp_path / "rig.toml"))
        out = tmp_path / "s.h5"
        with Recorder(list(rig.devices), {"participant": "P", "body_mass_kg": runner.body_mass_kg}, str(out),
                      rig.text) as rec:
            rec.start()
            time.sleep(RECORD_S)
        with h5py.File(out, "r") as f:
            start_ns = int(f.attrs["start_monotonic_ns"])
        offset_s = (start_ns - sim.t_epoch_ns) / 1e9  # session clock -> simulator clock
        from treadlab.drivers.sim.change import gait_model
        from treadlab.drivers.sim.imu_model import ImuModel

        until = offset_s + RECORD_S
        model = ImuModel(runner, gait_model(runner, until + 10.0), window_s=(0.0, until))
    with analyze(out) as ga:
        steps = ga.steps.assign(ic_s=ga.steps["ic_s"] + offset_s, to_s=ga.steps["to_s"] + offset_s)
        fig = known_answers(steps, model, STAND_S + 4.0, until - 2.0)
        checks = ga.summary["imu"]["ic_diff_ms"]
    print_figures("real path: insoles + 4 IMUs", fig)
    print(checks, "recording started", offset_s, "s after the simulator")
    assert fig["steps_true"] > 40 and fig["found_pct"] >= 98
    for side in ("left", "right"):
        e = fig[f"pelvic_drop_{side}"]
        assert e["rmse"] <= 1.5 and abs(e["bias"]) <= 0.5, (side, e)
    assert fig["pelvic_rotation"]["rmse"] <= 2.0
    assert fig["pelvic_tilt_range"]["rmse"] <= 1.5
    assert fig["trunk_lean"]["rmse"] <= 1.5
    assert abs(fig["pta_median_rel_pct"]) <= 10
    assert fig["shock_attenuation"]["rmse"] <= 5
    assert fig["vertical_oscillation"]["rmse"] <= 10
    assert all(abs(v["median_ms"]) < 15 for v in checks.values())
