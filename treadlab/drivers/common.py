"""What every driver shares: counters, sequence-gap counting, the check of INFO against the rig, layouts.

:class:`DeviceBase` holds the state every :class:`~treadlab.drivers.base.Device` has (identity, counters, LOG
and PONG queues, the calibration) and builds the :class:`~treadlab.kinds.DeviceDescription` from it;
:class:`ByteStreamDevice` adds a byte-stream transport (a pyserial port object: serial, ``socket://``,
``rfc2217://``; composition, never inheritance from a port) read by one bulk read at a time. The LSL inlet
(:mod:`treadlab.drivers.lsl`) derives from :class:`DeviceBase` directly.
"""

from __future__ import annotations

import collections
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import serial

from treadlab.drivers.base import Calibration, DeviceConfig, PingResult, SampleBatch
from treadlab.drivers.transport import read_chunk
from treadlab.errors import ConfigError, DeviceError, DeviceMismatchError, ProtocolError
from treadlab.kinds import DeviceDescription, get_kind

#: At most this many LOG messages and PONGs are kept between drains; older ones are dropped and counted.
MAX_KEPT_MESSAGES = 1000


@dataclass
class DeviceStats:
    """Counters of one device connection; all monotonically increasing.

    Attributes
    ----------
    bytes, messages : int
        Bytes received, and good messages (binary) or good lines (line protocol).
    crc_errors, framing_errors, short_errors, oversize_errors, malformed : int
        Binary frames dropped, by reason (see :class:`~treadlab.drivers.protocol.DecoderStats`).
    samples : int
        Samples returned by ``read``.
    seq_gaps : int
        Sequence jumps (each jump counts once, whatever its size).
    lost_samples : int
        Samples missing inside forward sequence jumps.
    bad_lines, comment_lines : int
        Line protocol: lines skipped because they do not parse or have the wrong field count; ``#`` lines.
    dropped_before_info : int
        DATA that arrived before the device was identified, dropped because more than the driver keeps until
        INFO came first (binary devices keep the rest and check it against INFO's layout).
    dropped_messages : int
        LOG messages or PONGs dropped because nobody drained them.
    """

    bytes: int = 0
    messages: int = 0
    crc_errors: int = 0
    framing_errors: int = 0
    short_errors: int = 0
    oversize_errors: int = 0
    malformed: int = 0
    samples: int = 0
    seq_gaps: int = 0
    lost_samples: int = 0
    bad_lines: int = 0
    comment_lines: int = 0
    dropped_before_info: int = 0
    dropped_messages: int = 0

    @property
    def errors(self) -> int:
        """Every frame or line dropped as damaged."""
        return (self.crc_errors + self.framing_errors + self.short_errors + self.oversize_errors + self.malformed
                + self.bad_lines)

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for status lines and files)."""
        d = asdict(self)
        d["errors"] = self.errors
        return d


def sequence_jumps(last_seq: int | None, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the sequence numbers of a batch jump: the one detection of sequence gaps (vectorised, 2**32 wrap).

    Used by the drivers' counters (:class:`SeqTracker`) and by the acquisition's gap table
    (:func:`treadlab.acquisition.worker.seq_gaps`), so both count the same jumps.

    Parameters
    ----------
    last_seq : int or None
        Sequence number of the sample before the batch (None: no jump can precede the first sample).
    seq : ndarray of uint32

    Returns
    -------
    at : ndarray of int64
        Index in ``seq`` of the first sample after each jump.
    step : ndarray of uint32
        The step of each jump (uint32 arithmetic: 1 is no jump, 2**31 and more is a step backwards).
    prev : ndarray of int64
        The sequence number before each jump.
    """
    s = np.asarray(seq).astype(np.uint32, copy=False)
    first_prev = np.uint32(last_seq if last_seq is not None else (int(s[0]) - 1) % 2**32)
    # uint32 arithmetic wraps, so a step over 2**32 is 1 like any other; backward jumps are huge values.
    d = np.diff(s, prepend=first_prev).astype(np.uint32, copy=False)
    at = np.flatnonzero(d != 1)
    prev = np.where(at > 0, s[np.maximum(at - 1, 0)].astype(np.int64), np.int64(first_prev))
    return at, d[at], prev


