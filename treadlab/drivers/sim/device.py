"""Pure logic of a simulated device: specification, command handling, state machine and message production.

No I/O and no clock reading here: every method takes the true time (``time.monotonic_ns`` domain) it acts at and
returns the bytes the device puts on its link, so the whole device is testable with synthetic times and without a
pseudo-terminal. :mod:`treadlab.drivers.sim.serve` runs one of these per process behind a pty.

Two devices:

* :class:`SimBinaryDevice` speaks protocol v1 (:mod:`treadlab.drivers.protocol`): IDENTIFY -> INFO, START/STOP -> ACK,
  SET_RATE -> ACK or NAK 3, GET_CALIBRATION -> CALIBRATION, PING -> PONG, anything else -> NAK 1; DATA while
  started (nothing after STOP's ACK); LOG at start-up, at START and on injected faults.
* :class:`SimLineDevice` streams ASCII lines ``t,v1,...,vN`` from power-up and ignores what it receives.

Samples are generated in blocks of ``block_ms`` and handed out as they fall due; every sample the device takes
(sent, lost or corrupted) is recorded as ``(seq, true_time_ns)`` ground truth, and those a self-powered device
takes while its cable is out (:meth:`SimDevice.drop`) are recorded once more as never sent.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from treadlab.drivers import protocol as p
from treadlab.drivers.sim.clock import DeviceClock, SampleSchedule
from treadlab.drivers.sim.signals import SignalSource, make_source
from treadlab.drivers.sim.spec import (
    DeliveryParams,
    FaultParams,
    SimDeviceSpec,
    default_calibration,
    layout_sensels,
)

__all__ = ["TRUTH_DTYPE", "DeliveryParams", "FaultParams", "SimBinaryDevice", "SimDevice", "SimDeviceSpec",
           "SimDeviceStats", "SimLineDevice", "default_calibration", "layout_sensels", "make_device"]

TRUTH_DTYPE = np.dtype([("seq", "<u4"), ("t_ns", "<i8")])
LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR = 10, 20, 30, 40


@dataclass
class SimDeviceStats:
    """What a simulated device did since the process started."""

    samples_n: int = 0
    sent_n: int = 0
    lost_n: int = 0
    corrupted_n: int = 0
    overrun_n: int = 0
    commands_n: int = 0
    power_ups_n: int = 0
    offline_n: int = 0


class _Pending:
    """Generated samples not yet taken: their true times, seq, and their encoded bytes with message ends."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.t_ns = np.empty(0, np.int64)
        self.seq = np.empty(0, np.uint32)
        self.ends = np.empty(0, np.int64)  # byte end of each sample's message (lost samples add no bytes)
        self.flags = np.empty(0, np.uint8)  # 0 sent, 1 lost, 2 corrupted
        self.buf = b""
        self.i = 0  # first sample not yet taken

    def append(self, t_ns: np.ndarray, seq: np.ndarray, buf: bytes, lengths: np.ndarray, flags: np.ndarray) -> None:
        base = int(self.ends[-1]) if len(self.ends) else 0
        start = int(self.ends[self.i - 1]) if self.i else 0
        self.t_ns = np.concatenate([self.t_ns[self.i:], t_ns])
        self.seq = np.concatenate([self.seq[self.i:], seq])
        self.flags = np.concatenate([self.flags[self.i:], flags])
        self.ends = np.concatenate([self.ends[self.i:], base + np.cumsum(lengths)]) - start
        self.buf = self.buf[start:] + buf
        self.i = 0

    @property
    def last_t_ns(self) -> int | None:
        return int(self.t_ns[-1]) if len(self.t_ns) else None

    def take(self, now_ns: int) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
        j = int(np.searchsorted(self.t_ns, now_ns, side="right"))
        if j <= self.i:
            return b"", self.seq[:0], self.t_ns[:0], self.flags[:0]
        a = int(self.ends[self.i - 1]) if self.i else 0
        b = int(self.ends[j - 1])
        out = (self.buf[a:b], self.seq[self.i:j], self.t_ns[self.i:j], self.flags[self.i:j])
        self.i = j
        return out


