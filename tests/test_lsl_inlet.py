"""External LSL streams recorded as devices: resolve, read, refuse when missing, disconnect when gone."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from tests.lsl_support import loopback_session
from treadlab.acquisition import lsl
from treadlab.drivers.base import DeviceConfig
from treadlab.drivers.lsl import LslInletDevice, open_lsl_device, stream_query
from treadlab.errors import ConfigError, DeviceDisconnectedError, DeviceMismatchError, DeviceTimeoutError

pylsl = pytest.importorskip("pylsl")


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """liblsl restricted to 127.0.0.1 with a session id of its own; skip if it cannot publish and resolve."""
    return loopback_session(tmp_path_factory, "in")


def _emg_outlet(source_id: str, *, fmt: str = "float32", n: int = 4, name: str = "EMG"):
    info = pylsl.StreamInfo(name, "EMG", n, 500.0, fmt, source_id)
    chans = info.desc().append_child("channels")
    for i in range(n):
        ch = chans.append_child("channel")
        ch.append_child_value("label", f"m{i}")
        ch.append_child_value("unit", "microvolts")
    return pylsl.StreamOutlet(info)


def _read_n(dev, n: int, timeout_s: float = 5.0):
    batches = []
    got = 0
    deadline = time.monotonic() + timeout_s
    while got < n and time.monotonic() < deadline:
        b = dev.read(0.1)
        if b is not None:
            batches.append(b)
            got += len(b)
    return batches


def test_query_from_extra_keys_or_port():
    cfg = DeviceConfig(name="emg", port="", protocol="lsl", extra={"stream_name": "EMG", "source_id": "x1"})
    assert stream_query(cfg) == {"name": "EMG", "source_id": "x1"}
    cfg = DeviceConfig(name="emg", port="lsl:type=EEG;name=Cap", protocol="lsl")
    assert stream_query(cfg) == {"type": "EEG", "name": "Cap"}
    with pytest.raises(ConfigError, match="emg: an LSL device needs"):
        open_lsl_device(DeviceConfig(name="emg", port="", protocol="lsl"))
    with pytest.raises(ConfigError, match="bad LSL port"):
        stream_query(DeviceConfig(name="emg", port="lsl:colour=red", protocol="lsl"))


def test_inlet_device_reads_samples_with_lsl_timestamps_in_ns(loopback):
    sid = f"emg-{os.getpid()}-a"
    outlet = _emg_outlet(sid)
    dev = open_lsl_device(DeviceConfig(name="emg", port="", protocol="lsl", extra={"source_id": sid}))
    with dev:
        info = dev.identify(timeout_s=3.0)
        assert info["name"] == "EMG" and info["sensels"] == 4 and info["labels"] == ["m0", "m1", "m2", "m3"]
        assert dev.rate_hz == 500.0 and dev.dtype == np.float32 and dev.serial == sid and dev.host_clock
        assert dev.get_calibration().unit == "microvolts"
        dev.set_rate(500)
        dev.start()
        t0 = pylsl.local_clock()
        values = np.arange(1000 * 4, dtype=np.float32).reshape(1000, 4)
        stamps = t0 + np.arange(1000) / 500.0
        for lo in range(0, 1000, 100):
            lsl.push_stamped(outlet, values[lo:lo + 100], stamps[lo:lo + 100])
        batches = _read_n(dev, 1000)
        pongs = dev.drain_pongs()
        dev.stop()
    # every pair brackets the LSL clock; the fit uses the tightest ones, so the best must be tight (one pair may be
    # preempted between its two clock reads on a loaded machine)
    assert pongs and all(p.host_send_ns <= p.device_ticks <= p.host_recv_ns for p in pongs)
    assert min(p.rtt_ns for p in pongs) < 1e6
    got = np.concatenate([b.values for b in batches])
    ns = np.concatenate([b.device_time for b in batches])
    seq = np.concatenate([b.seq for b in batches])
    np.testing.assert_array_equal(got, values)
    np.testing.assert_allclose(ns.astype(np.float64) * 1e-9, stamps, atol=1e-6)  # proc_clocksync: 0 on this host
    np.testing.assert_array_equal(seq, np.arange(1000))
    assert dev.stats.samples == 1000 and dev.stats.seq_gaps == 0
    del outlet


def test_missing_stream_refuses_quickly(loopback):
    dev = LslInletDevice(DeviceConfig(name="eeg", port="", protocol="lsl", extra={"stream_name": "no-such-stream"}))
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="eeg: no LSL stream with name 'no-such-stream'"):
        dev.identify(timeout_s=1.0)
    assert time.monotonic() - t0 < 4.0


def test_vanished_stream_is_a_disconnect(loopback):
    sid = f"emg-{os.getpid()}-b"
    outlet = _emg_outlet(sid)
    dev = LslInletDevice(DeviceConfig(name="emg", port="", protocol="lsl", extra={"source_id": sid}))
    try:
        dev.identify(timeout_s=3.0)
        dev.start()
        lsl.push_stamped(outlet, np.ones((10, 4)), pylsl.local_clock() + np.arange(10) / 500)
        assert _read_n(dev, 10)
        del outlet
        deadline = time.monotonic() + 10.0
        with pytest.raises(DeviceDisconnectedError, match="vanished"):
            while time.monotonic() < deadline:
                dev.read(0.1)
    finally:
        dev.close()


def test_ambiguous_streams_are_refused_and_string_streams_are_markers(loopback):
    name = f"dup-{os.getpid()}"
    a, b = _emg_outlet(f"{name}-1", name=name), _emg_outlet(f"{name}-2", name=name)
    dev = LslInletDevice(DeviceConfig(name="emg", port="", protocol="lsl", extra={"stream_name": name}))
    assert len(pylsl.resolve_bypred(f"name='{name}'", minimum=2, timeout=5.0)) == 2
    with pytest.raises(DeviceMismatchError, match="2 LSL streams match"):
        dev.identify(timeout_s=3.0)
    del a, b
    sid = f"mk-{os.getpid()}"
    mk = pylsl.StreamOutlet(pylsl.StreamInfo("marks", "Markers", 1, 0.0, "string", sid))
    dev = LslInletDevice(DeviceConfig(name="mk", port="", protocol="lsl", extra={"source_id": sid}))
    info = dev.identify(timeout_s=3.0)  # recorded as markers (tests/test_lsl_markers_in.py)
    assert dev.markers and info["channel_format"] == "string"
    dev.close()
    del mk
