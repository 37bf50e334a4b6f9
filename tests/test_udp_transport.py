"""Protocol v1 over UDP (``udp://host:port``): one datagram is one message, no COBS, the CRC still checked, loss
found from sequence numbers; through the real driver and recorder, against a simulated UDP device."""

from __future__ import annotations

import socket
import struct
import time
import zlib

import h5py
import numpy as np
import pytest

from tests.acq_truth import expected_raw, true_times_s
from treadlab import fileformat as ff
from treadlab.acquisition.recorder import Recorder
from treadlab.acquisition.writer import COUNTER_COLUMNS
from treadlab.drivers import DeviceConfig, open_device
from treadlab.drivers import protocol as p
from treadlab.drivers.message import MessageDecoder, UdpPort
from treadlab.drivers.sim.spec import SimDeviceSpec
from treadlab.drivers.sim.udp import UdpSimDevice
from treadlab.errors import ConfigError, DeviceTimeoutError, PortBusyError, PortNotFoundError
from treadlab.lab.rig import load_rig


def _spec(**kw) -> SimDeviceSpec:
    base = {"side": "right", "layout": "insole99", "dtype": "u16", "rate_hz": 500, "serial": "SIM-UDP-0001",
                "drift_ppm": -42.0, "offset_ticks": 98_765, "seed": 11}
    base.update(kw)
    return SimDeviceSpec("insole_right", **base)


def _message(msg_type: int, body: bytes) -> bytes:
    raw = bytes((msg_type,)) + body
    return raw + struct.pack("<I", zlib.crc32(raw))


def test_message_decoder_checks_crc_length_and_type_without_cobs():
    n = 16
    dt = p.data_dtype(n, "u8")
    dec = MessageDecoder(data_size=dt.itemsize)
    good = [_message(p.DATA, struct.pack("<IQ", i, 1000 * i) + bytes(range(n))) for i in range(3)]
    bad_crc = bytearray(good[1])
    bad_crc[7] ^= 1
    wrong_len = _message(p.DATA, struct.pack("<IQ", 9, 9) + bytes(n - 1))
    log = _message(p.LOG, b"\x1ehello")
    data, other = dec.feed_messages([good[0], bytes(bad_crc), b"\x10\x00", wrong_len, log, good[2]])
    assert data == [good[0], good[2]] and other == [(p.LOG, b"\x1ehello")]
    st = dec.stats
    assert (st.messages, st.crc_errors, st.short_errors, st.malformed, st.framing_errors) == (3, 1, 1, 1, 0)
    seq, t, values = p.decode_data(data, n, "u8")
    assert list(seq) == [0, 2] and list(t) == [0, 2000] and np.array_equal(values[1], np.arange(n))
    assert dec.feed_messages([]) == ([], [])


def test_driver_over_udp_commands_and_stream():
    with UdpSimDevice(_spec()) as sim:
        with open_device(DeviceConfig(name="insole_right", port=sim.url, side="right")) as dev:
            info = dev.identify()
            assert info["serial"] == "SIM-UDP-0001" and info["sensels"] == 99
            dev.set_rate(250)
            assert dev.get_calibration().gain.shape == (99,)
            dev.start()
            batches = []
            deadline = time.monotonic() + 5.0
            while sum(map(len, batches)) < 250 and time.monotonic() < deadline:
                b = dev.read(0.05)
                if b is not None:
                    batches.append(b)
            rtt_ns = dev.ping().rtt_ns
            dev.stop()
            while dev.read(0.0) is not None:  # what came before the ACK of STOP (more when the machine is busy)
                pass
            after = dev.read(0.2)  # nothing follows the ACK of STOP
        seq = np.concatenate([b.seq for b in batches]).astype(np.int64)
        assert len(seq) >= 250 and np.all(np.diff(seq) == 1)
        assert after is None or len(after) < 5
        assert dev.stats.errors == 0 and dev.stats.lost_samples == 0 and dev.stats.framing_errors == 0
        assert 0 < rtt_ns < 50e6
    assert sim.commands[:2] == [p.IDENTIFY, p.SET_RATE]  # the leading 0x00 flush sends no datagram


