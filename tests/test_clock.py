"""Clock fitting (pure functions) against synthetic truth: drift, bursty delivery, stalls, resets, PINGs."""

from __future__ import annotations

import numpy as np
import pytest

from treadlab.acquisition.clock import (
    ClockFit,
    OnlineClock,
    envelope_line,
    fit_recording,
    fit_segment,
    ping_shift,
    segment_starts,
    window_minima,
)

CLOCK_HZ = 1_000_000.0


def simulate(rng, duration_s=30.0, rate_hz=750.0, drift_ppm=80.0, max_delay_s=0.020, t_start_s=1.3,
             ticks_start=123_456_789, stall_p=0.01):
    """True sampling instants, device ticks and host receive times of a bursty, drifting device.

    Samples are delivered in bursts: each burst is released at a random delay (0 to ``max_delay_s``) after its
    last sample was taken, plus a small exponential OS latency; a fraction ``stall_p`` of bursts stalls 20-80 ms.
    """
    n = int(duration_s * rate_hz)
    true_s = t_start_s + np.arange(n) / rate_hz
    ticks = (ticks_start + np.round((true_s - t_start_s) * (1 + drift_ppm * 1e-6) * CLOCK_HZ)).astype(np.uint64)
    burst_len = rng.integers(1, 12, size=n)
    ends = np.minimum(np.cumsum(burst_len), n) - 1
    ends = np.unique(ends)
    release = true_s[ends] + rng.uniform(0, max_delay_s, len(ends)) + rng.exponential(80e-6, len(ends))
    stalls = rng.random(len(ends)) < stall_p
    release[stalls] += rng.uniform(0.02, 0.08, stalls.sum())
    release = np.maximum.accumulate(release)  # a stall delays everything behind it
    burst_of = np.searchsorted(ends, np.arange(n))
    host_s = release[burst_of]
    return true_s, ticks, host_s


def test_window_minima_picks_earliest_pair_per_window():
    x = np.array([0.0, 0.1, 0.2, 0.6, 0.7, 1.2])
    r = np.array([5.0, 2.0, 3.0, 9.0, 1.0, 4.0])
    xm, rm, wm = window_minima(x, r, 0.5)
    assert xm.tolist() == [0.1, 0.7, 1.2] and rm.tolist() == [2.0, 1.0, 4.0] and wm.tolist() == [0, 1, 2]


def test_envelope_line_stays_under_points_and_touches_two():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 10, 50)
    r = 0.3 + 2e-5 * x + rng.exponential(1e-3, 50)
    c, m = envelope_line(x, r)
    resid = r - (c + m * x)
    assert resid.min() >= -1e-12
    assert np.sum(resid < 1e-8) >= 2
    assert abs(m - 2e-5) < 2e-4 and abs(c - 0.3) < 1e-3


def test_fit_recovers_drift_and_offset_within_targets():
    rng = np.random.default_rng(7)
    true_s, ticks, host_s = simulate(rng, drift_ppm=95.0)
    fit = fit_segment(ticks, host_s, CLOCK_HZ)
    err_s = fit(ticks) - true_s
    assert abs(fit.drift_ppm - 95.0) < 15.0
    assert np.max(np.abs(err_s)) < 0.5e-3
    assert np.sqrt(np.mean(err_s**2)) < 0.2e-3
    # The raw host receive stamps are far worse: what the fit is for.
    assert np.sqrt(np.mean((host_s - true_s) ** 2)) > 5e-3


def test_least_squares_would_be_biased_but_envelope_is_not():
    rng = np.random.default_rng(3)
    true_s, ticks, host_s = simulate(rng, drift_ppm=-60.0)
    x = (ticks - ticks[0]).astype(float) / CLOCK_HZ
    ls = np.polyfit(x, host_s, 1)
    ls_err = np.polyval(ls, x) - true_s
    env_err = fit_segment(ticks, host_s, CLOCK_HZ)(ticks) - true_s
    assert np.mean(ls_err) > 5e-3  # biased by the mean delay
    assert abs(np.mean(env_err)) < 0.3e-3


