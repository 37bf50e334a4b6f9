r"""Driver of line-protocol insoles: ASCII lines ``t,v1,...,vN`` (``\n`` or ``\r\n``), no commands.

The rig file supplies what such a device cannot say about itself (side, sensels, layout, rate, time unit,
calibration), and :meth:`LineDevice.identify` synthesises an INFO-like dict from it (``protocol: "line"``) so the
acquisition treats both kinds of device alike. Parsing is vectorised: numpy finds the line bounds, validates
characters and field counts over the whole byte buffer, and all valid lines are converted in one call; a
per-line slow path runs only when that conversion fails (a rare odd line such as ``1.2.3``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import serial

from treadlab.drivers.base import Calibration, DeviceConfig, PingResult, SampleBatch
from treadlab.drivers.common import ByteStreamDevice, resolve_layout
from treadlab.errors import CommandRejectedError, ConfigError, DeviceMismatchError, DeviceTimeoutError
from treadlab.kinds import get_kind

TIME_UNITS_HZ = {"ms": 1_000, "us": 1_000_000}
#: A run of bytes without a newline longer than this is dropped and counted as one bad line.
MAX_LINE_BYTES = 64 * 1024

_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[np.frombuffer(b"0123456789.,-+eE \t\r", dtype=np.uint8)] = True
_SPACE = np.zeros(256, dtype=bool)
_SPACE[np.frombuffer(b" \t\r", dtype=np.uint8)] = True
_NL, _CR, _COMMA, _HASH = 10, 13, 44, 35


@dataclass
class ParsedLines:
    """Result of :func:`parse_lines`.

    Attributes
    ----------
    t : ndarray of int64, shape (k,)
        Time column of the valid lines, in the device's unit.
    values : ndarray of float32, shape (k, n_values)
    bad_lines, comment_lines : int
        Lines skipped (unparseable or wrong field count), and ``#`` lines.
    wrong_fields : int or None
        Field count of the last line skipped for having the wrong number of fields (for error messages).
    """

    t: np.ndarray
    values: np.ndarray
    bad_lines: int
    comment_lines: int
    wrong_fields: int | None


def _per_line(mask: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Number of True entries of ``mask`` inside each line ``[start, end)``."""
    cs = np.concatenate(([0], np.cumsum(mask, dtype=np.int64)))
    return cs[ends] - cs[starts]


def parse_lines(data: bytes, n_values: int) -> ParsedLines:
    r"""Parse complete lines ``t,v1,...,vN`` (``data`` ends with ``\n``), vectorised over the whole buffer.

    Parameters
    ----------
    data : bytes
        Whole lines, each ending with ``\n`` (a ``\r`` before it is allowed).
    n_values : int
        Values per line (sensels); a valid line has ``n_values + 1`` fields.

    Returns
    -------
    ParsedLines
        Blank lines are skipped silently; ``#`` lines are counted as comments; every other line that does
        not parse, has the wrong field count, or a time that is not a non-negative integer, is a bad line.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(arr == _NL)
    k_all = len(ends)
    empty = ParsedLines(np.zeros(0, np.int64), np.zeros((0, n_values), np.float32), 0, 0, None)
    if k_all == 0:
        return empty
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    nonspace = _per_line(~_SPACE[arr], starts, ends)
    blank = nonspace == 0
    first = arr[np.minimum(starts, len(arr) - 1)]
    comment = ~blank & (first == _HASH)
    badchar = _per_line(~_ALLOWED[arr] & (arr != _NL), starts, ends) > 0
    is_comma = arr == _COMMA
    commas = _per_line(is_comma, starts, ends)
    # Empty fields: a comma at the start of a line, or followed by another comma, \r or \n.
    nxt = np.empty_like(arr)
    nxt[:-1] = arr[1:]
    nxt[-1] = _NL
    empty_field = is_comma & ((nxt == _COMMA) | (nxt == _CR) | (nxt == _NL))
    empty_field[starts[first == _COMMA]] = True
    has_empty = _per_line(empty_field, starts, ends) > 0
    wrong_count = ~blank & ~comment & ~badchar & (commas != n_values)
    valid = ~blank & ~comment & ~badchar & ~wrong_count & ~has_empty
    n_comment = int(np.count_nonzero(comment))
    n_bad = int(np.count_nonzero(~blank & ~comment & ~valid))
    wrong_fields = int(commas[wrong_count][-1]) + 1 if wrong_count.any() else None
    k = int(np.count_nonzero(valid))
    if k == 0:
        return ParsedLines(empty.t, empty.values, n_bad, n_comment, wrong_fields)
    sel = arr[np.repeat(valid, ends - starts + 1)].copy()
    sel[sel == _NL] = _COMMA
    sel[sel == _CR] = ord(" ")
    tokens = sel.tobytes().split(b",")[:-1]
    try:
        num = np.array(tokens).astype(np.float64).reshape(k, n_values + 1)
    except ValueError:
        num, ok = _slow_parse(tokens, k, n_values)
        n_bad += int(np.count_nonzero(~ok))
        num = num[ok]
    t = num[:, 0]
    good = np.isfinite(num).all(axis=1) & (t >= 0) & (t == np.floor(t))
    if not good.all():
        n_bad += int(np.count_nonzero(~good))
        num = num[good]
    return ParsedLines(num[:, 0].astype(np.int64), num[:, 1:].astype(np.float32), n_bad, n_comment, wrong_fields)


def _slow_parse(tokens: list[bytes], k: int, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-line conversion, only when the bulk conversion failed: returns the numbers and which lines parsed."""
    width = n_values + 1
    num = np.zeros((k, width), dtype=np.float64)
    ok = np.ones(k, dtype=bool)
    for i in range(k):
        try:
            num[i] = np.array(tokens[i * width : (i + 1) * width]).astype(np.float64)
        except ValueError:
            ok[i] = False
    return num, ok


