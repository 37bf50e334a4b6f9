"""Unplug and replug through the real path (device process on a pty, Recorder, session file), for a device that
keeps streaming while its cable is out (self-powered) and for one that a replug power-cycles (bus-powered).

Known answers: the simulator's truth file (every sample it took) and its offline file (the samples a self-powered
device took while unplugged, never sent). Every sample sent after the port came back must be stored, bit-exact,
and the ``gaps`` rows must name exactly the sequence numbers that never arrived.
"""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from tests.acq_truth import expected_raw, truth_after_stop, truth_segments
from treadlab import fileformat as ff
from treadlab.acquisition.recorder import Recorder
from treadlab.drivers.sim.device import SimDeviceSpec
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.lab.rig import load_rig

RATE_HZ = 500
UNPLUGS = 3
UNPLUG_S = 0.4
#: Stored times against the true instants. The clock's accuracy (sub-millisecond, which depends on PING round trips
#: and so on the machine's load) is asserted in tests/test_clock.py and tests/test_recorder.py; here the segments
#: are a second long and the bound only has to catch a segment fitted to another power cycle's bounds or samples
#: timed across the unplug, which are off by hundreds of milliseconds.
CLOCK_BOUND_S = 5e-3


def _spec(self_powered: bool) -> SimDeviceSpec:
    return SimDeviceSpec("insole_left", side="left", layout="insole16", dtype="u16", rate_hz=RATE_HZ,
                         drift_ppm=-60.0, offset_ticks=1234567, serial="SIM-REPLUG-1", seed=11,
                         self_powered=self_powered)


def _record_with_replugs(tmp_path, self_powered: bool):
    """Record with UNPLUGS replugs (:func:`_replugs`); returns the file, the truth and the offline records."""
    spec = _spec(self_powered)
    out = tmp_path / "s.h5"
    with SimulatedRig([spec], tmp_path / "devices") as sim:
        rig = load_rig(sim.write_rig(tmp_path / "rig.toml"))
        with Recorder(list(rig.devices), {"participant": "P01"}, str(out), rig.text) as rec:
            rec.start()
            _replugs(sim, rec, spec)
        with h5py.File(out, "r") as f:
            last_seq = int(f["devices/insole_left/seq"][-1])
        truth, offline = truth_after_stop(sim, spec.name, last_seq), sim.offline(spec.name)
        stats = sim.stats(spec.name)
        epoch = sim.t_epoch_ns
    assert stats["overrun_n"] == 0 and stats["lost_n"] == 0 and stats["corrupted_n"] == 0
    return spec, epoch, out, truth, offline


