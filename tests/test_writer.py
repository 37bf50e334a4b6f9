"""The SWMR session writer in real processes: live readers, SIGKILL then repair, a write failure; ring buffers;
output paths and storage checks."""

from __future__ import annotations

import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

from treadlab import fileformat as ff
from treadlab.acquisition.capture import check_storage, session_path
from treadlab.acquisition.repair import repair
from treadlab.acquisition.ring import RingBuffer
from treadlab.acquisition.session import open_session, summary
from treadlab.errors import SessionFileError, StorageError

N_VALUES = 64

#: A writer process: 1000 samples/s of one device, a marker every 0.1 s, progress lines "queued_n monotonic_ns".
CHILD = r"""
import os, sys, time
import numpy as np
from treadlab.acquisition.writer import SessionWriter, create_session_file
from treadlab.kinds import DeviceDescription
path, n_values = sys.argv[1], int(sys.argv[2])
setup = DeviceDescription(name="insole_left", kind="insole", side="left", protocol="binary", rate_hz=1000.0,
                          info={"kind": "insole"}, serial="W1", clock_hz=1e6, shape=(n_values,), dtype=np.dtype("<u2"))
start_ns = time.monotonic_ns()
f = create_session_file(path, {"format": "treadlab-session", "format_version": 1,
                               "start_monotonic_ns": np.int64(start_ns)}, [setup])
with open(path + ".recording", "w") as fh:
    fh.write(str(os.getpid()))
w = SessionWriter(f)
w.start()
w.put_segment("insole_left", np.array([0, 0, 0] + [np.nan] * 4))
k = 0
while not w.failed.is_set():
    seq = np.arange(k, k + 20, dtype=np.uint32)
    ticks = seq.astype(np.uint64) * 1000 + 5
    host = (ticks / 1e6 + 0.0003).astype(np.float64)
    values = ((seq[:, None].astype(np.int64) * 7 + np.arange(n_values) * 3) % 65536).astype("<u2")
    w.put_samples("insole_left", seq, ticks, host, host, values)
    if k % 100 == 0:
        w.put_marker(k / 1000, f"mark é {k}")
        w.put_event(k / 1000, "session", 20, f"event {k}")
    k += 20
    print(k, time.monotonic_ns(), flush=True)
    time.sleep(0.02)
w.stop()
print("ERROR", w.error, flush=True)
os._exit(5)  # HDF5 cannot shut down after a failed write (lab record does the same)
"""


def _expected(seq: np.ndarray) -> np.ndarray:
    return ((seq[:, None].astype(np.int64) * 7 + np.arange(N_VALUES) * 3) % 65536).astype("<u2")


