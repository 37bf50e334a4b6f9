"""``lab record``, ``lab info`` and ``lab repair`` as a technician runs them: real subprocesses, simulated devices
in their own processes, signals (Ctrl-C, SIGTERM, SIGKILL), a write failure, a missing device."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from tests.acq_truth import true_times_s
from treadlab import fileformat as ff
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.lab.cli import main
from treadlab.lab.rig import load_rig

LAB = [sys.executable, "-m", "treadlab.lab.cli"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One simulated rig for the module (starting one costs seconds)."""
    work = tmp_path_factory.mktemp("clisim")
    with SimulatedRig.default(work / "devices", seed=11) as rig:
        rig.rig_path = rig.write_rig(work / "rig.toml")
        yield rig


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def lab(capsys):
    """Run ``lab ARGS...`` in this process (the command line entry point; quicker than a new interpreter)."""

    def run(*args: str) -> _Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return _Result(code, out, err)

    return run


@contextlib.contextmanager
def _recording(sim, out, *extra, **kw):
    """``lab record`` running (see :func:`_start_record`); killed and reaped if the test leaves it running."""
    proc = _start_record(sim, out, *extra, **kw)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _start_record(sim, out, *extra, **kw):
    return subprocess.Popen([*LAB, "record", "--rig", str(sim.rig_path), "--out", str(out), "--quiet", *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path, timeout_s=60.0):
    end = time.monotonic() + timeout_s
    while not os.path.exists(path):
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_record_with_duration_metadata_and_typed_markers_then_info(sim, tmp_path, lab):
    with _recording(sim, tmp_path, "--duration", "3", "--participant", "P07", "--condition", "new shoe",
                    "--body-mass", "71.5", "--speed", "3.2", "--shoe", "Trail X", "--note", "first run") as proc:
        _wait_for(str(tmp_path / "P07"))
        time.sleep(1.5)
        proc.stdin.write("heel pain\nspeed up\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    path = out.strip()
    assert path.startswith(str(tmp_path / "P07")) and path.endswith("_new-shoe.h5")
    with h5py.File(path, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE and f.attrs["stop_reason"] == "duration"
        assert (f.attrs["participant"], f.attrs["condition"], f.attrs["shoe"], f.attrs["notes"]) == (
            "P07", "new shoe", "Trail X", "first run")
        assert f.attrs["body_mass_kg"] == 71.5 and f.attrs["treadmill_speed_mps"] == 3.2
        assert 2.9 < f.attrs["duration_s"] < 4.0
        assert [x.decode() for x in f["markers/label"][:]] == ["heel pain", "speed up"]
    info = lab("info", path)
    assert info.returncode == 0 and "P07" in info.stdout and "heel pain" in info.stdout
    assert "insole_left" in info.stdout and "mat" in info.stdout
    js = json.loads(lab("info", path, "--json").stdout)
    assert js["status"] == "complete" and js["devices"]["mat"]["samples"] > 300
    assert abs(js["devices"]["insole_left"]["achieved_rate_hz"] - 500) < 5
    assert [m["label"] for m in js["markers"]] == ["heel pain", "speed up"]
    again = lab("record", "--rig", str(sim.rig_path), "--out", path, "--duration", "1")
    assert again.returncode == 5 and "never overwritten" in again.stderr and len(again.stderr.splitlines()) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_stop_cleanly_and_a_live_file_can_be_inspected(sim, tmp_path, sig, lab):
    out = tmp_path / "live.h5"
    with _recording(sim, out) as proc:
        _wait_for(str(out))
        time.sleep(1.5)
        live = lab("info", str(out), "--json")
        assert live.returncode == 0, live.stderr
        js = json.loads(live.stdout)
        assert js["status"] == "recording" and js["devices"]["insole_right"]["samples"] > 0
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stdout.strip() == str(out)
    with h5py.File(out, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE and f.attrs["stop_reason"] == "interrupted"
        assert f["devices/insole_right/seq"].shape[0] > 500
    assert not os.path.exists(str(out) + ff.RECORDING_SUFFIX)


def test_sigkill_then_lab_repair_recovers_all_but_the_last_second(sim, tmp_path, lab):
    out = tmp_path / "killed.h5"
    with _recording(sim, out) as proc:
        _wait_for(str(out))
        time.sleep(3.0)
        kill_ns = time.monotonic_ns()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    time.sleep(0.5)  # let the simulators' truth files catch up
    info = lab("info", str(out))
    assert info.returncode == 4 and "lab repair" in info.stderr and len(info.stderr.splitlines()) == 1
    rep = lab("repair", str(out))
    assert rep.returncode == 0, rep.stderr
    assert os.path.exists(str(out) + ff.CRASHED_SUFFIX)
    assert lab("info", str(out)).returncode == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["state"] == ff.STATE_REPAIRED
        start_ns = int(f.attrs["start_monotonic_ns"])
        for name, g in f[ff.DEVICES].items():
            truth_seq, truth_ns = sim.truth(name)
            true_s = true_times_s(g, (truth_seq, truth_ns), start_ns)
            # everything the device took up to 1 s before the kill is in the repaired file
            last_needed_s = (kill_ns - 1_000_000_000 - start_ns) / 1e9
            assert true_s[-1] >= last_needed_s, (name, true_s[-1], last_needed_s)
            seq = g["seq"][:].astype(np.int64)
            assert np.all(np.diff(seq) == 1)
            err = g["time"][:] - true_s
            assert np.max(np.abs(err)) < 0.5e-3, name  # the clock is refitted from the stored raw pairs


def test_a_failing_write_stops_the_capture_with_one_line_and_the_file_is_repairable(sim, tmp_path, lab):
    out = tmp_path / "full.h5"

    def small_files():  # writes past 2 MB fail (EFBIG), like a disk that fails under the recorder
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    with _recording(sim, out, "--duration", "30", preexec_fn=small_files) as proc:
        stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 5, stderr
    lines = [x for x in stderr.splitlines() if x.startswith("lab record: error")]
    assert len(lines) == 1 and "writing the session file failed" in lines[0] and "lab repair" in lines[0]
    rep = lab("repair", str(out))
    assert rep.returncode == 0, rep.stderr
    with h5py.File(out, "r") as f:
        n = f["devices/insole_left/seq"].shape[0]
        assert n > 100 and np.all(np.diff(f["devices/insole_left/seq"][:].astype(np.int64)) == 1)


def test_a_missing_device_refuses_to_start_in_one_line(sim, tmp_path, lab):
    rig_text = sim.rig_path.read_text().replace(sim.ports["mat"], str(tmp_path / "no-such-port"))
    rig = tmp_path / "rig.toml"
    rig.write_text(rig_text)
    assert load_rig(rig).device("mat").port.endswith("no-such-port")
    res = lab("record", "--rig", str(rig), "--out", str(tmp_path / "x.h5"), "--duration", "1")
    assert res.returncode == 3
    errors = [x for x in res.stderr.splitlines() if "error" in x]
    assert len(errors) == 1 and "mat" in errors[0] and "not found" in errors[0]
    assert not (tmp_path / "x.h5").exists()
    bad = lab("info", str(tmp_path / "nothing.h5"))
    assert bad.returncode == 4 and bad.stderr.count("\n") == 1 and "not found: " in bad.stderr
    assert bad.stderr.strip().endswith("nothing.h5")
