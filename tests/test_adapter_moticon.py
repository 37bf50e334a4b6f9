"""Moticon OpenGo through its desktop software's UDP text stream: parser, numbering from device time, the shared
socket of the two insoles, and a recording of both against a simulated OpenGo stream with Wi-Fi faults."""

from __future__ import annotations

import socket
import time

import h5py
import numpy as np
import pytest

from treadlab import fileformat as ff
from treadlab.acquisition.recorder import Recorder
from treadlab.drivers import open_device
from treadlab.drivers.adapters.common import TimeSequencer
from treadlab.drivers.adapters.moticon import FIELDS, parse_datagrams
from treadlab.drivers.sim.moticon import MoticonSim, encode_datagrams
from treadlab.errors import ConfigError, DeviceTimeoutError, PortBusyError
from treadlab.lab.rig import load_rig


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _rig(tmp_path, port: int, sides=("left", "right"), extra: str = "") -> object:
    text = "".join(f'[[device]]\nname = "insole_{side}"\nprotocol = "moticon"\nport = "udp://127.0.0.1:{port}"\n'
                   f'side = "{side}"\nrate_hz = 100\n{extra}\n' for side in sides)
    path = tmp_path / "rig.toml"
    path.write_text(text)
    return load_rig(path)


def test_parser_reads_the_documented_layout_and_drops_what_is_not_it():
    sim = MoticonSim(("127.0.0.1", 9), rate_hz=100)
    t = 3.0 + np.arange(50) / 100
    left, right = sim.channels(t)
    grams = encode_datagrams(t, left, right, decimals=4)
    assert len(grams[0].split()) == FIELDS
    bad = [b"", b"1 2 3", grams[0].replace(b" ", b" x", 1), b"nan " + b"0 " * 50]
    frames = parse_datagrams(grams[:20] + bad + grams[20:])
    assert frames.bad == 4 and np.allclose(frames.t, t, atol=1e-4)
    for side, ch in (("left", left), ("right", right)):
        got = frames.side(side)
        for key in ("pressure", "total_force", "cop", "acc", "gyro"):
            assert np.allclose(got[key], ch[key], atol=6e-5), (side, key)
    assert np.all(frames.side("left")["pressure"].max(axis=0) > 0)  # the gait loads every sensor
    empty = parse_datagrams([])
    assert empty.fields.shape == (0, FIELDS) and empty.bad == 0


def test_time_sequencer_numbers_gaps_duplicates_and_restarts():
    seqr = TimeSequencer(100)
    t = np.array([5.00, 5.01, 5.02, 5.05, 5.05, 5.06, 5.04, 5.07])
    seq, keep = seqr.number(t)
    assert keep.tolist() == [True, True, True, True, False, True, False, True]
    assert seq.tolist() == [0, 1, 2, 5, 6, 7]  # 5.03 and 5.04 missing: a jump of 3
    seq2, _ = seqr.number(np.array([5.08, 0.00, 0.01]))  # the sender restarted its clock
    assert seq2.tolist() == [8, 9, 10]
    assert TimeSequencer(100).number(np.zeros(0))[0].shape == (0,)


def test_both_insoles_share_one_socket_and_count_what_cannot_be_checked(tmp_path):
    port = _free_udp_port()
    rig = _rig(tmp_path, port)
    left_dev, right_dev = (open_device(cfg) for cfg in rig.devices)
    try:
        with MoticonSim(("127.0.0.1", port), rate_hz=100, drop_rate=0.05, duplicate_rate=0.05, garble_rate=0.02,
                        seed=3) as sim:
            for dev in (left_dev, right_dev):
                info = dev.identify()
                assert info["sensels"] == 16 and info["side"] == dev.side
                dev.start()
            got = {"left": [], "right": []}
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                for dev in (left_dev, right_dev):
                    b = dev.read(0.02)
                    if b is not None:
                        got[dev.side].append(b)
        sent = np.array(sim.sent_t)
        dropped = np.array(sim.dropped_t)
        for dev in (left_dev, right_dev):
            batches = got[dev.side]
            seq = np.concatenate([b.seq for b in batches]).astype(np.int64)
            t_s = np.concatenate([b.device_time for b in batches]).astype(np.float64) / 1e6
            values = np.concatenate([b.values for b in batches])
            assert len(seq) > 150 and values.dtype == np.float32
            assert np.all(np.diff(seq) >= 1)
            # every sample is one the sender sent (duplicates dropped), with its values
            assert np.all(np.isin(np.round(t_s, 3), np.round(sent, 3)))
            truth = sim.channels(t_s)[0 if dev.side == "left" else 1]
            assert np.allclose(values, truth["pressure"], atol=1e-3)
            # loss inside the received span is exactly the dropped and garbled datagrams
            inside = np.count_nonzero((dropped > t_s[0] + 1e-6) & (dropped < t_s[-1] - 1e-6))
            assert inside > 3 and dev.stats.lost_samples == inside
            st = dev.stats
            assert st.unchecked == st.samples == len(seq)
            assert st.duplicates >= 0.5 * sim.duplicated_n and st.duplicates <= sim.duplicated_n
            assert st.bad_lines == sim.garbled_n > 0 and st.errors == st.bad_lines
            assert set(dev.last_extras) == {"total_force", "cop", "acc", "gyro"}
        assert left_dev.port is right_dev.port  # one socket for both
    finally:
        left_dev.close()
        right_dev.close()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", port))  # the shared socket was closed with the last insole
    probe.close()