class SeqTracker:
    """Counts sequence gaps and lost samples across batches (:func:`sequence_jumps`)."""

    def __init__(self) -> None:
        self.last: int | None = None

    def reset(self) -> None:
        """Forget the last sequence number (after START or a reconnection)."""
        self.last = None

    def update(self, seq: np.ndarray, stats: DeviceStats) -> None:
        """Count gaps in ``seq`` (uint32) and between the previous batch and this one into ``stats``."""
        if len(seq) == 0:
            return
        _, step, _ = sequence_jumps(self.last, seq)
        if len(step):
            stats.seq_gaps += len(step)
            fwd = step[step < 2**31]
            stats.lost_samples += int(np.sum(fwd.astype(np.int64) - 1))
        self.last = int(seq[-1])


def check_info(info: dict, cfg: DeviceConfig | None, name: str, port: str) -> None:
    """Check INFO against what the rig file says (kind, side, sensels, serial, and the kind's own rig keys).

    Raises
    ------
    DeviceMismatchError
        Naming the device, the port, the key, what the rig file says and what the device says.
    """
    if cfg is None:
        return
    checks = [("kind", cfg.kind), ("side", cfg.side), ("sensels", cfg.sensels), ("serial", cfg.serial),
              *cfg.expect.items()]  # a kind's own rig keys (Kind.rig_keys: an imu's placement)
    for key, expected in checks:
        if expected is None:
            continue
        got = info.get(key)
        if key == "sensels":  # the values per sample, whatever the kind's shape
            got = int(np.prod(get_kind(info.get("kind"), name).shape(info)))
        if got != expected and str(got) != str(expected):
            raise DeviceMismatchError(
                f"{name}: the device on {port} is not what the rig file says: {key} is {got!r}, "
                f"the rig file says {expected!r}"
            )


def require_keys(info: dict, keys: tuple[str, ...], name: str) -> None:
    """Raise :class:`ProtocolError` if INFO lacks one of ``keys``."""
    missing = [k for k in keys if k not in info]
    if missing:
        raise ProtocolError(f"{name}: INFO lacks {', '.join(missing)} (not a protocol v1 device?)")


def resolve_layout(layout: Any, sensels: int | None, name: str) -> dict | None:
    """Turn a layout name or inline table into a dict with ``foot_length_mm``, ``positions_mm``, ``areas_mm2``.

    A name is looked up with :func:`treadlab.drivers.layouts.load_layout`; an inline table is checked. Returns
    None when there is no layout.
    """
    if layout is None:
        return None
    from treadlab.drivers.layouts import load_layout  # late: layouts read data files

    try:
        lay = load_layout(layout)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from exc
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise ConfigError(f"{name}: unusable layout {layout!r}: {exc}") from exc
    out = {
        "name": layout if isinstance(layout, str) else getattr(lay, "name", "inline"),
        "foot_length_mm": float(lay.foot_length_mm),
        "positions_mm": np.asarray(lay.positions_mm, dtype=np.float64),
        "areas_mm2": np.asarray(lay.areas_mm2, dtype=np.float64),
    }
    if getattr(lay, "outline_mm", None) is not None:
        out["outline_mm"] = np.asarray(lay.outline_mm, dtype=np.float64)
    if sensels is not None and len(out["positions_mm"]) != sensels:
        raise DeviceMismatchError(
            f"{name}: layout {out['name']!r} has {len(out['positions_mm'])} sensels, the device has {sensels}"
        )
    return out


