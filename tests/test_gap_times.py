"""A gap's time is the stored time of its sample (the last one stored before the gap), in recorded and in repaired
files: the recorder stamps gap rows with the online clock, and the refit at stop (or in ``lab repair``) moves them
with the samples. Recorded files through the real path are checked in ``tests/test_replug.py``."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

from treadlab import fileformat as ff
from treadlab.acquisition.repair import repair
from treadlab.acquisition.session import gap_sample_index, refit_gaps

RATE_HZ = 1000.0

#: A writer process stamping like a reader thread: a 1 kHz device whose clock runs 80 ppm fast, received 0.2-3 ms
#: late, timed by the OnlineClock; every 0.25 s 7 samples are lost (a forward jump), once the device restarts its
#: numbering and its clock (a backward jump). Gap rows come from seq_gaps, as in the worker. Prints "ready" once a
#: few gaps are written, then runs until killed.
CHILD = r"""
import os, sys, time
import numpy as np
from treadlab.acquisition.clock import OnlineClock
from treadlab.acquisition.worker import seq_gaps
from treadlab.acquisition.writer import SessionWriter, create_session_file
from treadlab.kinds import DeviceDescription
path = sys.argv[1]
setup = DeviceDescription(name="insole_left", kind="insole", side="left", protocol="binary", rate_hz=1000.0,
                    info={"kind": "insole"}, serial="G1", clock_hz=1e6, shape=(4,), dtype=np.dtype("<u2"))
start_ns = time.monotonic_ns()
f = create_session_file(path, {"format": "treadlab-session", "format_version": 1,
                               "start_monotonic_ns": np.int64(start_ns)}, [setup])
with open(path + ".recording", "w") as fh:
    fh.write(str(os.getpid()))
w = SessionWriter(f)
w.start()
w.put_segment("insole_left", np.array([0, 0, 0] + [np.nan] * 4))
rng = np.random.default_rng(4)
clock = OnlineClock(1e6)
k, seq0, tick0, last_seq, last_t, stored, said = 0, 0, 500_000, None, 0.0, 0, False
while True:
    true_s = (np.arange(k, k + 20) / 1000.0)
    keep = ~((np.arange(k, k + 20) % 250) < 7) | (k < 250)
    if k == 1500:  # the device restarts: seq from 0, clock near 0
        seq0, tick0 = -k, 2000 - int(k * 1000 * (1 + 80e-6))
        clock.new_segment()
        w.put_segment("insole_left", np.array([stored, 0, 0] + [np.nan] * 4))
    idx = np.arange(k, k + 20)[keep]
    k += 20
    if not len(idx):
        continue
    seq = ((idx + seq0) % 2**32).astype(np.uint32)
    ticks = (tick0 + np.floor(idx * 1000 * (1 + 80e-6))).astype(np.uint64)
    host = idx / 1000.0 + rng.uniform(0.2e-3, 3e-3) + np.zeros(len(idx))
    time_s = clock.update(ticks, host)
    rows = seq_gaps(last_seq, seq, time_s, last_t, 1000.0)
    if len(rows):
        w.put_gaps("insole_left", rows)
    w.put_samples("insole_left", seq, ticks, time_s, host, np.zeros((len(seq), 4), "<u2"))
    last_seq, last_t, stored = int(seq[-1]), float(time_s[-1]), stored + len(seq)
    if k >= 2600 and not said:
        print("ready", flush=True)
        said = True
    time.sleep(0.002)