@pytest.mark.parametrize("drift_ppm", [-100.0, 0.0, 100.0])
def test_online_fit_tracks_within_a_millisecond_after_warm_up(drift_ppm):
    rng = np.random.default_rng(11)
    true_s, ticks, host_s = simulate(rng, duration_s=20.0, drift_ppm=drift_ppm)
    clock = OnlineClock(CLOCK_HZ)
    out = np.empty_like(true_s)
    cuts = np.unique(np.r_[0, np.sort(rng.integers(1, len(ticks), 2000)), len(ticks)])
    for a, b in zip(cuts[:-1], cuts[1:]):  # batches as a reader would deliver them
        out[a:b] = clock.update(ticks[a:b], host_s[a:b])
    warm = true_s > true_s[0] + 3.0
    assert np.max(np.abs(out[warm] - true_s[warm])) < 1.5e-3
    assert clock.fit is not None and abs(clock.fit.drift_ppm - drift_ppm) < 30.0


def test_ping_bounds_pull_a_late_envelope_back():
    # Every sample arrives at least 5 ms late; PINGs with a 0.4 ms round trip bound the offset.
    rng = np.random.default_rng(5)
    true_s, ticks, host_s = simulate(rng, duration_s=10.0, drift_ppm=30.0)
    host_s = host_s + 5e-3
    send = np.array([2.0, 4.0, 6.0, 8.0]) + 1.3
    handled = send + rng.uniform(0.05e-3, 0.2e-3, 4)
    recv = handled + rng.uniform(0.05e-3, 0.2e-3, 4)
    dev = (123_456_789 + np.round((handled - 1.3) * (1 + 30e-6) * CLOCK_HZ)).astype(np.int64)
    pings = np.c_[np.round(send * 1e9), np.round(recv * 1e9), dev].astype(np.int64)
    late = fit_segment(ticks, host_s, CLOCK_HZ)
    bounded = fit_segment(ticks, host_s, CLOCK_HZ, pings=pings)
    assert np.mean(late(ticks) - true_s) > 4e-3
    assert np.max(np.abs(bounded(ticks) - true_s)) < 0.5e-3


def test_ping_shift_moves_to_the_middle_of_the_allowed_interval():
    # line at 1.0; the PING says the truth is in [0.9, 1.1], the envelope says <= 1.0: middle of [0.9, 1.0]
    assert ping_shift(np.array([1.0]), np.array([0.9]), np.array([1.1])) == pytest.approx(-0.05)
    # a round trip entirely before the line: the line must come down into it
    assert ping_shift(np.array([1.0]), np.array([0.5]), np.array([0.8])) == pytest.approx(-0.35)
    # the shortest bounds of several pings win
    assert ping_shift(np.array([1.0, 2.0]), np.array([0.99, 1.5]), np.array([1.2, 2.5])) == pytest.approx(-0.005)
    assert ping_shift(np.array([1.0, 1.0]), np.array([1.2, 0.0]), np.array([1.3, 0.5])) == 0.0  # inconsistent


def test_segments_across_a_device_clock_reset_are_fitted_separately():
    rng = np.random.default_rng(9)
    t1, k1, h1 = simulate(rng, duration_s=8.0, drift_ppm=50.0, t_start_s=1.0, ticks_start=900_000_000)
    t2, k2, h2 = simulate(rng, duration_s=8.0, drift_ppm=50.0, t_start_s=12.0, ticks_start=1_000)
    ticks, host_s, true_s = np.r_[k1, k2], np.r_[h1, h2], np.r_[t1, t2]
    assert segment_starts(ticks).tolist() == [0, len(k1)]
    time_s, segs = fit_recording(ticks, host_s, CLOCK_HZ)
    assert [s[:2] for s in segs] == [(0, len(k1)), (len(k1), len(k2))]
    assert np.max(np.abs(time_s - true_s)) < 0.5e-3


def test_known_starts_split_a_continuing_clock_at_a_reconnection():
    rng = np.random.default_rng(2)
    true_s, ticks, host_s = simulate(rng, duration_s=12.0)
    keep = (true_s < 5.0) | (true_s > 7.0)  # two seconds unplugged
    time_s, segs = fit_recording(ticks[keep], host_s[keep], CLOCK_HZ, known_starts=[int(np.sum(true_s < 5.0))])
    assert len(segs) == 2
    assert np.max(np.abs(time_s - true_s[keep])) < 0.5e-3


