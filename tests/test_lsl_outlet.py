"""LSL outlets of a capture, read back by a pylsl inlet on this machine's loopback."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from tests.lsl_support import loopback_session
from treadlab.acquisition import lsl
from treadlab.errors import ConfigError

pylsl = pytest.importorskip("pylsl")


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """liblsl restricted to 127.0.0.1 with a session id of its own; skip if it cannot publish and resolve."""
    return loopback_session(tmp_path_factory, "out")


def _inlet(source_id: str, *, timeout_s: float = 5.0):
    found = pylsl.resolve_byprop("source_id", source_id, timeout=timeout_s)
    assert found, f"stream {source_id} not found"
    inlet = pylsl.StreamInlet(found[0], recover=False)
    inlet.open_stream(timeout=timeout_s)
    return inlet


def _pull(inlet, n: int, timeout_s: float = 5.0):
    vals, stamps = [], []
    deadline = time.monotonic() + timeout_s
    got = 0
    while got < n and time.monotonic() < deadline:
        v, t = inlet.pull_chunk(timeout=0.2, max_samples=4096, as_numpy=True)
        if len(t):
            vals.append(np.asarray(v))
            stamps.append(np.asarray(t))
            got += len(t)
    return np.concatenate(vals) if vals else np.empty((0,)), np.concatenate(stamps) if stamps else np.empty(0)


def _insole_spec(serial: str) -> lsl.StreamSpec:
    pos = np.column_stack([np.linspace(-30, 30, 8), np.linspace(0, 250, 8)])
    return lsl.StreamSpec(device="left", kind="insole", side="left", serial=serial, rate_hz=200.0, unit="N",
                          n_values=8, positions_mm=pos)


def test_names_and_channel_labels_derive_from_the_device():
    spec = _insole_spec("IN-7")
    assert spec.name == "treadlab-insole-left-IN-7" and spec.source_id == "treadlab-IN-7"
    assert spec.stream_type == "Force" and spec.channel_labels()[:2] == ["s01", "s02"]
    mat = lsl.StreamSpec(device="mat", kind="mat", serial="M1", rate_hz=100, unit="kPa", n_values=6, shape=(2, 3))
    assert mat.stream_type == "Pressure" and mat.channel_labels() == ["r00c00", "r00c01", "r00c02", "r01c00",
                                                                        "r01c01", "r01c02"]


def test_bad_positions_are_a_config_error(loopback):
    spec = lsl.StreamSpec(device="x", kind="insole", serial="B", rate_hz=100, unit="N", n_values=3,
                          positions_mm=np.zeros((2, 2)))
    with pytest.raises(ConfigError, match="positions_mm"):
        lsl.make_stream_info(spec)


def test_outlet_carries_values_session_timestamps_and_metadata(loopback):
    serial = f"T{os.getpid()}a"
    spec = _insole_spec(serial)
    origin_s = pylsl.local_clock()
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 900, size=(400, 8)).astype(np.float32)
    time_s = np.arange(400) / 200.0 + rng.normal(0, 1e-4, 400)  # jittered, as fitted times are
    with lsl.LslPublisher([spec], clock_origin_s=origin_s, marker_source_id=f"mk-{serial}") as pub:
        inlet = _inlet(spec.source_id)
        markers = _inlet(f"mk-{serial}")
        for lo in range(0, 400, 50):
            assert pub.publish("left", values[lo:lo + 50], time_s[lo:lo + 50])
        assert pub.publish_marker("start of block", 0.75)
        got_v, got_t = _pull(inlet, 400)
        mk_v, mk_t = _pull(markers, 1)
        xml = inlet.info(timeout=5.0).as_xml()
        labels = inlet.info(timeout=5.0).get_channel_labels()
        units = inlet.info(timeout=5.0).get_channel_units()
        inlet.close_stream()
        markers.close_stream()
        del inlet, markers
    assert got_v.shape == (400, 8)
    np.testing.assert_array_equal(got_v, values)
    np.testing.assert_allclose(got_t - origin_s, time_s, atol=1e-6)
    assert mk_v[0, 0] in (b"start of block", "start of block") and abs(mk_t[0] - origin_s - 0.75) < 1e-6
    assert labels == [f"s{i:02d}" for i in range(1, 9)] and units == ["N"] * 8
    assert "<serial_number>" + serial in xml and "<side>left" in xml and "<location_mm>" in xml
    assert pub.stats.samples_n["left"] == 400 and pub.stats.markers_n == 1 and not pub.stats.errors


def test_outlets_vanish_after_stop(loopback):
    spec = _insole_spec(f"T{os.getpid()}b")
    pub = lsl.LslPublisher([spec], clock_origin_s=0.0, markers=False).start()
    assert pylsl.resolve_byprop("source_id", spec.source_id, timeout=3.0)
    pub.stop()
    assert not pub.running
    cont = pylsl.ContinuousResolver(prop="source_id", value=spec.source_id, forget_after=0.5)
    time.sleep(1.5)
    assert cont.results() == []


def test_full_queue_drops_and_counts(loopback):
    spec = _insole_spec(f"T{os.getpid()}c")
    pub = lsl.LslPublisher([spec], clock_origin_s=0.0, markers=False, queue_n=2)
    # Not started: nothing drains the queue, so the third batch overflows.
    ok = [pub.publish("left", np.zeros((5, 8)), np.arange(5.0)) for _ in range(3)]
    assert ok == [True, True, False]
    assert pub.stats.dropped_batches_n == 1 and pub.stats.dropped_samples_n == 5
    with pytest.raises(KeyError):
        pub.publish("nope", np.zeros((1, 8)), np.zeros(1))


def _driver(kind: str, **kw):
    from treadlab.kinds import Calibration, DeviceDescription

    n = kw.pop("n", 6)
    cal = Calibration("kPa", np.full(n, 2.0, np.float32), np.full(n, 1.0, np.float32))
    base = {"name": kw.pop("name", kind), "protocol": "binary", "kind": kind, "side": "", "serial": f"S-{kind}",
            "rate_hz": 100.0, "clock_hz": 1e6, "dtype": np.dtype("u1"), "shape": (n,), "layout": None, "info": {},
            "calibration": cal}
    base.update(kw)
    return DeviceDescription(**base)


def test_spec_of_device_for_mats_insoles_and_lsl_streams():
    mat = lsl.spec_of_device(_driver("mat", shape=(2, 3), info={"pitch_mm": [8.5, 10.0]}))
    assert mat.shape == (2, 3) and mat.pitch_mm == (8.5, 10.0) and mat.unit == "kPa" and mat.stream_type == "Pressure"
    pos = np.arange(12.0).reshape(6, 2)
    ins = lsl.spec_of_device(_driver("insole", name="insole_left", side="left", layout={"positions_mm": pos}))
    assert ins.name == "treadlab-insole-left-S-insole" and ins.positions_mm is pos
    assert lsl.spec_of_device(_driver("lsl", protocol="lsl")) is None


def test_a_device_that_cannot_be_described_does_not_stop_the_others(loopback):
    good = lsl.StreamSpec(device="good", kind="insole", serial=f"T{os.getpid()}g", rate_hz=100, unit="N",
                          n_values=2, gain=np.full(2, 0.5, np.float32), offset=np.full(2, 10.0, np.float32))

    def resolver(name):
        if name == "bad":
            raise TypeError("cannot describe")
        return good

    with lsl.LslPublisher([], clock_origin_s=pylsl.local_clock(), markers=False, resolver=resolver) as pub:
        assert pub.publish("bad", np.ones((5, 2)), np.arange(5.0))
        assert pub.publish("good", np.array([[10, 30], [50, 0]], np.uint16), np.array([0.0, 0.01]))
        inlet = _inlet(good.source_id)
        assert pub.publish("good", np.array([[12, 14]], np.uint16), np.array([0.02]))
        vals, _ = _pull(inlet, 1)
        inlet.close_stream()
        del inlet
    assert pub.stats.errors and "cannot describe" in pub.stats.errors[0] and pub.stats.samples_n["good"] == 3
    np.testing.assert_array_equal(vals[-1], [1.0, 2.0])  # calibrated: 0.5 * (raw - 10)
