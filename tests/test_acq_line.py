"""Line-protocol insoles (no PING, millisecond device clock) recorded with a binary mat on one session clock."""

from __future__ import annotations

import time

import h5py
import numpy as np

from tests.acq_truth import clock_errors_s, true_times_by_ticks_s
from treadlab.acquisition.recorder import Recorder
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.lab.rig import load_rig


def test_line_insoles_and_a_binary_mat_share_the_session_clock(tmp_path):
    out = tmp_path / "s.h5"
    with SimulatedRig.default(tmp_path / "sim", seed=2, line_insoles=True) as sim:
        rig = load_rig(sim.write_rig(tmp_path / "rig.toml"))
        with Recorder(list(rig.devices), {"participant": "L1"}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(3.0)
    time.sleep(0.3)
    with h5py.File(out, "r") as f:
        start_ns = int(f.attrs["start_monotonic_ns"])
        for name in ("insole_left", "insole_right"):
            g = f[f"devices/{name}"]
            assert g.attrs["protocol"] == "line" and g["raw"].dtype == np.float32 and g.attrs["clock_hz"] == 1000
            n = g["seq"].shape[0]
            assert abs(n - 3.0 * 200) < 60 and len(g["clock/pings"]) == 0
            spec = next(d for d in sim.devices if d.name == name)
            err = g["time"][:] - true_times_by_ticks_s(g, sim.truth(name), spec, sim.t_epoch_ns, start_ns)
            # Without PING, a constant delivery latency is invisible: the earliest receipts still wait for the next
            # 1 ms USB frame (a fixed phase for samples on a whole-millisecond grid), so the absolute offset is
            # known to within one frame, and over 3 s the envelope alone pins the drift only loosely.
            assert np.max(np.abs(err)) < 1.5e-3 and np.sqrt(np.mean(err**2)) < 1.1e-3, name
        mat_err = clock_errors_s(f["devices/mat"], sim.truth("mat"), start_ns)
        assert np.max(np.abs(mat_err)) < 0.5e-3
