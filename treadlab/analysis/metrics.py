"""Per-step kinetic and timing metrics of one foot, vectorised over all its steps.

Definitions (sources and discussion in ``docs/analysis.md``):

- impact peak: the first local maximum of the (filtered) force within the first ``impact_window_frac`` of
  stance whose prominence is at least ``impact_min_prominence_bw``; absent for most non-rearfoot strikes;
- loading rates (BW/s): AVLR, the mean slope between 20% and 80% of the impact peak force; VILR, the largest
  slope over 1 ms (or one sample interval when that is longer) in the same window, its start anywhere in the
  window (secants of the Catmull-Rom cubic through the samples, 10 starts per sample interval). Without an
  impact peak, the force at 13% of stance stands in for it;
- peak force (BW), impulse (BW s), contact time (ms).

Force filtering changes loading rates: this module applies a zero-lag 4th-order Butterworth low-pass
(``filter_cutoff_hz``, default 50 Hz, capped at 0.4 of the sampling rate) before every force metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import butter, find_peaks, sosfiltfilt

from treadlab.analysis.ragged import first_true, range_arange, range_argmax, range_max, range_sum

__all__ = ["LoadingRates", "auto_cutoff_hz", "lowpass", "secant_slope_noise", "step_force_metrics", "stance_curves"]

#: Target noise of a 1-ms slope after filtering, in BW/s (sets the automatic cutoff).
SLOPE_NOISE_BW_S = 1.5


def secant_slope_noise(cutoff_hz: np.ndarray | float, rate_hz: float, noise_bw: float, window_s: float | None = None,
                     order: int = 4) -> np.ndarray:
    """SD of the slope over ``window_s`` of white noise (SD ``noise_bw`` per sample) after :func:`lowpass`.

    The slope ``(x(t + w) - x(t)) / w`` of noise with the one-sided density ``noise_bw**2 / (rate_hz / 2)``,
    filtered forwards and backwards by an order-``order`` Butterworth filter (power gain
    ``1 / (1 + (f / fc)**(2 order))**2``), has the variance
    ``integral of gain * density * 4 sin^2(pi f w) / w^2 df`` over ``0 .. rate_hz / 2`` (evaluated numerically).
    ``window_s`` defaults to 1 ms, or the sample interval when that is longer (the VILR window).
    """
    w = max(1e-3, 1.0 / rate_hz) if window_s is None else float(window_s)
    fc = np.atleast_1d(np.asarray(cutoff_hz, dtype=np.float64))[:, None]
    f = np.linspace(0.0, rate_hz / 2.0, 2001)[None, :]
    gain = 1.0 / (1.0 + (f / fc) ** (2 * order)) ** 2
    integrand = gain * (noise_bw**2 / (rate_hz / 2.0)) * 4.0 * np.sin(np.pi * f * w) ** 2
    return np.sqrt(np.trapezoid(integrand, f, axis=1)) / w


def auto_cutoff_hz(rate_hz: float, noise_bw: float, slope_noise_bw_s: float = SLOPE_NOISE_BW_S,
                   window_s: float | None = None) -> float:
    """Highest low-pass cutoff that leaves at most ``slope_noise_bw_s`` of noise on VILR slopes.

    The slope noise is :func:`secant_slope_noise` over the VILR window (``window_s``: 1 ms, or the sample interval
    when longer: at 200 Hz a 5-ms secant, which needs far less smoothing than a 1-ms one). The result lies in
    15 Hz .. 0.4 x rate.
    """
    top = 0.4 * rate_hz
    if not noise_bw > 0 or top <= 15.0:
        return float(max(top, min(15.0, 0.4 * rate_hz)))
    grid = np.geomspace(15.0, top, 400)
    ok = secant_slope_noise(grid, rate_hz, noise_bw, window_s) <= max(float(slope_noise_bw_s), 0.05)
    return float(grid[np.flatnonzero(ok)[-1]]) if ok.any() else 15.0


def lowpass(time_s: np.ndarray, x: np.ndarray, cutoff_hz: float | None, breaks: np.ndarray | None = None,
            order: int = 4) -> np.ndarray:
    """Zero-lag Butterworth low-pass of ``x``, applied separately to every continuous run between breaks.

    Parameters
    ----------
    time_s : ndarray
        Sample times (the rate is their median interval).
    x : ndarray
    cutoff_hz : float or None
        None or 0 returns ``x`` unchanged. Capped at 0.4 of the sampling rate.
    breaks : ndarray of int, optional
        Indices that start a new run.
    order : int
        Filter order (applied forwards and backwards, so the effective order doubles).
    """
    x = np.asarray(x, dtype=np.float64)
    if not cutoff_hz or len(x) < 16:
        return x.copy()
    rate_hz = 1.0 / float(np.median(np.diff(time_s)))
    fc = min(float(cutoff_hz), 0.4 * rate_hz)
    sos = butter(order, fc, fs=rate_hz, output="sos")
    out = x.copy()
    bounds = np.concatenate([[0], np.asarray(breaks if breaks is not None else [], dtype=np.int64), [len(x)]])
    for a, b in zip(bounds[:-1], bounds[1:]):  # one iteration per continuous run, not per sample
        if b - a > 3 * (2 * order + 1):
            out[a:b] = sosfiltfilt(sos, x[a:b])
    return out


class LoadingRates:
    """Impact peak and loading rates of every step of one foot.

    Parameters
    ----------
    impact_window_frac : float
        An impact peak must lie within this fraction of stance from initial contact.
    impact_min_prominence_bw : float
        Minimum prominence (BW) of a local maximum to count as an impact peak.
    impact_max_rel : float or None
        When given, an impact peak must be lower than this fraction of the step's maximum (off by default: in
        walking the first hump counts).
    substitute_frac : float
        Fraction of stance whose force stands in for the impact peak when there is none (0.13).
    vilr_interval_ms : float
        Interval of the instantaneous slope (1 ms, or the sample interval when longer).

    Attributes
    ----------
    impact_peak_bw_, impact_peak_s_ : ndarray
        NaN where a step has no impact peak.
    reference_bw_ : ndarray
        The force the 20% and 80% levels refer to (impact peak, or force at 13% of stance).
    avlr_bw_s_, vilr_bw_s_ : ndarray
    t20_s_, t80_s_ : ndarray
        First crossings of 20% and 80% of the reference (the loading window).
    """

    def __init__(self, impact_window_frac: float = 0.3, impact_min_prominence_bw: float = 0.05,
                 impact_max_rel: float | None = None, substitute_frac: float = 0.13, vilr_interval_ms: float = 1.0):
        self.impact_window_frac = impact_window_frac
        self.impact_max_rel = impact_max_rel
        self.impact_min_prominence_bw = impact_min_prominence_bw
        self.substitute_frac = substitute_frac
        self.vilr_interval_ms = vilr_interval_ms

    def compute(self, time_s: np.ndarray, force_bw: np.ndarray, first: np.ndarray, stop: np.ndarray,
                ic_s: np.ndarray, to_s: np.ndarray, avlr_force_bw: np.ndarray | None = None) -> LoadingRates:
        """Compute for the steps ``[first[i], stop[i])`` (sample ranges) with contact times ``ic_s``, ``to_s``.

        ``force_bw`` gives VILR; ``avlr_force_bw`` (less filtered; default ``force_bw``) gives the impact peak,
        the reference force and AVLR, which average over many samples and need less smoothing.

        Returns
        -------
        LoadingRates
            ``self``.
        """
        t = np.asarray(time_s, float)
        f_vilr = np.asarray(force_bw, float)
        f = f_vilr if avlr_force_bw is None else np.asarray(avlr_force_bw, float)
        k = len(first)
        contact_s = to_s - ic_s
        # Impact peaks: prominent local maxima early in stance; the first one of each step.
        peaks, props = find_peaks(f, prominence=self.impact_min_prominence_bw)
        owner = np.searchsorted(first, peaks, side="right") - 1
        ok = owner >= 0
        owner_c = np.clip(owner, 0, max(k - 1, 0))
        if k:
            step_max = range_max(f, first, stop)
            ok &= (peaks < stop[owner_c]) & (t[peaks] - ic_s[owner_c] <= self.impact_window_frac * contact_s[owner_c])
            if self.impact_max_rel:
                ok &= f[peaks] < self.impact_max_rel * step_max[owner_c]
        peaks, owner = peaks[ok], owner[ok]
        uniq, idx = np.unique(owner, return_index=True)
        ip_idx = np.full(k, -1, dtype=np.int64)
        ip_idx[uniq] = peaks[idx]
        has_ip = ip_idx >= 0
        self.impact_peak_bw_ = np.where(has_ip, f[np.clip(ip_idx, 0, None)], np.nan) if k else np.empty(0)
        self.impact_peak_s_ = np.where(has_ip, t[np.clip(ip_idx, 0, None)], np.nan) if k else np.empty(0)
        # Reference force and the end of the loading window.
        t_sub = ic_s + self.substitute_frac * contact_s
        f_sub = np.interp(t_sub, t, f) if k else np.empty(0)
        self.reference_bw_ = np.where(has_ip, self.impact_peak_bw_, f_sub)
        ref_idx = np.where(has_ip, ip_idx, np.searchsorted(t, t_sub))
        ref_idx = np.minimum(np.maximum(ref_idx, first), stop - 1)
        # First crossings of 20% and 80% of the reference, with linear interpolation in time.
        ref = self.reference_bw_
        t20, i20 = self._crossing(t, f, first, ref_idx + 1, 0.2 * ref)
        t80, i80 = self._crossing(t, f, first, ref_idx + 1, 0.8 * ref)
        self.t20_s_, self.t80_s_ = t20, t80
        with np.errstate(invalid="ignore", divide="ignore"):
            avlr = 0.6 * ref / (t80 - t20)
        self.avlr_bw_s_ = np.where(np.isfinite(avlr) & (avlr > 0), avlr, np.nan)
        # VILR: largest slope over `lag` sample intervals with both ends within [t20, t80].
        dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        lag = max(1, int(round(self.vilr_interval_ms * 1e-3 / dt)))
        slope = np.full(len(f), -np.inf)
        if len(f) > lag:
            slope[:-lag] = (f_vilr[lag:] - f_vilr[:-lag]) / (t[lag:] - t[:-lag])
        a = np.maximum(i20 - 1, first)
        b = np.maximum(i80 - lag + 1, a + 1)
        vilr = range_max(slope, a, b)
        valid = (i20 >= 0) & (i80 >= 0)
        # The secant may start between samples (on the Catmull-Rom cubic through them), as the definition's
        # start times are continuous; where no start fits between t20 and t80, the sampled secants above remain.
        fine = _interpolated_max_slope(t, f_vilr, lag, np.maximum(i20 - 2, first), np.maximum(i80, first), t20, t80)
        vilr = np.where(np.isfinite(fine), fine, vilr)
        self.vilr_bw_s_ = np.where(valid & np.isfinite(vilr) & (vilr > 0), vilr, np.nan)
        self.avlr_bw_s_ = np.where(valid, self.avlr_bw_s_, np.nan)
        return self

    @staticmethod
    def _crossing(t, f, starts, stops, level) -> tuple[np.ndarray, np.ndarray]:
        """First sample at or above ``level`` in each range and the crossing time, interpolated by a cubic."""
        lvl = np.full(len(f), np.inf)
        idx, owner = range_arange(starts, stops)
        lvl[idx] = level[owner]
        i = first_true(f >= lvl, starts, stops)
        j = np.clip(i, 1, None)
        frac = _cubic_crossing(f, j, level)
        tc = t[j - 1] + frac * (t[j] - t[j - 1])
        tc = np.where(i == starts, t[np.clip(i, 0, None)], tc)
        return np.where(i >= 0, tc, np.nan), i


def _catmull_rom(f: np.ndarray, j: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Catmull-Rom cubic through ``f[j-1 .. j+2]`` at the fraction ``u`` of the interval ``[j, j + 1]``."""
    n = len(f)
    p0, p1, p2, p3 = (f[np.clip(j + d, 0, n - 1)] for d in (-1, 0, 1, 2))
    c1, c2, c3 = 0.5 * (p2 - p0), p0 - 2.5 * p1 + 2.0 * p2 - 0.5 * p3, 0.5 * (p3 - p0) + 1.5 * (p1 - p2)
    return p1 + ((c3 * u + c2) * u + c1) * u


