"""Gait events from inertial sensors alone: initial contact and toe-off from the tibiae or the pelvis, and which
foot each pelvis step belongs to.

Pelvis (a sacral sensor; :func:`pelvis_events`):

- **Steps.** The earth-vertical specific force (g; about 0 in flight, 2-3 at mid-stance), low-passed at
  ``STANCE_LP_HZ``, has one hump per stance. Its peaks (at least ``0.55`` of the median step apart, prominence
  ``0.25`` g) are the steps' mid-stances.
- **Initial contact** is the impact: the largest rise of the vertical acceleration (its derivative, low-passed at
  ``IMPACT_LP_HZ``) in the half step before each mid-stance, moved back to where that rise began (the last
  sample before it whose slope was under ``ONSET_FRACTION`` of the largest one), and back through a dip that
  leads it (an impact transient is a wavelet: the acceleration may fall before it rises; at most
  ``DIP_MAX_S``). On the simulator the pelvis's impact wavelet peaks 30 ms after contact; the onset found is
  about 8 ms after it (``docs/analysis.md``, accuracy).
- **Toe-off** is where the hump falls back through the level halfway between the flight minimum and the
  mid-stance peak, after mid-stance.
- **Foot.** In a left stance the left foot is beside the body: the ground pushes the pelvis towards the right
  (negative lateral acceleration, the segment's y axis pointing left), and in a right stance towards the left.
  Each step's mean lateral acceleration from IC to TO is its vote; the feet alternate, so a step's foot is the
  sign of the alternating sum of the votes of the steps around it (``FOOT_WINDOW`` either side, within one run
  of regular steps), which outvotes a single noisy step. When the lateral sway is too weak to tell (its votes
  alternate in fewer than 70% of the steps), the obliquity's alternation (the pelvis is higher on the stance
  side in most runners: positive obliquity in a left stance) votes instead, and ``foot_method`` says so.

Tibia (:func:`tibia_events`): initial contact is the onset of the shank's axial impact, as for the pelvis: each
stride's sharpest axial rise (the peaks of the slope, at least ``0.55`` of the median stride apart and above 30%
of the recording's 99.5th percentile slope: the swing's accelerations can be larger than a soft landing's but
are slow); the tibia gives no toe-off here (NaN; with a pelvis sensor its toe-off is used).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import butter, find_peaks, sosfiltfilt

from treadlab.analysis.ragged import range_max

__all__ = ["FOOT_WINDOW", "IMPACT_LP_HZ", "STANCE_LP_HZ", "assign_feet", "impact_onsets", "pelvis_events",
           "tibia_events"]

STANCE_LP_HZ = 8.0
IMPACT_LP_HZ = 60.0
ONSET_FRACTION = 0.2
DIP_MAX_S = 0.020
FOOT_WINDOW = 4


#: Samples of a block of the zero-phase low-pass, and the signal read either side of it (s): the filters'
#: transients decay far below float64 rounding in that time, so blocks give the result of one piece.
LOWPASS_BLOCK = 1 << 18
LOWPASS_PAD_S = 10.0


def _lowpass(x: np.ndarray, rate_hz: float, cutoff_hz: float) -> np.ndarray:
    """Zero-phase second-order Butterworth low-pass (float64), a block at a time (bounded temporaries)."""
    fc = min(cutoff_hz, 0.4 * rate_hz)
    sos = butter(2, fc, fs=rate_hz, output="sos")
    n = len(x)
    pad = int(LOWPASS_PAD_S * rate_hz)
    if n <= LOWPASS_BLOCK + 2 * pad:
        return sosfiltfilt(sos, np.asarray(x, dtype=np.float64))
    out = np.empty(n)
    for a in range(0, n, LOWPASS_BLOCK):  # one iteration per block of 2^18 samples
        b = min(n, a + LOWPASS_BLOCK)
        lo, hi = max(0, a - pad), min(n, b + pad)
        out[a:b] = sosfiltfilt(sos, np.asarray(x[lo:hi], dtype=np.float64))[a - lo:b - lo]
    return out


def _impact_slope(acc_g: np.ndarray, rate_hz: float) -> np.ndarray:
    """The slope (g/s) of ``acc_g`` low-passed at ``IMPACT_LP_HZ``."""
    slope = np.gradient(_lowpass(acc_g, rate_hz, IMPACT_LP_HZ))
    slope *= rate_hz
    return slope


def _period_samples(x: np.ndarray, rate_hz: float, lo_hz: float, hi_hz: float) -> float:
    """The dominant period (samples) of ``x`` between two frequencies (a spectrum of at most 2^18 samples)."""
    seg = np.asarray(x[: 1 << 18], dtype=np.float64)
    seg = seg - seg.mean()
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    f = np.fft.rfftfreq(len(seg), 1.0 / rate_hz)
    band = (f >= lo_hz) & (f <= hi_hz)
    if not band.any() or spec[band].max() <= 0:
        return float("nan")
    return float(rate_hz / f[band][int(np.argmax(spec[band]))])


def impact_onsets(acc_g: np.ndarray, rate_hz: float, peaks: np.ndarray, search_n: int,
                  through_dip_s: float = 0.0, slope: np.ndarray | None = None) -> np.ndarray:
    """Onset of the sharpest rise of ``acc_g`` in the ``search_n`` samples before each of ``peaks``.

    From the sharpest rise (the largest slope, low-passed at ``IMPACT_LP_HZ``) back to the last sample whose
    slope was under ``ONSET_FRACTION`` of it; then, with ``through_dip_s``, back through a dip that leads the
    rise (a falling slope: the leading lobe of an impact wavelet), at most that long.

    Returns
    -------
    ndarray of float
        Fractional sample indices (NaN where there is no rise).
    """
    if slope is None:  # the caller may have it already (g/s)
        slope = _impact_slope(acc_g, rate_hz)
    n = len(slope)
    peaks = np.asarray(peaks, dtype=np.int64)
    lo = np.clip(peaks - int(search_n), 0, n)
    offs = np.arange(int(search_n) + 1)
    rows = np.clip(lo[:, None] + offs[None, :], 0, n - 1)  # (steps, search_n): a window per step
    inside = rows <= peaks[:, None]
    win = np.where(inside, slope[rows], -np.inf)
    k = np.argmax(win, axis=1)
    top = win[np.arange(len(peaks)), k]
    before = (offs[None, :] <= k[:, None]) & inside
    quiet = before & (win < ONSET_FRACTION * top[:, None])
    last_quiet = np.where(quiet.any(axis=1), (np.where(quiet, offs[None, :], -1)).max(axis=1), 0)
    # interpolate the crossing of ONSET_FRACTION * top between the last quiet sample and the next
    r0 = rows[np.arange(len(peaks)), last_quiet]
    r1 = np.minimum(r0 + 1, n - 1)
    s0, s1 = slope[r0], slope[r1]
    level = ONSET_FRACTION * top
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((level - s0) / (s1 - s0), 0.0, 1.0)
    out = r0 + np.nan_to_num(frac)
    if through_dip_s > 0:
        # back through the falling slope just before (the dip), up to through_dip_s
        m = max(1, int(round(through_dip_s * rate_hz)))
        back = r0[:, None] - np.arange(1, m + 1)[None, :]
        falling = slope[np.clip(back, 0, n - 1)] < 0
        run = np.cumprod(falling, axis=1).sum(axis=1)  # consecutive falling samples right before the onset
        out = np.where(run > 0, out - run, out)
    return np.where(top > 0, out, np.nan)


def _at(time_s: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Times at fractional sample indices."""
    ok = np.isfinite(idx)
    out = np.full(len(idx), np.nan)
    out[ok] = np.interp(idx[ok], np.arange(len(time_s)), time_s)
    return out


