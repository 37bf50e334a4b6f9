"""The Recorder against simulated devices in their own processes on pseudo-terminals.

Known answers come from the simulators: their true sampling instants (truth files, host CLOCK_MONOTONIC) and
their value sources (the values sent are a function of the true sampling time).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time

import h5py
import numpy as np
import pytest

from tests.acq_truth import clock_errors_s, expected_raw, true_times_s, truth_after_stop
from treadlab import fileformat as ff
from treadlab.acquisition.recorder import Recorder
from treadlab.acquisition.worker import LiveBatch
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.errors import DeviceMismatchError, PortNotFoundError, StorageError
from treadlab.lab.rig import load_rig


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One simulated rig (two binary insoles, a mat) for the whole module: starting one costs seconds."""
    work = tmp_path_factory.mktemp("sim")
    with SimulatedRig.default(work / "devices", seed=3) as rig:
        rig.rig = load_rig(rig.write_rig(work / "rig.toml"))
        yield rig




def _record(rig, path, seconds, during=None, meta=None):
    got: dict[str, list[LiveBatch]] = {}
    lock = threading.Lock()

    def collect(b: LiveBatch) -> None:
        with lock:
            got.setdefault(b.name, []).append(b)

    with Recorder(list(rig.devices), meta or {"participant": "P01"}, str(path), rig.text) as rec:
        rec.subscribe(collect)
        rec.start()
        t_end = time.monotonic() + seconds
        if during is not None:
            during(rec)
        time.sleep(max(0.0, t_end - time.monotonic()))
        status = rec.status()
        rings = {n: rec.ring(n).snapshot(last_s=1.0) for n in rec.names}
    return got, status, rings


def test_capture_is_bit_exact_complete_and_on_one_session_clock(sim, tmp_path):
    out = tmp_path / "s.h5"

    def during(rec):
        time.sleep(1.0)
        rec.mark("warm-up done")

    got, status, rings = _record(sim.rig, out, 4.0, during)
    specs = {s.name: s for s in sim.devices}
    assert not os.path.exists(str(out) + ff.RECORDING_SUFFIX)
    with h5py.File(out, "r") as f:  # a normal open: the file is complete
        assert f.attrs["format"] == ff.FORMAT and f.attrs["state"] == ff.STATE_COMPLETE
        assert f.attrs["participant"] == "P01" and "insole_left" in f.attrs["rig"]
        start_ns = int(f.attrs["start_monotonic_ns"])
        labels = [x.decode() for x in f["markers/label"][:]]
        assert labels == ["warm-up done"] and 0.8 < f["markers/time"][0] < 2.0
        for name, g in f[ff.DEVICES].items():
            spec = specs[name]
            seq = g["seq"][:]
            n = len(seq)
            assert abs(n - 4.0 * spec.rate_hz) < 0.1 * 4.0 * spec.rate_hz, (name, n)
            assert np.all(np.diff(seq.astype(np.int64)) == 1) and len(g["gaps"]) == 0
            truth = truth_after_stop(sim, name, int(seq[-1]))
            true_s = true_times_s(g, truth, start_ns)
            # bit-exact: what the device sent for exactly those instants
            want = expected_raw(spec, sim.t_epoch_ns, g, np.round(true_s * 1e9).astype(np.int64) + start_ns)
            raw = g["raw"][:]
            assert raw.dtype == want.dtype and np.array_equal(raw, want), name
            # one session clock, checked against the simulator's true sampling instants
            err = clock_errors_s(g, truth, start_ns)
            assert np.max(np.abs(err)) < 0.5e-3, (name, np.max(np.abs(err)))
            assert np.sqrt(np.mean(err**2)) < 0.2e-3, name
            host_err = g["host_time"][:] - true_s
            assert np.min(host_err) > 0 and np.mean(host_err) > np.mean(np.abs(err))  # receipt is always late
            assert abs(g.attrs["drift_ppm"] - spec.drift_ppm) < 60.0, name
            assert g.attrs["n_samples"] == n and g.attrs["lost_samples"] == 0
            assert g["calibration/gain"].shape == (int(np.prod(g["raw"].shape[1:])),)
            assert "positions_mm" in g["layout"]
            # subscribers saw the same samples, values as stored
            sub = got[name]
            sub_seq = np.concatenate([b.seq for b in sub])
            assert np.array_equal(sub_seq, seq)
            assert np.array_equal(np.concatenate([b.values for b in sub]), raw)
            # the ring buffer holds the last second
            t_ring, v_ring = rings[name]
            assert 0.5 * spec.rate_hz <= len(t_ring) <= 1.2 * spec.rate_hz and v_ring.shape[0] == len(t_ring)
        mat = f["devices/mat"]
        assert mat["raw"].shape[1:] == (48, 112) and mat["layout"].attrs["pitch_mm"][0] == pytest.approx(8.47)
        events = [x.decode() for x in f["events/text"][:]]
        assert any("session started" in e for e in events) and any("session stopped" in e for e in events)
    for d in status.devices:
        assert d.state == "streaming" and d.lost == 0 and d.crc_errors == 0 and d.reconnections == 0
        assert abs(d.rate_hz - d.nominal_hz) < 0.2 * d.nominal_hz
    assert status.file_size_bytes > 0 and status.queue_overflow == 0 and 4.0 < status.elapsed_s < 8.0


