"""Protocol v1 over Bluetooth LE GATT: one notification is one message (``docs/transports.md``, "Bluetooth").

The device's service has a ``tx`` characteristic (notify, device to host) and an ``rx`` one (write without
response, host to device). Each notification carries one byte of segmentation header and then the decoded
protocol v1 message ``type | body | crc32`` or a part of it: bit 7 of the header is set while more parts of the
message follow, bits 0-6 number the parts (0, 1, 2...). DATA fits one notification; only long answers (INFO,
CALIBRATION) come in parts. Commands are written the same way.

The ATT MTU is negotiated at connection (247 asked); a notification carries at most MTU - 3 bytes and a BLE stack
cuts longer ones without notice, so a cut message fails its CRC or its DATA length in
:class:`~treadlab.drivers.message.MessageDecoder` and is counted as bad, never parsed; a part that is missing or
out of order breaks its message, which is counted in ``framing_errors``. :meth:`GattBinaryDevice.identify` refuses
a device whose DATA cannot fit the negotiated MTU.

The transport is :class:`GattPort` (the parts of a port the binary driver uses) over a *backend* that speaks GATT
on an asyncio loop owned by a :class:`BleLoop` thread. :class:`BumbleCentral` is the backend on Google's ``bumble``
stack (virtual controllers in tests, or a USB Bluetooth dongle); ``bumble`` is imported only when it is used.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from cobs import cobs

from treadlab.drivers import protocol as p
from treadlab.drivers.base import DeviceConfig
from treadlab.drivers.binary import BinaryDevice
from treadlab.drivers.message import MessageDecoder
from treadlab.errors import DeviceDisconnectedError, DeviceError, DeviceTimeoutError, ProtocolError

SERVICE_UUID = "7e1a0001-3c5f-4d6b-9a1e-5f0c1d2b3a40"
TX_UUID = "7e1a0002-3c5f-4d6b-9a1e-5f0c1d2b3a40"  # notify: device to host
RX_UUID = "7e1a0003-3c5f-4d6b-9a1e-5f0c1d2b3a40"  # write without response: host to device
REQUEST_MTU = 247
DEFAULT_MTU = 23
ATT_HEADER_BYTES = 3
MORE = 0x80
PART_MASK = 0x7F
#: Notifications kept between reads; beyond this the oldest are dropped and counted (the reader is late).
MAX_QUEUED = 100_000


def segment(message: bytes, att_mtu: int) -> list[bytes]:
    """The notification payloads of one message at ``att_mtu``: header byte + at most MTU - 4 message bytes."""
    room = att_mtu - ATT_HEADER_BYTES - 1
    if room < 1:
        raise ValueError(f"ATT MTU {att_mtu} leaves no room for a message")
    parts = [message[i:i + room] for i in range(0, max(len(message), 1), room)]
    if len(parts) > PART_MASK + 1:
        raise ValueError(f"a {len(message)}-byte message needs more than {PART_MASK + 1} parts at MTU {att_mtu}")
    last = len(parts) - 1
    return [bytes(((MORE if i < last else 0) | i,)) + part for i, part in enumerate(parts)]


class Reassembler:
    """Join notification parts into messages; a part missing or out of order breaks the message (counted)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._skipping = False
        self.broken = 0

    def feed(self, notifications: list[bytes]) -> list[bytes]:
        """Whole messages (header bytes removed) from ``notifications``, in order."""
        if not self._parts and not self._skipping and all(n[:1] == b"\x00" for n in notifications):
            return [n[1:] for n in notifications]  # the usual read: every message in one notification
        out = []
        for n in notifications:
            if not n:
                self.broken += 1
                continue
            head, body = n[0], n[1:]
            index = head & PART_MASK
            if index != len(self._parts):
                if self._parts:
                    self.broken += 1  # the rest of the message never came
                self._parts = []
                if index != 0:  # parts without their beginning: skipped up to the next message, counted once
                    if not self._skipping:
                        self.broken += 1
                    self._skipping = bool(head & MORE)
                    continue
            self._skipping = False
            self._parts.append(body)
            if not head & MORE:
                out.append(b"".join(self._parts))
                self._parts = []
        return out


