"""Moticon OpenGo insoles' inertial channels recorded as imu devices (``kind = "imu"`` entries of the moticon
adapter, placement ``foot_<side>``): rig validation, and two insoles with their imus recorded from one simulated
OpenGo stream through the real driver and recorder, every value checked against what the simulator sent."""

from __future__ import annotations

import math
import socket
import time

import h5py
import numpy as np
import pytest

from treadlab.acquisition.recorder import Recorder
from treadlab.analysis.session import read_session
from treadlab.drivers.sim.moticon import MoticonSim
from treadlab.errors import ConfigError
from treadlab.lab.rig import load_rig

SIX = ["ax", "ay", "az", "gx", "gy", "gz"]


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _entry(name: str, port: int, side: str, extra: str = "") -> str:
    return (f'[[device]]\nname = "{name}"\nprotocol = "moticon"\nport = "udp://127.0.0.1:{port}"\nside = "{side}"\n'
            f"rate_hz = 100\n{extra}\n")


def _load(tmp_path, text: str):
    path = tmp_path / "rig.toml"
    path.write_text(text)
    return load_rig(path)


def test_rig_entries_of_the_insoles_imus(tmp_path):
    port = _free_udp_port()
    rig = _load(tmp_path, "".join(_entry(f"insole_{s}", port, s) + _entry(f"imu_foot_{s}", port, s, 'kind = "imu"')
                                  for s in ("left", "right")))
    imu = rig.device("imu_foot_left")
    assert imu.kind == "imu" and imu.side == "left" and imu.expect == {"placement": "foot_left"}
    assert rig.device("insole_left").kind == "insole"
    ok = _entry("imu_l", port, "left", 'kind = "imu"\nplacement = "foot_left"')
    assert _load(tmp_path, ok).devices[0].kind == "imu"
    for extra, message in [
        ('kind = "imu"\nplacement = "foot_right"', "'placement' must be 'foot_left'"),
        ('kind = "imu"\nlayout = "insole16"', "'layout' does not apply to the insole's imu"),
        ('placement = "foot_left"', "'placement' only applies to kind = 'imu' entries"),
        ('kind = "mat"', "'kind' must be 'insole' \\(the default\\) or 'imu'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            _load(tmp_path, _entry("x", port, "left", extra))
    with pytest.raises(ConfigError, match="already used by device 1"):  # the same kind and side twice
        _load(tmp_path, _entry("a", port, "left", 'kind = "imu"') + _entry("b", port, "left", 'kind = "imu"'))


def test_two_insoles_and_their_imus_from_one_stream(tmp_path):
    port = _free_udp_port()
    rig = _load(tmp_path, "".join(_entry(f"insole_{s}", port, s) + _entry(f"imu_foot_{s}", port, s, 'kind = "imu"')
                                  for s in ("left", "right")))
    out = tmp_path / "moticon.h5"
    with MoticonSim(("127.0.0.1", port), rate_hz=100, drop_rate=0.03, seed=4) as sim:
        with Recorder(list(rig.devices), {"participant": "MOT"}, str(out), rig.text) as rec:
            rec.start()
            assert rec.descriptions["imu_foot_left"].channel_units == ("g",) * 3 + ("deg/s",) * 3
            time.sleep(2.0)
    dropped = np.array(sim.dropped_t)
    with h5py.File(out, "r") as f:
        for i, side in enumerate(("left", "right")):
            g = f[f"devices/imu_foot_{side}"]
            assert g.attrs["kind"] == "imu" and g.attrs["placement"] == f"foot_{side}"
            assert list(g.attrs["channels"]) == SIX and math.isnan(g.attrs["range_g"])
            raw = g["raw"][()]
            assert raw.dtype == np.float32 and raw.shape[1] == 6 and len(raw) > 150
            assert g["calibration"].attrs["unit"] == "imu"
            t_s = g["device_time"][()].astype(np.float64) / 1e6
            truth = sim.channels(t_s)[i]
            np.testing.assert_allclose(raw, np.hstack([truth["acc"], truth["gyro"]]), atol=6e-4)
            inside = np.count_nonzero((dropped > t_s[0] + 1e-6) & (dropped < t_s[-1] - 1e-6))
            assert g.attrs["lost_samples"] == inside
            # the insole of the same side is recorded as before, sample for sample with its imu
            ins = f[f"devices/insole_{side}"]
            assert ins.attrs["kind"] == "insole" and ins["raw"].shape[1] == 16
    with read_session(out) as s:
        dev = s.devices["imu_foot_left"]
        assert dev.placement == "foot_left" and dev.has_gyro and sorted(s.insoles) == ["left", "right"]
        t_s = dev.read_time()
        assert len(t_s) == dev.n_samples
        np.testing.assert_allclose(dev.read_gyro_dps(), dev.read_raw()[:, 3:])  # gain 1: as sent, deg/s
        assert math.isnan(dev.clipping_fraction())  # the stream does not state the full scale
