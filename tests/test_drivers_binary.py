"""BinaryDevice through real pseudo-terminals against protocol v1 device fakes (tests/fake_device.py)."""

from __future__ import annotations

import dataclasses
import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.fake_device import FakeSpec, PtyFake, expected_values
from treadlab.drivers import BinaryDevice, DeviceConfig, open_device
from treadlab.drivers import protocol as p
from treadlab.drivers.common import DeviceStats, SeqTracker
from treadlab.errors import (
    CommandRejectedError,
    DeviceDisconnectedError,
    DeviceMismatchError,
    DeviceTimeoutError,
    ProtocolError,
)
from treadlab.lab.rig import load_rig


def _collect(dev, n_min: int, timeout_s: float = 5.0) -> list:
    batches, n = [], 0
    deadline = time.monotonic() + timeout_s
    while n < n_min and time.monotonic() < deadline:
        b = dev.read(0.05)
        if b is not None:
            batches.append(b)
            n += len(b)
    return batches


def _cat(batches):
    return (np.concatenate([b.seq for b in batches]), np.concatenate([b.device_time for b in batches]),
            np.concatenate([b.values for b in batches]), np.concatenate([b.host_time_ns for b in batches]))


def test_identify_stream_and_values_are_exact():
    spec = FakeSpec(sensels=16, dtype="u8", rate_hz=500)
    with PtyFake(spec) as fake:
        cfg = DeviceConfig(name="insole_left", port=fake.path, kind="insole", side="left", sensels=16,
                           serial="FAKE-0001")
        with open_device(cfg) as dev:
            assert isinstance(dev, BinaryDevice)
            info = dev.identify()
            assert info["serial"] == "FAKE-0001" and dev.kind == "insole" and dev.side == "left"
            assert dev.shape == (16,) and dev.n_values == 16 and dev.dtype == np.uint8
            assert dev.clock_hz == 1_000_000 and dev.rate_hz == 500
            cal = dev.get_calibration()
            assert cal.unit == "N" and np.allclose(cal.gain, 0.5) and np.array_equal(cal.offset, np.arange(16))
            t_before = time.monotonic_ns()
            dev.start()
            batches = _collect(dev, 200)
            dev.stop()
            rest = _collect(dev, 10**9, timeout_s=0.3)  # whatever came before the STOP's ACK
            seq, t, vals, host = _cat(batches + rest)
            assert len(seq) >= 200
            assert np.array_equal(seq, np.arange(len(seq)))
            assert np.array_equal(vals, expected_values(seq, 16, "u8")) and vals.dtype == np.uint8
            assert np.all(np.diff(t.astype(np.int64)) == 2000)  # 500 Hz at 1 MHz ticks
            assert host.dtype == np.int64 and np.all(np.diff(host) >= 0) and host[0] >= t_before
            assert dev.stats.seq_gaps == 0 and dev.stats.errors == 0 and dev.stats.samples == len(seq)
            logs = dev.drain_logs()
            assert [lv_text[1:] for lv_text in logs] == [(20, "started")] and dev.drain_logs() == []
            assert dev.read(0.1) is None  # stopped: nothing more


def test_mat_frames_u16_are_reshaped_by_the_caller_with_shape():
    spec = FakeSpec(kind="mat", rows=12, cols=20, dtype="u16", rate_hz=100, rates_hz=(100,))
    with PtyFake(spec) as fake, open_device(DeviceConfig(name="mat", port=fake.path, kind="mat")) as dev:
        dev.identify()
        assert dev.shape == (12, 20) and dev.n_values == 240 and dev.layout is None
        dev.start()
        seq, _, vals, _ = _cat(_collect(dev, 20))
        dev.stop()
        assert vals.dtype == np.dtype("<u2") and vals.shape[1] == 240
        assert np.array_equal(vals, expected_values(seq, 240, "u16"))
        frames = vals.reshape(-1, *dev.shape)
        assert frames.shape[1:] == (12, 20)


def test_data_arriving_during_commands_is_kept_pending_not_dropped():
    with PtyFake(FakeSpec(rate_hz=1000)) as fake, open_device(DeviceConfig(name="l", port=fake.path)) as dev:
        dev.identify()
        dev.start()
        time.sleep(0.2)  # DATA piles up in the port
        results = [dev.ping() for _ in range(3)]  # commands pump the port meanwhile
        dev.get_calibration()
        assert all(r.rtt_ns > 0 and r.host_recv_ns >= r.host_send_ns for r in results)
        assert all(r.device_ticks > 0 for r in results)
        sent = dev.send_ping()
        batches = _collect(dev, 400)
        dev.stop()
        batches += _collect(dev, 10**9, timeout_s=0.3)
        seq = np.concatenate([b.seq for b in batches])
        assert seq[0] == 0 and np.array_equal(seq, np.arange(len(seq)))  # nothing lost around the commands
        pongs = dev.drain_pongs()
        assert [x.host_send_ns for x in pongs] == [sent]