class BleLoop:
    """An asyncio event loop in a thread of its own (start/stop with a checked join), for a BLE stack."""

    def __init__(self, name: str = "ble-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> BleLoop:
        """Start the loop's thread; returns self."""
        self._thread.start()
        return self

    def run(self, coro: Coroutine, timeout_s: float = 5.0) -> Any:
        """Run ``coro`` on the loop and wait for its result (raises what it raised, TimeoutError after
        ``timeout_s``).
        """
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def call(self, fn: Callable, *args) -> None:
        """Call ``fn(*args)`` on the loop's thread, without waiting."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        """Stop the loop and join its thread (checked), cancel what is left on it, close it."""
        if self._thread.ident is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5.0)
            if self._thread.is_alive():
                raise RuntimeError(f"{self._thread.name} did not stop")
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def __enter__(self) -> BleLoop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BumbleCentral:
    """GATT client backend on a ``bumble`` device: connect, negotiate the MTU, subscribe to ``tx``, write ``rx``.

    Parameters
    ----------
    device : bumble.device.Device
        The host's (central's) device, powered on, on the :class:`BleLoop`'s loop.
    address : bumble.hci.Address or str
        The peripheral to connect to.
    request_mtu : int or None
        ATT MTU to ask for; None keeps the default 23 (no exchange).
    """

    def __init__(self, device, address, request_mtu: int | None = REQUEST_MTU) -> None:
        self.device = device
        self.address = address
        self.request_mtu = request_mtu
        self.connection = None
        self._rx = None

    async def connect(self, on_notification: Callable[[bytes], None]) -> int:
        """Connect, exchange MTU, find the service and subscribe; returns the ATT MTU in force."""
        from bumble.device import Peer

        self.connection = await self.device.connect(self.address)
        peer = Peer(self.connection)
        mtu = await peer.request_mtu(self.request_mtu) if self.request_mtu else DEFAULT_MTU
        await peer.discover_services([SERVICE_UUID])
        services = peer.get_services_by_uuid(SERVICE_UUID)
        if not services:
            raise DeviceError(f"{self.address}: no treadlab protocol v1 service ({SERVICE_UUID})")
        service = services[0]
        await service.discover_characteristics()
        tx = service.get_characteristics_by_uuid(TX_UUID)
        rx = service.get_characteristics_by_uuid(RX_UUID)
        if not tx or not rx:
            raise DeviceError(f"{self.address}: the protocol v1 service lacks its tx or rx characteristic")
        self._rx = rx[0]
        await tx[0].subscribe(lambda value: on_notification(bytes(value)))
        return mtu

    async def write(self, payload: bytes) -> None:
        """Write one part of a command to ``rx`` (write without response)."""
        await self._rx.write_value(payload, with_response=False)

    async def close(self) -> None:
        """Close the transport (safe to call more than once)."""
        if self.connection is not None:
            try:
                await self.connection.disconnect()
            except Exception:  # noqa: BLE001 - the link may be gone already; closing must not fail
                pass
            self.connection = None


class GattPort:
    """A GATT message transport with the parts of a pyserial port the binary driver uses.

    Parameters
    ----------
    loop : BleLoop
        Runs the backend (owned by the caller).
    backend : BumbleCentral or compatible
        ``connect(on_notification) -> mtu``, ``write(payload)``, ``close()``, all coroutines.
    name : str
        Shown in messages (``port``).
    timeout_s : float
        Connection timeout, and the default wait of :meth:`recv_notifications`.
    """

    def __init__(self, loop: BleLoop, backend, name: str, timeout_s: float = 5.0) -> None:
        self.loop = loop
        self.backend = backend
        self.port = name
        self.timeout = 0.05
        self.dropped = 0
        self._queue: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._open = False
        try:
            self.att_mtu = loop.run(backend.connect(self._on_notification), timeout_s)
        except TimeoutError as exc:
            raise DeviceTimeoutError(f"{name}: no Bluetooth connection within {timeout_s:g} s") from exc
        self._open = True

    @property
    def is_open(self) -> bool:
        """True until :meth:`close`."""
        return self._open

    def _on_notification(self, value: bytes) -> None:  # on the loop's thread
        with self._cond:
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(value)
            self._cond.notify()

    def recv_notifications(self, timeout_s: float | None = None) -> list[bytes]:
        """Every notification queued, waiting up to ``timeout_s`` for the first."""
        if not self._open:
            raise DeviceDisconnectedError(f"{self.port}: the Bluetooth connection is closed")
        wait = self.timeout if timeout_s is None else timeout_s
        with self._cond:
            if not self._queue and wait > 0:
                self._cond.wait(wait)
            out = list(self._queue)
            self._queue.clear()
        return out

    def write(self, data: bytes) -> int:
        """Send COBS-framed messages (what the protocol encoders produce), each as its notification parts."""
        for frame in bytes(data).split(b"\x00"):
            if frame:
                for part in segment(cobs.decode(frame), self.att_mtu):
                    try:
                        self.loop.run(self.backend.write(part), 2.0)
                    except TimeoutError as exc:
                        raise DeviceDisconnectedError(f"{self.port}: Bluetooth write timed out") from exc
        return len(data)

    def reset_input_buffer(self) -> None:
        """Drop everything received and not yet read."""
        with self._cond:
            self._queue.clear()

    @property
    def in_waiting(self) -> int:
        """Always 0 (messages are counted by ``recv``, not by a byte count)."""
        return 0

    def close(self) -> None:
        """Close the transport (safe to call more than once)."""
        if self._open:
            self._open = False
            try:
                self.loop.run(self.backend.close(), 2.0)
            except (TimeoutError, RuntimeError):
                pass  # the loop or the link is gone already


class GattBinaryDevice(BinaryDevice):
    """A protocol v1 device over BLE GATT: :class:`~treadlab.drivers.binary.BinaryDevice` fed whole messages.

    Parameters
    ----------
    port : GattPort
    cfg : DeviceConfig or None
    check_mtu : bool
        Refuse, at :meth:`identify`, a device whose DATA does not fit one notification at the negotiated MTU.
    """

    _decoder: MessageDecoder
    port: GattPort

    def __init__(self, port: GattPort, cfg: DeviceConfig | None = None, check_mtu: bool = True) -> None:
        super().__init__(port, cfg)  # type: ignore[arg-type]  # a message port, with the parts of a port used
        self._decoder = MessageDecoder()
        self._reassembler = Reassembler()
        self.check_mtu = check_mtu

    def _receive(self, timeout_s: float) -> tuple[list[bytes], list[tuple[int, bytes]], int]:
        """Every notification queued (waiting up to ``timeout_s``), joined into messages and checked by the
        decoder; a broken message (a part missing or out of order) counts in ``framing_errors``.
        """
        notes = self.port.recv_notifications(timeout_s)
        host_ns = time.monotonic_ns()
        self.stats.bytes += sum(map(len, notes))
        before = self._reassembler.broken
        messages = self._reassembler.feed(notes) if notes else []
        self._decoder.stats.framing_errors += self._reassembler.broken - before
        data, other = self._decoder.feed_messages(messages)
        return data, other, host_ns

    def _apply_info(self, info: dict) -> None:
        super()._apply_info(info)
        size = p.data_message_size(self.n_values, info["dtype"]) + 1
        room = self.port.att_mtu - ATT_HEADER_BYTES
        if self.check_mtu and size > room:
            self.info = None
            raise ProtocolError(
                f"{self.name}: DATA of this device is {size} bytes per notification, the negotiated ATT MTU "
                f"{self.port.att_mtu} carries {room}: the stack would cut every sample (ask the device for a "
                f"larger MTU, at least {size + ATT_HEADER_BYTES})")
