"""Device protocol v1: framing, message encoding and decoding (pure functions, no I/O).

Every message is COBS-encoded and ends with one 0x00 byte. Decoded, a message is
``type: u8 | body | crc: u32`` with ``crc`` the CRC-32/ISO-HDLC (``zlib.crc32``) of type and body, little-endian.
See ``docs/protocol.md`` for the full specification with byte dumps.

The receive path is :class:`FrameDecoder` (bytes in, messages out, counters for every kind of bad frame) and
:func:`decode_data` (DATA messages of one device in, numpy arrays out). The COBS work is done by the C core of
the ``cobs`` package and the CRC by zlib, driven by C-level ``map`` over all messages of a read, with numpy masks
for the checks; a per-message Python loop runs only for reads that hold a frame that is not valid COBS or a
message shorter than type + CRC. There is never a loop per value.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter

import numpy as np
from cobs import cobs

PROTOCOL_VERSION = 1

# Device to host.
INFO = 0x01
ACK = 0x02
NAK = 0x03
CALIBRATION = 0x05
PONG = 0x06
LOG = 0x07
DATA = 0x10
# Host to device.
IDENTIFY = 0x81
START = 0x82
STOP = 0x83
SET_RATE = 0x84
GET_CALIBRATION = 0x85
PING = 0x86

MESSAGE_NAMES = {
    INFO: "INFO",
    ACK: "ACK",
    NAK: "NAK",
    CALIBRATION: "CALIBRATION",
    PONG: "PONG",
    LOG: "LOG",
    DATA: "DATA",
    IDENTIFY: "IDENTIFY",
    START: "START",
    STOP: "STOP",
    SET_RATE: "SET_RATE",
    GET_CALIBRATION: "GET_CALIBRATION",
    PING: "PING",
}

# NAK error codes used by treadlab's devices and simulators (a device may send others).
NAK_UNKNOWN_COMMAND = 1
NAK_BAD_ARGUMENT = 2
NAK_UNSUPPORTED_RATE = 3
NAK_BUSY = 4

CALIBRATION_UNITS = {0: "N", 1: "kPa", 2: "imu", 3: "force"}
"""CALIBRATION unit codes: newton or kPa per sensel; ``"imu"`` and ``"force"`` give a unit per channel (g, deg/s,
uT; N, N·mm, mm, m/s), which the kind derives from the channel name (:meth:`Kind.channel_units`)."""
DTYPES = {"u8": np.dtype("u1"), "u16": np.dtype("<u2"), "i16": np.dtype("<i2")}
DTYPES.setdefault("i32", np.dtype("<i4"))  # force devices (counts); kept if the force kind defines it already
DTYPES.setdefault("f32", np.dtype("<f4"))  # force devices (calibrated values)
DATA_HEADER_BYTES = 12  # u32 seq, u64 t
#: CRC-32/ISO-HDLC residue: crc32(message + its little-endian CRC) is this constant for every message.
_CRC_RESIDUE = 0x2144DF1C
#: Longest frame a receiver keeps while waiting for its 0x00 (a 64 x 176 u16 mat frame is 22.5 kB).
MAX_FRAME_BYTES = 256 * 1024
_first_byte = itemgetter(0)


# --------------------------------------------------------------------------------------------- encoding


def encode_message(msg_type: int, body: bytes = b"") -> bytes:
    """Frame one message: COBS-encode ``type | body | crc32`` and append the 0x00 delimiter.

    Parameters
    ----------
    msg_type : int
        Message type, 0-255.
    body : bytes
        Message body (may be empty).

    Returns
    -------
    bytes
        The bytes to put on the wire.
    """
    payload = bytes((msg_type,)) + bytes(body)
    return cobs.encode(payload + struct.pack("<I", zlib.crc32(payload))) + b"\x00"


def encode_info(info: dict) -> bytes:
    """Frame an INFO message carrying ``info`` as UTF-8 JSON."""
    return encode_message(INFO, json.dumps(info, separators=(",", ":")).encode("utf-8"))


def encode_ack(command: int) -> bytes:
    """Frame an ACK of ``command``."""
    return encode_message(ACK, bytes((command,)))


def encode_nak(command: int, code: int, reason: str) -> bytes:
    """Frame a NAK of ``command`` with an error ``code`` and a human-readable ``reason``."""
    return encode_message(NAK, bytes((command, code)) + reason.encode("utf-8"))


def encode_calibration(unit: str, gain: np.ndarray, offset: np.ndarray) -> bytes:
    """Frame a CALIBRATION message: ``value = gain * (raw - offset)`` per sensel.

    Parameters
    ----------
    unit : {"N", "kPa", "imu", "force"}
        Unit of the calibrated value (newton per sensel, kPa, or per channel for the imu and force kinds).
    gain, offset : array_like
        One value per sensel (float32 on the wire).
    """
    codes = {v: k for k, v in CALIBRATION_UNITS.items()}
    gain = np.asarray(gain, dtype="<f4")
    offset = np.asarray(offset, dtype="<f4")
    if gain.shape != offset.shape or gain.ndim != 1:
        raise ValueError("gain and offset must be 1-D arrays of the same length")
    pairs = np.empty((gain.size, 2), dtype="<f4")
    pairs[:, 0] = gain
    pairs[:, 1] = offset
    return encode_message(CALIBRATION, struct.pack("<BH", codes[unit], gain.size) + pairs.tobytes())


def encode_pong(host_time_ns: int, device_ticks: int) -> bytes:
    """Frame a PONG: the PING's host time echoed and the device clock when the PING was handled."""
    return encode_message(PONG, struct.pack("<QQ", host_time_ns, device_ticks))


