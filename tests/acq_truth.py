"""Helpers of the acquisition tests: compare a session file with the simulated devices' ground truth."""

from __future__ import annotations

import time

import h5py
import numpy as np

from treadlab.drivers.sim.signals import make_source


def truth_after_stop(sim, name: str, last_seq: int, timeout_s: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """A stopped device's truth once the simulator has written it up to the last sample stored (``last_seq``).

    The simulators write their truth files every 0.25 s, later on a loaded machine: wait for the record, never a
    fixed time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        seq, t_ns = sim.truth(name)
        if len(seq) and int(seq[-1]) == int(last_seq):
            return seq, t_ns
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: the truth file does not end with seq {last_seq} after {timeout_s:g} s")
        time.sleep(0.05)


def truth_segments(seq: np.ndarray, t_ns: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split a device's truth records at its power cycles (seq starts again)."""
    cuts = np.flatnonzero(np.diff(seq.astype(np.int64)) < 0) + 1
    bounds = np.r_[0, cuts, len(seq)]
    return [(seq[a:b], t_ns[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def file_segments(g: h5py.Group) -> list[slice]:
    """Slices of a device's samples per clock segment (reconnections)."""
    n = g["seq"].shape[0]
    starts = sorted({int(v) for v in g["clock/segments"][:, 0]} | {0})
    bounds = [s for s in starts if s < n] + [n]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def true_times_s(g: h5py.Group, truth: tuple[np.ndarray, np.ndarray], start_ns: int) -> np.ndarray:
    """The true session time of every stored sample of a device (matched by seq within each power cycle).

    Raises AssertionError when a stored seq is not in the truth.
    """
    seq = g["seq"][:]
    out = np.full(len(seq), np.nan)
    tsegs = truth_segments(*truth)
    fsegs = file_segments(g)
    # the last truth segments are the ones recorded (a device may have power-cycled before the capture)
    tsegs = tsegs[-len(fsegs):] if len(tsegs) >= len(fsegs) else tsegs
    for sl, (ts, tns) in zip(fsegs, tsegs):
        s = seq[sl]
        idx = np.searchsorted(ts, s)
        assert np.all(idx < len(ts)) and np.array_equal(ts[idx], s), "stored seq missing from the truth"
        out[sl] = (tns[idx] - start_ns) / 1e9
    return out


def expected_raw(spec, t_epoch_ns: int, g: h5py.Group, true_ns: np.ndarray) -> np.ndarray:
    """What the simulated device sent for samples taken at ``true_ns`` (its value source, its calibration)."""
    src = make_source(spec, None, t_epoch_ns, g["calibration/gain"][:], g["calibration/offset"][:])
    return src.raw(true_ns).reshape((len(true_ns), *g["raw"].shape[1:]))


def clock_errors_s(g: h5py.Group, truth, start_ns: int) -> np.ndarray:
    """Stored ``time`` minus the true sampling instant, per sample."""
    return g["time"][:] - true_times_s(g, truth, start_ns)


def true_times_by_ticks_s(g: h5py.Group, truth, spec, t_epoch_ns: int, start_ns: int) -> np.ndarray:
    """True session times of stored samples matched by device clock (line devices number samples themselves).

    Only for a device that did not power-cycle during the simulation.
    """
    from treadlab.drivers.sim.clock import DeviceClock

    clock = DeviceClock(spec.clock_hz, spec.drift_ppm, spec.offset_ticks, t_epoch_ns)
    truth_ticks = clock.ticks_at(truth[1]).astype(np.int64)
    stored = g["device_time"][:].astype(np.int64)
    # nearest truth sample (converting the true instant back to ticks may round one tick away)
    idx = np.clip(np.searchsorted(truth_ticks, stored), 1, len(truth_ticks) - 1)
    idx = np.where(np.abs(truth_ticks[idx - 1] - stored) <= np.abs(truth_ticks[idx] - stored), idx - 1, idx)
    assert np.max(np.abs(truth_ticks[idx] - stored)) <= 1, "stored tick not in truth"
    return (truth[1][idx] - start_ns) / 1e9
