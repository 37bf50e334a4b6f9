"""The firmware's framing code (``firmware/core/tl_wire.c``) against the ``cobs`` package and zlib.

The C code runs behind ``tl_cobs_tool`` (built with gcc by the session fixture): records in on stdin, records
out on stdout. Lengths around the COBS block size (253, 254, 255, 508, 509) and random zero densities; zero
mismatches allowed. Also the whole wire frame against ``treadlab.drivers.protocol.encode_message``, and invalid
COBS (the decoder rejects what the ``cobs`` package rejects)."""

from __future__ import annotations

import struct
import subprocess
import zlib

import numpy as np
import pytest
from cobs import cobs

from tests.firmware_support import host_build
from treadlab.drivers import protocol as p

LENGTHS = [0, 1, 2, 253, 254, 255, 256, 507, 508, 509, 510, 1000]
DENSITIES = [0.0, 0.004, 0.05, 0.3, 0.9, 1.0]
FRAME, BAD_COBS = 1, 2


@pytest.fixture(scope="session")
def firmware_build(tmp_path_factory):
    """``refdev`` and ``tl_cobs_tool``, built with gcc once per session."""
    return host_build(tmp_path_factory)


def _run(build, mode: str, items: list[bytes]) -> list[bytes]:
    data = b"".join(struct.pack("<I", len(x)) + x for x in items)
    out = subprocess.run([str(build / "tl_cobs_tool"), mode], input=data, capture_output=True, timeout=60,
                         check=True).stdout
    res, i = [], 0
    while i < len(out):
        (n,) = struct.unpack_from("<I", out, i)
        res.append(out[i + 4:i + 4 + n])
        i += 4 + n
    assert len(res) == len(items)
    return res


def _buffers(seed: int = 5, repeats: int = 8) -> list[bytes]:
    """Every length x zero density, ``repeats`` random buffers each, plus all-0xFF and all-zero runs."""
    rng = np.random.default_rng(seed)
    items = []
    for n in LENGTHS:
        items += [b"\xff" * n, b"\x00" * n]
        for dens in DENSITIES:
            for _ in range(repeats):
                vals = rng.integers(1, 256, n, dtype=np.uint8)
                vals[rng.random(n) < dens] = 0
                items.append(vals.tobytes())
    return items


def test_cobs_encoding_matches_the_cobs_package(firmware_build):
    items = _buffers()
    got = _run(firmware_build, "encode", items)
    mismatches = [len(x) for g, x in zip(got, items) if g != cobs.encode(x)]
    assert mismatches == [], f"{len(mismatches)} of {len(items)} differ (lengths {sorted(set(mismatches))})"
    assert len(items) > 500


def test_cobs_decoding_inverts_the_cobs_package(firmware_build):
    items = _buffers(seed=6)
    got = _run(firmware_build, "decode", [cobs.encode(x) for x in items])
    mismatches = [len(x) for g, x in zip(got, items) if g != bytes((FRAME,)) + x]
    assert mismatches == []


def test_crc32_matches_zlib(firmware_build):
    items = _buffers(seed=7, repeats=2)
    got = _run(firmware_build, "crc", items)
    assert [struct.unpack("<I", g)[0] for g in got] == [zlib.crc32(x) for x in items]


def test_whole_messages_match_the_host_encoder(firmware_build):
    rng = np.random.default_rng(8)
    items = [bytes((t,)) + rng.integers(0, 3, n, dtype=np.uint8).tobytes()  # many zeros, as in DATA
             for t in (p.INFO, p.DATA, p.LOG, p.PONG) for n in (0, 3, 240, 249, 250, 251, 500, 1200)]
    got = _run(firmware_build, "message", items)
    assert got == [p.encode_message(x[0], x[1:]) for x in items]
    assert all(p.split_frames(g) == [(x[0], x[1:])] for g, x in zip(got, items))


def _cobs_ok(frame: bytes) -> bool:
    try:
        cobs.decode(frame)
    except cobs.DecodeError:
        return False
    return True


@pytest.mark.parametrize("seed", [1, 2])
def test_invalid_cobs_is_rejected_exactly_when_the_cobs_package_rejects_it(firmware_build, seed):
    rng = np.random.default_rng(seed)
    frames = []
    for n in rng.integers(1, 600, 400):
        good = cobs.encode(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        cut = good[: rng.integers(1, len(good) + 1)]  # truncated frames are mostly invalid
        junk = rng.integers(1, 256, n, dtype=np.uint8).tobytes()  # random bytes without 0x00
        frames += [cut, junk]
    got = _run(firmware_build, "decode", frames)
    status = [g[0] for g in got]
    expected = [FRAME if _cobs_ok(f) else BAD_COBS for f in frames]
    assert status == expected
    assert 0 < status.count(BAD_COBS) < len(frames)
    for g, f in zip(got, frames):
        if g[0] == FRAME:
            assert g[1:] == cobs.decode(f)