def encode_log(level: int, text: str) -> bytes:
    """Frame a LOG message (level 10 debug, 20 info, 30 warning, 40 error)."""
    return encode_message(LOG, bytes((level,)) + text.encode("utf-8"))


def data_dtype(n_values: int, dtype: str) -> np.dtype:
    """Structured dtype of one decoded DATA message, type byte and CRC included.

    Decoded DATA messages of one device all have this layout, so a batch of them joined end to end is
    read with a single ``np.frombuffer``.
    """
    return np.dtype(
        [("type", "u1"), ("seq", "<u4"), ("t", "<u8"), ("values", DTYPES[dtype], (n_values,)), ("crc", "<u4")]
    )


def encode_data_block(seq: np.ndarray, t: np.ndarray, values: np.ndarray, dtype: str) -> bytes:
    """Frame many DATA messages at once (the simulators' hot path).

    Parameters
    ----------
    seq : ndarray of uint32, shape (k,)
    t : ndarray of uint64, shape (k,)
        Device clock in ticks.
    values : ndarray, shape (k, n)
        Sample values (flattened row-major for a mat).
    dtype : {"u8", "u16"}

    Returns
    -------
    bytes
        ``k`` framed messages, concatenated.
    """
    k = len(seq)
    values = np.asarray(values).reshape(k, -1)
    rec = np.empty(k, dtype=data_dtype(values.shape[1], dtype))
    rec["type"] = DATA
    rec["seq"] = seq
    rec["t"] = t
    rec["values"] = values
    raw = rec.tobytes()
    size = rec.dtype.itemsize
    crc32 = zlib.crc32
    out = []
    for i in range(k):  # one iteration per message: CRC and COBS are C calls over the whole message
        payload = raw[i * size : (i + 1) * size - 4]
        out.append(cobs.encode(payload + crc32(payload).to_bytes(4, "little")))
        out.append(b"\x00")
    return b"".join(out)


# --------------------------------------------------------------------------------------------- decoding


@dataclass
class DecoderStats:
    """Counters of a :class:`FrameDecoder`; all monotonically increasing."""

    bytes: int = 0
    messages: int = 0
    framing_errors: int = 0
    short_errors: int = 0
    crc_errors: int = 0
    oversize_errors: int = 0
    malformed: int = 0

    @property
    def dropped(self) -> int:
        """Every frame dropped for any reason."""
        return self.framing_errors + self.short_errors + self.crc_errors + self.oversize_errors + self.malformed


