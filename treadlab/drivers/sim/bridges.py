"""Simulated serial-over-network bridges: what an ESP32 Wi-Fi serial bridge does, in one owned thread.

* :class:`TcpPtyBridge` is a raw TCP serial server (``socket://``, like ESP-Link or a ser2net ``raw`` port): it
  accepts one connection and copies bytes between it and a serial port (a simulated device's pty) both ways.
* :class:`Rfc2217Bridge` is an RFC 2217 server (``rfc2217://``) on pyserial's :class:`serial.rfc2217.PortManager`;
  the serial side is a pty, whose modem-line ioctls fail with ENOTTY, so they are no-ops here (a real bridge
  without modem control does the same).

Each bridge owns one thread (``select`` over the listening or accepted socket and the port), started by
:meth:`start` and stopped by :meth:`stop` with a checked join. The port is opened when a client connects and
closed when it leaves, as a hardware bridge powers its UART.
"""

from __future__ import annotations

import select
import socket
import threading

import serial
import serial.rfc2217


class _PtyNoModem(serial.Serial):
    """A pyserial port whose modem lines are no-ops (a pty has none: TIOCMGET/TIOCMBIS fail with ENOTTY)."""

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True


class _Bridge:
    """Listening socket, the serving thread and its lifecycle; subclasses move the bytes."""

    scheme = ""

    def __init__(self, port_path: str, name: str) -> None:
        self.port_path = port_path
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.setblocking(False)
        self.url = f"{self.scheme}://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections = 0
        self.bytes_to_device = 0
        self.bytes_from_device = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(5.0)
            if self._thread.is_alive():
                raise RuntimeError(f"{self._thread.name} did not stop")
        self.server.close()
        if self.error is not None:
            raise self.error

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.server], [], [], 0.05)
                if not ready:
                    continue
                conn, _ = self.server.accept()
                self.connections += 1
                with conn:
                    conn.setblocking(True)
                    # small answers (a PONG) must not wait for the ACK of earlier data (Nagle + delayed ACK: 40 ms)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    try:
                        self._serve(conn)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client went away mid-send: the end of this connection, not a fault
        except (OSError, serial.SerialException) as exc:  # reported by stop()
            self.error = exc

    def _open_port(self) -> serial.Serial:
        port = _PtyNoModem(None, timeout=0, exclusive=True)
        port.port = self.port_path
        port.open()
        return port

    def _serve(self, conn: socket.socket) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class TcpPtyBridge(_Bridge):
    """Raw TCP serial server: bytes in, bytes out (``socket://127.0.0.1:PORT``, attribute :attr:`url`)."""

    scheme = "socket"

    def __init__(self, port_path: str) -> None:
        super().__init__(port_path, "tcp-pty-bridge")

    def _serve(self, conn: socket.socket) -> None:
        port = self._open_port()
        try:
            fd = port.fileno()
            while not self._stop.is_set():
                ready, _, _ = select.select([conn, fd], [], [], 0.05)
                if conn in ready:
                    data = conn.recv(65536)
                    if not data:
                        return  # the client closed the connection
                    port.write(data)
                    self.bytes_to_device += len(data)
                if fd in ready:
                    data = port.read(65536)
                    if data:
                        conn.sendall(data)
                        self.bytes_from_device += len(data)
        finally:
            port.close()


class Rfc2217Bridge(_Bridge):
    """RFC 2217 serial server on :class:`serial.rfc2217.PortManager` (``rfc2217://127.0.0.1:PORT``).

    Attributes
    ----------
    baudrates : list of int
        Every baud rate the client set through the Telnet COM-PORT option.
    """

    scheme = "rfc2217"

    def __init__(self, port_path: str) -> None:
        super().__init__(port_path, "rfc2217-bridge")
        self.baudrates: list[int] = []

    def _serve(self, conn: socket.socket) -> None:
        port = self._open_port()

        class _Conn:  # PortManager writes its Telnet answers through this
            @staticmethod
            def write(data: bytes) -> None:
                conn.sendall(data)

        try:
            manager = serial.rfc2217.PortManager(port, _Conn())
            fd = port.fileno()
            while not self._stop.is_set():
                ready, _, _ = select.select([conn, fd], [], [], 0.05)
                if conn in ready:
                    data = conn.recv(65536)
                    if not data:
                        return
                    payload = b"".join(manager.filter(data))
                    if payload:
                        port.write(payload)
                        self.bytes_to_device += len(payload)
                    if not self.baudrates or self.baudrates[-1] != port.baudrate:
                        self.baudrates.append(port.baudrate)
                if fd in ready:
                    data = port.read(65536)
                    if data:
                        conn.sendall(b"".join(manager.escape(data)))
                        self.bytes_from_device += len(data)
                manager.check_modem_lines()
        finally:
            port.close()