def _wait(rec, done, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done(rec.status().devices[0]):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _replugs(sim, rec, spec) -> None:
    """UNPLUGS unplugs of UNPLUG_S each; every time the recorder has stored half a second of samples since the
    device (re)started (a condition, not a fixed time: a loaded machine is slower)."""
    half_s = spec.rate_hz // 2
    _wait(rec, lambda d: d.samples >= half_s, "no samples before the first unplug")
    for k in range(UNPLUGS):
        sim.unplug(spec.name, UNPLUG_S)
        _wait(rec, lambda d, k=k: d.reconnections == k + 1, f"reconnection {k + 1} did not happen")
        n = rec.status().devices[0].samples
        _wait(rec, lambda d, n=n: d.samples >= n + half_s, f"no samples after reconnection {k + 1}")


def _missing_seqs(gaps: np.ndarray) -> np.ndarray:
    """Every sequence number the gap rows say is missing (a handful of rows: one arange each)."""
    return np.concatenate([np.arange(int(a), int(a) + int(n), dtype=np.int64) for _, a, n in gaps])


def _check_file_against_truth(g: h5py.Group, spec, epoch: int, start_ns: int, true_seq, true_ns) -> None:
    """Stored values are what the device sent for those samples; times within 0.5 ms of the truth; gap times
    are the stored times of the last sample before each gap."""
    seq = g["seq"][:].astype(np.int64)
    idx = np.searchsorted(true_seq, seq)
    assert np.array_equal(true_seq[idx], seq), "stored a sample the device never took"
    t_true_ns = true_ns[idx]
    want = expected_raw(spec, epoch, g, t_true_ns)
    assert np.array_equal(g["raw"][:], want)
    err_s = g["time"][:] - (t_true_ns - start_ns) / 1e9
    assert np.max(np.abs(err_s)) < CLOCK_BOUND_S, np.max(np.abs(err_s))
    gaps = g["gaps"][:]
    before = np.flatnonzero(np.diff(seq) != 1)  # index of the last sample before each jump
    assert np.array_equal(gaps[:, 0], g["time"][:][before])


@pytest.mark.parametrize("self_powered", [True, False], ids=["keeps-streaming", "power-cycles"])
def test_every_sample_sent_after_the_port_came_back_is_stored(tmp_path, self_powered):
    spec, epoch, out, (t_seq, t_ns), (off_seq, _) = _record_with_replugs(tmp_path, self_powered)
    with h5py.File(out, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE
        start_ns = int(f.attrs["start_monotonic_ns"])
        g = f["devices/insole_left"]
        seq = g["seq"][:].astype(np.int64)
        gaps = g["gaps"][:]
        segs = g["clock/segments"][:]
        assert g.attrs["reconnections"] == UNPLUGS and len(segs) == UNPLUGS + 1
        assert len(gaps) == UNPLUGS
        if self_powered:
            # one numbering across the unplugs: the device never restarted
            assert np.all(np.diff(t_seq.astype(np.int64)) == 1) and len(off_seq) > 0.5 * UNPLUGS * UNPLUG_S * RATE_HZ
            t64 = t_seq.astype(np.int64)
            _check_file_against_truth(g, spec, epoch, start_ns, t64, t_ns)
            # after the last sample lost while unplugged, every sample the device sent is stored: a lost run of
            # seq numbers is offline samples plus at most what was in flight when the cable went out
            off = off_seq.astype(np.int64)
            runs = np.split(off, np.flatnonzero(np.diff(off) != 1) + 1)
            assert len(runs) == UNPLUGS
            first_after = np.array([r[-1] + 1 for r in runs])
            jump = np.flatnonzero(np.diff(seq) != 1)
            assert np.array_equal(seq[jump + 1], first_after), (seq[jump + 1], first_after)
            assert seq[-1] == t64[-1]  # and everything up to STOP
            # the gap rows name exactly the seq numbers that never arrived
            span = t64[(t64 >= seq[0]) & (t64 <= seq[-1])]
            lost = np.setdiff1d(span, seq)
            assert np.array_equal(np.sort(_missing_seqs(gaps)), lost)
            assert np.all(np.isin(off, lost))
            assert np.array_equal(gaps[:, 1], seq[jump] + 1)
            assert np.array_equal(gaps[:, 2], seq[jump + 1] - seq[jump] - 1)
        else:
            tsegs = truth_segments(t_seq, t_ns)
            assert len(tsegs) == UNPLUGS + 1 and len(off_seq) == 0
            bounds = np.r_[segs[:, 0].astype(np.int64), len(seq)]
            for k, (ts, tns) in enumerate(tsegs):
                stored = seq[bounds[k]:bounds[k + 1]]
                ts = ts.astype(np.int64)
                # within a power cycle: contiguous, and after a replug from its very first sample on
                assert np.all(np.diff(stored) == 1)
                if k == 0:
                    ts_k = ts[np.searchsorted(ts, stored[0]):]
                else:
                    ts_k = ts
                    assert stored[0] == ts[0] == spec.seq_start
                if k == len(tsegs) - 1:
                    assert np.array_equal(stored, ts_k)  # everything up to STOP
                else:
                    assert np.array_equal(stored, ts_k[: len(stored)])  # the tail in flight at the unplug is lost
                    lost_tail = len(ts_k) - len(stored)
                    row = gaps[k]
                    # the numbering restarted: the gap names the first seq that never came, and the count is the
                    # sample slots missing between the stored times of the samples either side (refitted at stop),
                    # which is the true number of slots to within one
                    assert row[1] == stored[-1] + 1
                    a, b = bounds[k + 1] - 1, bounds[k + 1]
                    t = g["time"][:]
                    assert row[2] == np.round((t[b] - t[a]) * RATE_HZ) - 1 >= lost_tail
                    true_after = tsegs[k + 1][1][0]
                    true_before = tns[np.searchsorted(ts, stored[-1])]
                    assert abs(row[2] - ((true_after - true_before) / 1e9 * RATE_HZ - 1)) < 1.0
                g_sub = slice(bounds[k], bounds[k + 1])
                idx = np.searchsorted(ts, seq[g_sub])
                want = expected_raw(spec, epoch, g, tns[idx])
                assert np.array_equal(g["raw"][g_sub], want)
                err_s = g["time"][g_sub] - (tns[idx] - start_ns) / 1e9
                assert np.max(np.abs(err_s)) < CLOCK_BOUND_S, (k, np.max(np.abs(err_s)))
            before = np.flatnonzero(np.diff(seq) != 1)
            assert np.array_equal(gaps[:, 0], g["time"][:][before])


def test_a_line_insole_that_streams_on_keeps_every_sample_after_the_port_came_back(tmp_path):
    """Line devices stream from power-up and are numbered by the host: nothing received while the port reopened
    may be dropped at START, and the gap count comes from the device clock, which ran on (exact)."""
    from treadlab.drivers.sim.clock import DeviceClock

    spec = SimDeviceSpec("insole_left", protocol="line", side="left", layout="insole16", rate_hz=200, rates_hz=[200],
                         time_unit="ms", decimals=2, drift_ppm=45.0, offset_ticks=777, serial="SIM-LINE-1", seed=12,
                         self_powered=True)
    out = tmp_path / "s.h5"
    with SimulatedRig([spec], tmp_path / "devices") as sim:
        rig = load_rig(sim.write_rig(tmp_path / "rig.toml"))
        with Recorder(list(rig.devices), {"participant": "P01"}, str(out), rig.text) as rec:
            rec.start()
            _replugs(sim, rec, spec)
        with h5py.File(out, "r") as f:
            last_tick = int(f["devices/insole_left/device_time"][-1])
        epoch = sim.t_epoch_ns
        clock = DeviceClock(spec.clock_hz, spec.drift_ppm, spec.offset_ticks, epoch)
        deadline = time.monotonic() + 10.0  # a line device streams on: wait until the truth covers the file
        while int(clock.ticks_at(sim.truth(spec.name)[1][-1:]).max(initial=0)) < last_tick + 5:
            assert time.monotonic() < deadline, "the truth file does not reach the last stored sample"
            time.sleep(0.05)
        (t_seq, t_ns), (off_seq, _) = sim.truth(spec.name), sim.offline(spec.name)
    # the tick each sample was taken at (the truth's instants are rounded to the ns: round, do not floor)
    true_ticks = np.round((t_ns - epoch) * clock.ticks_per_ns).astype(np.int64) + spec.offset_ticks
    assert np.all(np.diff(true_ticks) == 5)  # 200 Hz on a 1 kHz clock, one numbering throughout
    with h5py.File(out, "r") as f:
        start_ns = int(f.attrs["start_monotonic_ns"])
        g = f["devices/insole_left"]
        ticks = g["device_time"][:].astype(np.int64)
        seq, t, gaps = g["seq"][:].astype(np.int64), g["time"][:], g["gaps"][:]
    at = np.searchsorted(true_ticks, ticks)
    assert np.array_equal(true_ticks[at], ticks), "stored a sample the device never took"
    err_s = t - (t_ns[at] - start_ns) / 1e9
    assert np.max(np.abs(err_s)) < CLOCK_BOUND_S, np.max(np.abs(err_s))
    jump = np.flatnonzero(np.diff(at) != 1)
    assert len(jump) == UNPLUGS == len(gaps)
    # after each run of samples lost with the cable out, the first one the device sent is stored
    off_at = np.searchsorted(t_seq.astype(np.int64), off_seq.astype(np.int64))
    runs = np.split(off_at, np.flatnonzero(np.diff(off_at) != 1) + 1)
    assert np.array_equal(at[jump + 1], [r[-1] + 1 for r in runs])
    # one row per gap, at the stored time of the sample before it, naming exactly the samples that never came
    assert np.array_equal(gaps[:, 0], t[jump])
    assert np.array_equal(gaps[:, 1], seq[jump] + 1)
    assert np.array_equal(gaps[:, 2], at[jump + 1] - at[jump] - 1)