class LineDevice(ByteStreamDevice):
    """A line-protocol insole on an open port, described by its rig-file entry.

    Parameters
    ----------
    port : serial.SerialBase
        An open port with a finite timeout; owned from now on.
    cfg : DeviceConfig
        Must give ``side``, ``sensels``, ``rate_hz`` and ``time_unit`` (the rig loader checks this).

    Notes
    -----
    Line devices stream from power-up and take no commands: :meth:`start` only marks where the recording
    begins (samples before it are dropped, ``seq`` restarts at 0), :meth:`stop` does nothing on the wire,
    :meth:`set_rate` accepts only the rig file's rate, and they cannot answer PING (``supports_ping`` is False).
    """

    protocol = "line"
    supports_ping = False

    def __init__(self, port: serial.SerialBase, cfg: DeviceConfig) -> None:
        super().__init__(port, cfg)
        missing = [k for k in ("side", "sensels", "rate_hz", "time_unit") if getattr(cfg, k, None) is None]
        if missing:
            raise ConfigError(f"{self.name}: line-protocol devices need {', '.join(repr(m) for m in missing)}")
        if cfg.time_unit not in TIME_UNITS_HZ:
            raise ConfigError(f"{self.name}: time_unit must be 'ms' or 'us', not {cfg.time_unit!r}")
        kind = get_kind(cfg.kind or "insole", self.name)
        if not kind.line_protocol:
            raise ConfigError(f"{self.name}: line-protocol devices cannot be of kind {kind.name!r}")
        self._kind = kind.name
        self._rest = b""
        self._sync = True  # the port may open in the middle of a line: the first one is kept only if it is whole
        self._head: bytes | None = None
        self._pending: list[tuple[np.ndarray, np.ndarray, int]] = []
        self._next_seq = 0
        self._t_last: int | None = None
        self._t_wraps = 0
        self.wrong_fields: int | None = None

    def _pump(self, timeout_s: float) -> None:
        chunk, host_ns = self._read_raw(timeout_s)
        if not chunk:
            return
        buf = self._rest + chunk
        if self._sync:
            nl = buf.find(b"\n")
            if nl < 0:
                self._rest = buf[-MAX_LINE_BYTES:]
                return
            self._head = buf[: nl + 1]
            buf = buf[nl + 1 :]
            self._sync = False
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._rest = buf
            if len(buf) > MAX_LINE_BYTES:
                self.stats.bad_lines += 1
                self._rest = b""
                self._sync = True
            return
        self._rest = buf[cut + 1 :]
        res = parse_lines(buf[: cut + 1], self.cfg.sensels)
        st = self.stats
        st.bad_lines += res.bad_lines
        st.comment_lines += res.comment_lines
        st.messages += len(res.t)
        if res.wrong_fields is not None:
            self.wrong_fields = res.wrong_fields
        if len(res.t):
            if self._head is not None:
                self._keep_head(res.t[0], host_ns)
            self._pending.append((res.t, res.values, host_ns))

    def _keep_head(self, t_next: int, host_ns: int) -> None:
        """Keep the first line received if it is whole: it parses and its time is one sample period (within half
        a period) before the next line's. A line cut at the start has fewer fields or lost leading digits of its
        time, which puts that time far earlier.
        """
        head, self._head = parse_lines(self._head, self.cfg.sensels), None
        if len(head.t) != 1:
            return
        period = TIME_UNITS_HZ[self.cfg.time_unit] / float(self.cfg.rate_hz)
        if 0.5 * period <= int(t_next) - int(head.t[0]) <= 1.5 * period:
            self.stats.messages += 1
            self._pending.append((head.t, head.values, host_ns))

    def read(self, timeout_s: float = 0.05) -> SampleBatch | None:
        """One bulk read; all complete lines received since the last call, as a batch (values float32).

        Raises
        ------
        DeviceDisconnectedError
            The port vanished.
        """
        self._pump(0.0 if self._pending else timeout_s)
        if not self._pending:
            return None
        t = np.concatenate([x[0] for x in self._pending])
        values = np.concatenate([x[1] for x in self._pending])
        host = np.repeat(np.asarray([x[2] for x in self._pending], dtype=np.int64),
                         [len(x[0]) for x in self._pending])
        self._pending = []
        t = self._unwrap(t)
        k = len(t)
        seq = ((np.arange(k, dtype=np.int64) + self._next_seq) % 2**32).astype(np.uint32)
        self._next_seq = (self._next_seq + k) % 2**32
        return self._batch(seq, t, values, host)

    def _unwrap(self, t: np.ndarray) -> np.ndarray:
        """Undo the 2**32 wrap of a 32-bit time column (Arduino ``millis()`` after 49 days, ``micros()`` after 71 min).

        A step back by more than 2**31 between consecutive lines is a wrap; other steps back are kept as they are.
        """
        t = t.astype(np.int64)
        prev = self._t_last if self._t_last is not None else int(t[0])
        steps = np.diff(t, prepend=prev)
        wraps = np.cumsum(steps < -(2**31)) + self._t_wraps
        self._t_last = int(t[-1])
        self._t_wraps = int(wraps[-1])
        if self._t_wraps:
            t = t + wraps * 2**32
        return t.astype(np.uint64)

    def identify(self, timeout_s: float = 2.0, retries: int = 3) -> dict:
        """Wait for a valid line, check its field count, and synthesise INFO from the rig file.

        ``retries`` is accepted for interface compatibility (a line device is only listened to).

        Raises
        ------
        DeviceTimeoutError
            No valid line within ``timeout_s``.
        DeviceMismatchError
            The lines have another number of values than the rig file's ``sensels``.
        """
        cfg = self.cfg
        deadline = time.monotonic() + timeout_s
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._pump(min(left, 0.05))
        if not self._pending:
            if self.wrong_fields is not None:
                raise DeviceMismatchError(
                    f"{self.name}: the device on {self.port.port} sends {self.wrong_fields - 1} values per line, "
                    f"the rig file says sensels = {cfg.sensels}"
                )
            heard = f" ({self.stats.bytes} bytes, {self.stats.bad_lines} unparseable lines)" if self.stats.bytes else ""
            raise DeviceTimeoutError(
                f"{self.name}: nothing answered on {self.port.port} within {timeout_s:g} s{heard}; "
                "is the device plugged in and is this its port?"
            )
        self.info = {
            "protocol": "line",
            "kind": self._kind,
            "model": "line-protocol insole",
            "serial": cfg.serial,
            "side": cfg.side,
            "sensels": int(cfg.sensels),
            "dtype": "f4",
            "clock_hz": TIME_UNITS_HZ[cfg.time_unit],
            "time_unit": cfg.time_unit,
            "rate_hz": int(cfg.rate_hz),
            "rates_hz": [int(cfg.rate_hz)],
            "layout": cfg.layout,
        }
        self.kind = self._kind
        self.side = cfg.side
        self.shape = (int(cfg.sensels),)
        self.n_values = int(cfg.sensels)
        self.dtype = np.dtype(np.float32)
        self.clock_hz = TIME_UNITS_HZ[cfg.time_unit]
        self.rate_hz = int(cfg.rate_hz)
        self.serial = cfg.serial
        self.layout = resolve_layout(cfg.layout, self.n_values, self.name)
        return self.info

    def set_rate(self, rate_hz: int, timeout_s: float = 0.0) -> None:
        """Accept the rig file's rate; any other rate is refused (a line device takes no commands)."""
        if int(rate_hz) != int(self.cfg.rate_hz):
            raise CommandRejectedError(
                f"{self.name}: line-protocol devices take no commands; set {rate_hz} Hz on the device itself "
                f"and rate_hz in the rig file (it says {self.cfg.rate_hz})"
            )

    def get_calibration(self, timeout_s: float = 0.0) -> Calibration:
        """The rig file's calibration (``unit``, ``gain``, ``offset``; scalars broadcast), default N, 1, 0."""
        cal = self.cfg.calibration or {}
        n = int(self.cfg.sensels)
        gain = np.broadcast_to(np.asarray(cal.get("gain", 1.0), dtype=np.float32), (n,)).copy()
        offset = np.broadcast_to(np.asarray(cal.get("offset", 0.0), dtype=np.float32), (n,)).copy()
        self.calibration = Calibration(unit=str(cal.get("unit", "N")), gain=gain, offset=offset)
        return self.calibration

    def start(self, timeout_s: float = 0.0, keep_received: bool = False) -> None:
        """Mark the start of the recording: drop samples received so far, restart ``seq`` at 0.

        With ``keep_received`` (a reconnection: the device streamed on while the port reopened) the samples
        received since the port opened are kept for the next :meth:`read`, numbered from 0.
        """
        if not keep_received:
            self._pending = []
        self._next_seq = 0
        self._seq.reset()

    def stop(self, timeout_s: float = 0.0) -> None:
        """Nothing to send: a line device keeps streaming."""

    def ping(self, timeout_s: float = 0.0) -> PingResult:
        """Line devices cannot answer PING."""
        raise CommandRejectedError(f"{self.name}: line-protocol devices do not answer PING")
