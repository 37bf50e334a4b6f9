"""The session reader: metadata, calibrated values, bounded chunked reads, clear errors, never writing."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
from sessionfactory import InsoleSpec, MatSpec, write_session

from treadlab.analysis import InsoleData, MatData, read_session
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.errors import SessionFileError


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sess") / "run.h5"
    model = write_session(path, RunnerParams(seed=3), duration_s=4.0, insoles=InsoleSpec(rate_hz=400),
                          mat=MatSpec(rows=120, cols=40), markers=[(1.0, "a"), (3.0, "b")])
    return path, model


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_metadata_devices_markers(session_file):
    path, _ = session_file
    with read_session(path) as s:
        assert s.body_mass_kg == 70.0 and s.treadmill_speed_mps == 3.0
        assert set(s.insoles) == {"left", "right"}
        assert isinstance(s.insoles["left"], InsoleData) and isinstance(s.mats[0], MatData)
        assert list(s.markers["label"]) == ["a", "b"]
        assert s.markers["time"].tolist() == [1.0, 3.0]
        assert s.marker_time("b") == 3.0
        assert s.duration_s == pytest.approx(4.0, abs=0.02)
        assert s.mats[0].rows == 120 and s.mats[0].cols == 40 and s.mats[0].pitch_mm == pytest.approx(8.47)


def test_calibrated_forces_match_model(session_file):
    path, model = session_file
    with read_session(path) as s:
        ins = s.insoles["left"]
        truth = model.vertical_force("left", ins.time)
        # Sum of sensels is the model force (plus noise and quantisation of 0.05 N per sensel).
        assert np.abs(ins.total_force_n - truth).max() < 40.0
        assert ins.forces(10, 20).shape == (10, 16)
        cop = ins.cop_mm[truth > 500]
        assert np.nanmax(cop[:, 1]) < ins.foot_length_mm and np.nanmin(cop[:, 1]) > 0


def test_blocks_are_bounded(session_file):
    path, _ = session_file
    with read_session(path) as s:
        for d in s.devices.values():
            assert d.block_rows() * d.n_values * 4 <= 40 * 2**20
        blocks = list(s.insoles["right"].iter_forces())
        assert sum(len(b) for _, b in blocks) == s.insoles["right"].n_samples


def test_reading_never_modifies(session_file):
    path, _ = session_file
    before = _digest(path)
    from treadlab.analysis import analyze

    with analyze(path) as ga:
        ga.pressure_maps("left")
    assert _digest(path) == before


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "foreign", "version", "truncated", "no-devices"])
def test_bad_files_raise_clear_errors(tmp_path, session_file, kind):
    src, _ = session_file
    p = tmp_path / "bad.h5"
    expect = {"missing": "not found", "folder": "folder", "text": "not HDF5", "foreign": "not a treadlab session",
              "version": "format version", "truncated": "damaged or truncated|not HDF5", "no-devices": "no /devices"}
    if kind == "folder":
        p.mkdir()
    elif kind == "text":
        p.write_text("time,force\n0,1\n")
    elif kind == "foreign":
        with h5py.File(p, "w") as f:
            f.create_dataset("x", data=[1, 2, 3])
    elif kind == "version":
        p.write_bytes(src.read_bytes())
        with h5py.File(p, "r+") as f:
            f.attrs["format_version"] = 7
    elif kind == "truncated":
        data = src.read_bytes()
        p.write_bytes(data[: len(data) // 3])
    elif kind == "no-devices":
        with h5py.File(p, "w") as f:
            f.attrs["format"] = "treadlab-session"
            f.attrs["format_version"] = 1
    with pytest.raises(SessionFileError, match=expect[kind]):
        read_session(p)


def test_damaged_dataset_is_named(tmp_path, session_file):
    src, _ = session_file
    p = tmp_path / "nocal.h5"
    p.write_bytes(src.read_bytes())
    with h5py.File(p, "r+") as f:
        del f["devices/insole_left/calibration"]
    with pytest.raises(SessionFileError, match="insole_left lacks a required dataset"):
        read_session(p)


def test_open_while_recording_swmr(tmp_path):
    """A file held open by a SWMR writer is read with swmr=True; refresh() sees new samples."""
    p = tmp_path / "live.h5"
    write_session(p, RunnerParams(seed=1), duration_s=2.0)
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys, time, h5py, numpy as np
        f = h5py.File({str(p)!r}, "r+", libver=("v110", "v110"))
        f.swmr_mode = True
        print("ready", flush=True)
        sys.stdin.readline()
        for name in ("insole_left", "insole_right"):
            g = f["devices"][name]
            for ds in ("raw", "seq", "device_time", "time", "host_time"):
                d = g[ds]; n = d.shape[0]; d.resize(n + 100, axis=0); d[n:] = d[n - 100:n]
            g["time"][n:] = g["time"][n - 1] + (np.arange(100) + 1) / 500.0
            for ds in ("raw", "seq", "device_time", "time", "host_time"):
                g[ds].flush()
        print("grown", flush=True)
        sys.stdin.readline()
        f.close()
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as proc:
        _talk_to_writer(proc, p)


def _talk_to_writer(proc, p) -> None:
    try:
        assert proc.stdout.readline().strip() == "ready"
        s = read_session(p)
        n0 = s.insoles["left"].n_samples
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "grown"
        s.refresh()
        assert s.insoles["left"].n_samples == n0 + 100
        s.close()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_unwritten_rows_are_ignored(tmp_path, session_file):
    """Rows a recorder allocated but never wrote read as NaN times (the fill value) and are not samples."""
    src, _ = session_file
    p = tmp_path / "allocated.h5"
    p.write_bytes(src.read_bytes())
    with read_session(p) as s:
        n = s.insoles["left"].n_samples
    with h5py.File(p, "r+") as f:
        g = f["devices/insole_left"]
        for name in ("raw", "time", "seq", "device_time", "host_time"):
            g[name].resize(n + 50, axis=0)
        g["time"][n:] = np.nan
    from treadlab.analysis import analyze

    with read_session(p) as s:
        assert s.insoles["left"].n_samples == n
        assert np.isfinite(s.insoles["left"].time).all()
        assert len(s.insoles["left"].total_force_n) == n
        with analyze(s) as ga:
            assert len(ga.steps) > 0