@dataclass
class FrameDecoder:
    """Incremental receiver: split a byte stream on 0x00, COBS-decode, check the CRC.

    Bad frames are dropped and counted, and decoding resynchronises at the next 0x00; nothing makes
    :meth:`feed` raise. Empty frames (two 0x00 in a row, which senders use to flush a receiver) are
    skipped without counting.

    Parameters
    ----------
    data_size : int or None
        Decoded length of a DATA message (type + header + values + CRC) of this device, when known;
        DATA messages of another length are dropped and counted as ``malformed``.
    max_frame_bytes : int
        A run of bytes without 0x00 longer than this is dropped (counted in ``oversize_errors``).
    """

    data_size: int | None = None
    max_frame_bytes: int = MAX_FRAME_BYTES
    stats: DecoderStats = field(default_factory=DecoderStats)
    _rest: bytes = b""
    _skipping: bool = False

    def feed(self, chunk: bytes) -> tuple[list[bytes], list[tuple[int, bytes]]]:
        """Add received bytes and return the complete messages in them.

        Returns
        -------
        data : list of bytes
            Decoded DATA messages, whole (type byte and CRC included), for :func:`decode_data`.
        other : list of (int, bytes)
            Every other message as ``(type, body)``, in arrival order.
        """
        stats = self.stats
        stats.bytes += len(chunk)
        if b"\x00" not in chunk:
            self._rest += chunk
            if len(self._rest) > self.max_frame_bytes:
                if not self._skipping:
                    stats.oversize_errors += 1
                self._skipping = True  # drop everything up to the next 0x00
                self._rest = b""
            return [], []
        frames = (self._rest + chunk).split(b"\x00")
        self._rest = frames.pop()
        if self._skipping:
            frames[0] = b""  # the tail of an oversize frame
            self._skipping = False
        if b"" in frames:
            frames = list(filter(None, frames))  # empty frames are flushes, not messages
        if not frames:
            return [], []
        try:
            raws = list(map(cobs.decode, frames))
        except cobs.DecodeError:
            return self._decode_each(frames)
        return self._check_all(raws)

    def _check_all(self, raws: list[bytes]) -> tuple[list[bytes], list[tuple[int, bytes]]]:
        """Fast path: length, CRC and type of every decoded message with C-level ``map`` and numpy masks."""
        n = len(raws)
        sizes = set(map(len, raws))
        if min(sizes) < 5:
            return self._check_each(raws)
        crcs = list(map(zlib.crc32, raws))
        types = set(map(_first_byte, raws))
        stats = self.stats
        if (crcs.count(_CRC_RESIDUE) == n and types == {DATA}
                and (self.data_size is None or sizes == {self.data_size})):
            stats.messages += n  # the usual read: nothing but good DATA
            return raws, []
        lens = np.fromiter(map(len, raws), dtype=np.int64, count=n)
        crc_ok = np.array(crcs, dtype=np.int64) == _CRC_RESIDUE
        is_data = np.fromiter(map(_first_byte, raws), dtype=np.uint8, count=n) == DATA
        good_data = crc_ok & is_data
        malformed = 0
        if self.data_size is not None:
            wrong = good_data & (lens != self.data_size)
            malformed = int(np.count_nonzero(wrong))
            good_data &= ~wrong
        good_other = crc_ok & ~is_data
        n_data = int(np.count_nonzero(good_data))
        n_other = int(np.count_nonzero(good_other))
        stats.crc_errors += n - int(np.count_nonzero(crc_ok))
        stats.malformed += malformed
        stats.messages += n_data + n_other
        data = list(compress(raws, good_data.tolist())) if n_data else []
        other = [(raw[0], raw[1:-4]) for raw in compress(raws, good_other.tolist())] if n_other else []
        return data, other

    def _decode_each(self, frames: list[bytes]) -> tuple[list[bytes], list[tuple[int, bytes]]]:
        """Slow path, when a frame is not valid COBS: decode one frame at a time and count the bad ones."""
        raws = []
        for frame in frames:
            try:
                raws.append(cobs.decode(frame))
            except cobs.DecodeError:
                self.stats.framing_errors += 1
        return self._check_each(raws) if raws else ([], [])

    def _check_each(self, raws: list[bytes]) -> tuple[list[bytes], list[tuple[int, bytes]]]:
        """Slow path, when a message is shorter than type + CRC: check one message at a time."""
        stats = self.stats
        data: list[bytes] = []
        other: list[tuple[int, bytes]] = []
        crc32 = zlib.crc32
        data_size = self.data_size
        n_ok = 0
        for raw in raws:
            if len(raw) < 5:
                stats.short_errors += 1
                continue
            if crc32(raw) != _CRC_RESIDUE:
                stats.crc_errors += 1
                continue
            if raw[0] == DATA:
                if data_size is not None and len(raw) != data_size:
                    stats.malformed += 1
                    continue
                data.append(raw)
            else:
                other.append((raw[0], raw[1:-4]))
            n_ok += 1
        stats.messages += n_ok
        return data, other


