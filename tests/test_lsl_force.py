"""An instrumented treadmill on Lab Streaming Layer, declared in the rig with its channel map, recorded as a force
device: a real pylsl outlet in this process sends the simulated treadmill's split-belt channels in a vendor's
order, names and units (N·m moments, an unused trigger channel), and the file holds them per the force contract.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from tests.lsl_support import loopback_session
from treadlab.acquisition import lsl
from treadlab.acquisition.recorder import Recorder
from treadlab.analysis import analyze, read_session
from treadlab.drivers.sim.change import gait_model
from treadlab.drivers.sim.params import RunnerParams
from treadlab.drivers.sim.treadmill import TreadmillModel, channel_names
from treadlab.errors import ConfigError
from treadlab.lab.rig import load_rig

pylsl = pytest.importorskip("pylsl")

RATE_HZ = 500.0
#: The vendor's channels (Bertec-like names, moments in N·m), and a trigger channel the map leaves out.
VENDOR = ["TRIG", "FXL", "FYL", "FZL", "MXL", "MYL", "MZL", "FXR", "FYR", "FZR", "MXR", "MYR", "MZR", "SPDL", "SPDR"]


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    return loopback_session(tmp_path_factory, "force")


class TreadmillSender:
    """Test-owned thread pushing the simulated split-belt treadmill as a vendor stream, with exact timestamps."""

    def __init__(self, source_id: str, runner: RunnerParams) -> None:
        info = pylsl.StreamInfo("test-treadmill", "ForcePlate", len(VENDOR), RATE_HZ, "float32", source_id)
        chans = info.desc().append_child("channels")
        for label in VENDOR:
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "N.m" if label[0] == "M" else "N")
        self.outlet = pylsl.StreamOutlet(info)
        self.gait = gait_model(runner, 120.0)
        self.model = TreadmillModel(self.gait, {"belts": "split"}, seed=1)
        self.t0 = pylsl.local_clock()
        self.sent: list[tuple[np.ndarray, np.ndarray]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-treadmill-sender")

    def vendor_values(self, t_s: np.ndarray) -> np.ndarray:
        """The model's channels in the vendor's order and units."""
        v = self.model.values(t_s)
        names = channel_names("split")
        out = np.zeros((len(t_s), len(VENDOR)), np.float32)
        for i, label in enumerate(VENDOR[1:], start=1):
            side = label[-1].lower()
            base = {"FX": "Fx", "FY": "Fy", "FZ": "Fz", "MX": "Mx", "MY": "My", "MZ": "Mz", "SP": "belt_speed"}[
                label[:2]]
            col = v[:, names.index(f"{base}_{side}")]
            out[:, i] = col / 1000.0 if base[0] == "M" else col  # N·mm -> N·m
        out[:, 0] = (np.floor(t_s) % 2).astype(np.float32)  # a trigger the rig does not map
        return out

    def _run(self) -> None:
        k = 0
        while not self._stop.wait(0.02):
            n = int((pylsl.local_clock() - self.t0) * RATE_HZ) - k
            if n <= 0:
                continue
            idx = np.arange(k, k + n)
            t_model = idx / RATE_HZ
            vals = self.vendor_values(t_model)
            lsl.push_stamped(self.outlet, vals, self.t0 + t_model)
            self.sent.append((self.t0 + t_model, vals))
            k += n

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        assert not self._thread.is_alive()
        self.outlet = None


def _rig_text(source_id: str) -> str:
    vendor = {"Fx": "FX", "Fy": "FY", "Fz": "FZ", "Mx": "MX", "My": "MY", "Mz": "MZ", "belt_speed": "SPD"}
    pairs = []
    for name in channel_names("split"):  # the file keeps the map's order: the contract's, here
        base, side = name[:-2], name[-1].upper()
        label = vendor[base] + side
        value = f'{{ stream = "{label}", scale = 1000.0 }}' if base[0] == "M" else f'"{label}"'
        pairs.append(f"{name} = {value}")
    pairs[-1] = "belt_speed_r = 14"  # a channel by position, counting from 0
    return ("[session]\nbody_mass_kg = 70.0\ntreadmill_speed_mps = 3.0\nfoot_length_mm = 260.0\n\n"
            f'[[device]]\nname = "treadmill"\nprotocol = "lsl"\nkind = "force"\nsource_id = "{source_id}"\n'
            'belts = "split"\naxes = { vertical = "z", forward = "x" }\n'
            "origin_mm = [[0.0, 130.0, 0.0], [0.0, -130.0, 0.0]]\nsize_mm = [[1800.0, 240.0], [1800.0, 240.0]]\n"
            f"channels = {{ {', '.join(pairs)} }}\n")


def test_an_lsl_treadmill_with_a_channel_map_is_recorded_as_a_force_device(loopback, tmp_path):
    sid = f"test-treadmill-{os.getpid()}"
    runner = RunnerParams(strike_left="rearfoot", strike_right="midfoot", seed=7)
    rig_path = tmp_path / "rig.toml"
    rig_path.write_text(_rig_text(sid))
    rig = load_rig(rig_path)
    assert rig.devices[0].kind == "force"
    sender = TreadmillSender(sid, runner)
    out = tmp_path / "lsl.h5"
    sender.start()
    try:
        with Recorder(list(rig.devices), {**rig.session, "participant": "L1"}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(7.0)
    finally:
        sender.stop()
    stamps = np.concatenate([s for s, _ in sender.sent])
    with read_session(out) as s:
        d = s.devices["treadmill"]
        assert d.kind == "force" and d.channel_labels() == channel_names("split")
        assert d.attrs["protocol"] == "lsl" and d.belts == "split"
        assert list(d.channel_units()) == ["N", "N", "N", "N·mm", "N·mm", "N·mm", "m/s"] * 2
        np.testing.assert_array_equal(np.asarray(d.attrs["origin_mm"]), [[0.0, 130.0, 0.0], [0.0, -130.0, 0.0]])
        got = d.read_calibrated()
        t_file = d.time
        start_s = int(s.attrs["start_monotonic_ns"]) / 1e9
        assert len(got) > 4 * RATE_HZ
        # every recorded sample is the model's value at its LSL timestamp (moments back in N·mm)
        first = int(np.argmin(np.abs(stamps - (t_file[0] + start_s))))
        t_model = (stamps[first:first + len(got)] - sender.t0)
        np.testing.assert_allclose(got, sender.model.values(t_model), rtol=1e-5, atol=1e-2)
        assert np.max(np.abs(t_file + start_s - stamps[first:first + len(got)])) < 1e-3
        with analyze(s, source="force") as ga:  # the force analysis reads it like a protocol v1 treadmill
            steps = ga.steps[ga.steps["quality"] == "ok"]
    assert len(steps) > 10 and set(steps["foot"]) == {"left", "right"}
    truth = sender.gait.steps
    by_foot = steps.groupby("foot")["strike_class"].agg(lambda c: c.mode().iat[0])
    assert by_foot["left"] == "rearfoot" and by_foot["right"] == "midfoot"
    assert truth["strike_class"].isin(["rearfoot", "midfoot"]).all()


def test_a_bad_channel_map_is_one_rig_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[device]]\nname = "tm"\nprotocol = "lsl"\nkind = "force"\nstream_name = "x"\n'
                   'belts = "split"\nchannels = { Fz = "FZ" }\n')
    with pytest.raises(ConfigError, match="_l or _r"):
        load_rig(bad)
    bad.write_text('[[device]]\nname = "tm"\nprotocol = "lsl"\nkind = "force"\nstream_name = "x"\n'
                   'channels = { Fz = { stream = "FZ", scale = 0 } }\n')
    with pytest.raises(ConfigError, match="scale must be a non-zero number"):
        load_rig(bad)
    bad.write_text('[[device]]\nname = "tm"\nport = "/dev/null"\nkind = "force"\nchannels = { Fz = "FZ" }\n')
    with pytest.raises(ConfigError, match="only apply to protocol = 'lsl'"):
        load_rig(bad)
