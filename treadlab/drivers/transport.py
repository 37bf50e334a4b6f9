"""Opening ports, and turning what the OS says about them into errors a technician can act on.

A driver never opens its own port: :func:`open_port` does, for any port or URL pyserial understands
(``/dev/ttyACM0``, ``COM3``, ``socket://host:port``, ``rfc2217://host:port``, ``loop://``), and the driver
receives the open port object. :func:`read_chunk` is the one bulk read every driver uses
(``read(in_waiting or 1)`` with a finite timeout, never ``readline``), and it maps a vanished port to
:class:`~treadlab.errors.DeviceDisconnectedError`.
"""

from __future__ import annotations

import errno
import os
import sys

import serial

from treadlab.drivers.urls import network_address, scheme_of
from treadlab.errors import (
    DeviceDisconnectedError,
    DeviceError,
    PortBusyError,
    PortNotFoundError,
    PortPermissionError,
)

DEFAULT_BAUDRATE = 921600
DEFAULT_TIMEOUT_S = 0.05

_NOT_FOUND = {errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.ENOTDIR, errno.ECONNREFUSED, errno.EHOSTUNREACH}
_BUSY = {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK}
_PERMISSION = {errno.EACCES, errno.EPERM}


def serial_group() -> str:
    """Name of the group whose members may open serial ports on this system (``dialout`` or ``uucp``)."""
    try:
        import grp

        names = {g.gr_name for g in grp.getgrall()}
    except ImportError:  # pragma: no cover - Windows
        return "dialout"
    if "dialout" not in names and "uucp" in names:
        return "uucp"
    return "dialout"


def available_ports() -> str:
    """A short list of the serial ports present, for error messages (e.g. ``"ports present: /dev/ttyACM0"``)."""
    try:
        from serial.tools import list_ports

        names = sorted(p.device for p in list_ports.comports())
    except (ImportError, OSError):  # pragma: no cover - platform without port enumeration
        return "cannot list the serial ports"
    if not names:
        return "no serial ports present"
    more = f" and {len(names) - 8} more" if len(names) > 8 else ""
    return "ports present: " + ", ".join(names[:8]) + more


def port_error(url: str, exc: BaseException) -> DeviceError:
    """Map an exception raised while opening ``url`` to the matching :class:`~treadlab.errors.DeviceError`.

    Parameters
    ----------
    url : str
        The port or URL that was being opened.
    exc : BaseException
        What pyserial or the OS raised (``serial.SerialException``, ``OSError``, ``ValueError``).

    Returns
    -------
    DeviceError
        A :class:`PortNotFoundError`, :class:`PortBusyError`, :class:`PortPermissionError` or a plain
        :class:`DeviceError`, with a one-line message naming the port and what to do.
    """
    code = getattr(exc, "errno", None)
    text = str(exc)
    lowered = text.lower()
    if code in _PERMISSION or "permission denied" in lowered or "access is denied" in lowered:
        if sys.platform.startswith("win"):
            return PortPermissionError(f"{url}: access denied (is another program using the port?)")
        group = serial_group()
        return PortPermissionError(
            f"{url}: permission denied; add yourself to the '{group}' group "
            f"(sudo usermod -aG {group} $USER, then log out and in again)"
        )
    if code in _BUSY or "exclusively lock" in lowered or "resource busy" in lowered:
        return PortBusyError(f"{url}: port is busy, another program has it open (close it, or check `fuser {url}`)")
    if code in _NOT_FOUND or "no such file" in lowered or ("could not open port" in lowered and "refused" in lowered):
        return PortNotFoundError(f"{url}: port not found (device unplugged, or wrong port in the rig file?)"
                                 + ("" if "://" in url else f"; {available_ports()}"))
    not_tty = "could not configure port" in lowered or "inappropriate ioctl" in lowered
    if code in (errno.EISDIR, errno.ENOTTY) or not_tty:
        return PortNotFoundError(f"{url}: is not a serial port")
    if isinstance(exc, ValueError) or "invalid url" in lowered or "expected" in lowered:
        return PortNotFoundError(f"{url}: not a port pyserial can open ({text})")
    if code is not None and isinstance(code, int):
        text = os.strerror(code)
    return DeviceError(f"{url}: cannot open port: {text}")