def pelvis_events(time_s: np.ndarray, acc_lab_g: np.ndarray, rate_hz: float, obliquity_deg: np.ndarray | None = None,
                  start_s: float = -np.inf) -> tuple[pd.DataFrame, dict]:
    """Steps from a pelvis sensor: ``foot``, ``ic_s``, ``to_s`` (see the module notes).

    Parameters
    ----------
    time_s : ndarray, shape (n,)
    acc_lab_g : ndarray, shape (n, 3)
        Forward, left, vertical specific force (g).
    rate_hz : float
    obliquity_deg : ndarray, optional
        For the fall-back foot vote.
    start_s : float
        Steps before this time (the standing period) are not looked for.

    Returns
    -------
    steps : DataFrame
    info : dict
        ``step_period_s``, ``foot_method`` ("lateral acceleration" or "obliquity"), ``foot_consistency``.
    """
    vert = acc_lab_g[:, 2]  # converted to float64 a block at a time by the low-pass
    hump = _lowpass(vert, rate_hz, STANCE_LP_HZ)
    first = int(np.searchsorted(time_s, start_s))
    period = _period_samples(hump[first:], rate_hz, 1.5, 4.5)
    empty = pd.DataFrame({"foot": pd.Series([], dtype=object), "ic_s": [], "to_s": []})
    if not np.isfinite(period):
        return empty, {"step_period_s": float("nan"), "foot_method": "", "foot_consistency": float("nan")}
    mids, _ = find_peaks(hump[first:], distance=max(1, int(0.55 * period)), prominence=0.25)
    mids = mids + first
    if len(mids) < 4:
        return empty, {"step_period_s": period / rate_hz, "foot_method": "", "foot_consistency": float("nan")}
    # The impact: its sharpest rise in the last part of flight before this mid-stance's load.
    ic_idx = impact_onsets(vert, rate_hz, mids, int(0.5 * period), through_dip_s=DIP_MAX_S)
    # Toe-off: the hump falls through the level halfway between this mid-stance's peak and the next flight.
    nxt = np.append(mids[1:], min(len(hump) - 1, mids[-1] + int(period)))
    low_next = -range_max(-hump, mids, nxt)  # the next flight's level
    to_idx = _crossings(hump, mids, nxt, 0.5 * (hump[mids] + low_next), rising=False)
    ic_s, to_s = _at(time_s, ic_idx), _at(time_s, to_idx)
    lat_rows_a = np.clip(np.floor(np.nan_to_num(ic_idx, nan=0)).astype(np.int64), 0, len(vert))
    lat_rows_b = np.clip(np.ceil(np.nan_to_num(to_idx, nan=0)).astype(np.int64), 0, len(vert))
    lat_rows_b = np.where(np.isfinite(to_idx), lat_rows_b, mids)
    from treadlab.analysis.imu.metrics import by_span, range_mean

    votes = -by_span(range_mean, acc_lab_g[:, 1], lat_rows_a, np.maximum(lat_rows_b, lat_rows_a + 1))  # left: +
    gaps = np.diff(mids) > 1.6 * period
    feet, consistency = assign_feet(votes, gaps)
    method = "lateral acceleration"
    if consistency < 0.7 and obliquity_deg is not None:
        ovotes = by_span(range_mean, obliquity_deg, lat_rows_a, np.maximum(lat_rows_b, lat_rows_a + 1))
        f2, c2 = assign_feet(ovotes, gaps)
        if c2 > consistency:
            feet, consistency, method = f2, c2, "obliquity"
    steps = pd.DataFrame({"foot": feet, "ic_s": ic_s, "to_s": to_s})
    steps = steps[np.isfinite(steps["ic_s"])].reset_index(drop=True)
    return steps, {"step_period_s": period / rate_hz, "foot_method": method, "foot_consistency": consistency}


