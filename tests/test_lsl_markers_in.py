"""External LSL string streams (another program's markers) recorded into /markers and /events.

A test-owned pylsl string outlet pushes markers with explicit timestamps while a Recorder records a simulated
insole on a pseudo-terminal; the file's /markers must hold them at the pushed LSL times mapped to the session
clock (LSL's ``local_clock`` is ``time.monotonic``), labelled ``"<device>: <text>"``, and the marker subscribers
must see them. A missing required string stream refuses the capture.
"""

from __future__ import annotations

import os
import threading
import time

import h5py
import numpy as np
import pytest

from tests.lsl_support import loopback_session
from treadlab import fileformat as ff
from treadlab.acquisition.recorder import Recorder
from treadlab.drivers.base import DeviceConfig
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.errors import DeviceTimeoutError
from treadlab.lab.rig import load_rig

pylsl = pytest.importorskip("pylsl")


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """liblsl restricted to 127.0.0.1 with a session id of its own; skip if it cannot publish and resolve."""
    return loopback_session(tmp_path_factory, "markers-in")


def _marker_outlet(sid: str, channels: int = 1):
    info = pylsl.StreamInfo("stimulus", "Markers", channels, pylsl.IRREGULAR_RATE, "string", sid)
    return pylsl.StreamOutlet(info)


