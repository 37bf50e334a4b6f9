"""Device protocol v1: framing, every message type, COBS edge cases, and a fuzzed decoder."""

from __future__ import annotations

import random
import struct
import zlib

import numpy as np
import pytest
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from treadlab.drivers import protocol as p


def test_frame_layout_matches_spec_byte_for_byte():
    wire = p.encode_message(p.ACK, bytes([p.START]))
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    raw = cobs.decode(wire[:-1])
    assert raw[0] == p.ACK and raw[1] == p.START
    assert struct.unpack("<I", raw[2:])[0] == zlib.crc32(bytes([p.ACK, p.START]))


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00", b"\x00" * 300, bytes(range(1, 255)), bytes([7]) * 254, bytes([9]) * 255, bytes([1]) * 600,
     b"\x00\x01" * 200],
    ids=["empty", "zero", "zeros", "run254", "run254b", "run255", "long", "alternating"],
)
def test_cobs_edge_cases_round_trip(body):
    dec = p.FrameDecoder()
    data, other = dec.feed(p.encode_message(p.LOG, body))
    assert other == [(p.LOG, body)]
    assert dec.stats.dropped == 0 and dec.stats.messages == 1


def test_every_message_type_round_trips():
    gain = np.linspace(0.5, 2.0, 16).astype(np.float32)
    offset = np.arange(16, dtype=np.float32)
    stream = b"".join([
        p.encode_info({"protocol": 1, "kind": "insole", "sensels": 16}),
        p.encode_ack(p.START),
        p.encode_nak(p.SET_RATE, p.NAK_UNSUPPORTED_RATE, "rate 333 Hz not supported"),
        p.encode_calibration("kPa", gain, offset),
        p.encode_pong(123456789012, 987654321),
        p.encode_log(30, "battery low"),
        p.encode_message(p.IDENTIFY),
        p.encode_message(p.SET_RATE, struct.pack("<H", 500)),
        p.encode_message(p.PING, struct.pack("<Q", 42)),
    ])
    dec = p.FrameDecoder()
    data, other = dec.feed(stream)
    types = [t for t, _ in other]
    assert types == [p.INFO, p.ACK, p.NAK, p.CALIBRATION, p.PONG, p.LOG, p.IDENTIFY, p.SET_RATE, p.PING]
    bodies = dict(other)
    assert p.parse_info(bodies[p.INFO])["sensels"] == 16
    assert p.parse_ack(bodies[p.ACK]) == p.START
    assert p.parse_nak(bodies[p.NAK]) == (p.SET_RATE, p.NAK_UNSUPPORTED_RATE, "rate 333 Hz not supported")
    unit, g, o = p.parse_calibration(bodies[p.CALIBRATION])
    assert unit == "kPa" and np.array_equal(g, gain) and np.array_equal(o, offset)
    assert p.parse_pong(bodies[p.PONG]) == (123456789012, 987654321)
    assert p.parse_log(bodies[p.LOG]) == (30, "battery low")
    assert struct.unpack("<H", bodies[p.SET_RATE]) == (500,)


@pytest.mark.parametrize("dtype,n", [("u8", 16), ("u16", 960), ("u16", 64 * 176)])
def test_data_block_round_trip_is_bit_exact(dtype, n):
    rng = np.random.default_rng(1)
    k = 50
    seq = (np.arange(k, dtype=np.uint64) + 2**32 - 10).astype(np.uint32)  # wraps inside the block
    t = np.arange(k, dtype=np.uint64) * 1000 + 2**40
    vals = rng.integers(0, 2**8 if dtype == "u8" else 2**16, size=(k, n)).astype(p.DTYPES[dtype])
    stream = p.encode_data_block(seq, t, vals, dtype)
    dec = p.FrameDecoder(data_size=p.data_message_size(n, dtype))
    # feed in awkward pieces to exercise partial frames
    cuts = sorted(random.Random(3).sample(range(1, len(stream)), 40))
    raws = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)]):
        d, _ = dec.feed(stream[a:b])
        raws += d
    s2, t2, v2 = p.decode_data(raws, n, dtype)
    assert np.array_equal(s2, seq) and np.array_equal(t2, t) and np.array_equal(v2, vals)
    assert dec.stats.dropped == 0