class DeviceBase:
    """Identity, counters, LOG and PONG queues, calibration and the description; shared by every driver.

    Parameters
    ----------
    cfg : DeviceConfig or None
        What the rig file says about the device; checked by ``identify``.
    name : str
        Name when there is no rig entry (a probe).
    """

    protocol = ""
    supports_ping = False
    #: The samples are markers (texts), not values (an LSL string stream).
    markers = False
    #: The device time is the host clock (an LSL stream).
    host_clock = False

    def __init__(self, cfg: DeviceConfig | None = None, name: str = "") -> None:
        self.cfg = cfg
        self.name = cfg.name if cfg is not None else name
        self.stats = DeviceStats()
        self.info: dict | None = None
        self.kind: str | None = None
        self.side: str | None = None
        self.n_values = 0
        self.shape: tuple[int, ...] = ()
        self.dtype: np.dtype | None = None
        self.clock_hz = 0
        self.rate_hz = 0
        self.serial: str | None = None
        self.layout: dict | None = None
        self.calibration: Calibration | None = None
        self._seq = SeqTracker()
        self._logs: collections.deque = collections.deque()
        self._pongs: collections.deque = collections.deque()

    @property
    def where(self) -> str:
        """Where the device is (its port, URL or stream), for messages."""
        return self.name

    def describe(self) -> DeviceDescription:
        """The identified device as the session file stores it (see :class:`~treadlab.kinds.DeviceDescription`).

        Raises
        ------
        DeviceError
            The device has not been identified yet.
        """
        if self.info is None or self.kind is None:
            raise DeviceError(f"{self.name}: describe() before identify()")
        kind = get_kind(self.kind, self.name)
        shape = tuple(int(s) for s in self.shape)
        attrs, data = kind.geometry(self.info, shape, self.layout)
        return DeviceDescription(
            name=self.name, kind=self.kind, protocol=self.protocol, shape=shape, dtype=np.dtype(self.dtype),
            rate_hz=float(self.rate_hz), clock_hz=float(self.clock_hz), serial=self.serial or "",
            side=self.side or "", info=self.info, calibration=self.calibration, layout=self.layout,
            layout_attrs=attrs, layout_data=data, channel_labels=kind.channel_labels(shape, self.info),
            channel_units=kind.channel_units(shape, self.info, self.calibration.unit if self.calibration else "raw"),
            markers=self.markers, host_clock=self.host_clock, supports_ping=self.supports_ping)

    def _keep(self, queue: collections.deque, item: Any) -> None:
        if len(queue) >= MAX_KEPT_MESSAGES:
            queue.popleft()
            self.stats.dropped_messages += 1
        queue.append(item)

    def _batch(self, seq: np.ndarray, t: np.ndarray, values: np.ndarray, host_ns: np.ndarray) -> SampleBatch:
        """The one place sequence gaps are counted (driver counters; the worker's gap table reads them)."""
        self._seq.update(seq, self.stats)
        self.stats.samples += len(seq)
        return SampleBatch(seq=seq, device_time=t, values=values, host_time_ns=host_ns)

    def send_ping(self) -> int | None:
        """No PING on this device: does nothing (``drain_pongs`` stays empty)."""
        return None

    def drain_logs(self) -> list[tuple[int, int, str]]:
        """LOG messages received since the last call, as ``(host_ns, level, text)``."""
        out = list(self._logs)
        self._logs.clear()
        return out

    def drain_pongs(self) -> list[PingResult]:
        """PING round trips completed since the last call (collected by :meth:`read`)."""
        out = list(self._pongs)
        self._pongs.clear()
        return out

    def close(self) -> None:
        """Release the transport (safe to call more than once)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {self.where} kind={self.kind} side={self.side}>"


class ByteStreamDevice(DeviceBase):
    """A device behind a byte-stream transport (serial port, ``socket://``, ``rfc2217://``).

    The transport is read in one place, :meth:`_read_raw` (one bulk read, host receive time stamped); the
    driver's ``_pump`` feeds those bytes to its decoder. A message source (one datagram = one message) is the
    other seam: see docs/design.md, "Transports and message sources".

    Parameters
    ----------
    port : serial.SerialBase
        An open port (see :func:`~treadlab.drivers.transport.open_port`); the device owns it from now on.
    cfg : DeviceConfig or None
        What the rig file says about the device; checked by ``identify``.
    """

    def __init__(self, port: serial.SerialBase, cfg: DeviceConfig | None = None) -> None:
        super().__init__(cfg, name=str(port.port))
        self.port = port
        self._read_timeout_s = port.timeout

    @property
    def where(self) -> str:
        """The port or URL."""
        return str(self.port.port)

    def _read_raw(self, timeout_s: float) -> tuple[bytes, int]:
        """One bulk read with ``timeout_s``; returns the bytes and ``monotonic_ns`` when the read returned."""
        if timeout_s != self._read_timeout_s:
            self.port.timeout = timeout_s
            self._read_timeout_s = timeout_s
        chunk = read_chunk(self.port, self.name)
        host_ns = time.monotonic_ns()
        self.stats.bytes += len(chunk)
        return chunk, host_ns

    def close(self) -> None:
        """Close the port (safe to call more than once; the device cannot be used afterwards)."""
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass  # the port is gone already
