"""The reference firmware's host build (``refdev``) through the real driver path: a real subprocess on a
pseudo-terminal, pyserial, :class:`treadlab.drivers.BinaryDevice`. Every value is checked against the Python twin
of the firmware's synthetic signal; timing is judged by device ticks."""

from __future__ import annotations

import json
import os
import signal
import struct
import time

import numpy as np
import pytest
import serial

from tests.firmware_support import (
    RefDev,
    host_build,
    imu_values,
    insole_values,
    mat_values,
    refdev_calibration,
)
from treadlab.drivers import DeviceConfig, open_device
from treadlab.drivers import protocol as p
from treadlab.drivers.layouts import load_layout
from treadlab.errors import CommandRejectedError


@pytest.fixture(scope="session")
def firmware_build(tmp_path_factory):
    """``refdev`` and ``tl_cobs_tool``, built with gcc once per session."""
    return host_build(tmp_path_factory)


def _refdev(build, tmp_path, *args):
    return RefDev(build / "refdev", tmp_path / "dev", *args)


def _open(path, **cfg):
    dev = open_device(DeviceConfig(name="fw", port=str(path), **cfg))
    dev.identify()
    return dev


def _collect(dev, seconds: float):
    """Read for ``seconds``; returns (seq, t, values) concatenated."""
    seqs, ts, vals = [], [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        b = dev.read(0.05)
        if b is not None:
            seqs.append(b.seq)
            ts.append(b.device_time)
            vals.append(b.values)
    assert seqs, "no DATA"
    return np.concatenate(seqs), np.concatenate(ts), np.concatenate(vals)


def test_whole_command_set_on_an_insole(firmware_build, tmp_path):
    with _refdev(firmware_build, tmp_path, "--side", "right", "--sensels", "16", "--rate", "200",
                 "--serial", "FW-R1") as rd:
        dev = _open(rd.link, kind="insole", side="right", sensels=16, serial="FW-R1")
        try:
            assert dev.info["rate_hz"] == 200 and dev.info["clock_hz"] == 1_000_000
            assert dev.info["layout"] == "insole16" and dev.layout is not None
            assert dev.info["rates_hz"] == [50, 100, 200, 250, 500, 1000]
            dev.set_rate(500)
            assert _open_info(dev)["rate_hz"] == 500  # INFO reports the rate in force
            with pytest.raises(CommandRejectedError, match="333 Hz"):
                dev.set_rate(333)
            cal = dev.get_calibration()
            gain, offset = refdev_calibration(16)
            assert cal.unit == "N" and np.array_equal(cal.gain, gain) and np.array_equal(cal.offset, offset)
            ping = dev.ping()
            assert ping.host_send_ns <= ping.host_recv_ns and ping.device_ticks > 0
            dev.start()
            seq, t, values = _collect(dev, 1.0)
            dev.stop()
            while dev.read(0.1) is not None:  # DATA sent before STOP's ACK
                pass
            assert dev.read(0.3) is None  # nothing after the ACK of STOP
            assert np.all(np.diff(seq.astype(np.int64)) == 1)
            assert np.all(np.diff(t.astype(np.int64)) == 2000)  # 500 Hz on a 1 MHz clock
            assert np.array_equal(values, insole_values(t, 1_000_000, 16, 12, right=True))
            assert values.max() > 3000  # the stance peak is there
            # seq and t continue across STOP and START
            dev.start()
            seq2, t2, _ = _collect(dev, 0.3)
            dev.stop()
            assert seq2[0] > seq[-1] and t2[0] > t[-1]
        finally:
            dev.close()
        assert rd.stop() == 0


def _open_info(dev) -> dict:
    body = dev._command(p.IDENTIFY, b"", p.INFO, 1.0)
    return p.parse_info(body)


def test_two_seconds_at_1khz_without_a_gap(firmware_build, tmp_path):
    with _refdev(firmware_build, tmp_path, "--rate", "1000", "--sensels", "99") as rd:
        dev = _open(rd.link)
        try:
            dev.start()
            seq, t, values = _collect(dev, 2.2)
            dev.stop()
        finally:
            dev.close()
        assert rd.stop() == 0
    span_s = (int(t[-1]) - int(t[0])) / 1e6
    assert span_s >= 2.0, f"only {span_s:.2f} s of device time"
    assert np.all(np.diff(seq.astype(np.int64)) == 1), "sequence gap"
    assert len(seq) == round(span_s * 1000) + 1
    assert dev.stats.errors == 0 and dev.stats.lost_samples == 0
    assert np.array_equal(values, insole_values(t, 1_000_000, 99, 12))


def test_junk_and_corrupted_frames_then_every_ping_is_answered(firmware_build, tmp_path):
    rng = np.random.default_rng(3)
    with _refdev(firmware_build, tmp_path) as rd:
        dev = _open(rd.link)
        try:
            good = p.encode_message(p.IDENTIFY)
            for i in range(30):
                junk = rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
                corrupt = bytearray(good)
                corrupt[int(rng.integers(1, len(good) - 1))] ^= 1 << int(rng.integers(0, 8))
                long_frame = p.encode_message(p.PING, bytes(200))  # longer than the device's command buffer
                dev.port.write(junk + bytes(corrupt) + (long_frame if i % 10 == 0 else b"") + b"\x00")
                res = dev.ping()
                assert res.device_ticks > 0
            info = _open_info(dev)
            logs = [text for _, _, text in dev.drain_logs()]
        finally:
            dev.close()
        assert rd.stop() == 0
    assert info["rx_bad_frames"] >= 30 and info["rx_oversize"] >= 3
    assert any("longer than the 32-byte command buffer" in text for text in logs)


def test_an_info_of_more_than_1_kb_arrives_intact(firmware_build, tmp_path):
    lay = load_layout("insole99")
    layout = {"foot_length_mm": float(lay.foot_length_mm),
              "positions_mm": np.round(np.asarray(lay.positions_mm, float), 2).tolist(),
              "areas_mm2": np.round(np.asarray(lay.areas_mm2, float), 2).tolist()}
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    with _refdev(firmware_build, tmp_path, "--sensels", "99", "--layout-file", tmp_path / "layout.json") as rd:
        dev = open_device(DeviceConfig(name="fw", port=str(rd.link)))
        try:
            dev.port.write(p.encode_message(p.IDENTIFY))
            body = dev._command(p.IDENTIFY, b"", p.INFO, 2.0)
            dev.identify()
        finally:
            dev.close()
        assert rd.stop() == 0
    assert len(body) > 1024
    assert dev.info["layout"] == layout
    assert np.allclose(dev.layout["positions_mm"], layout["positions_mm"])


def test_an_info_too_long_for_any_host_is_refused_with_a_reason(firmware_build, tmp_path):
    (tmp_path / "huge.json").write_text(json.dumps({"foot_length_mm": 260, "note": "x" * 300_000}))
    with _refdev(firmware_build, tmp_path, "--layout-file", tmp_path / "huge.json") as rd:
        dev = open_device(DeviceConfig(name="fw", port=str(rd.link)))
        try:
            with pytest.raises(CommandRejectedError, match="exceeds the longest frame"):
                dev.identify()
        finally:
            dev.close()
        assert rd.stop() == 0


def test_unknown_commands_and_bad_bodies_get_naks(firmware_build, tmp_path):
    with _refdev(firmware_build, tmp_path) as rd:
        dev = _open(rd.link)
        try:
            with pytest.raises(CommandRejectedError, match="unknown command"):
                dev._command(0x99, b"", p.ACK, 1.0)
            with pytest.raises(CommandRejectedError, match="bad argument"):
                dev._command(p.START, b"\x01", p.ACK, 1.0)
            with pytest.raises(CommandRejectedError, match="bad argument"):
                dev._command(p.SET_RATE, b"\x01", p.ACK, 1.0)
        finally:
            dev.close()
        assert rd.stop() == 0


def test_a_mat_streams_its_frames(firmware_build, tmp_path):
    with _refdev(firmware_build, tmp_path, "--kind", "mat", "--rows", "24", "--cols", "40", "--rate", "100",
                 "--dtype", "u8") as rd:
        dev = _open(rd.link, kind="mat")
        try:
            assert dev.shape == (24, 40) and dev.info["pitch_mm"] == [8.5, 8.5]
            assert dev.info["belt_axis"] == "rows" and dev.info["dtype"] == "u8"
            assert dev.get_calibration().unit == "kPa"
            dev.start()
            seq, t, values = _collect(dev, 0.6)
            dev.stop()
        finally:
            dev.close()
        assert rd.stop() == 0
    assert np.all(np.diff(seq.astype(np.int64)) == 1)
    assert np.array_equal(values.reshape(-1, 24, 40), mat_values(t, 1_000_000, 24, 40, 8))


def test_an_imu_speaks_the_issue_14_wire_contract(firmware_build, tmp_path):
    """kind imu: INFO keys, CALIBRATION unit 2 (one gain/offset per channel), DATA of i16 per channel."""
    channels = ["ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz"]
    with _refdev(firmware_build, tmp_path, "--kind", "imu", "--channels", ",".join(channels), "--placement",
                 "tibia_left", "--rate", "500") as rd:
        port = serial.Serial(str(rd.link), timeout=0.05)
        dec = p.FrameDecoder()
        try:
            info = p.parse_info(_ask(port, dec, p.IDENTIFY, b"", p.INFO))
            cal = _ask(port, dec, p.GET_CALIBRATION, b"", p.CALIBRATION)
            _ask(port, dec, p.START, b"", p.ACK)
            raws = []
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                raws += dec.feed(port.read(port.in_waiting or 1))[0]
            _ask(port, dec, p.STOP, b"", p.ACK)
        finally:
            port.close()
        assert rd.stop() == 0
    assert info["kind"] == "imu" and info["dtype"] == "i16" and info["channels"] == channels
    assert info["placement"] == "tibia_left"
    assert (info["range_g"], info["range_dps"], info["range_ut"]) == (16, 2000, 4900)
    unit, n = struct.unpack_from("<BH", cal)
    pairs = np.frombuffer(cal, "<f4", offset=3).reshape(n, 2)
    assert unit == 2 and n == 9
    assert np.allclose(pairs[:, 0], [16 / 32768] * 3 + [2000 / 32768] * 3 + [4900 / 32768] * 3)
    rec = np.frombuffer(b"".join(raws), np.dtype([("type", "u1"), ("seq", "<u4"), ("t", "<u8"),
                                                   ("v", "<i2", (9,)), ("crc", "<u4")]))
    assert len(rec) > 100 and np.all(np.diff(rec["seq"].astype(np.int64)) == 1)
    assert np.array_equal(rec["v"], imu_values(rec["t"], 1_000_000, channels))
    assert rec["v"][:, 2].mean() > 1500  # about 1 g on z (2048 counts at 16 g full scale)


def _ask(port, dec, command, body, answer):
    port.write(p.encode_message(command, body))
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        for msg_type, reply in dec.feed(port.read(port.in_waiting or 1))[1]:
            if msg_type == answer:
                return reply
    raise AssertionError(f"no {p.describe(answer)}")


def test_a_file_of_samples_is_replayed_in_order(firmware_build, tmp_path):
    rng = np.random.default_rng(9)
    rows = rng.integers(0, 4096, (37, 8))
    (tmp_path / "s.csv").write_text("# eight sensels\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    with _refdev(firmware_build, tmp_path, "--sensels", "8", "--samples", tmp_path / "s.csv", "--rate", "250") as rd:
        dev = _open(rd.link)
        try:
            dev.start()
            seq, _, values = _collect(dev, 0.6)
            dev.stop()
        finally:
            dev.close()
        assert rd.stop() == 0
    assert len(seq) > 100
    assert np.array_equal(values, rows[seq % 37])


def test_samples_a_late_device_cannot_send_are_a_gap_and_a_log(firmware_build, tmp_path):
    with _refdev(firmware_build, tmp_path, "--rate", "1000", "--max-burst", "20") as rd:
        dev = _open(rd.link)
        try:
            dev.start()
            _collect(dev, 0.2)
            os.kill(rd.proc.pid, signal.SIGSTOP)  # the device is late by 0.4 s
            time.sleep(0.4)
            os.kill(rd.proc.pid, signal.SIGCONT)
            seq, t, _ = _collect(dev, 0.3)
            dev.stop()
            logs = [text for _, _, text in dev.drain_logs()]
            info = _open_info(dev)
        finally:
            dev.close()
        assert rd.stop() == 0
    assert dev.stats.lost_samples >= 300 and info["skipped_samples"] == dev.stats.lost_samples
    assert any(text.startswith("skipped ") for text in logs)


def test_seconds_ends_the_device_by_itself_and_bad_options_are_one_line(firmware_build, tmp_path):
    with _refdev(firmware_build, tmp_path, "--seconds", "0.3") as rd:
        rd.proc.wait(10)
        assert rd.stop() == 0
        assert not rd.link.exists()
    with pytest.raises(AssertionError, match="--kind must be insole, mat or imu"):
        with _refdev(firmware_build, tmp_path, "--kind", "shoe"):
            pass
