"""Protocol v1 over BLE GATT with two virtual controllers (bumble ``LocalLink``), no Bluetooth hardware: one
notification is one message, the MTU is negotiated, a cut notification is counted as bad and never parsed."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("bumble")

from treadlab.drivers import DeviceConfig  # noqa: E402
from treadlab.drivers import protocol as p  # noqa: E402
from treadlab.drivers.ble import (  # noqa: E402
    MORE,
    BumbleCentral,
    GattBinaryDevice,
    GattPort,
    Reassembler,
    segment,
)
from treadlab.drivers.sim.ble import VirtualBleRig  # noqa: E402
from treadlab.drivers.sim.spec import SimDeviceSpec  # noqa: E402
from treadlab.errors import PortNotFoundError, ProtocolError  # noqa: E402


def _spec() -> SimDeviceSpec:
    return SimDeviceSpec("insole_left", side="left", layout="insole16", dtype="u16", rate_hz=200,
                         rates_hz=[100, 200], serial="SIM-BLE-0001", seed=4)


def test_segments_join_back_and_a_lost_part_breaks_only_its_message():
    msg = bytes(range(256)) * 3
    parts = segment(msg, 23)
    assert len(parts) == -(-len(msg) // 19) and all(len(x) <= 20 for x in parts)
    assert all(x[0] & MORE for x in parts[:-1]) and not parts[-1][0] & MORE
    short = segment(b"\x02\x82abcd", 247)
    assert short == [b"\x00\x02\x82abcd"]
    r = Reassembler()
    assert r.feed(parts[:5]) == [] and r.feed(parts[5:]) == [msg]
    assert r.feed(short * 3) == [short[0][1:]] * 3
    # a part lost in the middle: that message is broken (counted), the next one is whole
    assert r.feed(parts[:3] + parts[4:] + short) == [short[0][1:]]
    assert r.broken == 2  # the unfinished message, and the stray rest that had lost its beginning
    with pytest.raises(ValueError, match="no room"):
        segment(b"x", 4)


def test_insole_over_ble_with_the_mtu_negotiated():
    with VirtualBleRig(_spec()) as rig:
        port = GattPort(rig.ble, BumbleCentral(rig.central, rig.address), "ble://virtual")
        assert port.att_mtu == 247  # asked 247, granted 247
        dev = GattBinaryDevice(port, DeviceConfig(name="insole_left", port="ble://virtual", side="left"))
        try:
            info = dev.identify()
            assert len(json.dumps(info)) > 244 - 5  # INFO came in parts and was joined
            assert info["serial"] == "SIM-BLE-0001" and info["sensels"] == 16
            dev.set_rate(100)
            assert dev.get_calibration().gain.shape == (16,)
            dev.start()
            batches = []
            deadline = time.monotonic() + 5.0
            while sum(map(len, batches)) < 150 and time.monotonic() < deadline:
                b = dev.read(0.05)
                if b is not None:
                    batches.append(b)
            pong = dev.ping()
            dev.stop()
        finally:
            dev.close()
        seq = np.concatenate([b.seq for b in batches]).astype(np.int64)
        assert len(seq) >= 150 and np.all(np.diff(seq) == 1)
        assert dev.stats.errors == 0 and dev.stats.lost_samples == 0
        assert pong.rtt_ns > 0
        truth_seq, _ = rig.truth()
        assert np.all(np.isin(seq, truth_seq))
        assert rig.commands[:3] == [p.IDENTIFY, p.SET_RATE, p.GET_CALIBRATION]


def test_without_an_mtu_exchange_data_is_cut_counted_as_bad_and_never_parsed():
    with VirtualBleRig(_spec()) as rig:
        port = GattPort(rig.ble, BumbleCentral(rig.central, rig.address, request_mtu=None), "ble://virtual")
        assert port.att_mtu == 23
        strict = GattBinaryDevice(port, DeviceConfig(name="insole_left", port="ble://virtual"))
        with pytest.raises(ProtocolError, match=r"DATA of this device is 50 bytes per notification, the negotiated "
                                                r"ATT MTU 23 carries 20"):
            strict.identify()  # INFO itself arrived in 20-byte parts and was joined
        dev = GattBinaryDevice(port, DeviceConfig(name="insole_left", port="ble://virtual"), check_mtu=False)
        try:
            dev.identify()
            dev.start()
            got = []
            t_end = time.monotonic() + 0.6
            while time.monotonic() < t_end:
                b = dev.read(0.05)
                if b is not None:
                    got.append(b)
            dev.stop()
        finally:
            dev.close()
        truth_seq, _ = rig.truth()
        assert got == []  # nothing parsed from a cut notification
        cut = dev.stats.crc_errors + dev.stats.short_errors + dev.stats.malformed
        assert cut >= 0.9 * len(truth_seq) > 50  # every cut DATA notification counted as bad


def test_a_ble_port_in_a_rig_file_is_one_clear_error():
    from treadlab.drivers import open_device

    with pytest.raises(PortNotFoundError, match="insole_left: ble://F1:F1:F1:F1:F1:F1: Bluetooth ports cannot be "
                                                "opened from a rig file yet"):
        open_device(DeviceConfig(name="insole_left", port="ble://F1:F1:F1:F1:F1:F1"))