def split_frames(stream: bytes) -> list[tuple[int, bytes]]:
    """Decode a whole byte stream into ``(type, body)`` messages, dropping bad frames (for tests and tools)."""
    dec = FrameDecoder()
    data, other = dec.feed(stream + b"\x00")
    out = other + [(DATA, raw[1:-4]) for raw in data]
    return out


def decode_data(raws: list[bytes], n_values: int, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn decoded DATA messages of one device into arrays, with one ``np.frombuffer``.

    Parameters
    ----------
    raws : list of bytes
        Whole decoded DATA messages, as returned by :meth:`FrameDecoder.feed` (all of the same length).
    n_values : int
        Values per sample (sensels, or rows * cols).
    dtype : {"u8", "u16"}

    Returns
    -------
    seq : ndarray of uint32, shape (k,)
    t : ndarray of uint64, shape (k,)
    values : ndarray of uint8 or uint16, shape (k, n_values)
    """
    dt = data_dtype(n_values, dtype)
    rec = np.frombuffer(b"".join(raws), dtype=dt)
    return rec["seq"].copy(), rec["t"].copy(), rec["values"].copy()


def data_message_size(n_values: int, dtype: str) -> int:
    """Decoded length in bytes of one DATA message (type + seq + t + values + CRC)."""
    return data_dtype(n_values, dtype).itemsize


# --------------------------------------------------------------------------------------------- message bodies


def parse_info(body: bytes) -> dict:
    """Parse an INFO body (UTF-8 JSON object). Raises ``ValueError`` if it is not one."""
    info = json.loads(body.decode("utf-8"))
    if not isinstance(info, dict):
        raise ValueError("INFO body is not a JSON object")
    return info


def parse_nak(body: bytes) -> tuple[int, int, str]:
    """Parse a NAK body into ``(command, code, reason)``."""
    if len(body) < 2:
        raise ValueError("NAK body shorter than 2 bytes")
    return body[0], body[1], body[2:].decode("utf-8", errors="replace")


def parse_calibration(body: bytes) -> tuple[str, np.ndarray, np.ndarray]:
    """Parse a CALIBRATION body into ``(unit, gain, offset)`` (float32 arrays)."""
    if len(body) < 3:
        raise ValueError("CALIBRATION body shorter than 3 bytes")
    code, n = struct.unpack_from("<BH", body)
    if code not in CALIBRATION_UNITS:
        raise ValueError(f"CALIBRATION unit code {code} is not 0 (N), 1 (kPa), 2 (imu) or 3 (force)")
    if len(body) != 3 + 8 * n:
        raise ValueError(f"CALIBRATION body is {len(body)} bytes, expected {3 + 8 * n} for {n} sensels")
    pairs = np.frombuffer(body, dtype="<f4", offset=3).reshape(n, 2)
    return CALIBRATION_UNITS[code], pairs[:, 0].astype(np.float32), pairs[:, 1].astype(np.float32)


def parse_pong(body: bytes) -> tuple[int, int]:
    """Parse a PONG body into ``(host_time_ns, device_ticks)``."""
    if len(body) != 16:
        raise ValueError(f"PONG body is {len(body)} bytes, expected 16")
    return struct.unpack("<QQ", body)


def parse_log(body: bytes) -> tuple[int, str]:
    """Parse a LOG body into ``(level, text)``."""
    if not body:
        raise ValueError("LOG body is empty")
    return body[0], body[1:].decode("utf-8", errors="replace")


def parse_ack(body: bytes) -> int:
    """Parse an ACK body: the acknowledged command type."""
    if len(body) != 1:
        raise ValueError(f"ACK body is {len(body)} bytes, expected 1")
    return body[0]


def describe(msg_type: int) -> str:
    """Name of a message type, e.g. ``"DATA"`` or ``"0x42"`` for an unknown one."""
    return MESSAGE_NAMES.get(msg_type, f"0x{msg_type:02x}")
