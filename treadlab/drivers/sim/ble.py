"""A simulated protocol v1 insole on Bluetooth LE, with a virtual controller pair (``bumble``), no hardware.

:class:`VirtualBleRig` owns a :class:`~treadlab.drivers.ble.BleLoop` and, on it, a ``bumble`` ``LocalLink`` with two
virtual controllers: a *central* (the host's side, for :class:`~treadlab.drivers.ble.BumbleCentral`) and a
*peripheral* that serves the treadlab protocol v1 GATT service with the simulator's device logic
(:class:`~treadlab.drivers.sim.device.SimDevice`): commands written to ``rx`` are handled, answers and DATA go out as
``tx`` notifications, long messages in parts (``treadlab.drivers.ble.segment``) at the MTU in force.

Answers are sent in parts at the MTU in force; DATA is sent whole, as the design requires it to fit one
notification: at too small an MTU (no MTU exchange: 23) the stack cuts every DATA notification to 20 bytes without
notice, which the host must count as bad. Every sample taken is ground truth (:meth:`VirtualBleRig.truth`).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from cobs import cobs

from treadlab.drivers import protocol as p
from treadlab.drivers.ble import RX_UUID, SERVICE_UUID, TX_UUID, BleLoop, segment
from treadlab.drivers.sim.device import TRUTH_DTYPE, SimDeviceSpec, make_device

TICK_S = 0.002


class VirtualBleRig:
    """Two virtual BLE controllers on one link, a simulated insole on one of them.

    Parameters
    ----------
    spec : SimDeviceSpec
        A binary insole.
    """

    def __init__(self, spec: SimDeviceSpec) -> None:
        self.spec = spec
        self.t_epoch_ns = time.monotonic_ns()
        self.device = make_device(spec, self.t_epoch_ns)
        self.ble = BleLoop("virtual-ble")
        self.central = None
        self.peripheral = None
        self.connection = None
        self.notified = 0
        self.commands: list[int] = []
        self._truth: list[np.ndarray] = []
        self._tx = None
        self._task: asyncio.Task | None = None

    @property
    def address(self):
        """The simulated peripheral's address, to connect to."""
        return self.peripheral.random_address

    def start(self) -> VirtualBleRig:
        """Start the serving thread; returns self."""
        self.ble.start()
        try:
            self.ble.run(self._setup(), 10.0)
        except BaseException:
            self.ble.stop()
            raise
        return self

    async def _setup(self) -> None:
        from bumble.controller import Controller
        from bumble.device import Device
        from bumble.gatt import Characteristic, CharacteristicValue, Service
        from bumble.hci import Address
        from bumble.host import Host
        from bumble.link import LocalLink
        from bumble.transport.common import AsyncPipeSink

        link = LocalLink()
        devices = []
        for i, addr in enumerate(("F0:F0:F0:F0:F0:F0", "F1:F1:F1:F1:F1:F1")):
            controller = Controller(f"C{i}", link=link, public_address=addr)
            devices.append(Device(address=Address(addr), host=Host(controller, AsyncPipeSink(controller))))
        self.central, self.peripheral = devices
        self._tx = Characteristic(TX_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b"")
        rx = Characteristic(RX_UUID, Characteristic.Properties.WRITE_WITHOUT_RESPONSE | Characteristic.Properties.WRITE,
                            Characteristic.WRITEABLE, CharacteristicValue(write=self._on_write))
        self.peripheral.add_service(Service(SERVICE_UUID, [self._tx, rx]))
        self.peripheral.on("connection", self._on_connection)
        for dev in devices:
            await dev.power_on()
        await self.peripheral.start_advertising(advertising_interval_min=20.0)
        self.device.power_up(time.monotonic_ns())
        self._task = asyncio.get_running_loop().create_task(self._stream())

    def _on_connection(self, connection) -> None:
        self.connection = connection

    def _on_write(self, connection, value: bytes) -> None:
        """A command part from the host (one-part commands: every treadlab command fits 20 bytes)."""
        value = bytes(value)
        if not value:
            return
        message = value[1:]
        if message:
            self.commands.append(message[0])
        out = self.device.receive(cobs.encode(message) + b"\x00", time.monotonic_ns())
        self._send(out)

    def _send(self, stream: bytes) -> None:
        if not stream or self.connection is None:
            return
        mtu = self.connection.att_mtu
        loop = asyncio.get_running_loop()
        for frame in stream.split(b"\x00"):
            if frame:
                message = cobs.decode(frame)
                # answers go in parts at the MTU in force; DATA goes whole (it must fit one notification), so
                # at too small an MTU the stack cuts it, as it would on a real link
                parts = [b"\x00" + message] if message[0] == p.DATA else segment(message, mtu)
                for part in parts:
                    loop.create_task(self.peripheral.notify_subscriber(self.connection, self._tx, part))
                    self.notified += 1

    async def _stream(self) -> None:
        while True:
            now = time.monotonic_ns()
            self._send(self.device.take(now))
            self.device.prefetch(now)
            rec = self.device.pop_truth()
            if len(rec):
                self._truth.append(rec)
            await asyncio.sleep(TICK_S)

    def truth(self) -> tuple[np.ndarray, np.ndarray]:
        """``(seq, true_time_ns)`` of every sample taken so far."""
        rec = np.concatenate(self._truth) if self._truth else np.empty(0, TRUTH_DTYPE)
        return rec["seq"].copy(), rec["t_ns"].copy()

    def stop(self) -> None:
        """Stop the thread (checked join) and release the socket or link."""
        async def _shutdown() -> None:
            if self._task is not None:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            for dev in (self.central, self.peripheral):
                if dev is not None:
                    await dev.power_off()

        try:
            self.ble.run(_shutdown(), 5.0)
        finally:
            self.ble.stop()

    def __enter__(self) -> VirtualBleRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
