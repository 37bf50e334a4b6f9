"""``socket://`` and ``rfc2217://`` end to end: a simulated device's pty behind an in-process network bridge, read
by the real driver and recorded by the real recorder (what a lab gets with an ESP32 Wi-Fi serial bridge)."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from tests.acq_truth import expected_raw, true_times_s
from treadlab import fileformat as ff
from treadlab.acquisition.recorder import Recorder
from treadlab.drivers import DeviceConfig, open_device
from treadlab.drivers.sim.bridges import Rfc2217Bridge, TcpPtyBridge
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.drivers.sim.spec import SimDeviceSpec
from treadlab.errors import DeviceDisconnectedError, PortNotFoundError
from treadlab.lab.rig import load_rig

BRIDGES = {"socket": TcpPtyBridge, "rfc2217": Rfc2217Bridge}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One simulated protocol v1 insole (insole99, u16, 500 Hz) in its own process, on a pty."""
    work = tmp_path_factory.mktemp("netsim")
    spec = SimDeviceSpec("insole_left", side="left", layout="insole99", dtype="u16", rate_hz=500,
                         serial="SIM-NET-0001", drift_ppm=35.0, offset_ticks=123_456, seed=7)
    with SimulatedRig([spec], work / "devices", seed=7) as rig:
        yield rig


#: Rate recorded through each bridge: pyserial's RFC 2217 client queues every byte in Python (about 56 kB/s
#: with the in-process server here, bench/transports.py), so it gets a 100 Hz stream (22 kB/s), raw TCP 500 Hz.
RATES_HZ = {"socket": 500, "rfc2217": 100}


def _rig_file(tmp_path, url: str, rate_hz: int) -> object:
    path = tmp_path / "rig.toml"
    path.write_text(f'[[device]]\nname = "insole_left"\nport = "{url}"\nkind = "insole"\nside = "left"\n'
                    f'serial = "SIM-NET-0001"\nrate_hz = {rate_hz}\n')
    return load_rig(path)


@pytest.mark.parametrize("scheme", sorted(BRIDGES))
def test_driver_commands_and_stream_through_a_network_bridge(sim, scheme):
    with BRIDGES[scheme](sim.ports["insole_left"]) as bridge:
        with open_device(DeviceConfig(name="insole_left", port=bridge.url, side="left")) as dev:
            info = dev.identify()
            assert info["serial"] == "SIM-NET-0001" and info["sensels"] == 99
            dev.set_rate(250)
            cal = dev.get_calibration()
            assert cal.gain.shape == (99,)
            dev.start()
            n, seqs = 0, []
            deadline = time.monotonic() + 5.0
            while n < 250 and time.monotonic() < deadline:
                b = dev.read(0.05)
                if b is not None:
                    seqs.append(b.seq)
                    n += len(b)
            rtts = [dev.ping().rtt_ns for _ in range(5)]
            dev.stop()
            dev.set_rate(500)
        seq = np.concatenate(seqs).astype(np.int64)
        assert n >= 250 and np.all(np.diff(seq) == 1)
        assert dev.stats.errors == 0 and dev.stats.lost_samples == 0
        assert 0 < min(rtts) < 50e6  # a local bridge answers within milliseconds
    assert bridge.connections == 1 and bridge.bytes_from_device > 250 * 200
    if scheme == "rfc2217":
        assert 921600 in bridge.baudrates  # the client set the line speed through the COM-PORT option


@pytest.mark.parametrize("scheme", sorted(BRIDGES))
def test_recording_through_a_network_bridge_is_complete_and_exact(sim, scheme, tmp_path):
    with BRIDGES[scheme](sim.ports["insole_left"]) as bridge:
        rate_hz = RATES_HZ[scheme]
        rig = _rig_file(tmp_path, bridge.url, rate_hz)
        out = tmp_path / "s.h5"
        with Recorder(list(rig.devices), {"participant": "NET"}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(2.5)
            status = rec.status()
    assert status.devices[0].state == "streaming" and status.devices[0].crc_errors == 0
    time.sleep(0.3)  # the simulator writes its truth file every 0.25 s
    truth = sim.truth("insole_left")
    spec = sim.devices[0]
    with h5py.File(out, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE and bridge.url in f.attrs["rig"]
        g = f["devices/insole_left"]
        seq = g["seq"][:].astype(np.int64)
        assert abs(len(seq) - 2.5 * rate_hz) < 0.2 * 2.5 * rate_hz
        assert np.all(np.diff(seq) == 1) and len(g["gaps"]) == 0 and g.attrs["lost_samples"] == 0
        start_ns = int(f.attrs["start_monotonic_ns"])
        true_s = true_times_s(g, truth, start_ns)
        want = expected_raw(spec, sim.t_epoch_ns, g, np.round(true_s * 1e9).astype(np.int64) + start_ns)
        assert np.array_equal(g["raw"][:], want)  # bit-exact through the bridge
        # the session clock holds through the network hop (loopback: well under a millisecond)
        assert np.max(np.abs(g["time"][:] - true_s)) < 1e-3


def test_the_bridge_going_away_is_a_disconnect(sim):
    bridge = TcpPtyBridge(sim.ports["insole_left"]).start()
    dev = open_device(DeviceConfig(name="insole_left", port=bridge.url))
    try:
        dev.identify()
        dev.start()
        bridge.stop()
        with pytest.raises(DeviceDisconnectedError, match="insole_left"):
            for _ in range(100):
                dev.read(0.05)
    finally:
        dev.close()


@pytest.mark.parametrize("url,text", [
    ("socket://127.0.0.1", r"needs a host and a port 1-65535, for example socket://192\.168\.4\.1:23"),
    ("socket://127.0.0.1:notaport", "needs a host and a port"),
    ("socket://:23", "needs a host and a port"),
    ("rfc2217://127.0.0.1:99999", r"needs a host and a port 1-65535, for example rfc2217://"),
    ("rfc2217://127.0.0.1:4000?colour=red", r"unknown option colour for rfc2217:// \(known: ign_set_control"),
])
def test_bad_network_urls_are_one_clear_error(url, text):
    with pytest.raises(PortNotFoundError, match=text):
        open_device(DeviceConfig(name="insole_left", port=url))