def test_recording_two_moticon_insoles(tmp_path):
    port = _free_udp_port()
    rig = _rig(tmp_path, port, extra='layout = "insole16"')
    out = tmp_path / "moticon.h5"
    with MoticonSim(("127.0.0.1", port), rate_hz=100, drop_rate=0.04, seed=8) as sim:
        with Recorder(list(rig.devices), {"participant": "MOT"}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(2.5)
    dropped = np.array(sim.dropped_t)
    with h5py.File(out, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE
        for side in ("left", "right"):
            g = f[f"devices/insole_{side}"]
            assert g.attrs["protocol"] == "moticon" and g.attrs["side"] == side
            raw = g["raw"][:]
            assert raw.dtype == np.float32 and raw.shape[1] == 16 and len(raw) > 180
            assert g["calibration"].attrs["unit"] == "kPa" and np.all(g["calibration/gain"][:] == 10.0)
            t_s = g["device_time"][:].astype(np.float64) / 1e6
            truth = sim.channels(t_s)[0 if side == "left" else 1]
            assert np.allclose(raw, truth["pressure"], atol=1e-3)
            inside = np.count_nonzero((dropped > t_s[0] + 1e-6) & (dropped < t_s[-1] - 1e-6))
            assert g.attrs["lost_samples"] == inside and int(np.sum(g["gaps"][:, 2])) == inside
            assert "positions_mm" in g["layout"]


def test_moticon_rig_entries_and_errors(tmp_path):
    port = _free_udp_port()
    two_left = tmp_path / "two-left.toml"
    two_left.write_text("".join(f'[[device]]\nname = "{n}"\nprotocol = "moticon"\nport = "udp://:{port}"\n'
                                'side = "left"\nrate_hz = 100\n' for n in ("a", "b")))
    with pytest.raises(ConfigError, match=r"device 2 \('b'\): port udp://:\d+ already used by device 1"):
        load_rig(two_left)
    for extra, text in [('baudrate = 9600', "'baudrate' do not apply to Moticon insoles"),
                        ('time_unit = "us"', "'time_unit' must be 's' or 'ms'"),
                        ('layout = "insole99"', "layout: .*99 sensels, the device has 16")]:
        with pytest.raises(ConfigError, match=text):
            _rig(tmp_path, port, sides=("left",), extra=extra)
    path = tmp_path / "bad.toml"
    path.write_text('[[device]]\nname = "m"\nprotocol = "moticon"\nport = "udp://127.0.0.1"\nside = "left"\n'
                    'rate_hz = 100\n')
    with pytest.raises(ConfigError, match="needs a local port"):
        load_rig(path)
    path.write_text('[[device]]\nname = "m"\nprotocol = "moticon"\nport = "/dev/ttyUSB0"\nside = "left"\n')
    with pytest.raises(ConfigError, match="the local UDP port the OpenGo desktop software sends to"):
        load_rig(path)
    rig = _rig(tmp_path, port, sides=("right",))
    with open_device(rig.devices[0]) as dev:
        with pytest.raises(DeviceTimeoutError, match="nothing arrived on udp://.* within 0.3 s; is the OpenGo"):
            dev.identify(timeout_s=0.3)
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    busy = _rig(tmp_path, holder.getsockname()[1], sides=("left",))
    try:
        with pytest.raises(PortBusyError, match=r"insole_left: udp://.*: UDP port \d+ is in use"):
            open_device(busy.devices[0])
    finally:
        holder.close()


def test_lab_devices_probes_both_moticon_insoles(tmp_path, capsys):
    import argparse

    from treadlab.lab.commands import devices

    port = _free_udp_port()
    rig = _rig(tmp_path, port)
    with MoticonSim(("127.0.0.1", port), rate_hz=100, seed=2):
        code = devices.run(argparse.Namespace(rig=str(rig.path), simulate=False, line_insoles=False, seconds=0.5))
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    for side in ("left", "right"):
        head = [ln for ln in out if ln.startswith(f"insole_{side} (moticon on udp://127.0.0.1:{port})")]
        assert head and f"insole {side} 16 sensels" in head[0] and "layout insole16" in head[0]
    streamed = [ln for ln in out if ln.strip().startswith("streamed")]
    rates = [float(ln.split(" samples, ")[1].split("/s")[0]) for ln in streamed]
    assert len(streamed) == 2 and all(60 < r < 140 for r in rates) and all(" 0 errors" in ln for ln in streamed)