"""


def test_gap_rows_follow_their_sample_known_answers():
    seq = np.array([10, 11, 12, 20, 21, 0, 1, 2], np.uint32)
    online = np.array([0.10, 0.11, 0.12, 0.20, 0.21, 0.50, 0.51, 0.52])
    refit = online + np.array([1, 2, 3, 4, 5, 6, 7, 8]) * 1e-4
    gaps = np.array([[0.12, 13, 7],     # forward: the sample is seq 12 (index 2)
                     [0.21, 22, 250],   # the numbering restarted after seq 21 (index 4): an estimate
                     [0.205, 99, 1]])   # no stored sample with seq 98: the latest stamped before 0.205 (index 3)
    assert gap_sample_index(seq, online, gaps).tolist() == [2, 4, 3]
    out = refit_gaps(seq, online, refit, gaps, rate_hz=100.0)
    assert out[:, 0].tolist() == [refit[2], refit[4], refit[3]]
    assert out[0, 2] == 7  # exact counts are kept
    assert out[1, 2] == np.round((refit[5] - refit[4]) * 100.0) - 1 == 28  # re-estimated on the refitted clock
    assert gaps[1, 2] == 250  # the input is not changed
    # a device clock that ran on across the restart gives the exact count (a reset one does not: the times decide)
    ticks = np.array([100, 110, 120, 200, 210, 516, 526, 536], np.uint64)  # 1 kHz ticks, 100 Hz samples
    by_ticks = refit_gaps(seq, online, refit, gaps, 100.0, ticks, 1000.0)
    assert by_ticks[1, 2] == np.round((516 - 210) / 10) - 1 == 30 and by_ticks[0, 2] == 7
    reset = ticks.copy()
    reset[5:] = [3, 13, 23]
    assert refit_gaps(seq, online, refit, gaps, 100.0, reset, 1000.0)[1, 2] == 28
    # equal times: the seq decides
    seq2, t2 = np.array([5, 9, 10], np.uint32), np.array([1.0, 1.0, 1.1])
    assert gap_sample_index(seq2, t2, np.array([[1.0, 10, 3]])).tolist() == [1]
    assert gap_sample_index(seq2, t2, np.array([[0.5, 1, 1]])).tolist() == [-1]  # before every sample: left as is
    assert refit_gaps(seq2, t2, t2 + 1, np.array([[0.5, 1, 1]]), 100.0).tolist() == [[0.5, 1, 1]]


def test_repaired_file_gap_times_are_the_refitted_times_of_their_samples(tmp_path):
    path = tmp_path / "s.h5"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60.0)
        assert ready and proc.stdout.readline().strip() == "ready"
        time.sleep(0.8)  # a flush (0.5 s) after the gaps
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
        proc.stdout.close()
    with h5py.File(path, "r", swmr=True) as f:  # as the crash left it: online times
        g = f["devices/insole_left"]
        online, crashed_gaps = g["time"][:], g["gaps"][:]
        n_crashed = len(online)
    repaired, _ = repair(str(path))
    with h5py.File(repaired, "r") as f:
        assert f.attrs["state"] == ff.STATE_REPAIRED
        g = f["devices/insole_left"]
        seq, t, gaps = g["seq"][:].astype(np.int64), g["time"][:], g["gaps"][:]
        rate = float(g.attrs["rate_hz"])
    d = np.diff(seq)
    before = np.flatnonzero(d != 1)
    assert len(before) >= 9 and np.any(d < 0)  # forward jumps and the restart
    gaps = gaps[: len(before)]  # rows beyond the stored samples (the crash cut them) name later samples
    assert np.array_equal(gaps[:, 0], t[before])
    # the online stamps were not the final times: the test would see a row left on the online clock
    assert np.max(np.abs(crashed_gaps[: len(before), 0] - online[:n_crashed][before])) == 0.0
    assert np.max(np.abs(t[before] - online[before])) > 1e-5
    fwd = d[before] > 0
    assert np.array_equal(gaps[fwd, 1], seq[before][fwd] + 1) and np.all(gaps[fwd, 2] == 7)
    back = ~fwd
    est = np.round((t[before + 1] - t[before]) * rate) - 1
    assert np.array_equal(gaps[back, 2], est[back]) and np.all(gaps[back, 1] == seq[before][back] + 1)