def _start_child(path, **kw):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(N_VALUES)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _progress(proc, seconds):
    """Progress lines (queued samples, monotonic_ns) for ``seconds``."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            parts = line.split()
            if parts[0] == "ERROR":
                out.append(line)
                break
            out.append((int(parts[0]), int(parts[1])))
    return out


def test_sigkill_leaves_everything_but_the_last_second_then_repair_makes_a_complete_file(tmp_path):
    path = tmp_path / "s.h5"
    proc = _start_child(path)
    try:
        progress = _progress(proc, 2.5)
        # a live reader sees samples and UTF-8 markers while the writer runs
        f, status = open_session(str(path))
        assert status == "recording"
        f.close()
        s = summary(str(path))
        assert s["status"] == "recording" and s["devices"]["insole_left"]["samples"] > 0
        assert s["markers"] and s["markers"][0]["label"] == "mark é 0"
        progress += _progress(proc, 0.5)
        kill_ns = time.monotonic_ns()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    # queued at least 1 s before the kill: must be in the file
    must = max(k for k, t in progress if t <= kill_ns - 1_000_000_000)
    with pytest.raises(SessionFileError, match="lab repair"):
        open_session(str(path))
    with pytest.raises(SessionFileError, match="lab repair"):
        summary(str(path))
    with h5py.File(path, "r", swmr=True) as f:  # readable as it is
        n_crashed = f["devices/insole_left/seq"].shape[0]
    assert n_crashed >= must
    repaired, original = repair(str(path))
    assert original == str(path) + ff.CRASHED_SUFFIX and os.path.exists(original)
    assert not os.path.exists(str(path) + ff.RECORDING_SUFFIX)
    with h5py.File(repaired, "r") as f:  # a normal open now
        assert f.attrs["state"] == ff.STATE_REPAIRED and f.attrs["repaired_from"] == "s.h5.crashed"
        g = f["devices/insole_left"]
        seq = g["seq"][:]
        assert len(seq) >= must and np.array_equal(seq, np.arange(len(seq)))
        assert np.array_equal(g["raw"][:], _expected(seq))
        assert len(g["time"]) == len(seq) == g.attrs["n_samples"]
        # the refit clock maps the synthetic device time exactly (host = device + 0.3 ms)
        assert np.allclose(g["time"][:], g["device_time"][:] / 1e6 + 0.0003, atol=1e-6)
        labels = [x.decode() for x in f["markers/label"][:]]
        assert labels[:2] == ["mark é 0", "mark é 100"]
        assert len(f["markers/time"]) == len(labels)
    with pytest.raises(SessionFileError, match="nothing to repair"):
        repair(repaired)


def test_a_failing_write_stops_the_writer_with_a_clear_error_and_keeps_what_was_written(tmp_path):
    path = tmp_path / "s.h5"

    def small_files():  # the kernel refuses writes past 1 MB: EFBIG, a write that fails
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    proc = _start_child(path, preexec_fn=small_files)
    try:
        progress = _progress(proc, 60.0)
        code = proc.wait(30)
    finally:
        proc.stdout.close()
        proc.stderr.close()
    assert code == 5
    assert "writing the session file failed" in progress[-1] and "lab repair" in progress[-1]
    with pytest.raises(SessionFileError, match="lab repair"):
        summary(str(path))
    repaired, original = repair(str(path))
    assert os.path.getsize(original) <= 1_000_000
    with h5py.File(repaired, "r") as f:
        g = f["devices/insole_left"]
        seq = g["seq"][:]
        assert len(seq) > 1000 and np.array_equal(seq, np.arange(len(seq)))
        assert np.array_equal(g["raw"][:], _expected(seq))


def test_open_session_errors_are_one_clear_line(tmp_path):
    with pytest.raises(SessionFileError, match="session file not found"):
        open_session(str(tmp_path / "nope.h5"))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(SessionFileError, match="not HDF5"):
        open_session(str(junk))
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(SessionFileError, match="not a treadlab session"):
        open_session(str(other))


def test_ring_buffer_wraps_and_snapshots_the_last_seconds():
    ring = RingBuffer(100, 3, np.dtype("u2"))
    t = np.arange(250) / 50.0
    v = np.repeat(np.arange(250, dtype="u2")[:, None], 3, axis=1)
    for a in range(0, 250, 7):
        ring.append(t[a : a + 7], v[a : a + 7])
    ts, vs = ring.snapshot()
    assert np.array_equal(ts, t[150:]) and np.array_equal(vs[:, 0], np.arange(150, 250))
    ts, vs = ring.snapshot(last_s=0.5)
    assert np.array_equal(ts, t[-26:]) and ring.total_n == 250
    ring.append(t[:500:1][:0], v[:0])  # empty append is fine
    big_t = np.arange(300) / 10.0
    ring.append(big_t, np.zeros((300, 3), "u2"))
    assert np.array_equal(ring.snapshot()[0], big_t[-100:])


def test_ring_buffer_snapshots_are_consistent_while_appending():
    ring = RingBuffer(1000, 4, np.dtype("f4"))
    stop = threading.Event()
    bad = []

    def writer():
        k = 0
        while not stop.is_set():
            t = np.arange(k, k + 13, dtype=np.float64)
            ring.append(t, np.repeat(t[:, None], 4, axis=1).astype("f4"))
            k += 13

    th = threading.Thread(target=writer, name="ring-writer")
    th.start()
    try:
        for _ in range(300):
            ts, vs = ring.snapshot()
            if len(ts) and (np.any(np.diff(ts) != 1) or not np.array_equal(vs[:, 0], ts.astype("f4"))):
                bad.append(ts)
    finally:
        stop.set()
        th.join(5)
    assert not th.is_alive() and not bad


def test_session_paths_follow_participant_and_condition_and_never_overwrite(tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 3, 1, 9, 30, 5, tzinfo=dt.UTC)
    p = session_path(str(tmp_path), "P 07", "new shoe/fast", now)
    assert p == os.path.join(str(tmp_path), "P-07", "20260301T093005Z_new-shoe-fast.h5")
    assert session_path(None, None, None, now) == os.path.join("sessions", "anonymous", "20260301T093005Z_session.h5")
    f = tmp_path / "x.h5"
    assert session_path(str(f), "P", "c") == str(f)
    f.write_bytes(b"")
    with pytest.raises(StorageError, match="never overwritten"):
        session_path(str(f), "P", "c")


def test_storage_check_names_the_folder_and_the_space(tmp_path):
    check_storage(str(tmp_path / "a" / "b" / "s.h5"), 1e6, 10.0)  # creates the folders
    assert (tmp_path / "a" / "b").is_dir()
    with pytest.raises(StorageError, match="not enough free space"):
        check_storage(str(tmp_path / "s.h5"), 1e15, 3600.0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot create the output folder"):
        check_storage(str(blocker / "sub" / "s.h5"), 1.0, 1.0)


def test_ring_buffer_times_for_rates_without_copying_values():
    ring = RingBuffer(50, 2, np.dtype("u1"))
    assert len(ring.times_s(1.0)) == 0
    ring.append(np.arange(80) / 10.0, np.zeros((80, 2), "u1"))
    assert np.array_equal(ring.times_s(1.0), np.arange(69, 80) / 10.0)