def _interpolated_max_slope(t: np.ndarray, f: np.ndarray, lag: int, starts: np.ndarray, stops: np.ndarray,
                            t20_s: np.ndarray, t80_s: np.ndarray, n_sub: int = 10) -> np.ndarray:
    """Largest secant slope over ``lag`` sample intervals whose start lies anywhere (not only on a sample) in
    ``[t20, t80 - window]``, on the Catmull-Rom cubic through the samples; NaN where no start fits.

    Sampled secants start only on samples: at 200 Hz (5-ms window) the steepest 5 ms of an impact is missed by up
    to half a sample, a few per cent low. ``n_sub`` start positions per sample interval.
    """
    k = len(starts)
    out = np.full(k, -np.inf)
    n = len(f)
    if k == 0 or n < lag + 4:
        return np.full(k, np.nan)
    idx, owner = range_arange(np.clip(starts, 1, n - lag - 2), np.clip(stops, 1, n - lag - 2))
    if len(idx):
        u = (np.arange(n_sub) / n_sub)[None, :]
        j = idx[:, None]
        dt = t[idx + 1] - t[idx]
        start_s = t[idx][:, None] + u * dt[:, None]
        window_s = (t[idx + lag] - t[idx])[:, None]
        slope = (_catmull_rom(f, j + lag, u) - _catmull_rom(f, j, u)) / window_s
        ok = (start_s >= t20_s[owner][:, None] - 1e-9) & (start_s + window_s <= t80_s[owner][:, None] + 1e-9)
        slope = np.where(ok, slope, -np.inf).max(axis=1)
        np.maximum.at(out, owner, slope)
    return np.where(np.isfinite(out), out, np.nan)


