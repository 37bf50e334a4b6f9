"""The desktop app's capture path (``lab gui --lsl``): :class:`LiveSource` publishes a capture on LSL and withdraws
the outlets when the capture stops. No Qt needed: the source is the app's Qt-free acquisition adapter."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from tests.lsl_support import loopback_session
from treadlab.acquisition import lsl
from treadlab.analysis import read_session
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.errors import LabError
from treadlab.lab.gui.source import LiveSource
from treadlab.lab.rig import load_rig

pylsl = pytest.importorskip("pylsl")


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """liblsl restricted to 127.0.0.1 with a session id of its own; skip if it cannot publish and resolve."""
    return loopback_session(tmp_path_factory, "gui")


def test_live_source_publishes_while_recording(loopback, tmp_path):
    sim = SimulatedRig.default(tmp_path / "sim")
    sim = SimulatedRig(sim.devices[:1], tmp_path / "sim", seed=2)
    emg_sid = f"gui-emg-{os.getpid()}"
    emg = pylsl.StreamOutlet(pylsl.StreamInfo("gui-emg", "EMG", 2, 200.0, "float32", emg_sid))
    with sim:
        rig_path = sim.write_rig(tmp_path / "rig.toml")
        with open(rig_path, "a") as fh:  # an external stream in the app's rig too
            fh.write(f'\n[[device]]\nname = "emg"\nprotocol = "lsl"\nsource_id = "{emg_sid}"\n')
        rig = load_rig(rig_path)
        serial = rig.devices[0].serial or sim.devices[0].serial
        source = LiveSource(rig, lsl=True).open()
        try:
            deadline = time.monotonic() + 20.0
            while time.monotonic() < deadline:
                try:
                    source.start_recording(tmp_path / "gui.h5", {"participant": "P"})
                    break
                except LabError:
                    time.sleep(0.2)  # the preview is still connecting
            assert source.recording
            found = pylsl.resolve_byprop("source_id", f"treadlab-{serial}", timeout=10.0)
            assert found, "the insole outlet did not appear"
            inlet = pylsl.StreamInlet(found[0], recover=False)
            inlet.open_stream(timeout=5.0)
            source.mark("from the app")
            got = 0
            deadline = time.monotonic() + 10.0
            k, t0 = 0, pylsl.local_clock()
            # LSL holds a numeric inlet's first samples until its clock offset is known (~0.7 s): push until
            # the EMG samples reached the stream, not only until the insole outlet delivered 200.
            while (got < 200 or source.stream.ring("emg").total_n == 0) and time.monotonic() < deadline:
                n = int((pylsl.local_clock() - t0) * 200.0) - k  # the EMG samples due by now, on a 200 Hz grid
                if n > 0:
                    idx = np.arange(k, k + n)
                    lsl.push_stamped(emg, np.column_stack([idx, np.zeros(n)]), t0 + idx / 200.0)
                    k += n
                v, t = inlet.pull_chunk(timeout=0.1, max_samples=4096, as_numpy=True)
                got += len(t)
                if len(t):
                    assert np.all(np.asarray(v) >= 0)
            inlet.close_stream()
            del inlet
            path = source.stop_recording()
            assert got >= 200
            with read_session(path) as s:
                assert s.streams["emg"].n_samples > 0 and s.markers["label"].tolist() == ["from the app"]
            cont = pylsl.ContinuousResolver(prop="source_id", value=f"treadlab-{serial}", forget_after=0.5)
            time.sleep(1.5)
            assert cont.results() == []
        finally:
            source.close()
    del emg