def test_seq_wrap_and_gaps_are_counted_across_batches():
    spec = FakeSpec(rate_hz=1000, start_seq=2**32 - 150, loss_every=50)
    with PtyFake(spec) as fake, open_device(DeviceConfig(name="l", port=fake.path)) as dev:
        dev.identify()
        dev.start()
        batches = _collect(dev, 300)
        dev.stop()
        batches += _collect(dev, 10**9, timeout_s=0.3)
    seq = np.concatenate([b.seq for b in batches]).astype(np.int64)
    assert seq.min() < 100 and seq.max() > 2**32 - 100  # the stream wrapped
    steps = np.diff(seq) % 2**32
    assert dev.stats.seq_gaps == int(np.count_nonzero(steps != 1)) > 0
    assert dev.stats.lost_samples == int(np.sum(steps - 1))


def test_seq_tracker_known_answers():
    st, tr = DeviceStats(), SeqTracker()
    tr.update(np.array([2**32 - 2, 2**32 - 1], np.uint32), st)
    tr.update(np.array([0, 1, 5], np.uint32), st)  # wrap is not a gap; 1 -> 5 loses 3
    tr.update(np.array([3], np.uint32), st)  # backwards: a gap, nothing lost
    assert (st.seq_gaps, st.lost_samples) == (2, 3)


def test_garbage_before_info_is_tolerated_and_counted():
    spec = FakeSpec(garbage_before_info=bytes(range(1, 200)) + b"\x00\x13\x37\x00" + bytes(range(255, 100, -1)))
    with PtyFake(spec) as fake, open_device(DeviceConfig(name="l", port=fake.path, serial="FAKE-0001")) as dev:
        info = dev.identify()
        assert info["sensels"] == 16
        assert dev.stats.crc_errors + dev.stats.framing_errors + dev.stats.short_errors >= 1