def _cubic_crossing(f: np.ndarray, j: np.ndarray, level: np.ndarray, iterations: int = 24) -> np.ndarray:
    """Fraction ``u`` of the interval ``[j - 1, j]`` where the Catmull-Rom cubic through ``f[j-2 .. j+1]`` reaches
    ``level`` (``f[j - 1] < level <= f[j]``), by bisection over all crossings at once.

    Linear interpolation between samples puts a crossing of a curved edge too early where the force accelerates
    (the chord lies above it) and too late where it levels off: at 200 Hz that shortens t20..t80 by several per
    cent. The cubic follows the curvature of the neighbouring samples.
    """
    n = len(f)
    if len(j) == 0 or n < 2:
        return np.zeros(len(j))
    p0, p1, p2, p3 = (f[np.clip(j + d, 0, n - 1)] for d in (-2, -1, 0, 1))
    c1, c2, c3 = 0.5 * (p2 - p0), p0 - 2.5 * p1 + 2.0 * p2 - 0.5 * p3, 0.5 * (p3 - p0) + 1.5 * (p1 - p2)
    lo, hi = np.zeros(len(j)), np.ones(len(j))
    target = np.asarray(level, dtype=np.float64) - p1
    for _ in range(iterations):  # bisection steps, each over every crossing (not a per-sample loop)
        u = 0.5 * (lo + hi)
        above = ((c3 * u + c2) * u + c1) * u >= target
        hi = np.where(above, u, hi)
        lo = np.where(above, lo, u)
    return np.nan_to_num(0.5 * (lo + hi))


