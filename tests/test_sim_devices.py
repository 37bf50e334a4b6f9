"""Simulated devices: device logic with synthetic times, then real device processes on pseudo-terminals.

Known answers come from the simulator's own truth: its clock model, its truth file of (seq, true time) and the
gait model it draws values from.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import serial

from treadlab.drivers import protocol as p
from treadlab.drivers.sim.clock import DeviceClock, SampleSchedule, UsbDelivery
from treadlab.drivers.sim.device import (
    DeliveryParams,
    FaultParams,
    SimDeviceSpec,
    default_calibration,
    make_device,
)
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.drivers.sim.signals import make_gait
from treadlab.errors import ConfigError

S = 1_000_000_000
EPOCH = 10 * S


def _insole(name="insole_left", **kw) -> SimDeviceSpec:
    kw.setdefault("side", "left")
    kw.setdefault("layout", "insole16")
    kw.setdefault("drift_ppm", 80.0)
    kw.setdefault("offset_ticks", 5000)
    kw.setdefault("serial", "SIM-TEST-1")
    return SimDeviceSpec(name, **kw)


def _cmd(msg_type: int, body: bytes = b"") -> bytes:
    return p.encode_message(msg_type, body)


def _frames(stream: bytes, spec: SimDeviceSpec | None = None):
    dec = p.FrameDecoder()
    data, other = dec.feed(stream)
    return dec, data, other


# --------------------------------------------------------------------------------------------- time models


def test_device_clock_drift_and_offset_known_answer():
    clock = DeviceClock(1_000_000, drift_ppm=50.0, offset_ticks=1000, t_epoch_ns=EPOCH)
    assert int(clock.ticks_at(EPOCH)) == 1000
    assert int(clock.ticks_at(EPOCH + 10 * S)) == 1000 + 10_000_500  # 50 ppm fast over 10 s
    ticks = np.array([1000, 123_456, 10**10])
    back = clock.ticks_at(clock.true_ns_at(ticks))
    assert np.all(np.abs(back.astype(np.int64) - ticks) <= 1)


def test_schedule_is_absolute_whatever_the_block_sizes():
    clock = DeviceClock(1_000_000, drift_ppm=-30.0, t_epoch_ns=EPOCH)
    one = SampleSchedule.starting_after(clock, 750, EPOCH)
    ragged = SampleSchedule.starting_after(clock, 750, EPOCH)
    t_all, _ = one.next_block(EPOCH + 2 * S)
    parts = [ragged.next_block(EPOCH + int(x * S))[0] for x in np.sort(np.random.default_rng(0).uniform(0, 2, 37))]
    parts.append(ragged.next_block(EPOCH + 2 * S)[0])
    assert np.array_equal(np.concatenate(parts), t_all)
    assert len(t_all) in (1499, 1500)
    d = np.diff(t_all.astype(np.int64))
    assert set(np.unique(d)) <= {1333, 1334}
    assert int(t_all[750] - t_all[0]) == 1_000_000  # 750 samples = exactly one device second


def test_usb_delivery_frames_and_stalls():
    usb = UsbDelivery(1_000_000, 250_000, stall_rate_hz=50.0, stall_max_ms=20.0, rng=np.random.default_rng(1))
    assert usb.next_frame_ns(250_000) == 250_000 and usb.next_frame_ns(250_001) == 1_250_000
    sent = [usb.may_send(t) for t in range(0, 2 * S, 1_000_000)]
    assert 40 <= usb.stalls_n <= 160 and 0.3 < np.mean(sent) < 0.98


# --------------------------------------------------------------------------------------------- device logic


def test_binary_device_answers_every_command():
    spec = _insole(rates_hz=[100, 500, 1000], rate_hz=500)
    dev = make_device(spec, EPOCH)
    dev.power_up(EPOCH)
    t = EPOCH + S
    _, _, other = _frames(dev.receive(_cmd(p.IDENTIFY), t))
    assert [m for m, _ in other] == [p.INFO]
    info = p.parse_info(other[0][1])
    assert info == {"protocol": 1, "kind": "insole", "model": spec.model, "serial": "SIM-TEST-1",
                    "firmware": spec.firmware, "dtype": "u16", "adc_bits": 12, "rate_hz": 500,
                    "rates_hz": [100, 500, 1000], "clock_hz": 1_000_000, "side": "left", "sensels": 16,
                    "layout": "insole16"}
    _, _, other = _frames(dev.receive(_cmd(p.SET_RATE, struct.pack("<H", 333)), t))
    assert p.parse_nak(other[0][1])[:2] == (p.SET_RATE, p.NAK_UNSUPPORTED_RATE)
    _, _, other = _frames(dev.receive(_cmd(p.SET_RATE, b"\x01"), t))
    assert p.parse_nak(other[0][1])[:2] == (p.SET_RATE, p.NAK_BAD_ARGUMENT)
    _, _, other = _frames(dev.receive(_cmd(p.SET_RATE, struct.pack("<H", 1000)), t))
    assert other == [(p.ACK, bytes([p.SET_RATE]))]
    _, _, other = _frames(dev.receive(_cmd(p.GET_CALIBRATION), t))
    unit, gain, offset = p.parse_calibration(other[0][1])
    g_true, o_true = default_calibration(spec, np.random.default_rng([spec.seed, 1]))
    assert unit == "N" and np.array_equal(gain, g_true) and np.array_equal(offset, o_true)
    _, _, other = _frames(dev.receive(_cmd(p.PING, struct.pack("<Q", 987654321)), t))
    assert p.parse_pong(other[0][1]) == (987654321, int(dev.clock.ticks_at(t)))
    _, _, other = _frames(dev.receive(_cmd(0x99) + _cmd(p.DATA, b"12345678"), t))
    assert [p.parse_nak(b)[:2] for _, b in other] == [(0x99, p.NAK_UNKNOWN_COMMAND), (p.DATA, p.NAK_UNKNOWN_COMMAND)]
    assert dev.take(t + S) == b""  # stopped: no DATA
    _, _, other = _frames(dev.receive(_cmd(p.START), t))
    assert other[0] == (p.ACK, bytes([p.START])) and other[1][0] == p.LOG
    _, data, _ = _frames(dev.take(t + S // 2))
    seq, ticks, _ = p.decode_data(data, 16, "u16")
    assert len(seq) == 500 and np.all(np.diff(ticks.astype(np.int64)) == 1000)  # 1000 Hz on a 1 MHz clock


def test_stop_ack_is_last_and_rate_survives_stop_and_start():
    dev = make_device(_insole(rate_hz=500), EPOCH)
    dev.power_up(EPOCH)
    dev.receive(_cmd(p.SET_RATE, struct.pack("<H", 250)) + _cmd(p.START), EPOCH)
    out = dev.receive(_cmd(p.STOP), EPOCH + S)
    dec = p.FrameDecoder()
    data, other = dec.feed(out)
    assert len(data) == 250 and other == [(p.ACK, bytes([p.STOP]))]
    assert out.endswith(p.encode_ack(p.STOP))  # nothing after the ACK
    assert dev.take(EPOCH + 5 * S) == b""
    _, _, other = _frames(dev.receive(_cmd(p.IDENTIFY) + _cmd(p.START), EPOCH + 6 * S))
    assert p.parse_info(other[0][1])["rate_hz"] == 250
    _, data, _ = _frames(dev.take(EPOCH + 7 * S))
    seq, _, _ = p.decode_data(data, 16, "u16")
    assert seq[0] == 250 and len(seq) == 250  # seq continues across STOP/START


def test_rate_change_while_streaming_takes_effect_without_a_seq_gap():
    dev = make_device(_insole(rate_hz=500, drift_ppm=0.0, offset_ticks=0), EPOCH)
    dev.power_up(EPOCH)
    dev.receive(_cmd(p.START), EPOCH)
    first = dev.receive(_cmd(p.SET_RATE, struct.pack("<H", 100)), EPOCH + S)
    dec = p.FrameDecoder()
    data, other = dec.feed(first)
    assert other == [(p.ACK, bytes([p.SET_RATE]))] and first.endswith(p.encode_ack(p.SET_RATE))
    data += dec.feed(dev.take(EPOCH + 2 * S))[0]
    seq, ticks, _ = p.decode_data(data, 16, "u16")
    assert np.all(np.diff(seq.astype(np.int64)) == 1)
    steps = np.diff(ticks.astype(np.int64))
    assert np.all(steps[:499] == 2000) and np.all(steps[500:] == 10_000) and len(seq) == 500 + 100


def test_seq_wraps_and_truth_matches_the_clock_model():
    spec = _insole(seq_start=2**32 - 100, drift_ppm=-60.0)
    dev = make_device(spec, EPOCH)
    dev.power_up(EPOCH)
    dev.receive(_cmd(p.START), EPOCH)
    _, data, _ = _frames(dev.take(EPOCH + S))
    seq, ticks, _ = p.decode_data(data, 16, "u16")
    assert seq[0] == 2**32 - 100 and seq[99] == 2**32 - 1 and seq[100] == 0
    assert np.all(np.diff(seq.astype(np.int64)) % 2**32 == 1)
    truth = dev.pop_truth()
    assert np.array_equal(truth["seq"], seq)
    expect = dev.clock.ticks_at(truth["t_ns"]).astype(np.int64)
    assert np.all(np.abs(expect - ticks.astype(np.int64)) <= 1)
    # drift: 500 device-rate samples take 1 / (1 - 60 ppm) true seconds
    span_ns = truth["t_ns"][-1] - truth["t_ns"][0]
    assert span_ns == pytest.approx((len(seq) - 1) / 500 * 1e9 / (1 - 60e-6), abs=2)


def test_loss_and_corruption_show_in_the_decoder_and_the_seq():
    spec = _insole(faults=FaultParams(corrupt_rate=0.05, loss_rate=0.02), seed=4)
    dev = make_device(spec, EPOCH)
    dev.power_up(EPOCH)
    dev.receive(_cmd(p.START), EPOCH)
    stream = b"".join(dev.take(EPOCH + int(x * 0.016 * S)) for x in range(1, 251))  # 4 s in 16 ms blocks
    dec = p.FrameDecoder(data_size=p.data_message_size(16, "u16"))
    data, _ = dec.feed(stream)
    seq, _, _ = p.decode_data(data, 16, "u16")
    st = dev.stats
    assert st.samples_n == 2000 and st.lost_n > 10 and st.corrupted_n > 30
    assert dec.stats.dropped == st.corrupted_n
    assert len(seq) == st.samples_n - st.lost_n - st.corrupted_n
    assert int(np.sum(np.diff(seq.astype(np.int64)) - 1)) == st.lost_n + st.corrupted_n - (1999 - int(seq[-1]))
    assert np.array_equal(dev.pop_truth()["seq"], np.arange(2000))  # truth keeps every sample taken


def test_calibrated_values_match_the_gait_model():
    spec = _insole(layout="insole99", side="right")
    dev = make_device(spec, EPOCH)
    dev.power_up(EPOCH)
    dev.receive(_cmd(p.START), EPOCH)
    _, data, _ = _frames(dev.take(EPOCH + 3 * S))
    _, _, raw = p.decode_data(data, 99, "u16")
    t_ns = dev.pop_truth()["t_ns"]
    force = (dev.gain * (raw.astype(np.float32) - dev.offset)).sum(axis=1)
    truth = make_gait(None).vertical_force("right", (t_ns - EPOCH) / 1e9)
    stance = truth > 500
    assert stance.sum() > 200 and (truth < 1).sum() > 200
    assert np.median(np.abs(force[stance] - truth[stance]) / truth[stance]) < 0.02
    assert np.abs(force[truth < 1]).mean() < 30  # sensel noise only in swing

    mat = SimDeviceSpec("mat", kind="mat", rows=48, cols=112, pitch_mm=[8.47, 8.47], belt_axis="cols", rate_hz=120,
                        dtype="u8", adc_bits=8)
    dev = make_device(mat, EPOCH)
    dev.power_up(EPOCH)
    dev.receive(_cmd(p.START), EPOCH)
    _, data, _ = _frames(dev.take(EPOCH + 3 * S))
    _, _, raw = p.decode_data(data, 48 * 112, "u8")
    t_s = (dev.pop_truth()["t_ns"] - EPOCH) / 1e9
    both = make_gait(None).vertical_force("left", t_s) + make_gait(None).vertical_force("right", t_s)
    total = (dev.gain * (raw.astype(np.float32) - dev.offset)).sum(axis=1)
    loaded = both > 800
    assert loaded.sum() > 50
    assert np.median(np.abs(total[loaded] - both[loaded]) / both[loaded]) < 0.1


def test_line_device_output_parses_with_its_clock():
    spec = _insole(protocol="line", time_unit="us", decimals=2, line_ending="\r\n", rate_hz=200, drift_ppm=0.0,
                   offset_ticks=0)
    dev = make_device(spec, EPOCH)
    greeting = dev.greeting(EPOCH)  # power_up starts the stream; the greeting comes when the port opens
    dev.power_up(EPOCH)
    assert dev.greeting(EPOCH).startswith(b"# treadlab-sim") and greeting.endswith(b"\r\n")
    text = dev.take(EPOCH + 2 * S).decode("ascii")
    lines = text.split("\r\n")
    assert lines[-1] == ""
    table = np.array([[float(x) for x in line.split(",")] for line in lines[:-1]])
    assert table.shape == (400, 17)
    assert np.all(np.diff(table[:, 0]) == 5000)  # microseconds at 200 Hz
    assert all(len(x.split(".")[1]) == 2 for x in lines[0].split(",")[1:])
    assert dev.receive(b"START\n", EPOCH + 2 * S) == b""  # takes no commands


# --------------------------------------------------------------------------------------------- real processes


def _read_for(ser: serial.Serial, dec: p.FrameDecoder, seconds: float):
    """Read a port for ``seconds``: DATA raws with host arrival times, and other messages in order."""
    raws, hosts, other = [], [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        chunk = ser.read(ser.in_waiting or 1)
        now = time.monotonic_ns()
        data, msgs = dec.feed(chunk)
        raws += data
        hosts += [now] * len(data)
        other += msgs
    return raws, np.array(hosts, np.int64), other


def _answer(ser: serial.Serial, dec: p.FrameDecoder, command: bytes, want: int, timeout_s: float = 3.0,
            keep: list | None = None):
    """Send a command and return the body of its answer; DATA read on the way goes to ``keep``."""
    ser.write(command)
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        data, msgs = dec.feed(ser.read(ser.in_waiting or 1))
        if keep is not None:
            keep += data
        for t, body in msgs:
            if t == want:
                return body
    raise AssertionError(f"no {p.describe(want)} within {timeout_s} s")


def test_a_device_process_streams_in_real_time_over_a_pty(tmp_path):
    spec = _insole(layout="insole99", rate_hz=500, drift_ppm=80.0, offset_ticks=7_000_000)
    with SimulatedRig([spec], tmp_path) as rig:
        port = rig.ports["insole_left"]
        assert os.path.islink(port) and os.readlink(port).startswith("/dev/pts/")
        with serial.Serial(port, 921600, timeout=0.05) as ser:
            dec = p.FrameDecoder(data_size=p.data_message_size(99, "u16"))
            info = p.parse_info(_answer(ser, dec, _cmd(p.IDENTIFY), p.INFO))
            assert info["serial"] == "SIM-TEST-1" and info["sensels"] == 99
            assert _answer(ser, dec, _cmd(p.SET_RATE, struct.pack("<H", 1000)), p.ACK) == bytes([p.SET_RATE])
            t_send = time.monotonic_ns()
            host_echo, ticks_pong = p.parse_pong(_answer(ser, dec, _cmd(p.PING, struct.pack("<Q", t_send)), p.PONG))
            t_recv = time.monotonic_ns()
            clock = DeviceClock(1_000_000, 80.0, 7_000_000, rig.t_epoch_ns)
            assert host_echo == t_send
            assert int(clock.ticks_at(t_send)) <= ticks_pong <= int(clock.ticks_at(t_recv))
            ser.write(_cmd(p.START))
            raws, hosts, _ = _read_for(ser, dec, 2.0)
            ser.write(_cmd(p.STOP))
            buf = b""
            end = time.monotonic() + 0.6
            while time.monotonic() < end:
                buf += ser.read(ser.in_waiting or 1)
            ack = p.encode_ack(p.STOP)
            assert buf.count(ack) == 1
            cut = buf.index(ack) + len(ack)
            tail, msgs = dec.feed(buf[:cut])
            assert msgs == [(p.ACK, bytes([p.STOP]))]
            assert buf[cut:] == b""  # nothing at all after STOP's ACK
        time.sleep(0.4)  # let the truth file catch up (flushed every 0.25 s)
        seq_true, t_true = rig.truth("insole_left")
    seq, ticks, _ = p.decode_data(raws + tail, 99, "u16")
    assert len(seq) > 1500 and np.all(np.diff(seq.astype(np.int64)) == 1) and dec.stats.dropped == 0
    assert len(seq_true) == len(seq)  # STOP ended sampling: every sample taken was sent, none after
    t_of = dict(zip(seq_true.tolist(), t_true.tolist()))
    t_s = np.array([t_of[s] for s in seq.tolist()], np.int64)
    # the device clock follows the model, and the drift shows: 80 ppm fast
    assert np.all(np.abs(clock.ticks_at(t_s).astype(np.int64) - ticks.astype(np.int64)) <= 1)
    slope = np.polyfit((t_s - t_s[0]) / 1e9, (ticks - ticks[0]).astype(np.float64), 1)[0]
    assert slope == pytest.approx(1_000_080, abs=2)
    # achieved rate in true time within 1 % (it is exactly 1000 Hz of device time)
    assert (len(seq) - 1) / ((t_s[-1] - t_s[0]) / 1e9) == pytest.approx(1000 * (1 + 80e-6), rel=0.01)
    # delivered after being taken, most of them promptly (USB frames); generous for a loaded machine
    delay_ms = (hosts[: len(raws)] - t_s[: len(raws)]) / 1e6
    assert delay_ms.min() >= 0
    assert np.median(delay_ms) < 5.0


def test_faults_garbage_corruption_loss_over_a_pty(tmp_path):
    spec = _insole(rate_hz=1000, faults=FaultParams(garbage_at_start=64, corrupt_rate=0.03), seed=3,
                   delivery=DeliveryParams(stall_rate_hz=2.0))
    with SimulatedRig([spec], tmp_path) as rig, serial.Serial(rig.ports["insole_left"], timeout=0.05) as ser:
        dec = p.FrameDecoder(data_size=p.data_message_size(16, "u16"))
        _answer(ser, dec, _cmd(p.IDENTIFY), p.INFO)
        assert dec.stats.dropped >= 1 and dec.stats.bytes > 64  # garbage came before the first message
        garbage_drops = dec.stats.dropped
        ser.write(_cmd(p.START))
        raws, _, _ = _read_for(ser, dec, 1.0)
        rig.set_fault("insole_left", corrupt_rate=0.0, loss_rate=0.05)
        more, _, msgs = _read_for(ser, dec, 1.0)
        assert any(t == p.LOG and b"loss_rate" in body for t, body in msgs)  # firmware-style warning
        ser.write(_cmd(p.STOP))
        tail, _, _ = _read_for(ser, dec, 0.5)
        stats = rig.stats("insole_left")
    seq, _, _ = p.decode_data(raws + more + tail, 16, "u16")
    assert stats["corrupted_n"] > 5 and stats["lost_n"] > 10 and stats["stalls_n"] >= 1
    assert dec.stats.dropped - garbage_drops == stats["corrupted_n"]
    assert len(seq) == stats["samples_n"] - stats["corrupted_n"] - stats["lost_n"]
    gaps = np.diff(seq.astype(np.int64)) - 1
    assert gaps.min() == 0 and gaps.sum() == stats["corrupted_n"] + stats["lost_n"]


def test_a_host_that_does_not_read_gets_an_overrun_log_and_a_seq_gap(tmp_path):
    spec = _insole(layout="insole960", dtype="u8", adc_bits=8, rate_hz=1000, delivery=DeliveryParams(fifo_bytes=8192))
    with SimulatedRig([spec], tmp_path) as rig, serial.Serial(rig.ports["insole_left"], timeout=0.05) as ser:
        dec = p.FrameDecoder(data_size=p.data_message_size(960, "u8"))
        _answer(ser, dec, _cmd(p.START), p.ACK)
        time.sleep(1.0)  # ~1 MB/s into a pty buffer of a few kB and an 8 kB firmware FIFO
        raws, _, msgs = _read_for(ser, dec, 0.5)
        ser.write(_cmd(p.STOP))
        stats = rig.stats("insole_left")
    logs = [p.parse_log(body) for t, body in msgs if t == p.LOG]
    assert any(level == 30 and "overrun" in text for level, text in logs), logs
    seq, _, _ = p.decode_data(raws, 960, "u8")
    assert stats["overrun_n"] > 100 and np.max(np.diff(seq.astype(np.int64))) > 1
    assert dec.stats.dropped == 0  # whole messages were dropped, never half of one


def test_unplug_and_replug_at_the_same_path_with_the_same_serial(tmp_path):
    spec = _insole(rate_hz=500, seq_start=1000)
    with SimulatedRig([spec], tmp_path) as rig:
        port = rig.ports["insole_left"]
        ser = serial.Serial(port, timeout=0.05)
        dec = p.FrameDecoder()
        _answer(ser, dec, _cmd(p.START), p.ACK)
        _read_for(ser, dec, 0.3)
        rig.unplug("insole_left", 0.8)
        with pytest.raises((serial.SerialException, OSError)):  # EIO from in_waiting, or "returned no data"
            _read_for(ser, dec, 2.0)
        ser.close()
        assert rig.wait_ready("insole_left", 10.0) == port
        with serial.Serial(port, timeout=0.05) as ser2:
            dec2 = p.FrameDecoder()
            info = p.parse_info(_answer(ser2, dec2, _cmd(p.IDENTIFY), p.INFO))
            assert info["serial"] == "SIM-TEST-1"
            raws, _, _ = _read_for(ser2, dec2, 0.4)
            assert raws == []  # stopped after power-up
            raws = []
            _answer(ser2, dec2, _cmd(p.START), p.ACK, keep=raws)
            raws += _read_for(ser2, dec2, 0.5)[0]
        seq, _, _ = p.decode_data(raws, 16, "u16")
        assert seq[0] == 1000  # seq restarts at power-up
        assert rig.stats("insole_left")["power_ups_n"] == 2


def test_line_device_process_streams_lines_from_the_start(tmp_path):
    spec = _insole(protocol="line", time_unit="ms", decimals=1, rate_hz=100, faults=FaultParams(garbage_at_start=20))
    with SimulatedRig([spec], tmp_path) as rig, serial.Serial(rig.ports["insole_left"], timeout=0.05) as ser:
        buf = b""
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            buf += ser.read(ser.in_waiting or 1)
    idx = buf.index(b"# treadlab-sim")
    assert any(ch not in b"0123456789,.-\r\n" for ch in buf[idx - 20:idx])  # garbage before the greeting
    lines = buf.split(b"\n")[1:-1]  # the first may be partial
    comments = [ln for ln in lines if b"# treadlab-sim" in ln]
    assert len(comments) == 1
    rows = lines[lines.index(comments[0]) + 1:]
    table = np.array([[float(x) for x in ln.split(b",")] for ln in rows])
    assert table.shape[1] == 17 and len(table) > 80
    assert np.all(np.diff(table[:, 0]) == 10)


def _serve(tmp_path: Path, name: str) -> subprocess.Popen:
    spec = _insole(name)
    path = tmp_path / f"{name}.json"
    path.write_text(spec.to_json())
    return subprocess.Popen([sys.executable, "-m", "treadlab.drivers.sim.serve", "--spec", str(path),
                             "--workdir", str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_device_process_exits_on_sigterm_and_on_closed_stdin(tmp_path):
    # (``quit`` is how every SimulatedRig stops its processes, exit codes checked, in the other tests)
    procs = {how: _serve(tmp_path, how) for how in ("sigterm", "eof")}  # start together, then wait
    for proc in procs.values():
        assert proc.stdout.readline().startswith("READY ")
    procs["sigterm"].send_signal(signal.SIGTERM)
    procs["eof"].stdin.close()
    for how, proc in procs.items():
        assert proc.wait(10) == 0, how
        assert not (tmp_path / how).exists()
        if not proc.stdin.closed:
            proc.stdin.close()
        proc.stdout.close()


def test_rig_file_loads_and_the_drivers_read_every_device(tmp_path):
    from treadlab.drivers import open_device
    from treadlab.lab.rig import load_rig

    with SimulatedRig.default(tmp_path, seed=2) as rig:
        rig_file = load_rig(rig.write_rig(tmp_path / "rig.toml"))
        assert [d.name for d in rig_file.devices] == ["insole_left", "insole_right", "mat"]
        assert rig_file.session["body_mass_kg"] == 70.0
        shapes = {}
        for cfg in rig_file.devices:
            with open_device(cfg) as dev:
                dev.identify()
                dev.start()
                batch = None
                end = time.monotonic() + 5.0
                while batch is None and time.monotonic() < end:
                    batch = dev.read()
                dev.stop()
                shapes[cfg.name] = (dev.shape, batch.values.shape[1], dev.dtype)
        drifts = {s.name: s.drift_ppm for s in rig.devices}
    assert shapes["insole_left"][:2] == ((99,), 99) and shapes["mat"][:2] == ((48, 112), 5376)
    assert len(set(drifts.values())) == 3 and all(20 <= abs(d) <= 100 for d in drifts.values())


def test_lab_simulate_runs_for_given_seconds_and_cleans_up(tmp_path):
    rig_out = tmp_path / "rig.toml"
    work = tmp_path / "work"
    out = subprocess.run(
        [sys.executable, "-m", "treadlab.lab.cli", "simulate", "--seconds", "1.5", "--rig-out", str(rig_out),
         "--workdir", str(work), "--cadence", "180", "--loss-rate", "0.01", "--line-insoles",
         "--unplug", "mat:0.2:0.3"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert str(work / "insole_left") in out.stdout and str(work / "mat") in out.stdout
    assert "mat: unplugged" in out.stdout and "mat: plugged in again" in out.stdout
    rig = tomllib.loads(rig_out.read_text())
    assert [d["protocol"] for d in rig["device"]] == ["line", "line", "binary"]
    line = rig["device"][0]
    assert line["time_unit"] == "ms" and line["sensels"] == 16 and line["layout"] == "insole16"
    assert line["calibration"] == {"unit": "N", "gain": 1.0, "offset": 0.0}  # line insoles send newtons
    steps = pd.read_csv(work / "insole_left.steps.csv")  # the first device writes the steps
    assert {"foot", "ic_s", "ic_ns", "to_ns", "strike_class"} <= set(steps.columns)
    assert np.median(np.diff(steps["ic_s"])) == pytest.approx(60 / 180, rel=0.05)  # --cadence 180 reached the model
    assert not (work / "mat").exists()  # ports removed: every device process quit
    leftovers = [pr for pr in psutil.process_iter(["cmdline"]) if str(work) in " ".join(pr.info["cmdline"] or [])]
    assert leftovers == []


@pytest.mark.parametrize("argv,word", [
    (["--unplug", "nosuchdevice:1:1"], "nosuchdevice"),
    (["--unplug", "mat:1"], "NAME:AT_S:FOR_S"),
    (["--cadence", "900"], "cadence_spm"),
    (["--loss-rate", "1.5"], "--loss-rate"),
])
def test_lab_simulate_reports_a_bad_option_in_one_line(tmp_path, capsys, argv, word):
    from treadlab.lab.cli import main

    assert main(["simulate", "--seconds", "1", "--workdir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and word in err and err.startswith("lab simulate: error:")


def test_lab_simulate_stops_cleanly_on_sigterm(tmp_path):
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "treadlab.lab.cli", "simulate", "--workdir", str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("simulating"):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        assert "until Ctrl-C" in lines[-1] and (work / "insole_left").is_symlink()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert not (work / "insole_left").exists() and not (work / "mat").exists()


@pytest.mark.slow
def test_stress_rig_soak_keeps_real_time_without_gaps(tmp_path):
    """20 s of the stress rig read by one select loop: no gaps, full rate, modest CPU (needs a quiet machine)."""
    with SimulatedRig.stress(tmp_path) as rig:
        sers = {s.name: serial.Serial(rig.ports[s.name], timeout=0.05) for s in rig.devices}
        decs = {name: p.FrameDecoder() for name in sers}
        try:
            for name, ser in sers.items():
                _answer(ser, decs[name], _cmd(p.START), p.ACK)
            procs = {name: psutil.Process(c.proc.pid) for name, c in rig._children.items()}
            cpu0 = {name: sum(pr.cpu_times()[:2]) for name, pr in procs.items()}
            raws = {name: [] for name in sers}
            t0 = time.monotonic()
            by_fd = {ser.fileno(): name for name, ser in sers.items()}
            while time.monotonic() - t0 < 20.0:
                for fd in select.select(list(by_fd), [], [], 0.05)[0]:
                    ser = sers[by_fd[fd]]
                    raws[by_fd[fd]] += decs[by_fd[fd]].feed(ser.read(ser.in_waiting or 1))[0]
            elapsed = time.monotonic() - t0
            cpu = {name: (sum(pr.cpu_times()[:2]) - cpu0[name]) / elapsed for name, pr in procs.items()}
        finally:
            for ser in sers.values():
                ser.close()
    for spec in rig.devices:
        n = spec.n_values
        seq, _, _ = p.decode_data(raws[spec.name], n, spec.dtype)
        assert np.all(np.diff(seq.astype(np.int64)) == 1), spec.name
        assert len(seq) / elapsed == pytest.approx(spec.rate_hz, rel=0.02), spec.name
        assert cpu[spec.name] < 0.3, (spec.name, cpu)


def test_a_device_process_that_dies_at_start_fails_start_with_its_log(tmp_path):
    from types import SimpleNamespace

    rig = SimulatedRig([_insole()], tmp_path, runner=SimpleNamespace(bogus_parameter=1))
    with pytest.raises(RuntimeError, match=r"(?s)waited for 'READY' but exited with code 1.*bogus_parameter"):
        rig.start(timeout_s=60)
    assert rig.exited() == {} and not (tmp_path / "insole_left").exists()


def test_spec_validation_names_the_problem():
    with pytest.raises(ConfigError, match="unknown layout 'insole77'"):
        SimDeviceSpec("x", side="left", layout="insole77")
    with pytest.raises(ValueError, match="clock_hz must be positive"):
        _insole(clock_hz=0)
    with pytest.raises(ValueError, match="a mat needs rows and cols"):
        SimDeviceSpec("m", kind="mat")
    spec = _insole(layout="insole960", faults=FaultParams(loss_rate=0.5), calibration={"unit": "N", "gain": 0.5})
    back = SimDeviceSpec.from_json(spec.to_json())
    assert back == spec and back.n_values == 960 and isinstance(back.faults, FaultParams)


def test_a_mat_losing_every_sample_of_a_block_keeps_running_and_a_self_powered_one_drops_while_unplugged():
    spec = SimDeviceSpec("mat", kind="mat", rows=4, cols=6, rate_hz=120, rates_hz=[120], dtype="u8", adc_bits=8,
                         faults=FaultParams(loss_rate=1.0))
    dev = make_device(spec, EPOCH)
    dev.power_up(EPOCH)
    dev.receive(_cmd(p.START), EPOCH)
    assert dev.take(EPOCH + S // 10) == b"" and dev.stats.lost_n >= 11  # every sample lost: no DATA, no error
    dev.set_fault("loss_rate", 0.0)
    # a cable out: taken (ground truth) and dropped (offline), not sent
    n_drop = dev.drop(EPOCH + S // 5)
    off, truth = dev.pop_offline(), dev.pop_truth()
    assert n_drop == len(off) >= 11 and np.array_equal(off, truth[-len(off):]) and dev.stats.offline_n == n_drop
    _, data, _ = _frames(dev.take(EPOCH + 3 * S // 10))
    seq, _, _ = p.decode_data(data, 24, "u8")
    assert int(seq[0]) == int(off["seq"][-1]) + 1  # numbering goes on after the drop
