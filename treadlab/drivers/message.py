"""Message sources: transports where one datagram (or one notification) is one whole message.

A byte stream (serial, ``socket://``, ``rfc2217://``) needs COBS framing to find where a message ends; a datagram
already is one message, so protocol v1 over UDP sends the decoded message ``type | body | crc32`` alone in each
datagram, with no COBS and no 0x00 delimiter (``docs/protocol.md``, "UDP"). The CRC is still checked: a datagram
that fails it, or is shorter than type + CRC, or is DATA of the wrong length, is dropped and counted by the same
:class:`~treadlab.drivers.protocol.DecoderStats` counters as on a serial port, and loss (a datagram that never
came) is found from the DATA sequence numbers and counted in ``seq_gaps``/``lost_samples`` like any other gap.

:class:`MessageDecoder` is the decoder for such sources: the same checks as
:class:`~treadlab.drivers.protocol.FrameDecoder` (C-level ``map`` and numpy masks over all messages of a read)
without the COBS step. :class:`UdpPort` is the UDP transport; it looks like a port to the binary driver
(``write`` takes the COBS-framed bytes the driver's encoders produce and sends each message as one datagram),
so :class:`UdpBinaryDevice` is :class:`~treadlab.drivers.binary.BinaryDevice` with only the receive step
replaced. Receiving is one ``recv`` per datagram (a datagram is the unit the OS hands out); everything after
that works on the whole read at once.
"""

from __future__ import annotations

import errno
import select
import socket
import time

from cobs import cobs

from treadlab.drivers import protocol as p
from treadlab.drivers.base import DeviceConfig
from treadlab.drivers.binary import BinaryDevice
from treadlab.drivers.urls import network_address
from treadlab.errors import DeviceDisconnectedError, DeviceError, PortBusyError, PortNotFoundError

#: Largest UDP payload (IPv4): a receive buffer this big never truncates a datagram.
MAX_DATAGRAM_BYTES = 65507
#: At most this many datagrams per read (the rest wait for the next read).
MAX_BATCH = 4096
#: Asked of the kernel for the receive queue (it may grant less: ``net.core.rmem_max``).
RCVBUF_BYTES = 4 * 1024 * 1024
#: A streaming device silent this long (at least) is reported as vanished.
SILENCE_S = 2.0


class MessageDecoder(p.FrameDecoder):
    """:class:`~treadlab.drivers.protocol.FrameDecoder` that also takes whole messages (datagrams, notifications).

    :meth:`feed_messages` takes a list of messages instead of bytes and returns the same ``(data, other)`` as
    ``feed``, with the same counters (``framing_errors`` and ``oversize_errors`` stay 0: there is no framing to
    break). ``feed`` (a COBS byte stream) is the base's, unchanged.
    """

    def feed_messages(self, messages: list[bytes]) -> tuple[list[bytes], list[tuple[int, bytes]]]:
        """Check ``messages`` (each ``type | body | crc32``) and return the good ones, like ``FrameDecoder.feed``."""
        if not messages:
            return [], []
        self.stats.bytes += sum(map(len, messages))
        return self._check_all(list(messages))