def test_udp_loss_and_corruption_are_found_counted_and_recorded(tmp_path):
    spec = _spec()
    with UdpSimDevice(spec, drop_rate=0.03, corrupt_rate=0.02, seed=5) as sim:
        rig_path = tmp_path / "rig.toml"
        rig_path.write_text(f'[[device]]\nname = "insole_right"\nport = "{sim.url}"\nside = "right"\n'
                            'serial = "SIM-UDP-0001"\nrate_hz = 500\n')
        rig = load_rig(rig_path)
        out = tmp_path / "udp.h5"
        with Recorder(list(rig.devices), {"participant": "UDP"}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(3.0)
        truth = sim.truth()
        dropped = np.array(sim.dropped_seq, np.int64)
        corrupted = np.array(sim.corrupted_seq, np.int64)
    with h5py.File(out, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE
        g = f["devices/insole_right"]
        seq = g["seq"][:].astype(np.int64)
        assert len(seq) > 0.8 * 3.0 * 500
        first, last = seq[0], seq[-1]
        missing = np.setdiff1d(np.arange(first, last + 1), seq)
        inside = np.union1d(dropped, corrupted)
        inside = inside[(inside > first) & (inside < last)]
        assert len(inside) > 20  # the simulated network did lose and damage datagrams
        assert np.array_equal(missing, inside)  # every loss found from the sequence numbers, no false ones
        assert g.attrs["lost_samples"] == len(missing)
        assert int(np.sum(g["gaps"][:, 2])) == len(missing)
        counters = dict(zip(COUNTER_COLUMNS, g["counters"][:]))
        assert counters["crc_errors"] == len(corrupted)  # damaged datagrams counted like CRC errors on serial
        start_ns = int(f.attrs["start_monotonic_ns"])
        true_s = true_times_s(g, truth, start_ns)
        want = expected_raw(spec, sim.t_epoch_ns, g, np.round(true_s * 1e9).astype(np.int64) + start_ns)
        assert np.array_equal(g["raw"][:], want)  # what arrived is exactly what the device sent
        assert np.max(np.abs(g["time"][:] - true_s)) < 1e-3


def test_nothing_listening_on_udp_is_a_timeout_naming_the_url():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    url = f"udp://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    with open_device(DeviceConfig(name="insole_right", port=url)) as dev:
        with pytest.raises(DeviceTimeoutError, match=f"nothing answered on {url} within 0.6 s"):
            dev.identify(timeout_s=0.6)
        assert dev.port.refused >= 1  # the ICMP "port unreachable" answers were seen, and not an error


@pytest.mark.parametrize("url,text", [
    ("udp://127.0.0.1", "needs a host and a port 1-65535, for example udp://"),
    ("udp://:5005", "needs a host and a port"),
    ("udp://127.0.0.1:0", "needs a host and a port"),
    ("udp://no-such-host.invalid:5005", "unknown host 'no-such-host.invalid'"),
])
def test_bad_udp_urls_are_one_clear_error(url, text):
    with pytest.raises(PortNotFoundError, match=text):
        open_device(DeviceConfig(name="insole_right", port=url))


def test_udp_is_for_protocol_v1_only_and_a_used_local_port_is_busy():
    with pytest.raises(ConfigError, match="udp:// carries protocol v1 messages"):
        open_device(DeviceConfig(name="x", port="udp://127.0.0.1:5005", protocol="line", sensels=8, side="left",
                                 rate_hz=100, time_unit="ms", layout="insole16"))
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        with pytest.raises(PortBusyError, match=f"UDP port {port} is in use"):
            UdpPort(f"udp://127.0.0.1:{port}", listen=True)
    finally:
        holder.close()
    UdpPort(f"udp://127.0.0.1:{port}", listen=True).close()  # free again


def test_a_silent_udp_device_is_reconnected_when_it_answers_again(tmp_path):
    spec = _spec()
    first = UdpSimDevice(spec).start()
    sims = [first]
    try:
        port = int(first.url.rsplit(":", 1)[1])
        rig_path = tmp_path / "rig.toml"
        rig_path.write_text(f'[[device]]\nname = "insole_right"\nport = "{first.url}"\nserial = "SIM-UDP-0001"\n'
                            'rate_hz = 500\n')
        rig = load_rig(rig_path)
        out = tmp_path / "cycle.h5"
        with Recorder(list(rig.devices), {"participant": "UDP"}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(1.0)
            first.stop()  # the device loses power: no datagram, no error, just silence
            sims.remove(first)
            time.sleep(2.8)
            assert rec.status().devices[0].state != "streaming"
            sims.append(UdpSimDevice(spec, port=port).start())  # powered up again, stopped, on the same address
            deadline = time.monotonic() + 10.0
            while rec.status().devices[0].reconnections < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
            status = rec.status()
        assert status.devices[0].reconnections == 1 and status.devices[0].state == "streaming"
        with h5py.File(out, "r") as f:
            g = f["devices/insole_right"]
            assert len(g["clock/segments"]) == 2  # one clock segment per power cycle
            second = int(g["clock/segments"][1, 0])
            assert second > 300 and g["seq"].shape[0] - second > 300  # samples before and after
            events = [x.decode() for x in f["events/text"][:]]
            assert any("nothing from udp://" in e for e in events) and any("reconnected" in e for e in events)
    finally:
        for sim in sims:
            sim.stop()