def test_unplug_and_replug_mid_capture_keeps_the_others_going(sim, tmp_path):
    out = tmp_path / "s.h5"

    def during(rec):
        time.sleep(1.5)
        sim.unplug("insole_left", 1.5)

    _, status, _ = _record(sim.rig, out, 5.5, during)
    left = next(d for d in status.devices if d.name == "insole_left")
    assert left.reconnections == 1 and left.state == "streaming"
    with h5py.File(out, "r") as f:
        start_ns = int(f.attrs["start_monotonic_ns"])
        g = f["devices/insole_left"]
        assert g.attrs["reconnections"] == 1
        gaps = g["gaps"][:]
        assert len(gaps) == 1
        t_gap, _, count = gaps[0]
        assert 1.0 < t_gap < 2.5 and abs(count - 1.5 * 500) < 0.5 * 500  # about 1.5 s of samples missing
        assert len(g["clock/segments"]) == 2
        err = clock_errors_s(g, truth_after_stop(sim, "insole_left", int(g["seq"][-1])), start_ns)
        assert np.max(np.abs(err)) < 0.5e-3
        events = [x.decode() for x in f["events/text"][:]]
        assert any("disconnected" in e for e in events) and any("reconnected" in e for e in events)
        for other in ("insole_right", "mat"):
            seq = f[f"devices/{other}/seq"][:]
            jumps = np.flatnonzero(np.diff(seq.astype(np.int64)) != 1)
            assert len(jumps) == 0 and len(f[f"devices/{other}/gaps"]) == 0, (other, jumps, seq[jumps], seq[jumps + 1])
            assert f[f"devices/{other}/time"][-1] > 5.0


def test_corrupted_bytes_and_lost_samples_are_counted_and_recorded(sim, tmp_path):
    out = tmp_path / "s.h5"
    before = sim.stats("insole_right")
    sim.set_fault("insole_right", corrupt_rate=0.01, loss_rate=0.01)
    try:
        _, status, _ = _record(sim.rig, out, 3.0)
    finally:
        sim.set_fault("insole_right", corrupt_rate=0.0, loss_rate=0.0)
    after = sim.stats("insole_right")
    stats = {k: after[k] - before[k] for k in ("lost_n", "corrupted_n")}
    right = next(d for d in status.devices if d.name == "insole_right")
    assert right.crc_errors > 0 and right.lost > 0
    with h5py.File(out, "r") as f:
        g = f["devices/insole_right"]
        seq = g["seq"][:].astype(np.int64)
        gaps = g["gaps"][:]
        missing = int(np.sum(np.diff(seq) - 1))
        # every missing sample (never sent, or dropped as corrupt) is in the gap table
        assert int(gaps[:, 2].sum()) == missing == g.attrs["lost_samples"] > 0
        assert np.array_equal(gaps[:, 1].astype(np.int64), seq[np.flatnonzero(np.diff(seq) > 1)] + 1)
        # a gap's time is the stored time of the last sample before it, after the refit at stop as well
        assert np.array_equal(gaps[:, 0], g["time"][:][np.flatnonzero(np.diff(seq) > 1)])
        assert g.attrs["crc_errors"] >= 1
        assert missing <= stats["lost_n"] + stats["corrupted_n"]
        assert len(f["devices/insole_left/gaps"]) == 0


def test_a_missing_device_refuses_to_start_naming_it(sim, tmp_path):
    out = tmp_path / "s.h5"
    gone = str(tmp_path / "unplugged-port")
    devices = [dataclasses.replace(d, port=gone) if d.name == "insole_right" else d for d in sim.rig.devices]
    with pytest.raises(PortNotFoundError, match="insole_right"):
        with Recorder(devices, {}, str(out), sim.rig.text) as rec:
            rec.start()
    assert not out.exists()


def test_a_device_that_is_not_what_the_rig_says_refuses_to_start(sim, tmp_path):
    out = tmp_path / "s.h5"
    rig = sim.rig
    devices = [dataclasses.replace(d, serial="SOMEONE-ELSE") if d.name == "mat" else d for d in rig.devices]
    with pytest.raises(DeviceMismatchError, match="mat.*serial"):
        Recorder(devices, {}, str(out), rig.text).start()
    assert not out.exists()
    # and the devices were closed again: a second recorder can open them
    with Recorder(list(rig.devices), {}, str(out), rig.text) as rec:
        rec.start()
        time.sleep(0.3)
    assert out.exists()


def test_an_existing_file_is_never_overwritten(tmp_path):
    out = tmp_path / "s.h5"
    out.write_bytes(b"precious")
    with pytest.raises(StorageError, match="never overwritten"):
        Recorder([], {}, str(out)).open()
    assert out.read_bytes() == b"precious"


def test_a_nearly_full_disk_stops_the_capture_cleanly_with_a_complete_file(sim, tmp_path):
    out = tmp_path / "s.h5"
    free = shutil.disk_usage(tmp_path).free
    rec = Recorder(list(sim.rig.devices), {}, str(out), sim.rig.text, min_free_bytes=free + 10**12)
    rec.start()
    deadline = time.monotonic() + 10.0
    while not rec.failed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rec.failed and not rec.write_broken
    with pytest.raises(StorageError, match="almost full"):
        rec.stop()
    with h5py.File(out, "r") as f:  # complete, normally readable
        assert f.attrs["state"] == ff.STATE_COMPLETE and f.attrs["stop_reason"] == "disk-full"
        assert f["devices/insole_left/seq"].shape[0] > 0