def step_force_metrics(time_s: np.ndarray, force_bw: np.ndarray, first: np.ndarray, stop: np.ndarray,
                       raw_force_bw: np.ndarray | None = None) -> pd.DataFrame:
    """Peak force (BW) and impulse (BW s) of each step.

    Parameters
    ----------
    time_s, force_bw : ndarray
        Times and filtered force in body weights.
    first, stop : ndarray of int
        Sample range of each stance.
    raw_force_bw : ndarray, optional
        Unfiltered force for the impulse (the filtered one when not given).
    """
    t = np.asarray(time_s, float)
    f = np.asarray(force_bw, float)
    g = f if raw_force_bw is None else np.asarray(raw_force_bw, float)
    dt = np.gradient(t) if len(t) > 1 else np.ones(len(t))
    peak = range_max(f, first, stop)
    peak_i = range_argmax(f, first, stop)
    return pd.DataFrame({
        "peak_force_bw": peak,
        "peak_force_s": np.where(peak_i >= 0, t[np.clip(peak_i, 0, None)], np.nan),
        "impulse_bw_s": range_sum(g * dt, first, stop),
    })


def stance_curves(time_s: np.ndarray, values: np.ndarray, ic_s: np.ndarray, to_s: np.ndarray,
                  n_points: int = 101) -> np.ndarray:
    """Values interpolated on a stance-normalised axis (0 = initial contact, 100% = toe-off).

    Parameters
    ----------
    time_s : ndarray, shape (n,)
    values : ndarray, shape (n,) or (n, m)
    ic_s, to_s : ndarray, shape (k,)
    n_points : int
        101 gives 0, 1, ..., 100 %.

    Returns
    -------
    ndarray, shape (k, n_points) or (k, n_points, m)
    """
    frac = np.linspace(0.0, 1.0, n_points)
    q = (np.asarray(ic_s)[:, None] + frac[None, :] * (np.asarray(to_s) - np.asarray(ic_s))[:, None]).ravel()
    v = np.asarray(values, float)
    if v.ndim == 1:
        return np.interp(q, time_s, v).reshape(len(ic_s), n_points)
    cols = [np.interp(q, time_s, v[:, j]).reshape(len(ic_s), n_points) for j in range(v.shape[1])]  # per column
    return np.stack(cols, axis=-1)