class SimDevice:
    """Base of the simulated devices: schedule, value generation, loss, corruption, ground truth.

    Parameters
    ----------
    spec : SimDeviceSpec
    t_epoch_ns : int
        Common epoch of the rig (true time); the device clock reads ``spec.offset_ticks`` then.
    runner : object or None
        ``RunnerParams`` of the gait model, shared by all devices of a rig.
    """

    def __init__(self, spec: SimDeviceSpec, t_epoch_ns: int, runner: Any = None) -> None:
        self.spec = spec
        self.t_epoch_ns = int(t_epoch_ns)
        self.rng = np.random.default_rng([spec.seed, 7])
        self.gain, self.offset = default_calibration(spec, np.random.default_rng([spec.seed, 1]))
        self.source: SignalSource = make_source(spec, runner, self.t_epoch_ns, self.gain, self.offset)
        self.faults = FaultParams(**asdict(spec.faults))
        self.stats = SimDeviceStats()
        self.clock = DeviceClock(spec.clock_hz, spec.drift_ppm, spec.offset_ticks, self.t_epoch_ns)
        self.rate_hz = spec.rate_hz
        self.running = False
        self.seq_next = spec.seq_start
        self._schedule: SampleSchedule | None = None
        self._pending = _Pending()
        self._truth: list[np.ndarray] = []
        self._offline: list[np.ndarray] = []

    # ----------------------------------------------------------------------------------- lifecycle

    def power_up(self, now_ns: int, reset_clock: bool = False) -> bytes:
        """Reset to the state after power-up; returns what the device sends at once (nothing by default).

        With ``reset_clock`` the device clock restarts near zero at ``now_ns`` (a replug power-cycles it).
        """
        self.stats.power_ups_n += 1
        if reset_clock:
            self.clock = DeviceClock(self.spec.clock_hz, self.spec.drift_ppm,
                                     int(self.rng.integers(0, self.spec.clock_hz // 100 + 1)), int(now_ns))
        self.rate_hz = self.spec.rate_hz
        self.seq_next = self.spec.seq_start
        self._pending.clear()
        self.running = False
        self._schedule = None
        return b""

    def greeting(self, now_ns: int) -> bytes:
        """What the device says when the host first opens its port: ``garbage_at_start`` random bytes, then
        a LOG (binary) or a ``#`` comment line (line protocol).
        """
        garbage = self.rng.integers(0, 256, self.faults.garbage_at_start, dtype=np.uint8).tobytes()
        return self.take(now_ns) + garbage + self._greeting(now_ns)

    def _greeting(self, now_ns: int) -> bytes:
        return b""

    def _discard_pending(self) -> None:
        """Forget generated samples that were never taken (their seq numbers are used again)."""
        pend = self._pending
        if pend.i < len(pend.seq):
            self.seq_next = int(pend.seq[pend.i])
        pend.clear()

    def _start_stream(self, now_ns: int) -> None:
        self.running = True
        self._discard_pending()
        self._schedule = SampleSchedule.starting_after(self.clock, self.rate_hz, now_ns)
        if hasattr(self.source, "set_rate"):  # sources whose noise depends on the rate (IMUs)
            self.source.set_rate(self.rate_hz)

    def _stop_stream(self, now_ns: int) -> bytes:
        out = self.take(now_ns)
        self.running = False
        self._discard_pending()
        self._schedule = None
        return out

    # ----------------------------------------------------------------------------------- samples

    def next_due_ns(self) -> int | None:
        """True time of the next sample (None when not streaming)."""
        if not self.running or self._schedule is None:
            return None
        if self._pending.i < len(self._pending.t_ns):
            return int(self._pending.t_ns[self._pending.i])
        return self._schedule.next_true_ns()

    def take(self, now_ns: int) -> bytes:
        """Encoded samples taken up to true time ``now_ns`` (in order); records their ground truth."""
        if not self.running:
            return b""
        horizon = now_ns + int(self.spec.block_ms * 1e6)
        last = self._pending.last_t_ns
        if last is None or last < now_ns:
            self._generate(horizon)
        out, seq, t_ns, flags = self._pending.take(now_ns)
        if len(seq):
            counts = np.bincount(flags, minlength=3)
            self.stats.sent_n += int(counts[0] + counts[2])
            self.stats.lost_n += int(counts[1])
            self.stats.corrupted_n += int(counts[2])
            rec = np.empty(len(seq), TRUTH_DTYPE)
            rec["seq"] = seq
            rec["t_ns"] = t_ns
            self._truth.append(rec)
            self.stats.samples_n += len(seq)
        return out

    def drop(self, now_ns: int) -> int:
        """Take the samples due up to ``now_ns`` and throw their bytes away (a self-powered device whose cable is
        out); they are ground truth like every sample taken, and also kept as never sent (:meth:`pop_offline`).

        Returns
        -------
        int
            Samples dropped.
        """
        n_truth, sent_n = len(self._truth), self.stats.sent_n
        self.take(now_ns)
        self.stats.sent_n = sent_n  # taken, not sent
        if len(self._truth) == n_truth:
            return 0
        rec = np.concatenate(self._truth[n_truth:])
        self._offline.append(rec)
        self.stats.offline_n += len(rec)
        return len(rec)

    def pop_offline(self) -> np.ndarray:
        """Records (``TRUTH_DTYPE``) of the samples :meth:`drop` threw away since the last call."""
        if not self._offline:
            return np.empty(0, TRUTH_DTYPE)
        out = np.concatenate(self._offline)
        self._offline.clear()
        return out

    def reset_link(self) -> None:
        """Forget a command half received when the cable went out (a replug of a self-powered device)."""

    def prefetch(self, now_ns: int) -> None:
        """Generate the next block ahead of need (the server calls this right after writing, when idle)."""
        if not self.running:
            return
        block_ns = int(self.spec.block_ms * 1e6)
        last = self._pending.last_t_ns
        if last is None or last < now_ns + block_ns // 2:
            self._generate(max(last if last is not None else now_ns, now_ns) + block_ns)

    def _generate(self, until_ns: int) -> None:
        ticks, t_ns = self._schedule.next_block(until_ns)
        k = len(ticks)
        if k == 0:
            return
        seq = ((np.arange(k, dtype=np.uint64) + np.uint64(self.seq_next)) % np.uint64(2**32)).astype(np.uint32)
        self.seq_next = int((self.seq_next + k) % 2**32)
        keep = self.rng.random(k) >= self.faults.loss_rate if self.faults.loss_rate > 0 else np.ones(k, bool)
        raw = self.source.raw(t_ns[keep])
        buf = self._encode(seq[keep], ticks[keep], raw) if keep.any() else b""  # a block may lose every sample
        arr = np.frombuffer(buf, np.uint8)
        ends = np.flatnonzero(arr == self._delimiter) + 1
        flags = np.where(keep, 0, 1).astype(np.uint8)
        if self.faults.corrupt_rate > 0 and len(ends):
            arr, hit = self._corrupt(arr.copy(), ends)
            flags[np.flatnonzero(keep)[hit]] = 2
            buf = arr.tobytes()
        lengths = np.zeros(k, np.int64)
        lengths[keep] = np.diff(ends, prepend=0)
        self._pending.append(t_ns, seq, buf, lengths, flags)

    _delimiter = 0

    def _corrupt(self, arr: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flip one byte in a random ``corrupt_rate`` fraction of the messages (never the delimiter)."""
        hit = np.flatnonzero(self.rng.random(len(ends)) < self.faults.corrupt_rate)
        if not len(hit):
            return arr, hit
        starts = np.concatenate([[0], ends[:-1]])[hit]
        last = ends[hit] - 2  # any byte but the delimiter itself
        pos = starts + (self.rng.random(len(hit)) * np.maximum(last - starts + 1, 1)).astype(np.int64)
        arr[pos] = self._bad_bytes(arr[pos])
        return arr, hit

    def _bad_bytes(self, orig: np.ndarray) -> np.ndarray:
        flip = self.rng.integers(1, 256, len(orig), dtype=np.uint16).astype(np.uint8)
        flip = np.where(flip == orig, (orig % 255) + 1, flip).astype(np.uint8)  # never produce 0x00
        return orig ^ flip

    def _encode(self, seq: np.ndarray, ticks: np.ndarray, raw: np.ndarray) -> bytes:
        raise NotImplementedError

    def pop_truth(self) -> np.ndarray:
        """Ground-truth records (``TRUTH_DTYPE``) of the samples taken since the last call."""
        if not self._truth:
            return np.empty(0, TRUTH_DTYPE)
        out = np.concatenate(self._truth)
        self._truth.clear()
        return out

    # ----------------------------------------------------------------------------------- host side

    def receive(self, data: bytes, now_ns: int) -> bytes:
        """Bytes from the host at ``now_ns``; returns the device's output (samples due first, then replies)."""
        return b""

    def set_fault(self, key: str, value: float) -> bytes:
        """Change a fault switch at run time; returns a LOG warning (binary devices) or nothing."""
        if key not in ("corrupt_rate", "loss_rate", "garbage_at_start"):
            raise ValueError(f"unknown fault {key!r}")
        setattr(self.faults, key, int(value) if key == "garbage_at_start" else float(value))
        return b""

    def log(self, level: int, text: str) -> bytes:
        """A LOG message (binary devices; line devices cannot log)."""
        return b""


class SimBinaryDevice(SimDevice):
    """A protocol v1 device (insole, mat, imu or instrumented treadmill)."""

    def info(self) -> dict:
        """The INFO object of this device."""
        s = self.spec
        info = {"protocol": p.PROTOCOL_VERSION, "kind": s.kind, "model": s.model, "serial": s.serial,
                "firmware": s.firmware, "dtype": s.dtype, "adc_bits": s.adc_bits, "rate_hz": int(self.rate_hz),
                "rates_hz": [int(r) for r in s.rates_hz], "clock_hz": int(s.clock_hz)}
        if s.kind == "insole":
            info.update(side=s.side, sensels=s.n_values, layout=s.layout)
        elif s.kind == "imu":
            info.update(channels=list(s.channels), placement=s.placement, range_g=float(s.range_g))
            if any(c.startswith("g") for c in s.channels):
                info["range_dps"] = float(s.range_dps)
            if any(c.startswith("m") for c in s.channels):
                info["range_ut"] = float(s.range_ut)
        elif s.kind == "force":
            from treadlab.drivers.sim.treadmill import TreadmillParams, force_info

            info.update(force_info(TreadmillParams.from_any(s.treadmill)))
            del info["adc_bits"]
        else:
            info.update(rows=int(s.rows), cols=int(s.cols), pitch_mm=list(s.pitch_mm or [10.0, 10.0]),
                        belt_axis=s.belt_axis)
        return info

    def _greeting(self, now_ns: int) -> bytes:
        return p.encode_log(LOG_INFO, f"{self.spec.model} {self.spec.serial} firmware {self.spec.firmware} ready")

    def log(self, level: int, text: str) -> bytes:
        """A LOG frame."""
        return p.encode_log(level, text)

    def set_fault(self, key: str, value: float) -> bytes:
        """Set a fault switch and announce it in a LOG frame."""
        super().set_fault(key, value)
        return p.encode_log(LOG_WARNING, f"fault injection: {key} = {value:g}")

    def _encode(self, seq: np.ndarray, ticks: np.ndarray, raw: np.ndarray) -> bytes:
        return p.encode_data_block(seq, ticks, raw, self.spec.dtype)

    def reset_link(self) -> None:
        """Forget a half-received command frame (the cable was pulled)."""
        self._decoder = p.FrameDecoder()

    def receive(self, data: bytes, now_ns: int) -> bytes:
        """Decode host commands; the bytes of the answers."""
        if not hasattr(self, "_decoder"):
            self._decoder = p.FrameDecoder()
        datas, messages = self._decoder.feed(data)
        messages += [(p.DATA, raw[1:-4]) for raw in datas]  # DATA is no command: NAK 1 like any unknown type
        out = [self.take(now_ns)]
        for msg_type, body in messages:
            out.append(self.handle(msg_type, body, now_ns))
        return b"".join(out)

    def handle(self, msg_type: int, body: bytes, now_ns: int) -> bytes:
        """Answer one decoded command received at true time ``now_ns``."""
        self.stats.commands_n += 1
        if msg_type == p.IDENTIFY:
            return p.encode_info(self.info())
        if msg_type == p.START:
            if self.running:
                return p.encode_ack(p.START)
            self._start_stream(now_ns)
            return p.encode_ack(p.START) + p.encode_log(LOG_INFO, f"streaming at {self.rate_hz} Hz")
        if msg_type == p.STOP:
            return self._stop_stream(now_ns) + p.encode_ack(p.STOP)
        if msg_type == p.SET_RATE:
            if len(body) != 2:
                return p.encode_nak(p.SET_RATE, p.NAK_BAD_ARGUMENT, f"SET_RATE body is {len(body)} bytes, not 2")
            (rate,) = struct.unpack("<H", body)
            if rate not in self.spec.rates_hz:
                return p.encode_nak(p.SET_RATE, p.NAK_UNSUPPORTED_RATE,
                                    f"rate {rate} Hz not supported (supported: {list(self.spec.rates_hz)})")
            out = b""
            if self.running and rate != self.rate_hz:
                out = self._stop_stream(now_ns)
                self.rate_hz = rate
                self._start_stream(now_ns)
            self.rate_hz = rate
            return out + p.encode_ack(p.SET_RATE)
        if msg_type == p.GET_CALIBRATION:
            unit = {"imu": "imu", "force": "force"}.get(self.spec.kind, "N")  # imu/treadmill: a unit per channel
            return p.encode_calibration((self.spec.calibration or {}).get("unit", unit), self.gain, self.offset)
        if msg_type == p.PING:
            if len(body) != 8:
                return p.encode_nak(p.PING, p.NAK_BAD_ARGUMENT, f"PING body is {len(body)} bytes, not 8")
            (host_ns,) = struct.unpack("<Q", body)
            return p.encode_pong(host_ns, int(self.clock.ticks_at(now_ns)))
        return p.encode_nak(msg_type, p.NAK_UNKNOWN_COMMAND, f"unknown command {p.describe(msg_type)}")


class SimLineDevice(SimDevice):
    """A line-protocol insole: ``t,v1,...,vN`` lines from power-up, no commands."""

    _delimiter = ord("\n")

    def _greeting(self, now_ns: int) -> bytes:
        s = self.spec
        text = (f"# treadlab-sim {s.model} serial={s.serial} side={s.side} sensels={s.n_values} "
                f"rate_hz={s.rate_hz} time_unit={s.time_unit}{s.line_ending}")
        return text.encode("ascii")

    def power_up(self, now_ns: int, reset_clock: bool = False) -> bytes:
        """Start (or restart) the device; the bytes it sends first."""
        out = super().power_up(now_ns, reset_clock)
        self._start_stream(now_ns)
        return out

    def _bad_bytes(self, orig: np.ndarray) -> np.ndarray:
        return np.full(len(orig), ord("x"), np.uint8)

    def _encode(self, seq: np.ndarray, ticks: np.ndarray, raw: np.ndarray) -> bytes:
        s = self.spec
        k, n = raw.shape
        if not k:
            return b""
        if s.decimals > 0:
            vals = self.gain * (raw.astype(np.float32) - self.offset)
            vfmt = f"%.{s.decimals}f"
        else:
            vals = raw
            vfmt = "%d"
        table = np.empty((k, n + 1), dtype=object)  # one C-level %-format over the whole block
        table[:, 0] = ticks.astype(np.int64)
        table[:, 1:] = vals
        line = "%d," + ",".join([vfmt] * n) + s.line_ending
        return ((line * k) % tuple(table.ravel().tolist())).encode("ascii")

    def receive(self, data: bytes, now_ns: int) -> bytes:
        """A line device ignores the host's bytes; the lines due by ``now_ns``."""
        return self.take(now_ns)


def make_device(spec: SimDeviceSpec, t_epoch_ns: int, runner: Any = None) -> SimDevice:
    """The device logic for ``spec``: a :class:`SimBinaryDevice` or a :class:`SimLineDevice`."""
    cls = SimBinaryDevice if spec.protocol == "binary" else SimLineDevice
    return cls(spec, t_epoch_ns, runner)
