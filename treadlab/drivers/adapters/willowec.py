r"""The open-hardware RP2040 pressure mat of willowec/pressure-mat (rig ``protocol = "willowec-mat"``).

Its USB CDC stream (``board_code/src/shared/transmitter.c`` of that project): after the text command
``start_reading\\n`` the board sends frame after frame, each 56 rows of 28 raw bytes (one byte per sensel,
row-major) followed by the 4-byte marker ``FF FE FE FF``. There is no sequence number, no device time and no CRC;
the marker is unambiguous only because real values stay below about 207.

What that leaves open is handled here (:class:`MarkerFramer`, vectorised over each read):

* a frame is taken only when it lies exactly between two markers (or right after the marker that ended the
  previous good frame): a marker inside the values, or bytes lost by the USB link, leave a run of the wrong length,
  which is dropped, counted (``malformed``, ``resyncs``) and hunted past to the next marker;
* frames are numbered by their position in the byte stream, so a damaged or missing frame shows as a sequence gap
  (at least one frame per damaged run) and the recorder counts it as lost;
* every frame taken is counted as ``unchecked`` (no CRC: a flipped value byte cannot be seen), and a frame with a
  value of 0xFE or more (impossible for this mat, and the only bytes that can fake a marker) as ``malformed``.

The board has no clock: a frame's device time is its arrival time on the host (``clock_hz`` 1e9), frames that
arrive in one read spread back from it at the nominal period and kept increasing.
"""

from __future__ import annotations

import time

import numpy as np
import serial

from treadlab.drivers.adapters.common import AdapterStats, ListenOnlyDevice
from treadlab.drivers.base import Calibration, DeviceConfig, SampleBatch
from treadlab.drivers.common import ByteStreamDevice, check_info
from treadlab.drivers.transport import open_port, write_bytes
from treadlab.errors import ConfigError, DeviceError, DeviceTimeoutError
from treadlab.fileformat import UNIT_RAW

PROTOCOL = "willowec-mat"
ROWS, COLS = 56, 28
FRAME_BYTES = ROWS * COLS
MARKER = b"\xff\xfe\xfe\xff"
SLOT_BYTES = FRAME_BYTES + len(MARKER)
#: Values this high cannot come from the mat (the marker is made of them).
MAX_VALUE = 0xFD
PITCH_MM = [10.0, 10.0]
START_COMMAND = b"start_reading\n"
DEFAULT_BAUDRATE = 115200
RIG_KEYS = ("name", "port", "protocol", "baudrate", "rate_hz", "required")
#: Bytes kept while hunting for a marker (a stream without one is dropped beyond this).
MAX_PENDING_BYTES = 4 * SLOT_BYTES


def marker_positions(a: np.ndarray) -> np.ndarray:
    """Start offsets of every ``FF FE FE FF`` in the byte array ``a`` (vectorised)."""
    if len(a) < 4:
        return np.zeros(0, np.int64)
    hit = (a[:-3] == 0xFF) & (a[1:-2] == 0xFE) & (a[2:-1] == 0xFE) & (a[3:] == 0xFF)
    return np.flatnonzero(hit)