def test_clockfit_row_and_drift_sign():
    fast = ClockFit(0, 1.0, 1.0 / (CLOCK_HZ * (1 + 50e-6)), CLOCK_HZ)
    assert fast.drift_ppm == pytest.approx(50.0, abs=1e-6)
    row = fast.as_row(10, 20)
    assert row[0] == 10 and row[1] == 20 and row[5] == pytest.approx(50.0)


def test_band_fit_with_pings_beats_the_envelope_on_a_short_quantised_recording():
    """Samples arrive on a 1 ms USB frame grid (so their earliest delays drift with the clock phase); PINGs sent
    at random instants bound the truth from both sides, and the line in the middle of the band is kept."""
    rng = np.random.default_rng(4)
    drift_ppm, rate_hz, n = -70.0, 120.0, 480  # a 4 s mat capture
    true_s = 0.2 + np.arange(n) / (rate_hz * (1 + drift_ppm * 1e-6))
    ticks = (5_000 + np.floor((true_s - 0.2) * (1 + drift_ppm * 1e-6) * CLOCK_HZ)).astype(np.uint64)
    frame = 1e-3
    host_s = np.ceil(true_s / frame) * frame + rng.exponential(50e-6, n) + (rng.random(n) < 0.05) * 0.01
    send = np.sort(rng.uniform(0.3, 4.0, 35))
    handled = send + rng.exponential(40e-6, 35)
    recv = np.ceil(handled / frame) * frame + rng.exponential(50e-6, 35)
    dev = (5_000 + np.floor((handled - 0.2) * (1 + drift_ppm * 1e-6) * CLOCK_HZ)).astype(np.int64)
    pings = np.c_[np.round(send * 1e9), np.round(recv * 1e9), dev].astype(np.int64)
    time_s, segs = fit_recording(ticks, host_s, CLOCK_HZ, pings=pings)
    err = time_s - true_s
    assert np.max(np.abs(err)) < 0.3e-3 and np.sqrt(np.mean(err**2)) < 0.15e-3
    assert abs(segs[0][2].drift_ppm - drift_ppm) < 40.0
    envelope_only, _ = fit_recording(ticks, host_s, CLOCK_HZ)
    assert np.sqrt(np.mean((envelope_only - true_s) ** 2)) > np.sqrt(np.mean(err**2))



def test_pings_go_to_their_own_power_cycle_when_two_cover_the_same_ticks():
    """A device that power-cycles twice counts the same ticks twice: each PING belongs to the power cycle whose
    host time contains it, not to the first one whose tick range does (which would put the bounds of one cycle on
    the other and break both fits)."""
    rng = np.random.default_rng(8)
    parts, pings = [], []
    for t0, ticks0 in ((1.0, 3_000), (5.0, 2_000), (9.0, 4_000)):  # three cycles, each restarting near tick 0
        true_s, ticks, host_s = simulate(rng, duration_s=3.0, drift_ppm=-60.0, t_start_s=t0, ticks_start=ticks0,
                                         max_delay_s=5e-3)
        parts.append((true_s, ticks, host_s + 2e-3))  # a constant 2 ms latency only PINGs reveal
        send = t0 + np.linspace(0.1, 2.9, 20)
        handled = send + rng.uniform(20e-6, 80e-6, len(send))
        dev = ticks0 + np.round((handled - t0) * (1 - 60e-6) * CLOCK_HZ)
        recv = handled + rng.uniform(20e-6, 80e-6, len(send))
        pings.append(np.c_[np.round(send * 1e9), np.round(recv * 1e9), dev])
    true_s, ticks, host_s = (np.concatenate(x) for x in zip(*parts))
    starts = np.cumsum([0] + [len(p[1]) for p in parts[:-1]])
    time_s, segs = fit_recording(ticks, host_s, CLOCK_HZ, known_starts=starts, pings=np.concatenate(pings))
    assert len(segs) == 3
    err = time_s - true_s
    assert np.max(np.abs(err)) < 0.2e-3, np.max(np.abs(err))