def _crossings(x: np.ndarray, a: np.ndarray, b: np.ndarray, level: np.ndarray, rising: bool) -> np.ndarray:
    """:func:`_crossing` a span of samples at a time (``a`` ascending; bounded temporaries)."""
    from treadlab.analysis.imu.metrics import SPAN_SAMPLES

    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    out = np.full(len(a), np.nan)
    i = 0
    while i < len(a):  # one iteration per span of SPAN_SAMPLES samples (a few an hour)
        j = max(i + 1, int(np.searchsorted(a, a[i] + SPAN_SAMPLES, side="left")))
        lo, hi = int(a[i:j].min()), min(len(x), int(b[i:j].max()) + 1)
        out[i:j] = _crossing(x[lo:hi], a[i:j] - lo, b[i:j] - lo, level[i:j], rising) + lo
        i = j
    return out


def _crossing(x: np.ndarray, a: np.ndarray, b: np.ndarray, level: np.ndarray, rising: bool) -> np.ndarray:
    """Fractional index of the first crossing of ``level`` (upwards or downwards) in each ``[a, b)``; NaN if none."""
    from treadlab.analysis.ragged import first_true

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    nxt = np.append(x[1:], x[-1])
    lev = np.full(n, np.nan)
    from treadlab.analysis.ragged import range_arange

    idx, owner = range_arange(a, b)
    lev[idx] = level[owner]
    with np.errstate(invalid="ignore"):
        cond = (x < lev) & (nxt >= lev) if rising else (x > lev) & (nxt <= lev)
    i = first_true(cond, a, np.maximum(b - 1, a))
    ok = i >= 0
    j = np.where(ok, i, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((level - x[j]) / (nxt[j] - x[j]), 0.0, 1.0)
    return np.where(ok, j + np.nan_to_num(frac), np.nan)


def assign_feet(votes: np.ndarray, gaps: np.ndarray) -> tuple[np.ndarray, float]:
    """Feet of alternating steps from per-step votes (positive: left).

    Parameters
    ----------
    votes : ndarray, shape (k,)
    gaps : ndarray of bool, shape (k - 1,)
        True where a step is missing between two steps (the alternation restarts).

    Returns
    -------
    feet : ndarray of str
    consistency : float
        Fraction of steps whose own vote agrees with the alternating decision.
    """
    v = np.nan_to_num(np.asarray(votes, dtype=np.float64))
    k = len(v)
    if k == 0:
        return np.empty(0, dtype=object), float("nan")
    run = np.concatenate([[0], np.cumsum(gaps)])  # run number of each step
    parity = np.empty(k)
    starts = np.flatnonzero(np.concatenate([[True], run[1:] != run[:-1]]))
    pos = np.arange(k) - np.repeat(starts, np.diff(np.append(starts, k)))
    parity = np.where(pos % 2 == 0, 1.0, -1.0)
    alt = v * parity  # the same sign over a run when the votes alternate
    c = np.concatenate([[0.0], np.cumsum(alt)])
    lo = np.maximum(np.arange(k) - FOOT_WINDOW, starts[run])
    hi = np.minimum(np.arange(k) + FOOT_WINDOW + 1, np.append(starts[1:], k)[run])
    local = (c[hi] - c[lo]) * parity
    left = local > 0
    agree = float(np.mean(np.sign(v) == np.where(left, 1.0, -1.0)))
    return np.where(left, "left", "right").astype(object), agree


def tibia_events(time_s: np.ndarray, acc_axial_g: np.ndarray, rate_hz: float,
                 start_s: float = -np.inf) -> np.ndarray:
    """Initial contacts (s) of one foot from its tibia sensor's axial acceleration (see the module notes)."""
    ax = acc_axial_g  # converted to float64 a block at a time by the low-pass
    first = int(np.searchsorted(time_s, start_s))
    smooth = _lowpass(ax, rate_hz, STANCE_LP_HZ)
    period = _period_samples(smooth[first:], rate_hz, 0.6, 2.2)
    if not np.isfinite(period):
        return np.empty(0)
    # Impacts are the sharpest rises of the stride (hundreds of g/s); the swing's accelerations, however large,
    # are slow: look for the peaks of the slope, not of the acceleration.
    slope = _impact_slope(ax, rate_hz)
    level = 0.3 * float(np.percentile(slope[first:], 99.5)) if len(slope) > first else np.inf
    peaks, _ = find_peaks(slope[first:], distance=max(1, int(0.55 * period)), height=level)
    peaks = peaks + first + 1
    if len(peaks) == 0:
        return np.empty(0)
    ic = impact_onsets(ax, rate_hz, peaks, max(3, int(0.05 * rate_hz)), slope=slope)
    out = _at(time_s, ic)
    return out[np.isfinite(out)]
