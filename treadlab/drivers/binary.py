"""Driver of protocol v1 devices (binary insoles and the pressure mat); see ``docs/protocol.md``.

Commands wait for their answer (ACK, NAK, INFO, CALIBRATION) while DATA may keep arriving: DATA decoded
meanwhile is kept in a pending buffer and returned by the next :meth:`BinaryDevice.read`, never dropped. That
holds before INFO too (a device that kept streaming across an unplug sends DATA at once): intact DATA received
before INFO is kept as it came and checked against the layout INFO gives. What came before START is dropped at
START unless the caller keeps it (``start(keep_received=True)``, a reconnection).
Decoding is :class:`~treadlab.drivers.protocol.FrameDecoder` (one C call per message) plus one
``np.frombuffer`` per read; there is no loop over samples or values.
"""

from __future__ import annotations

import collections
import struct
import time
from itertools import compress

import numpy as np
import serial

from treadlab.drivers import protocol as p
from treadlab.drivers.base import Calibration, DeviceConfig, PingResult, SampleBatch
from treadlab.drivers.common import ByteStreamDevice, check_info, require_keys, resolve_layout
from treadlab.drivers.transport import write_bytes
from treadlab.errors import CommandRejectedError, DeviceTimeoutError, ProtocolError
from treadlab.kinds import shape_from_info

NAK_CODES = {
    p.NAK_UNKNOWN_COMMAND: "unknown command",
    p.NAK_BAD_ARGUMENT: "bad argument",
    p.NAK_UNSUPPORTED_RATE: "unsupported rate",
    p.NAK_BUSY: "busy",
}
COMMAND_TIMEOUT_S = 1.0
_MAX_REPLIES = 64
#: DATA received before INFO is kept up to this many bytes (seconds of the largest mat); beyond it the oldest is
#: dropped and counted in ``stats.dropped_before_info``.
MAX_EARLY_BYTES = 32 * 1024 * 1024