def test_bad_frames_are_dropped_counted_and_decoding_resumes():
    good = [p.encode_log(20, f"m{i}") for i in range(4)]
    bad_crc = bytearray(p.encode_log(20, "bad"))
    bad_crc[3] ^= 0x40
    short = cobs.encode(b"\x07\x01") + b"\x00"
    stream = b"\xff\xfe" + b"\x00" + good[0] + bytes(bad_crc) + good[1] + short + good[2] + b"\x01\x00" + good[3]
    dec = p.FrameDecoder()
    _, other = dec.feed(stream)
    assert [p.parse_log(b)[1] for _, b in other] == ["m0", "m1", "m2", "m3"]
    assert dec.stats.crc_errors == 1 and dec.stats.short_errors == 2
    assert dec.stats.framing_errors == 1


def test_wrong_length_data_is_malformed_not_fatal():
    dec = p.FrameDecoder(data_size=p.data_message_size(16, "u8"))
    ok = p.encode_data_block(np.array([1], "u4"), np.array([5], "u8"), np.zeros((1, 16), "u1"), "u8")
    wrong = p.encode_data_block(np.array([2], "u4"), np.array([6], "u8"), np.zeros((1, 8), "u1"), "u8")
    data, _ = dec.feed(ok + wrong + ok)
    assert len(data) == 2 and dec.stats.malformed == 1


def test_oversize_garbage_without_zero_is_bounded():
    dec = p.FrameDecoder(max_frame_bytes=1000)
    for _ in range(10):
        dec.feed(b"\x55" * 400)
    assert len(dec._rest) <= 1000 and dec.stats.oversize_errors == 1
    _, other = dec.feed(b"\x00" + p.encode_log(20, "after"))
    assert other == [(p.LOG, b"\x14after")]


messages = st.lists(
    st.tuples(st.sampled_from([p.LOG, p.INFO, p.ACK, p.DATA, p.PONG]), st.binary(max_size=300)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(msgs=messages, garbage=st.lists(st.binary(max_size=40), min_size=13, max_size=13),
       flips=st.lists(st.integers(0, 10**6), max_size=6), chunk=st.integers(1, 97))
def test_fuzz_decoder_never_raises_and_keeps_intact_messages(msgs, garbage, flips, chunk):
    frames = [p.encode_message(t, b) for t, b in msgs]
    # Corrupt some frames by flipping bits inside them (never the delimiter), and add random garbage between.
    corrupted = set()
    frames = [bytearray(f) for f in frames]
    for f in flips:
        i = f % len(frames)
        pos = (f // 7) % (len(frames[i]) - 1)
        frames[i][pos] ^= 1 << (f % 8)
        if frames[i][pos] == 0:
            frames[i][pos] = 0x5A
        corrupted.add(i)
    stream = bytearray()
    for i, f in enumerate(frames):
        stream += garbage[i] + b"\x00" + f  # a 0x00 after garbage resynchronises
    stream += garbage[-1][:7]
    dec = p.FrameDecoder()
    got = []
    for a in range(0, len(stream), chunk):
        d, o = dec.feed(bytes(stream[a : a + chunk]))
        got += o + [(p.DATA, r[1:-4]) for r in d]
    expected = [m for i, m in enumerate(msgs) if i not in corrupted]
    for m in expected:
        assert m in got
    assert dec.stats.messages >= len(expected)


@settings(max_examples=200, deadline=None)
@given(stream=st.binary(max_size=2000))
def test_fuzz_random_bytes_never_raise(stream):
    dec = p.FrameDecoder(max_frame_bytes=512)
    dec.feed(stream)
    dec.feed(stream[::-1])
    assert dec.stats.bytes == 2 * len(stream)