def test_data_before_info_is_kept_and_checked_against_the_layout():
    """A device still streaming when the port opens (after a replug) sends DATA before INFO: the intact samples are
    the device's next ones and are kept; a DATA message of another size than INFO's layout is dropped as malformed."""
    seq = np.arange(100, 105, dtype=np.uint32)
    early = p.encode_data_block(seq, seq.astype(np.uint64) * 2000, expected_values(seq, 16, "u8"), "u8")
    wrong = p.encode_data_block(np.array([7], np.uint32), np.array([1], np.uint64), np.zeros((1, 3), np.uint8), "u8")
    spec = FakeSpec(garbage_before_info=early[: len(early) // 2] + wrong + early[len(early) // 2:])
    with PtyFake(spec) as fake, open_device(DeviceConfig(name="l", port=fake.path, serial="FAKE-0001")) as dev:
        dev.identify()
        batch = dev.read(0.0)
        assert batch is not None
        # the split inside a frame costs that frame (and the one it was joined to), never the others
        kept = batch.seq.tolist()
        assert kept and set(kept) < set(seq.tolist()) and kept == sorted(kept)
        assert np.array_equal(batch.values, expected_values(batch.seq, 16, "u8"))
        assert np.array_equal(batch.device_time, batch.seq.astype(np.uint64) * 2000)
        assert dev.stats.dropped_before_info == 0
    whole = FakeSpec(garbage_before_info=early + wrong)
    with PtyFake(whole) as fake, open_device(DeviceConfig(name="l", port=fake.path, serial="FAKE-0001")) as dev:
        dev.identify()
        batch = dev.read(0.0)
        assert batch.seq.tolist() == seq.tolist() and dev.stats.malformed == 1
        assert np.array_equal(batch.values, expected_values(seq, 16, "u8"))


@pytest.mark.parametrize(
    "key,value,match",
    [("kind", "mat", "kind is 'insole', the rig file says 'mat'"),
     ("side", "right", "side is 'left', the rig file says 'right'"),
     ("sensels", 99, "sensels is 16, the rig file says 99"),
     ("serial", "XYZ-9", "serial is 'FAKE-0001', the rig file says 'XYZ-9'")],
)
def test_device_not_what_the_rig_says(key, value, match):
    with PtyFake() as fake:
        cfg = DeviceConfig(name="insole_right", port=fake.path, **{key: value})
        with open_device(cfg) as dev, pytest.raises(DeviceMismatchError, match=match) as exc:
            dev.identify()
        assert "insole_right" in str(exc.value)


def test_nobody_answering_times_out_within_the_budget():
    with PtyFake(FakeSpec(silent=True)) as fake, open_device(DeviceConfig(name="ghost", port=fake.path)) as dev:
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeoutError, match="ghost: nothing answered on .* within 0.6 s"):
            dev.identify(timeout_s=0.6, retries=3)
        assert 0.55 < time.monotonic() - t0 < 3.0
        assert fake.logic.commands.count(p.IDENTIFY) == 3  # retried


def test_nak_on_unsupported_rate_and_unknown_command():
    with PtyFake() as fake, open_device(DeviceConfig(name="l", port=fake.path)) as dev:
        dev.identify()
        dev.set_rate(200)
        assert dev.rate_hz == 200
        with pytest.raises(CommandRejectedError, match=r"does not support 333 Hz \(it supports 100, 200, 500, 1000"):
            dev.set_rate(333)
        assert dev.rate_hz == 200
        with pytest.raises(CommandRejectedError, match="unknown command"):
            dev._command(0x99, b"", p.ACK, 1.0)


def test_bad_info_is_a_protocol_error():
    with PtyFake(FakeSpec(info_extra={"protocol": 2})) as fake, open_device(
            DeviceConfig(name="x", port=fake.path)) as d:
        with pytest.raises(ProtocolError, match="protocol 2"):
            d.identify()


def test_unplug_mid_stream_raises_disconnected():
    with PtyFake(FakeSpec(rate_hz=500)) as fake, open_device(DeviceConfig(name="insole_left", port=fake.path)) as dev:
        dev.identify()
        dev.start()
        assert _collect(dev, 50)
        fake.unplug()
        with pytest.raises(DeviceDisconnectedError, match="insole_left: port .* vanished"):
            for _ in range(100):
                dev.read(0.05)


# ------------------------------------------------------------------------------ docs/protocol.md byte dumps


def _hex(data: bytes, indent: int) -> str:
    rows = [data[i : i + 16].hex(" ") for i in range(0, len(data), 16)]
    return ("\n" + " " * indent).join(rows) if rows else "(empty)"


def _dump(fields: list[tuple[str, bytes]], msg_type: int) -> str:
    body = b"".join(f for _, f in fields[1:])
    wire = p.encode_message(msg_type, body)
    decoded = bytes([msg_type]) + body
    crc = struct.pack("<I", zlib.crc32(decoded))
    lines = [f"{label:<13s}{_hex(value, 13)}" for label, value in fields]
    lines.append(f"{'crc32 (LE)':<13s}{_hex(crc, 13)}")
    lines.append(f"{'wire':<13s}{_hex(wire, 13)}")
    return "\n".join(lines)


def protocol_doc_dumps() -> dict[str, str]:
    """The example byte dumps of docs/protocol.md, generated by the encoder (``name -> text``)."""
    vals = np.array([0, 0, 3, 17, 120, 255, 64, 0, 0, 9, 200, 31, 0, 0, 0, 5], dtype=np.uint8)
    info = {"protocol": 1, "kind": "insole", "side": "left", "sensels": 16, "dtype": "u8", "clock_hz": 1000000,
            "rate_hz": 500}
    cal = struct.pack("<BH", 0, 2) + np.array([[0.5, 12.0], [0.25, 8.0]], dtype="<f4").tobytes()
    return {
        "identify": _dump([("type", bytes([p.IDENTIFY]))], p.IDENTIFY),
        "set_rate": _dump([("type", bytes([p.SET_RATE])), ("rate_hz u16", struct.pack("<H", 500))], p.SET_RATE),
        "ack": _dump([("type", bytes([p.ACK])), ("command", bytes([p.START]))], p.ACK),
        "nak": _dump([("type", bytes([p.NAK])), ("command", bytes([p.SET_RATE])), ("code", bytes([3])),
                      ("reason", b"rate 333 Hz")], p.NAK),
        "ping": _dump([("type", bytes([p.PING])), ("host_ns u64", struct.pack("<Q", 5_000_000_000))], p.PING),
        "pong": _dump([("type", bytes([p.PONG])), ("host_ns u64", struct.pack("<Q", 5_000_000_000)),
                       ("ticks u64", struct.pack("<Q", 1_234_567))], p.PONG),
        "log": _dump([("type", bytes([p.LOG])), ("level", bytes([30])), ("text", b"battery low")], p.LOG),
        "calibration": _dump([("type", bytes([p.CALIBRATION])), ("unit, n", cal[:3]), ("gain, offset", cal[3:])],
                             p.CALIBRATION),
        "info": _dump([("type", bytes([p.INFO])), ("json", json.dumps(info, separators=(",", ":")).encode())],
                      p.INFO),
        "data": _dump([("type", bytes([p.DATA])), ("seq u32", struct.pack("<I", 1234)),
                       ("t u64", struct.pack("<Q", 2_468_000)), ("values u8", vals.tobytes())], p.DATA),
    }


def test_protocol_doc_dumps_match_the_encoder():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    dumps = protocol_doc_dumps()
    for name, text in dumps.items():
        marker = f"<!-- dump: {name} -->\n```text\n"
        assert marker in doc, f"docs/protocol.md lacks the {name} dump"
        block = doc.split(marker, 1)[1].split("\n```", 1)[0]
        assert block == text, f"docs/protocol.md: the {name} dump differs from what the encoder produces"
    # and the DATA dump decodes back to its fields
    wire = bytes.fromhex(dumps["data"].split("wire", 1)[1].replace("\n", " "))
    dec = p.FrameDecoder(data_size=p.data_message_size(16, "u8"))
    data, _ = dec.feed(wire)
    seq, t, vals = p.decode_data(data, 16, "u8")
    assert seq[0] == 1234 and t[0] == 2_468_000 and vals[0, 4] == 120


# ------------------------------------------------------------------------------ against the simulated devices


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Simulated devices in their own processes: a 1 kHz insole (drift, seq near the wrap, loss) and a small mat.

    One rig for the module (starting device processes is the slow part); the tests run in file order.
    """
    tmp_path = tmp_path_factory.mktemp("sim-binary")
    from treadlab.drivers.sim.device import FaultParams, SimDeviceSpec
    from treadlab.drivers.sim.rig import SimulatedRig

    specs = [
        SimDeviceSpec("insole_left", side="left", layout="insole16", dtype="u8", adc_bits=8, rate_hz=1000,
                      serial="SIM-A", seq_start=2**32 - 400, drift_ppm=80.0,
                      faults=FaultParams(garbage_at_start=300, loss_rate=0.01)),
        SimDeviceSpec("mat", kind="mat", rows=16, cols=24, pitch_mm=[8.47, 8.47], rate_hz=100, rates_hz=[60, 100, 120],
                      dtype="u8", adc_bits=8, serial="SIM-M"),
    ]
    with SimulatedRig(specs, tmp_path / "sim") as rig:
        rig.rig_file = load_rig(rig.write_rig(tmp_path / "rig.toml"))
        yield rig


def test_simulated_insole_matches_ground_truth(sim):
    cfg = sim.rig_file.device("insole_left")
    with open_device(cfg) as dev:
        info = dev.identify()
        assert (info["serial"], dev.side, dev.n_values, dev.clock_hz) == ("SIM-A", "left", 16, 1_000_000)
        assert dev.layout["name"] == "insole16" and dev.layout["positions_mm"].shape == (16, 2)
        dev.start()
        batches = _collect(dev, 1000)
        dev.stop()
        batches += _collect(dev, 10**9, timeout_s=0.3)
    seq, t, _, _ = _cat(batches)
    time.sleep(0.7)  # the simulator flushes its truth file every 0.5 s
    seq_true, t_true_ns = sim.truth("insole_left")
    # every sample received was taken, and the loss counted is exactly what the simulator skipped in the span
    assert np.isin(seq, seq_true).all()
    span = int((int(seq[-1]) - int(seq[0])) % 2**32)
    taken = int(np.count_nonzero((seq_true.astype(np.int64) - int(seq[0])) % 2**32 <= span))
    assert dev.stats.lost_samples == taken - len(seq) > 0
    assert seq.min() < 1000 and seq.max() > 2**32 - 1000  # wrapped inside the stream
    # the device clock runs 80 ppm fast against true time
    true_ns = t_true_ns[np.searchsorted(seq_true, seq)] if np.all(np.diff(seq_true.astype(np.int64)) > 0) else None
    if true_ns is None:  # truth wrapped too: match by position of each seq
        order = {int(s): i for i, s in enumerate(seq_true)}
        true_ns = t_true_ns[[order[int(s)] for s in seq]]
    slope = np.polyfit((true_ns - true_ns[0]) / 1e9, t.astype(np.float64) - float(t[0]), 1)[0]
    assert slope / 1e6 - 1 == pytest.approx(80e-6, abs=2e-6)


def test_simulated_mat_rate_change_and_nak(sim):
    with open_device(sim.rig_file.device("mat")) as dev:
        dev.identify()
        assert dev.shape == (16, 24) and dev.rates_hz == [60, 100, 120]
        with pytest.raises(CommandRejectedError, match="mat: the device does not support 333 Hz"):
            dev.set_rate(333)
        dev.set_rate(60)
        dev.start()
        t0 = time.monotonic()
        seq, t, vals, _ = _cat(_collect(dev, 90))
        dev.stop()
        assert vals.shape[1] == 16 * 24 and vals.dtype == np.uint8
        assert np.median(np.diff(t.astype(np.int64))) == pytest.approx(1e6 / 60, rel=1e-3)
        assert 1.2 < time.monotonic() - t0 < 4.5  # 90 frames at 60 Hz take 1.5 s


def test_simulated_unplug_mid_stream_and_replug(sim):
    cfg = sim.rig_file.device("insole_left")
    dev = open_device(cfg)
    try:
        dev.identify()
        dev.start()
        assert _collect(dev, 100)
        sim.unplug("insole_left", seconds=0.3)
        with pytest.raises(DeviceDisconnectedError, match="insole_left: port .* vanished"):
            for _ in range(200):
                dev.read(0.05)
    finally:
        dev.close()
    assert sim.wait_ready("insole_left") == cfg.port
    with open_device(cfg) as dev:  # same path, same serial, stopped until START
        assert dev.identify()["serial"] == "SIM-A"
        assert dev.read(0.2) is None
        dev.start()
        assert _collect(dev, 50)
        dev.stop()


def test_simulated_device_with_the_wrong_serial(sim):
    cfg = dataclasses.replace(sim.rig_file.device("mat"), serial="SIM-X")
    with open_device(cfg) as dev, pytest.raises(DeviceMismatchError, match="serial is 'SIM-M', the rig file says"):
        dev.identify()


def test_decoder_fast_path_sorts_a_mixed_read_like_the_slow_path():
    def block(s):
        return p.encode_data_block(np.array([s], "u4"), np.array([s * 10], "u8"), np.full((1, 16), s, "u1"), "u8")

    bad_crc = bytearray(block(3))
    bad_crc[5] ^= 0x01  # still valid COBS, wrong CRC
    wrong_size = p.encode_data_block(np.array([9], "u4"), np.array([1], "u8"), np.zeros((1, 8), "u1"), "u8")
    stream = (block(1) + p.encode_log(20, "a") + block(2) + bytes(bad_crc) + wrong_size + p.encode_ack(p.START)
              + b"\x00" + block(4))
    fast = p.FrameDecoder(data_size=p.data_message_size(16, "u8"))
    data, other = fast.feed(stream)
    seq, t, vals = p.decode_data(data, 16, "u8")
    assert seq.tolist() == [1, 2, 4] and t.tolist() == [10, 20, 40] and vals[:, 0].tolist() == [1, 2, 4]
    assert other == [(p.LOG, b"\x14a"), (p.ACK, bytes([p.START]))]
    # the same stream fed one byte at a time (one message per check): same messages, same counters
    slow = p.FrameDecoder(data_size=p.data_message_size(16, "u8"))
    got = [slow.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert sum((d for d, _ in got), []) == data and sum((o for _, o in got), []) == other
    assert fast.stats == slow.stats and fast.stats.crc_errors == 1 and fast.stats.malformed == 1
    assert fast.stats.messages == 5


def test_identify_a_device_left_streaming_by_a_crashed_host():
    with PtyFake(FakeSpec(rate_hz=1000)) as fake:
        fake.logic.started = True  # streaming before anyone asked
        fake.logic.next_ns = time.monotonic_ns()
        time.sleep(0.2)
        with open_device(DeviceConfig(name="l", port=fake.path)) as dev:
            assert dev.identify()["kind"] == "insole"
            batches = _collect(dev, 100)  # DATA after INFO is kept, before INFO it was unreadable
            seq = np.concatenate([b.seq for b in batches])
            assert np.all(np.diff(seq.astype(np.int64)) == 1)
            assert np.array_equal(np.concatenate([b.values for b in batches]), expected_values(seq, 16, "u8"))
            dev.stop()
