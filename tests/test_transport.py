"""Opening ports: every error a technician can act on, and a network serial server (socket://)."""

from __future__ import annotations

import errno
import os
import time

import numpy as np
import pytest
import serial

from tests.fake_device import FakeSpec, PtyFake, TcpFake, expected_values
from treadlab.drivers import DeviceConfig, open_device, open_port
from treadlab.drivers.transport import port_error, serial_group
from treadlab.errors import DeviceDisconnectedError, PortBusyError, PortNotFoundError, PortPermissionError


def test_missing_port_path(tmp_path):
    with pytest.raises(PortNotFoundError, match="port not found"):
        open_port(str(tmp_path / "ttyACM7"))
    with pytest.raises(PortNotFoundError, match=r"insole_left: .*ttyACM7: port not found"):
        open_device(DeviceConfig(name="insole_left", port=str(tmp_path / "ttyACM7")))


def test_busy_port_held_exclusively_by_another_open():
    with PtyFake() as fake:
        first = open_port(fake.path)
        try:
            with pytest.raises(PortBusyError, match="busy, another program has it open"):
                open_port(fake.path)
        finally:
            first.close()
        open_port(fake.path).close()  # free again once closed


@pytest.mark.skipif(not os.path.exists("/sys/kernel/notes"), reason="needs /sys/kernel/notes")
def test_permission_denied_names_the_group():
    # /sys/kernel/notes cannot be opened for writing, even by root: a real EACCES from open(2).
    with pytest.raises(PortPermissionError, match=f"permission denied; add yourself to the '{serial_group()}' group"):
        open_port("/sys/kernel/notes")


@pytest.mark.parametrize(
    "code,cls,text",
    [(errno.EACCES, PortPermissionError, "permission denied"), (errno.EPERM, PortPermissionError, "usermod"),
     (errno.EBUSY, PortBusyError, "busy"), (errno.ENOENT, PortNotFoundError, "not found"),
     (errno.ENXIO, PortNotFoundError, "not found")],
)
def test_error_mapping_by_errno(code, cls, text):
    exc = serial.SerialException(code, f"could not open port /dev/ttyX: [Errno {code}] {os.strerror(code)}")
    err = port_error("/dev/ttyX", exc)
    assert type(err) is cls and text in str(err) and "/dev/ttyX" in str(err)


def test_a_regular_file_is_not_a_serial_port(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(PortNotFoundError, match="is not a serial port"):
        open_port(str(f))


def test_unknown_url_scheme():
    with pytest.raises(PortNotFoundError, match="nosuch://x"):
        open_port("nosuch://x")


def test_nothing_listening_on_a_network_port():
    import socket

    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(PortNotFoundError, match=f"socket://127.0.0.1:{port}"):
        open_port(f"socket://127.0.0.1:{port}")


def test_socket_transport_streams_like_a_serial_port():
    with TcpFake(FakeSpec(sensels=16, rate_hz=1000)) as fake:
        with open_device(DeviceConfig(name="net_insole", port=fake.url, kind="insole", side="left")) as dev:
            info = dev.identify()
            assert info["kind"] == "insole"
            dev.set_rate(500)
            dev.start()
            got, n = [], 0
            deadline = time.monotonic() + 5
            while n < 100 and time.monotonic() < deadline:
                b = dev.read(0.05)
                if b is not None:
                    got.append(b)
                    n += len(b)
            assert dev.ping().rtt_ns > 0
            dev.stop()
            seq = np.concatenate([b.seq for b in got])
            vals = np.concatenate([b.values for b in got])
            assert n >= 100 and np.array_equal(seq, np.arange(len(seq)))
            assert np.array_equal(vals, expected_values(seq, 16, "u8"))
            assert dev.stats.errors == 0


def test_socket_server_going_away_is_a_disconnect():
    fake = TcpFake(FakeSpec(rate_hz=500)).start()
    try:
        dev = open_device(DeviceConfig(name="net_insole", port=fake.url))
        dev.identify()
        dev.start()
    finally:
        fake.stop()
    try:
        with pytest.raises(DeviceDisconnectedError, match="net_insole"):
            for _ in range(100):
                dev.read(0.05)
    finally:
        dev.close()


def test_a_pty_nobody_serves_times_out_in_2_s():
    import tty

    from treadlab.errors import DeviceTimeoutError

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with open_device(DeviceConfig(name="insole_left", port=os.ttyname(slave))) as dev:
            t0 = time.monotonic()
            with pytest.raises(DeviceTimeoutError, match=r"nothing answered on .* within 2 s \(3 IDENTIFY"):
                dev.identify()
            assert 1.9 < time.monotonic() - t0 < 4.0
    finally:
        os.close(master)
        os.close(slave)