def _wait_consumer(outlet, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not outlet.have_consumers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert outlet.have_consumers(), "the recorder never opened the string stream"


def _wait_samples(rec, name: str, n: int, timeout_s: float = 15.0) -> None:
    """Wait until the recorder has received ``n`` markers of ``name`` (not a fixed sleep: a loaded machine is slow)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if next(d for d in rec.status().devices if d.name == name).samples >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{name}: {n} markers not received within {timeout_s:g} s")


def test_string_stream_markers_land_in_markers_and_events(loopback, tmp_path):
    sim = SimulatedRig.default(tmp_path / "sim")
    sim = SimulatedRig(sim.devices[:1], tmp_path / "sim", seed=4)  # one insole keeps the test light
    sid = f"stim-{os.getpid()}"
    outlet = _marker_outlet(sid, channels=2)
    path = tmp_path / "markers.h5"
    seen: list[tuple[float, str]] = []
    lock = threading.Lock()

    def on_marker(t: float, label: str) -> None:
        with lock:
            seen.append((t, label))

    pushed: list[tuple[float, list[str]]] = []
    with sim:
        rig = load_rig(sim.write_rig(tmp_path / "rig.toml"))
        stim = DeviceConfig(name="stim", port="", protocol="lsl", extra={"source_id": sid})
        with Recorder([*rig.devices, stim], {"participant": "P"}, str(path), rig.text) as rec:
            rec.subscribe_markers(on_marker)
            rec.start()
            _wait_consumer(outlet)
            time.sleep(0.2)
            now = pylsl.local_clock()
            # explicit stamps, deliberately not "now": 150 ms in the past, then spaced by odd intervals
            for i, (dt, text) in enumerate([(-0.150, "trial 1 start"), (-0.0733, "stimulus ✓"),
                                            (-0.0112, "trial 1 end")]):
                sample = [text, f"cond-{i}"]
                outlet.push_sample(sample, now + dt)
                pushed.append((now + dt, sample))
                time.sleep(0.05)
            rec.mark("operator mark")
            _wait_samples(rec, "stim", len(pushed))
            status = {d.name: d for d in rec.status().devices}
    del outlet
    start_s = None
    with h5py.File(path, "r") as f:
        start_s = int(f.attrs["start_monotonic_ns"]) / 1e9
        m_t = f[ff.MARKERS]["time"][:]
        m_label = [v.decode() for v in f[ff.MARKERS]["label"][:]]
        e_src = [v.decode() for v in f[ff.EVENTS]["source"][:]]
        e_text = [v.decode() for v in f[ff.EVENTS]["text"][:]]
        e_t = f[ff.EVENTS]["time"][:]
        e_level = f[ff.EVENTS]["level"][:]
        devices = list(f[ff.DEVICES])
        insole = devices[0]
        insole_n = f[ff.DEVICES][insole][ff.TIME].shape[0]
    assert devices == [rig.devices[0].name] and insole_n > 200  # no /devices/stim; the insole recorded
    ours = [i for i, lab in enumerate(m_label) if lab.startswith("stim: ")]
    assert [m_label[i] for i in ours] == [f"stim: {s[0]} | {s[1]}" for _, s in pushed]
    expected_t = np.array([ts for ts, _ in pushed]) - start_s
    np.testing.assert_allclose(m_t[ours], expected_t, atol=1e-3)
    err_ms = np.max(np.abs(m_t[ours] - expected_t)) * 1e3
    print(f"string-stream markers vs pushed LSL stamps: max {err_ms:.4f} ms")
    assert "operator mark" in m_label  # the operator's own markers are still there
    ev = [i for i, s in enumerate(e_src) if s == "stim" and e_text[i].startswith(("trial", "stimulus"))]
    assert [e_text[i] for i in ev] == [f"{s[0]} | {s[1]}" for _, s in pushed]
    assert np.all(e_level[ev] == 20)
    np.testing.assert_allclose(e_t[ev], expected_t, atol=1e-3)
    with lock:
        got = [(t, lab) for t, lab in seen if lab.startswith("stim: ")]
    assert [lab for _, lab in got] == [m_label[i] for i in ours]
    np.testing.assert_allclose([t for t, _ in got], expected_t, atol=1e-3)
    assert status["stim"].samples == len(pushed) and status["stim"].state == "streaming"


def test_missing_required_string_stream_refuses(loopback, tmp_path):
    cfg = DeviceConfig(name="stim", port="", protocol="lsl", extra={"source_id": "absent-markers"})
    with pytest.raises(DeviceTimeoutError, match="stim: no LSL stream with source_id 'absent-markers'"):
        Recorder([cfg], {}, str(tmp_path / "a.h5")).open()
    assert not (tmp_path / "a.h5").exists()


def test_vanishing_string_stream_is_an_event_and_is_picked_up_again(loopback, tmp_path):
    sid = f"stim-{os.getpid()}-gone"
    path = tmp_path / "gone.h5"
    outlet = _marker_outlet(sid)
    cfg = DeviceConfig(name="stim", port="", protocol="lsl", extra={"source_id": sid})
    with Recorder([cfg], {}, str(path)) as rec:  # a capture of markers only: the file has no device group
        rec.start()
        _wait_consumer(outlet)
        t1 = pylsl.local_clock()
        outlet.push_sample(["before"], t1)
        _wait_samples(rec, "stim", 1)
        del outlet  # the stimulus program quits ...
        time.sleep(0.5)
        outlet = _marker_outlet(sid)  # ... and is started again
        deadline = time.monotonic() + 10.0
        while rec.status().devices[0].reconnections < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rec.status().devices[0].reconnections == 1
        _wait_consumer(outlet)
        t2 = pylsl.local_clock()
        outlet.push_sample(["after"], t2)
        _wait_samples(rec, "stim", 2)
    del outlet
    with h5py.File(path, "r") as f:
        start_s = int(f.attrs["start_monotonic_ns"]) / 1e9
        labels = [v.decode() for v in f[ff.MARKERS]["label"][:]]
        times = f[ff.MARKERS]["time"][:]
        events = " | ".join(v.decode() for v in f[ff.EVENTS]["text"][:])
        assert len(f[ff.DEVICES]) == 0 and f.attrs["state"] == ff.STATE_COMPLETE
    assert labels == ["stim: before", "stim: after"], events
    np.testing.assert_allclose(times, np.array([t1, t2]) - start_s, atol=1e-3)
    assert "disconnected" in events and "reconnected" in events
