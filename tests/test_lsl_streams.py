"""External LSL streams in a capture (Recorder in process): refused when required and missing, skipped when
optional, and a stream that vanishes and comes back is a gap and a reconnection, as for an unplugged insole."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

from tests.lsl_support import loopback_session
from treadlab.acquisition import lsl
from treadlab.acquisition.recorder import Recorder
from treadlab.analysis import read_session
from treadlab.analysis.export import export_csv
from treadlab.drivers.base import DeviceConfig
from treadlab.errors import DeviceTimeoutError

pylsl = pytest.importorskip("pylsl")
RATE_HZ = 500.0


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """liblsl restricted to 127.0.0.1 with a session id of its own; skip if it cannot publish and resolve."""
    return loopback_session(tmp_path_factory, "streams")


def _outlet(sid: str):
    return pylsl.StreamOutlet(pylsl.StreamInfo("force-plate", "Force", 2, RATE_HZ, "double64", sid))


def _push_for(outlet, seconds: float, k0: int, t0: float) -> int:
    """Push samples k0.. on a 500 Hz grid from t0 in real time for ``seconds``; returns the next k."""
    k = k0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        n = int((pylsl.local_clock() - t0) * RATE_HZ) - k
        if n > 0:
            idx = np.arange(k, k + n)
            lsl.push_stamped(outlet, np.column_stack([idx, -idx]).astype(np.float64), t0 + idx / RATE_HZ)
            k += n
        time.sleep(0.02)
    return k


def test_missing_required_stream_refuses_and_optional_is_skipped(loopback, tmp_path):
    cfg = DeviceConfig(name="plate", port="lsl:source_id=absent", protocol="lsl", extra={"source_id": "absent"})
    with pytest.raises(DeviceTimeoutError, match="plate: no LSL stream with source_id 'absent'"):
        Recorder([cfg], {}, str(tmp_path / "a.h5")).open()
    assert not (tmp_path / "a.h5").exists()
    sid = f"plate-{os.getpid()}-opt"
    out = _outlet(sid)
    optional = DeviceConfig(name="plate2", port="", protocol="lsl", extra={"source_id": "absent"}, required=False)
    present = DeviceConfig(name="plate", port="", protocol="lsl", extra={"source_id": sid})
    rec = Recorder([present, optional], {}, str(tmp_path / "b.h5")).open()
    try:
        assert rec.names == ["plate"] and rec.skipped and "plate2" in rec.skipped[0]
    finally:
        rec.close()
    del out


def test_vanishing_stream_is_a_gap_and_reconnects(loopback, tmp_path):
    sid = f"plate-{os.getpid()}-gap"
    path = tmp_path / "gap.h5"
    outlet = _outlet(sid)
    t0 = pylsl.local_clock()
    cfg = DeviceConfig(name="plate", port="", protocol="lsl", extra={"source_id": sid})
    newest = [-1.0]  # the newest sample index the recorder has handed out (reader thread writes, test reads)

    def on_batch(b) -> None:
        newest[0] = max(newest[0], float(b.values[-1, 0]))

    with Recorder([cfg], {"participant": "P"}, str(path)) as rec:
        rec.subscribe(on_batch)
        rec.start()
        k = _push_for(outlet, 1.5, 0, t0)
        del outlet  # the sender vanishes ...
        time.sleep(1.0)
        k_back = int((pylsl.local_clock() - t0) * RATE_HZ)  # ... and comes back later on the same clock
        outlet = _outlet(sid)
        deadline = time.monotonic() + 15.0
        while rec.status().devices[0].reconnections < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rec.status().devices[0].reconnections == 1
        k_end = _push_for(outlet, 1.0, k_back + int(0.5 * RATE_HZ), t0)
        deadline = time.monotonic() + 15.0  # stop once the last sample is in: nothing is left in flight
        while newest[0] < k_end - 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert newest[0] == k_end - 1, "the samples pushed after the reconnection never all reached the recorder"
    del outlet
    with read_session(path) as s:
        st = s.streams["plate"]
        v, t = st.values(), st.time
        start_s = int(s.attrs["start_monotonic_ns"]) / 1e9
        events = " | ".join(s.events["text"])
    idx = v[:, 0].astype(np.int64)
    assert np.all(np.diff(idx) > 0) and np.array_equal(v[:, 1], -v[:, 0])
    np.testing.assert_allclose(t + start_s, t0 + idx / RATE_HZ, atol=1e-3)  # on the session clock
    jump = np.flatnonzero(np.diff(idx) > 1)
    assert len(jump) == 1 and idx[jump[0]] <= k - 1 and idx[jump[0] + 1] >= k_back and idx[-1] == k_end - 1
    err_ms = np.max(np.abs(t + start_s - t0 - idx / RATE_HZ)) * 1e3
    print(f"external stream vs sender across a reconnection: max {err_ms:.4f} ms")
    # the gap's time is the stored (refitted) time of the last sample before it: the same number, not a close one
    assert len(st.gaps) >= 1 and st.gaps[0, 0] == t[jump[0]]
    assert "disconnected" in events and "reconnected" in events
    # the CSV export carries the stream with its sign and its channel labels
    files = export_csv(path, tmp_path / "csv")
    table = pd.read_csv(tmp_path / "csv" / "plate.csv")
    assert list(table.columns) == ["time_s", "ch01", "ch02"] and len(table) == len(idx)
    np.testing.assert_array_equal(table["ch02"].to_numpy(), -idx.astype(float))
    assert "external stream 'plate'" in files[-1].read_text()
