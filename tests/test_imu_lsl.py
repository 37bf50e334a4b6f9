"""An imu's Lab Streaming Layer outlet (``lab record --lsl``): type ``MoCap``, the channel names as labels, a unit
per channel, and signed values published as they are (not clipped at 0 like forces), read back by a pylsl inlet
on this machine's loopback."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from tests.lsl_support import loopback_session
from treadlab.acquisition import lsl
from treadlab.kinds import Calibration, DeviceDescription, get_kind

pylsl = pytest.importorskip("pylsl")
SIX = ("ax", "ay", "az", "gx", "gy", "gz")


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """liblsl restricted to 127.0.0.1 with a session id of its own; skip if it cannot publish and resolve."""
    return loopback_session(tmp_path_factory, "imu")


def _imu_desc(serial: str) -> DeviceDescription:
    info = {"kind": "imu", "dtype": "i16", "channels": list(SIX), "placement": "pelvis", "range_g": 16,
            "range_dps": 2000}
    kind = get_kind("imu")
    cal = Calibration("imu", np.full(6, 0.5, np.float32), np.arange(6, dtype=np.float32))
    return DeviceDescription(name="pelvis_imu", kind="imu", protocol="binary", shape=(6,), dtype=np.dtype("<i2"),
                             rate_hz=200.0, clock_hz=1e6, serial=serial, info=info, calibration=cal,
                             channel_labels=kind.channel_labels((6,), info),
                             channel_units=kind.channel_units((6,), info, "imu"))


def test_an_imu_outlet_has_its_type_labels_units_and_signed_values(loopback):
    spec = lsl.spec_of_device(_imu_desc(f"I{os.getpid()}"))
    assert spec.stream_type == "MoCap" and not spec.clip and spec.units == ("g",) * 3 + ("deg/s",) * 3
    raw = (np.arange(600).reshape(100, 6) * 311 % 65536 - 32768).astype("<i2")
    want = 0.5 * (raw.astype(np.float64) - np.arange(6))
    with lsl.LslPublisher([spec], clock_origin_s=pylsl.local_clock(), markers=False) as pub:
        found = pylsl.resolve_byprop("source_id", spec.source_id, timeout=5.0)
        assert found
        inlet = pylsl.StreamInlet(found[0], recover=False)
        inlet.open_stream(timeout=5.0)
        assert pub.publish("pelvis_imu", raw, np.arange(100) / 200.0)
        got, deadline = [], time.monotonic() + 5.0
        while sum(map(len, got)) < 100 and time.monotonic() < deadline:
            v, t = inlet.pull_chunk(timeout=0.2, max_samples=4096, as_numpy=True)
            if len(t):
                got.append(np.asarray(v))
        info = inlet.info(timeout=5.0)
        labels, units, stype = info.get_channel_labels(), info.get_channel_units(), info.type()
        inlet.close_stream()
        del inlet
    values = np.concatenate(got)
    assert stype == "MoCap" and labels == list(SIX) and units == ["g"] * 3 + ["deg/s"] * 3
    np.testing.assert_allclose(values, want, rtol=1e-6)
    assert values.min() < -8000  # signed: not clipped at 0