def _udp_socket(host: str, port: int, url: str, bind: bool) -> socket.socket:
    """A non-blocking UDP socket, connected to ``(host, port)`` (a device) or bound to it (a listener)."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise PortNotFoundError(f"{url}: unknown host {host!r} ({exc.strerror})") from exc
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        if bind:
            sock.bind(infos[0][4])
        else:
            sock.bind(("0.0.0.0", 0))
            sock.connect(infos[0][4])  # datagrams from any other address are not ours: the kernel drops them
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortBusyError(f"{url}: UDP port {port} is in use by another program (or another device "
                                "entry of the rig file)") from exc
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise PortNotFoundError(f"{url}: cannot use {host}:{port} on this computer ({exc.strerror})") from exc
        raise DeviceError(f"{url}: cannot open UDP socket: {exc.strerror or exc}") from exc
    return sock


class UdpPort:
    """A UDP transport with the parts of a pyserial port the drivers use.

    Parameters
    ----------
    url : str
        ``udp://HOST:PORT``: with ``listen`` False the device's address (datagrams go there, and only datagrams
        from there are received); with ``listen`` True the local address the stream is sent to (``udp://:8888``).
    timeout_s : float
        Default wait of :meth:`recv_messages`.
    listen : bool

    Attributes
    ----------
    port : str
        The URL (drivers name it in messages).
    refused : int
        ICMP "port unreachable" answers (nobody listens at the device's address).
    """

    def __init__(self, url: str, timeout_s: float = 0.05, listen: bool = False) -> None:
        host, port, _ = network_address(url, listen=listen)
        self.port = url
        self.timeout = timeout_s
        self.refused = 0
        self.listen = listen
        self.address = (host, port)
        self._sock: socket.socket | None = _udp_socket(host, port, url, bind=listen)
        self._buf = bytearray(MAX_DATAGRAM_BYTES + 1)

    @property
    def is_open(self) -> bool:
        """True until :meth:`close`."""
        return self._sock is not None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise DeviceDisconnectedError(f"{self.port}: the UDP socket is closed")
        return self._sock

    def recv_messages(self, timeout_s: float | None = None) -> list[bytes]:
        """Every datagram queued (at most :data:`MAX_BATCH`), waiting up to ``timeout_s`` for the first one."""
        sock = self._socket()
        wait = self.timeout if timeout_s is None else timeout_s
        out: list[bytes] = []
        try:
            ready, _, _ = select.select([sock], [], [], max(0.0, wait))
        except (OSError, ValueError) as exc:
            raise DeviceDisconnectedError(f"{self.port}: UDP socket failed ({exc})") from exc
        if not ready:
            return out
        recv = sock.recv
        while len(out) < MAX_BATCH:
            try:
                out.append(recv(MAX_DATAGRAM_BYTES + 1))
            except BlockingIOError:
                break
            except ConnectionRefusedError:
                self.refused += 1  # ICMP port unreachable for an earlier send: nobody listens there (yet)
                break
            except OSError as exc:
                raise DeviceDisconnectedError(f"{self.port}: UDP receive failed ({exc.strerror or exc})") from exc
        return out

    def send_message(self, message: bytes) -> None:
        """Send one decoded message as one datagram to the device's address (a listener has none: no-op)."""
        sock = self._socket()
        if self.listen:
            return
        try:
            sock.send(message)
        except ConnectionRefusedError:
            self.refused += 1
        except BlockingIOError as exc:
            raise DeviceDisconnectedError(f"{self.port}: UDP send queue full") from exc
        except OSError as exc:
            raise DeviceDisconnectedError(f"{self.port}: UDP send failed ({exc.strerror or exc})") from exc

    def write(self, data: bytes) -> int:
        """Send COBS-framed messages (what the protocol encoders produce) as one datagram per message.

        Empty frames (a lone 0x00, which flushes a serial receiver) send nothing.
        """
        for frame in bytes(data).split(b"\x00"):
            if frame:
                self.send_message(cobs.decode(frame))
        return len(data)

    def reset_input_buffer(self) -> None:
        """Drop every datagram queued."""
        while self.recv_messages(0.0):
            pass

    @property
    def in_waiting(self) -> int:
        """Always 0 (messages are counted by ``recv``, not by a byte count)."""
        return 0

    def close(self) -> None:
        """Close the transport (safe to call more than once)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class UdpBinaryDevice(BinaryDevice):
    """A protocol v1 device over UDP: :class:`~treadlab.drivers.binary.BinaryDevice` fed whole messages.

    Commands go to the device's address as datagrams; the device answers, and streams DATA, to the address the
    most recent command came from (``docs/protocol.md``). Every counter is the binary driver's.

    UDP has no connection to lose, so a streaming device that falls silent for ``silence_s`` (default the longer
    of :data:`SILENCE_S` and 20 sample periods) is reported as vanished (:class:`DeviceDisconnectedError`): the
    recorder then reconnects it (IDENTIFY, START) when it answers again, as after a USB unplug, instead of
    waiting forever for a device that rebooted and sits stopped.
    """

    _decoder: MessageDecoder
    port: UdpPort

    def __init__(self, port: UdpPort, cfg: DeviceConfig | None = None, silence_s: float | None = None) -> None:
        super().__init__(port, cfg)  # type: ignore[arg-type]  # a message port, with the parts of a port used
        self._decoder = MessageDecoder()
        self.silence_s = silence_s
        self._streaming = False
        self._last_rx = time.monotonic()

    def _receive(self, timeout_s: float) -> tuple[list[bytes], list[tuple[int, bytes]], int]:
        """Every datagram queued (waiting up to ``timeout_s``), checked by the decoder; a silence while
        streaming longer than the limit raises :class:`DeviceDisconnectedError`.
        """
        messages = self.port.recv_messages(timeout_s)
        host_ns = time.monotonic_ns()
        now = time.monotonic()
        if messages:
            self._last_rx = now
            self.stats.bytes += sum(map(len, messages))
        elif self._streaming:
            limit = self.silence_s if self.silence_s is not None else max(SILENCE_S, 20.0 / max(self.rate_hz, 1))
            if now - self._last_rx > limit:
                self._streaming = False
                raise DeviceDisconnectedError(
                    f"{self.name}: nothing from {self.port.port} for {limit:g} s while streaming (device off, "
                    "rebooted, or out of network reach)")
        data, other = self._decoder.feed_messages(messages)
        return data, other, host_ns

    def start(self, timeout_s: float = 1.0, keep_received: bool = False) -> None:
        """START (waits for the ACK); from now on a silence of ``silence_s`` is a vanished device."""
        super().start(timeout_s, keep_received=keep_received)
        self._streaming = True
        self._last_rx = time.monotonic()

    def stop(self, timeout_s: float = 1.0) -> None:
        """STOP (waits for the ACK); silence is expected from now on."""
        self._streaming = False
        super().stop(timeout_s)


def open_udp_device(cfg: DeviceConfig, timeout_s: float = 0.05) -> UdpBinaryDevice:
    """The driver of a protocol v1 device on ``udp://HOST:PORT`` (not yet identified).

    Raises
    ------
    PortNotFoundError, PortBusyError, DeviceError
        Bad URL, unknown host, address not usable (the message names the device).
    """
    try:
        port = UdpPort(cfg.port, timeout_s=timeout_s)
    except DeviceError as exc:
        raise type(exc)(f"{cfg.name}: {exc}") from exc
    return UdpBinaryDevice(port, cfg)