def open_port(url: str, baudrate: int = DEFAULT_BAUDRATE, timeout_s: float = DEFAULT_TIMEOUT_S) -> serial.SerialBase:
    """Open any pyserial port or URL for a driver: exclusive where supported, finite read timeout.

    Parameters
    ----------
    url : str
        ``/dev/ttyACM0``, ``COM3``, ``socket://host:port``, ``rfc2217://host:port``, ``loop://``...
    baudrate : int
        Line speed (ignored by USB CDC devices, pseudo-terminals and network ports).
    timeout_s : float
        Read timeout; reads return what is there after at most this long.

    Returns
    -------
    serial.SerialBase
        The open port.

    Raises
    ------
    PortNotFoundError, PortBusyError, PortPermissionError, DeviceError
        With a message naming the port and what to do.
    """
    if not url:
        raise PortNotFoundError("no port given")
    if scheme_of(url) in ("socket", "rfc2217"):
        network_address(url)  # one clear message for a malformed URL (pyserial's are internal errors)
    # pyserial's rfc2217 client refuses any write timeout (NotImplementedError on open): writes there block
    # until the TCP send buffer takes them, and a vanished server is an error on the socket instead.
    write_timeout_s = None if url.lower().startswith("rfc2217://") else 2.0
    try:
        port = serial.serial_for_url(url, do_not_open=True, baudrate=baudrate, timeout=timeout_s,
                                     write_timeout=write_timeout_s, exclusive=True)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise port_error(url, exc) from exc
    try:
        port.open()
    except (serial.SerialException, ValueError, OSError) as exc:
        raise port_error(url, exc) from exc
    return port


def read_chunk(port: serial.SerialBase, name: str) -> bytes:
    """One bulk read: everything waiting, or block up to the port's timeout for the first byte.

    Parameters
    ----------
    port : serial.SerialBase
        An open port with a finite timeout.
    name : str
        Device name for the error message.

    Returns
    -------
    bytes
        What arrived (empty after a timeout).

    Raises
    ------
    DeviceDisconnectedError
        The port vanished (USB unplug, pty master closed, network connection dropped).
    """
    try:
        if type(port).__module__ == _SOCKET_MODULE:
            return _read_socket_chunk(port)
        chunk = port.read(port.in_waiting or 1)
        if chunk:
            more = port.in_waiting
            if more:
                chunk += port.read(more)
        return chunk
    except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
        # TypeError/AttributeError: pyserial's handlers touch a closed socket or fd as None after a close.
        raise DeviceDisconnectedError(f"{name}: port {port.port} vanished ({exc})") from exc


#: pyserial's ``socket://`` handler, whose ``in_waiting`` is only 0 or 1 (readable or not), never a byte count.
_SOCKET_MODULE = "serial.urlhandler.protocol_socket"
_SOCKET_READ_BYTES = 1 << 20


def _read_socket_chunk(port: serial.SerialBase) -> bytes:
    """``socket://``: block up to the timeout for the first byte, then take everything queued in one ``recv``.

    ``read(in_waiting or 1)`` would return one or two bytes per call there (a per-byte loop at the stream's
    rate), and ``read(large)`` would wait out the whole timeout while data keeps arriving.
    """
    first = port.read(1)
    if not first:
        return b""
    timeout = port.timeout
    port.timeout = 0  # non-blocking: one recv of what the socket holds
    try:
        return first + port.read(_SOCKET_READ_BYTES)
    finally:
        port.timeout = timeout


def write_bytes(port: serial.SerialBase, data: bytes, name: str) -> None:
    """Write ``data`` completely, mapping a vanished port to :class:`DeviceDisconnectedError`."""
    try:
        port.write(data)
    except serial.SerialTimeoutException as exc:
        raise DeviceDisconnectedError(f"{name}: port {port.port} does not accept data (write timed out)") from exc
    except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
        raise DeviceDisconnectedError(f"{name}: port {port.port} vanished ({exc})") from exc