class MarkerFramer:
    """Split the mat's byte stream into frames at the markers, numbering frames by stream position.

    Parameters
    ----------
    stats : AdapterStats or None
        Counters to add to (a device passes its own); None: new ones.

    Attributes
    ----------
    stats : AdapterStats
        The counters it adds to (the device's, or its own when none is given): ``messages`` (frames taken),
        ``malformed`` (runs of the wrong length, frames with impossible values),
        ``resyncs`` (runs of the wrong length hunted past), ``unchecked``, ``oversize_errors`` (marker-free
        stretches dropped).
    """

    def __init__(self, stats: AdapterStats | None = None) -> None:
        self.stats = AdapterStats() if stats is None else stats
        self._buf = b""
        self._synced = False  # the buffer starts right after a marker
        self._ever_synced = False
        self._lost_bytes = 0  # dropped while out of sync
        self._next = 0  # number of the next frame slot
        self._carry_bytes = 0  # bytes of bad runs at the end of the last read, not yet turned into slots
        self._carry_open = False

    def _slots(self, good: np.ndarray, bad: np.ndarray, run: np.ndarray) -> np.ndarray:
        """Frame slots each marker closes: 1 for a good frame; a stretch of consecutive bad runs (a fake marker
        splits one frame in two; lost bytes shorten one) is ``max(1, round(bytes / slot))`` slots, booked on the
        marker that ends it, or carried to the next read when the read ends inside it.
        """
        slots = good.astype(np.float64)
        nbytes = np.where(bad, run + len(MARKER), 0).astype(np.float64)
        nbytes[0] += self._carry_bytes if bad[0] else 0
        if not bad[0] and self._carry_bytes:  # the carried stretch ended at the previous read's last marker
            slots[0] += max(1, round(self._carry_bytes / SLOT_BYTES))
        self._carry_bytes = 0
        if bad.any():
            group_start = bad & ~np.concatenate(([False], bad[:-1]))
            group_end = bad & ~np.concatenate((bad[1:], [False]))
            gid = np.cumsum(group_start) - 1
            totals = np.bincount(gid[bad], weights=nbytes[bad], minlength=int(gid.max()) + 1)
            ends = np.flatnonzero(group_end)
            if bad[-1]:  # still inside a stretch: carry it
                self._carry_bytes = float(totals[-1])
                ends = ends[:-1]
                totals = totals[:-1]
            slots[ends] += np.maximum(1, np.round(totals[: len(ends)] / SLOT_BYTES))
        return slots.astype(np.int64)

    def feed(self, chunk: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Bytes in; ``(seq, frames)`` out: frame numbers (uint32) and values (k, 56, 28) uint8.

        A frame slot that was damaged or lost still uses its number, so the numbers jump where frames are
        missing. Before the first marker nothing is known and nothing is counted.
        """
        buf = self._buf + chunk
        a = np.frombuffer(buf, np.uint8)
        m = marker_positions(a)
        st = self.stats
        if len(m) == 0:
            self._buf = buf
            if len(buf) > MAX_PENDING_BYTES:  # no marker for several frames: drop all but a possible marker start
                st.oversize_errors += 1
                self._lost_bytes += len(buf) - 3
                self._buf = buf[-3:]
                self._synced = False
            return np.zeros(0, np.uint32), np.zeros((0, ROWS, COLS), np.uint8)
        prev_end = np.concatenate(([0], m[:-1] + len(MARKER)))
        run = m - prev_end  # bytes between the previous marker (or the buffer start) and this marker
        synced_before = np.ones(len(m), bool)
        synced_before[0] = self._synced
        good = synced_before & (run == FRAME_BYTES)
        bad = synced_before & ~good
        slots = self._slots(good, bad, run)
        if not self._synced and self._ever_synced:  # sync lost earlier: the dropped bytes were frames too
            slots[0] += max(1, round((self._lost_bytes + int(run[0]) + len(MARKER)) / SLOT_BYTES))
            st.resyncs += 1
        seq = self._next + np.cumsum(slots)[good] - 1
        self._next += int(slots.sum())
        starts = m[good] - FRAME_BYTES
        frames = a[starts[:, None] + np.arange(FRAME_BYTES)].reshape(-1, ROWS, COLS)
        n_bad = int(np.count_nonzero(bad))
        st.malformed += n_bad
        st.resyncs += int(np.count_nonzero(bad & ~np.concatenate(([self._carry_open], bad[:-1]))))
        self._carry_open = bool(bad[-1])
        impossible = (frames.reshape(len(frames), FRAME_BYTES) > MAX_VALUE).any(axis=1)
        if impossible.any():  # a value that could fake a marker: the frame cannot be trusted
            st.malformed += int(np.count_nonzero(impossible))
            frames, seq = frames[~impossible], seq[~impossible]
        st.messages += len(frames)
        st.unchecked += len(frames)
        self._buf = buf[int(m[-1]) + len(MARKER):]
        self._synced = self._ever_synced = True
        self._lost_bytes = 0
        return (seq % 2**32).astype(np.uint32), np.ascontiguousarray(frames)


class WillowecMat(ListenOnlyDevice, ByteStreamDevice):
    """The willowec/pressure-mat board on a serial port (USB CDC): a 56 x 28 ``mat`` of raw uint8 counts.

    Parameters
    ----------
    port : serial.SerialBase
        Open port (owned from now on; the base's transport, read by ``_read_raw``).
    cfg : DeviceConfig
        ``protocol = "willowec-mat"`` with the nominal ``rate_hz``.
    """

    protocol = PROTOCOL

    def __init__(self, port: serial.SerialBase, cfg: DeviceConfig) -> None:
        super().__init__(port, cfg)
        self._framer = MarkerFramer(self.stats)
        self.rate_hz = int(cfg.rate_hz)
        self.kind = "mat"
        self.shape = (ROWS, COLS)
        self.n_values = FRAME_BYTES
        self.dtype = np.dtype(np.uint8)
        self.clock_hz = 1_000_000_000
        # raw counts (the project's calibration curves are non-linear): the identity, unit "raw"
        self.calibration = Calibration(unit=UNIT_RAW, gain=np.ones(FRAME_BYTES, np.float32),
                                       offset=np.zeros(FRAME_BYTES, np.float32))
        self._period_ns = int(1e9 / self.rate_hz)
        self._last_t = -1
        self._queued: list[tuple[np.ndarray, np.ndarray, int]] = []

    def _pump(self, timeout_s: float) -> int:
        chunk, host_ns = self._read_raw(timeout_s)
        if not chunk:
            return 0
        seq, frames = self._framer.feed(chunk)
        if len(seq) and self.info is not None and self.started:
            self._queued.append((seq, frames, host_ns))
        return len(seq)

    def _discard_queued(self) -> None:
        """Drop the frames kept and not yet read."""
        self._queued.clear()

    def identify(self, timeout_s: float = 2.0, retries: int = 1) -> dict:
        """Send ``start_reading`` and wait for one whole frame between two markers.

        Raises
        ------
        DeviceTimeoutError
            No frame within ``timeout_s`` (wrong port, or not this mat).
        """
        try:
            self.port.reset_input_buffer()
        except (serial.SerialException, OSError):
            pass  # the read below reports a vanished port
        write_bytes(self.port, START_COMMAND, self.name)
        deadline = time.monotonic() + timeout_s
        got = 0
        while not got:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceTimeoutError(
                    f"{self.name}: no mat frame (56 x 28 bytes between FF FE FE FF markers) on {self.port.port} "
                    f"within {timeout_s:g} s; is this the willowec pressure mat, and is it powered?")
            got = self._pump(min(left, 0.05))
        self.info = {"protocol": PROTOCOL, "kind": "mat", "model": "willowec/pressure-mat (RP2040)",
                     "rows": ROWS, "cols": COLS, "pitch_mm": PITCH_MM, "belt_axis": "rows", "dtype": "u8",
                     "adc_bits": 8, "rate_hz": self.rate_hz, "clock_hz": self.clock_hz,
                     "time": "host arrival (the board has no clock)"}
        check_info(self.info, self.cfg, self.name, self.where)
        return self.info

    def read(self, timeout_s: float = 0.05) -> SampleBatch | None:
        """All frames completed since the last call (None when there are none)."""
        self._pump(0.0 if self._queued else timeout_s)
        if not self._queued:
            return None
        parts, self._queued = self._queued, []
        seq = np.concatenate([q[0] for q in parts])
        values = np.concatenate([q[1] for q in parts])
        host = np.concatenate([np.full(len(q[0]), q[2], np.int64) for q in parts])
        # no device clock: arrival time, frames of one read spread back at the nominal period, kept increasing
        k = len(seq)
        back = np.concatenate([np.arange(len(q[0]) - 1, -1, -1) for q in parts]) * self._period_ns
        t = host - back
        t = np.maximum(t, self._last_t + 1 + np.arange(k))
        t = np.maximum.accumulate(t - np.arange(k)) + np.arange(k)  # strictly increasing
        self._last_t = int(t[-1])
        return self._batch(seq, t.astype(np.uint64), values.reshape(k, FRAME_BYTES), host)  # row-major, flat


def check_rig_entry(entry: dict, where: str, get) -> DeviceConfig:
    """Validate a ``protocol = "willowec-mat"`` rig entry (see ``docs/rig.md``)."""
    misplaced = sorted(set(entry) - set(RIG_KEYS))
    if misplaced:
        raise ConfigError(f"{where}: {', '.join(map(repr, misplaced))} do not apply to the willowec mat "
                          f"(its geometry is fixed: {ROWS} x {COLS}); allowed: {', '.join(RIG_KEYS)}")
    port = get("port", str, lambda v: bool(v.strip()), "a non-empty string (a port or URL)")
    if port is None:
        raise ConfigError(f"{where}: missing 'port' (the mat's serial port, e.g. /dev/ttyACM0)")
    rate_hz = get("rate_hz", int, lambda v: 0 < v <= 1000, "an integer 1-1000 (the mat's frame rate)")
    if rate_hz is None:
        raise ConfigError(f"{where}: the willowec mat needs 'rate_hz' (its frame rate, about 49 for board v2)")
    baudrate = get("baudrate", int, lambda v: v > 0, "a positive integer")
    required = get("required", bool)
    return DeviceConfig(name=entry["name"], port=port, protocol=PROTOCOL, baudrate=baudrate or DEFAULT_BAUDRATE,
                        rate_hz=rate_hz, kind="mat", sensels=FRAME_BYTES,
                        required=True if required is None else required)


def open_willowec(cfg: DeviceConfig, timeout_s: float = 0.05) -> WillowecMat:
    """The mat of a ``protocol = "willowec-mat"`` rig entry on its serial port (not yet identified)."""
    try:
        port = open_port(cfg.port, baudrate=cfg.baudrate, timeout_s=timeout_s)
    except DeviceError as exc:
        raise type(exc)(f"{cfg.name}: {exc}") from exc
    return WillowecMat(port, cfg)