class BinaryDevice(ByteStreamDevice):
    """A protocol v1 device of any registered kind (insole, mat...) on an open port.

    Parameters
    ----------
    port : serial.SerialBase
        An open port with a finite timeout (:func:`~treadlab.drivers.transport.open_port`); owned from now on.
    cfg : DeviceConfig or None
        The rig file's entry for the device; :meth:`identify` checks INFO against it.

    Notes
    -----
    Not thread-safe: one thread (the device's reader) calls every method.
    """

    protocol = "binary"
    supports_ping = True

    def __init__(self, port: serial.SerialBase, cfg: DeviceConfig | None = None) -> None:
        super().__init__(port, cfg)
        self._decoder = p.FrameDecoder()
        self._bad_bodies = 0
        self._pending_raws: list[bytes] = []
        self._pending_counts: list[int] = []
        self._pending_hosts: list[int] = []
        self._replies: collections.deque = collections.deque(maxlen=_MAX_REPLIES)
        self._early: collections.deque = collections.deque()  # (DATA messages, host_ns) received before INFO
        self._early_bytes = 0
        self.rates_hz: list[int] = []

    # ---------------------------------------------------------------------------- receiving

    def _receive(self, timeout_s: float) -> tuple[list[bytes], list[tuple[int, bytes]], int]:
        """One read of the transport, decoded: ``(DATA messages, other messages as (type, body), host_ns)``.

        The seam of message sources (``udp://``, BLE): they override this to receive whole messages and check
        them with the same decoder counters; everything after it does not know where the messages came from.
        """
        chunk, host_ns = self._read_raw(timeout_s)
        if not chunk:
            return [], [], host_ns
        data, other = self._decoder.feed(chunk)
        return data, other, host_ns

    def _pump(self, timeout_s: float) -> None:
        """One read; DATA goes to the pending buffer, answers to the reply queue, LOG/PONG to theirs."""
        data, other, host_ns = self._receive(timeout_s)
        if data:
            if self.info is None:
                self._keep_early(data, host_ns)
            else:
                self._pending_raws += data
                self._pending_counts.append(len(data))
                self._pending_hosts.append(host_ns)
        for msg_type, body in other:
            self._dispatch(msg_type, body, host_ns)
        dec = self._decoder.stats
        st = self.stats
        st.messages = dec.messages
        st.crc_errors = dec.crc_errors
        st.framing_errors = dec.framing_errors
        st.short_errors = dec.short_errors
        st.oversize_errors = dec.oversize_errors
        st.malformed = dec.malformed + self._bad_bodies

    def _keep_early(self, data: list[bytes], host_ns: int) -> None:
        """Keep DATA received before INFO (its size is checked once INFO gives the layout), within a budget."""
        self._early.append((data, host_ns))
        self._early_bytes += sum(map(len, data))
        while self._early_bytes > MAX_EARLY_BYTES:
            old, _ = self._early.popleft()
            self._early_bytes -= sum(map(len, old))
            self.stats.dropped_before_info += len(old)

    def _adopt_early(self, size: int) -> None:
        """Move the DATA kept before INFO to the pending samples; messages of another size count as malformed."""
        for data, host_ns in self._early:  # one iteration per read that brought DATA before INFO
            lens = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
            ok = lens == size
            good = data if ok.all() else list(compress(data, ok.tolist()))
            self._bad_bodies += len(data) - len(good)
            if good:
                self._pending_raws += good
                self._pending_counts.append(len(good))
                self._pending_hosts.append(host_ns)
        self._early.clear()
        self._early_bytes = 0
        self.stats.malformed = self._decoder.stats.malformed + self._bad_bodies

    def _dispatch(self, msg_type: int, body: bytes, host_ns: int) -> None:
        try:
            if msg_type == p.LOG:
                level, text = p.parse_log(body)
                self._keep(self._logs, (host_ns, level, text))
            elif msg_type == p.PONG:
                sent_ns, ticks = p.parse_pong(body)
                self._keep(self._pongs, PingResult(host_send_ns=sent_ns, host_recv_ns=host_ns, device_ticks=ticks))
            else:
                self._replies.append((msg_type, body))
        except ValueError:
            self._bad_bodies += 1

    def read(self, timeout_s: float = 0.05) -> SampleBatch | None:
        """One bulk read; all complete samples received since the last call (pending ones included).

        Parameters
        ----------
        timeout_s : float
            Longest wait for the first byte when nothing is pending.

        Returns
        -------
        SampleBatch or None
            None when no complete sample arrived.

        Raises
        ------
        DeviceDisconnectedError
            The port vanished.
        """
        self._pump(0.0 if self._pending_raws else timeout_s)
        if not self._pending_raws:
            return None
        seq, t, values = p.decode_data(self._pending_raws, self.n_values, self.info["dtype"])
        host = np.repeat(np.asarray(self._pending_hosts, dtype=np.int64), self._pending_counts)
        self._pending_raws = []
        self._pending_counts = []
        self._pending_hosts = []
        return self._batch(seq, t, values, host)

    # ---------------------------------------------------------------------------- commands

    def _command(self, command: int, body: bytes, answer: int, timeout_s: float, prefix: bytes = b"") -> bytes:
        """Send ``command`` and wait for ``answer`` (ACK of this command, INFO, CALIBRATION); return its body."""
        self._replies.clear()
        write_bytes(self.port, prefix + p.encode_message(command, body), self.name)
        deadline = time.monotonic() + timeout_s
        while True:
            while self._replies:
                msg_type, reply = self._replies.popleft()
                if msg_type == p.NAK:
                    try:
                        cmd, code, reason = p.parse_nak(reply)
                    except ValueError:
                        self._bad_bodies += 1
                        continue
                    if cmd == command:
                        raise self._rejected(command, body, code, reason)
                elif msg_type == answer:
                    if answer != p.ACK:
                        return reply
                    if len(reply) == 1 and reply[0] == command:
                        return reply
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceTimeoutError(
                    f"{self.name}: no answer to {p.describe(command)} from {self.port.port} within {timeout_s:g} s"
                )
            self._pump(min(left, 0.05))

    def _rejected(self, command: int, body: bytes, code: int, reason: str) -> CommandRejectedError:
        what = NAK_CODES.get(code, f"error {code}")
        if command == p.SET_RATE and code == p.NAK_UNSUPPORTED_RATE:
            rate = struct.unpack("<H", body)[0]
            rates = ", ".join(str(r) for r in self.rates_hz) or "unknown"
            return CommandRejectedError(
                f"{self.name}: the device does not support {rate} Hz (it supports {rates} Hz): {reason}"
            )
        return CommandRejectedError(f"{self.name}: {p.describe(command)} rejected ({what}): {reason}")

    def identify(self, timeout_s: float = 2.0, retries: int = 3) -> dict:
        """Ask the device for INFO, check it against the rig file, and set the device attributes.

        Garbage already in the input buffer is tolerated (dropped and counted); IDENTIFY is sent up to
        ``retries`` times within ``timeout_s``. Nothing received is thrown away unread: intact DATA that came
        before INFO (a device still streaming, e.g. after a replug) becomes pending samples once INFO is accepted,
        for the next :meth:`read`.

        Returns
        -------
        dict
            INFO as sent by the device.

        Raises
        ------
        DeviceTimeoutError
            Nothing answered within ``timeout_s``.
        DeviceMismatchError
            The device is not what the rig file says (kind, side, sensels, serial).
        ProtocolError
            INFO is not valid protocol v1 INFO.
        """
        attempts = max(1, int(retries))
        body = None
        for _ in range(attempts):
            try:
                # A leading 0x00 ends whatever partial frame the device's receiver holds.
                body = self._command(p.IDENTIFY, b"", p.INFO, timeout_s / attempts, prefix=b"\x00")
                break
            except DeviceTimeoutError:
                continue
        if body is None:
            raise DeviceTimeoutError(
                f"{self.name}: nothing answered on {self.port.port} within {timeout_s:g} s "
                f"({attempts} IDENTIFY attempts); is the device plugged in and is this its port?"
            )
        try:
            info = p.parse_info(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"{self.name}: INFO from {self.port.port} is not a JSON object ({exc})") from exc
        self._apply_info(info)
        return info

    def _apply_info(self, info: dict) -> None:
        name = self.name
        require_keys(info, ("protocol", "kind", "dtype", "clock_hz", "rate_hz"), name)
        if info["protocol"] != p.PROTOCOL_VERSION:
            raise ProtocolError(f"{name}: device speaks protocol {info['protocol']!r}, treadlab speaks 1")
        if info["dtype"] not in p.DTYPES:
            raise ProtocolError(f"{name}: INFO dtype {info['dtype']!r} is not one of {sorted(p.DTYPES)}")
        kind, shape = shape_from_info(info, name)  # an unknown kind is refused here
        check_info(info, self.cfg, name, self.port.port)
        self.info = info
        self.kind = info["kind"]
        self.side = info.get("side")
        self.shape = shape
        self.n_values = int(np.prod(shape))
        self.dtype = p.DTYPES[info["dtype"]]
        self.clock_hz = int(info["clock_hz"])
        self.rate_hz = int(info["rate_hz"])
        self.rates_hz = [int(r) for r in info.get("rates_hz", [])]
        self.serial = None if info.get("serial") is None else str(info["serial"])
        self.layout = resolve_layout(info.get("layout"), self.n_values, name) if kind.sensel_layout else None
        self._decoder.data_size = p.data_message_size(self.n_values, info["dtype"])
        self._adopt_early(self._decoder.data_size)

    def set_rate(self, rate_hz: int, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        """Set the sampling rate (SET_RATE); raises :class:`CommandRejectedError` if the device refuses it."""
        rate = int(rate_hz)
        if not 0 < rate < 65536:
            raise CommandRejectedError(f"{self.name}: rate {rate_hz} Hz is outside 1-65535")
        self._command(p.SET_RATE, struct.pack("<H", rate), p.ACK, timeout_s)
        self.rate_hz = rate

    def get_calibration(self, timeout_s: float = COMMAND_TIMEOUT_S) -> Calibration:
        """Ask for the per-sensel calibration (``value = gain * (raw - offset)``)."""
        body = self._command(p.GET_CALIBRATION, b"", p.CALIBRATION, timeout_s)
        try:
            unit, gain, offset = p.parse_calibration(body)
        except ValueError as exc:
            raise ProtocolError(f"{self.name}: bad CALIBRATION: {exc}") from exc
        if self.info is not None and len(gain) != self.n_values:
            raise ProtocolError(f"{self.name}: CALIBRATION has {len(gain)} sensels, the device {self.n_values}")
        self.calibration = Calibration(unit=unit, gain=gain, offset=offset)
        return self.calibration

    def start(self, timeout_s: float = COMMAND_TIMEOUT_S, keep_received: bool = False) -> None:
        """Start streaming (START, waits for the ACK); DATA that comes while waiting stays pending for :meth:`read`.

        The recording begins at START: DATA received before it (a device left streaming, its stale backlog) is
        dropped, unless ``keep_received`` (a reconnection: the device streamed on while the port reopened, and
        those are its next samples).
        """
        if not keep_received:
            self._pending_raws, self._pending_counts, self._pending_hosts = [], [], []
            self._early.clear()
            self._early_bytes = 0
        self._command(p.START, b"", p.ACK, timeout_s)
        self._seq.reset()

    def stop(self, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        """Stop streaming (STOP, waits for the ACK); DATA sent before the ACK stays pending for :meth:`read`."""
        self._command(p.STOP, b"", p.ACK, timeout_s)

    def send_ping(self) -> int:
        """Send a PING carrying ``monotonic_ns`` now, without waiting; :meth:`read` collects the PONG.

        Returns
        -------
        int
            The send time in ``monotonic_ns`` (echoed by the device).
        """
        sent_ns = time.monotonic_ns()
        write_bytes(self.port, p.encode_message(p.PING, struct.pack("<Q", sent_ns)), self.name)
        return sent_ns

    def ping(self, timeout_s: float = COMMAND_TIMEOUT_S) -> PingResult:
        """One blocking PING round trip; other PONGs and DATA stay queued."""
        sent_ns = self.send_ping()
        deadline = time.monotonic() + timeout_s
        while True:
            for res in self._pongs:
                if res.host_send_ns == sent_ns:
                    self._pongs.remove(res)
                    return res
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceTimeoutError(f"{self.name}: no PONG from {self.port.port} within {timeout_s:g} s")
            self._pump(min(left, 0.05))
