"""``lab record --lsl`` end to end on this machine's loopback: a simulated insole (its own process, real pty) and an
external LSL stream published by the test are recorded into one session file, while the test reads our outlet.

Checks: the external stream's samples and LSL timestamps are in the file on the session clock; our insole outlet
carries exactly the file's calibrated values with timestamps within 1 ms of the file's times; markers go out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tests.lsl_support import loopback_session
from treadlab.acquisition import lsl
from treadlab.analysis import read_session
from treadlab.drivers.sim.rig import SimulatedRig

pylsl = pytest.importorskip("pylsl")

EMG_RATE_HZ = 1000.0


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """liblsl restricted to 127.0.0.1 with a session id of its own; skip if it cannot publish and resolve."""
    return loopback_session(tmp_path_factory, "rec")


class EmgSender:
    """Test-owned thread pushing a 3-channel 1 kHz ramp with exact timestamps, 50 samples every 50 ms."""

    def __init__(self, source_id: str) -> None:
        info = pylsl.StreamInfo("test-emg", "EMG", 3, EMG_RATE_HZ, "float32", source_id)
        chans = info.desc().append_child("channels")
        for label in ("ta", "gm", "sol"):
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "mV")
        self.outlet = pylsl.StreamOutlet(info)
        self.sent_values: list[np.ndarray] = []
        self.sent_stamps: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-emg-sender")

    def _run(self) -> None:
        k = 0
        t0 = pylsl.local_clock()
        while not self._stop.wait(0.05):
            n = int((pylsl.local_clock() - t0) * EMG_RATE_HZ) - k
            if n <= 0:
                continue
            idx = np.arange(k, k + n)
            vals = np.column_stack([np.sin(idx / 50.0), -np.cos(idx / 70.0), idx * 1e-3]).astype(np.float32)
            stamps = t0 + idx / EMG_RATE_HZ
            lsl.push_stamped(self.outlet, vals, stamps)
            self.sent_values.append(vals)
            self.sent_stamps.append(stamps)
            k += n

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        assert not self._thread.is_alive()
        self.outlet = None


def test_lab_record_lsl_publishes_and_records_external_streams(loopback, tmp_path):
    sim = SimulatedRig.default(tmp_path / "sim")
    sim = SimulatedRig(sim.devices[:1], tmp_path / "sim", seed=1)  # one insole keeps the test light
    emg_sid = f"test-emg-{os.getpid()}"
    emg = EmgSender(emg_sid)
    out = tmp_path / "run.h5"
    with sim:
        rig = sim.write_rig(tmp_path / "rig.toml")
        with open(rig, "a") as fh:
            fh.write(f'\n[[device]]\nname = "emg"\nprotocol = "lsl"\nsource_id = "{emg_sid}"\n')
        emg.start()
        try:
            proc = subprocess.Popen([sys.executable, "-m", "treadlab.lab.cli", "record", "--rig", str(rig),
                                     "--duration", "8", "--out", str(out), "--lsl", "--quiet"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                # 8 s of recording: on a loaded machine resolving and opening the outlets can take seconds, and the
                # marker below must reach a recorder that is still running.
                found = pylsl.resolve_bypred("starts-with(name,'treadlab-insole')", minimum=1, timeout=20.0)
                markers = pylsl.resolve_byprop("type", "Markers", timeout=5.0)
                assert found and markers, "our outlets did not appear"
                inlet = pylsl.StreamInlet(found[0], recover=False)
                inlet.open_stream(timeout=5.0)
                minlet = pylsl.StreamInlet(markers[0], recover=False)
                minlet.open_stream(timeout=5.0)
                info_xml = inlet.info(timeout=5.0).as_xml()
                time.sleep(0.5)
                proc.stdin.write("heel-strike check\n")
                proc.stdin.flush()
                vals, stamps = [], []
                marks = []
                while proc.poll() is None:
                    try:
                        v, t = inlet.pull_chunk(timeout=0.2, max_samples=8192, as_numpy=True)
                        mv, mt = minlet.pull_chunk(timeout=0.0, as_numpy=False)
                    except pylsl.util.LostError:  # the recorder stopped and withdrew its outlets
                        break
                    if len(t):
                        vals.append(np.asarray(v))
                        stamps.append(np.asarray(t))
                    marks += list(zip(mt, mv))
                _, err = proc.communicate(timeout=30)
                inlet.close_stream()
                minlet.close_stream()
                del inlet, minlet
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        finally:
            emg.stop()
    assert proc.returncode == 0, err
    with read_session(out) as s:
        start_s = int(s.attrs["start_monotonic_ns"]) / 1e9
        ins = next(iter(s.insoles.values()))
        file_t = ins.time
        file_v = ins.forces() if ins.unit == "N" else ins._calibrated_block(0, ins.n_samples)
        stream = s.streams["emg"]
        emg_t, emg_v = stream.time, stream.values()
        assert stream.labels == ["ta", "gm", "sol"] and stream.units == ["mV"] * 3 and stream.unit == "mV"
        marker_t = s.markers["time"].to_numpy()
        assert s.markers["label"].tolist() == ["heel-strike check"]
    # external stream: a contiguous run of what the sender pushed, with its LSL timestamps on the session clock
    sent_v, sent_t = np.concatenate(emg.sent_values), np.concatenate(emg.sent_stamps)
    assert len(emg_v) > 2 * EMG_RATE_HZ
    first = int(np.argmin(np.abs(sent_t - (emg_t[0] + start_s))))
    np.testing.assert_array_equal(emg_v, sent_v[first:first + len(emg_v)])
    assert np.max(np.abs(emg_t + start_s - sent_t[first:first + len(emg_v)])) < 1e-3
    # our outlet: the file's calibrated values, stamped within 1 ms of the file's times
    lsl_v, lsl_t = np.concatenate(vals), np.concatenate(stamps)
    assert len(lsl_t) > 500 and "<serial_number>" in info_xml and "<location_mm>" in info_xml
    nearest = np.clip(np.searchsorted(file_t, lsl_t - start_s), 1, len(file_t) - 1)
    nearest -= (lsl_t - start_s - file_t[nearest - 1]) < (file_t[nearest] - (lsl_t - start_s))
    np.testing.assert_allclose(lsl_v, file_v[nearest], rtol=1e-6, atol=1e-4)
    dt_ms = np.abs(lsl_t - start_s - file_t[nearest]) * 1e3
    emg_dt_ms = np.abs(emg_t + start_s - sent_t[first:first + len(emg_v)]) * 1e3
    print(f"insole outlet vs file: {len(lsl_t)} samples, max {dt_ms.max():.3f} ms, median {np.median(dt_ms):.3f} ms; "
          f"external stream vs sender: {len(emg_t)} samples, max {emg_dt_ms.max():.4f} ms")
    assert dt_ms.max() < 1.0, f"LSL vs file time: max {dt_ms.max():.3f} ms, median {np.median(dt_ms):.3f} ms"
    assert len(marks) == 1 and marks[0][1] == ["heel-strike check"]
    assert abs(marks[0][0] - start_s - marker_t[0]) < 1e-6
