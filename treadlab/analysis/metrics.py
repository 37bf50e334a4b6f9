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

Pooling changes them too: :meth:`LoadingRates.pool` re-estimates AVLR and VILR from the foot's
loading-edge template (the steps' shared shape, scaled per step in force and time), 0.7 of it and 0.3 of each
step's own estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.linalg import solveh_banded
from scipy.signal import butter, find_peaks, sosfiltfilt
from scipy.stats import chi2

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


#: Fewest valid steps in a block for the pooled loading-edge template (fewer: per-step estimates stay).
POOL_MIN_STEPS = 6
#: Pool only where the VILR window (the sample interval) is longer than this. 0: at every rate. Below 500 Hz a
#: step has a handful of samples between t20 and t80 and its own estimates are noisy; above, single steps of long
#: runs still reach 10-12 % (bench/known_answers.py --seconds 30), which pooling removes.
POOL_MIN_WINDOW_S = 0.0
#: The samples each step's template fit uses, in loading times (t80 - t20) from t20: from POOL_EDGE_FROM to
#: POOL_EDGE_PAST past the reference (impact peak or 13 % of stance), at most POOL_EDGE_MAX. The wider the window the
#: more samples pin the step's amplitude and time scale (at 200 Hz t20..t80 holds 2-4 samples; 0.75 past the
#: reference left steps 10 % off), as long as the steps' shapes agree there.
POOL_EDGE_FROM, POOL_EDGE_PAST, POOL_EDGE_MAX = -0.75, 4.0, 20.0
#: Weight of the template's estimate against the step's own (secant/crossing) estimate in the pooled AVLR and
#: VILR. Both follow the definitions; their errors are only partly correlated (the template's come from the step's
#: fitted amplitude and time scale, the own ones from the few samples between t20 and t80). On the random sweep of
#: bench/known_answers.py (seeds 1-3) 0.7 did best, 0.5 and 1.0 (the template alone) a little worse.
POOL_WEIGHT = 0.7
#: A step's edge misfits the template (a shape of its own: ``LoadingRates._conformity``) when the p-value of the
#: trend in its residuals is below 10^-a; full template weight above 10^-a, none below 10^-b, log-linear between.
POOL_MISFIT_LOG_P = (2.0, 4.0)


class _EdgeTemplate:
    """The loading edge shared by one foot's steps, ``F_i(t) = a_i g((t - c_i) / s_i)``, fitted to all of them.

    ``g`` is piecewise linear on knots in ``u`` (0 at the initial t20, 1 at the initial t80), a smoothing spline
    (penalised second differences) through every step's samples put on that axis; per step, amplitude ``a``,
    shift ``c`` and time scale ``s`` by Gauss-Newton on that step's samples. Alternated ``outer`` times.
    """

    def __init__(self, du: float = 0.02, smooth: float = 1.0, outer: int = 3, inner: int = 4):
        self.du, self.smooth, self.outer, self.inner = du, smooth, outer, inner

    def fit(self, t: np.ndarray, f: np.ndarray, idx: np.ndarray, owner: np.ndarray, a: np.ndarray, c: np.ndarray,
            s: np.ndarray, u_lo: float, u_hi: float) -> _EdgeTemplate:
        self.u = np.arange(u_lo, u_hi + self.du, self.du)
        tj, yj = t[idx], f[idx]
        a, c, s = a.copy(), c.copy(), s.copy()
        for _ in range(self.outer):  # alternations of template and per-step fits, each over all steps at once
            self.g = self._template(tj, yj, owner, a, c, s)
            for _ in range(self.inner):  # Gauss-Newton steps, each over all steps at once
                a, c, s = self._step_params(tj, yj, owner, a, c, s)
        self.a_, self.c_, self.s_ = a, c, s
        return self

    def _template(self, tj, yj, owner, a, c, s) -> np.ndarray:
        k = len(self.u)
        v = ((tj - c[owner]) / s[owner] - self.u[0]) / self.du
        ok = (v >= 0) & (v < k - 1)
        m = np.floor(v[ok]).astype(np.int64)
        w1 = v[ok] - m
        w0 = 1.0 - w1
        y = yj[ok] / a[owner[ok]]
        diag = np.bincount(m, w0 * w0, k) + np.bincount(m + 1, w1 * w1, k)
        off = np.bincount(m, w0 * w1, k)[:-1]
        rhs = np.bincount(m, w0 * y, k) + np.bincount(m + 1, w1 * y, k)
        lam = self.smooth * max(ok.sum(), 1) / k / self.du**4 * 1e-4
        # (A^T A + lam D2^T D2 + 1e-9 I) g = A^T y: symmetric, positive definite and pentadiagonal (A interpolates
        # linearly between grid points, D2 takes second differences), so a banded Cholesky solve, O(k). Upper
        # form: row 2 the diagonal, row 1 the first and row 0 the second superdiagonal, right-aligned.
        ab = np.zeros((3, k))
        ab[2] = diag + 1e-9
        ab[1, 1:] = off
        d2_diag, d2_off1 = np.zeros(k), np.zeros(max(k - 1, 0))  # D2^T D2 from the [1, -2, 1] stencil
        if k >= 3:
            d2_diag[:-2] += 1.0
            d2_diag[1:-1] += 4.0
            d2_diag[2:] += 1.0
            d2_off1[:-1] -= 2.0
            d2_off1[1:] -= 2.0
            ab[0, 2:] = lam
        ab[2] += lam * d2_diag
        ab[1, 1:] += lam * d2_off1
        return solveh_banded(ab, rhs)

    def _step_params(self, tj, yj, owner, a, c, s):
        n = len(a)
        v = (tj - c[owner]) / s[owner]
        g = np.interp(v, self.u, self.g)
        dg = np.interp(v, self.u, np.gradient(self.g, self.du))
        inside = (v >= self.u[0]) & (v <= self.u[-1])
        r = np.where(inside, yj - a[owner] * g, 0.0)
        jac = np.stack([g, -a[owner] * dg / s[owner], -a[owner] * dg * v / s[owner]], axis=1) * inside[:, None]
        jtj = np.empty((n, 3, 3))
        for p in range(3):  # the 3 x 3 normal equations of every step, one entry at a time
            for q in range(3):
                jtj[:, p, q] = np.bincount(owner, jac[:, p] * jac[:, q], n)
        jtr = np.stack([np.bincount(owner, jac[:, p] * r, n) for p in range(3)], axis=1)
        jtj += 1e-9 * np.eye(3)[None] * (1.0 + np.trace(jtj, axis1=1, axis2=2))[:, None, None]
        step = np.linalg.solve(jtj, jtr[:, :, None])[:, :, 0]
        ok = np.all(np.isfinite(step), axis=1)
        step = np.where(ok[:, None], step, 0.0)
        a_new = a + step[:, 0]
        s_new = s + step[:, 2]
        good = (a_new > 0.5 * a) & (a_new < 2.0 * a) & (s_new > 0.5 * s) & (s_new < 2.0 * s)
        return (np.where(good, a_new, a), np.where(good, c + step[:, 1], c), np.where(good, s_new, s))


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
        self.pooled_ = np.zeros(k, dtype=bool)
        self._pool_state_ = {"first": np.asarray(first, np.int64), "stop": np.asarray(stop, np.int64),
                       "ref_s": np.where(has_ip, self.impact_peak_s_, t_sub), "has_ip": has_ip,
                       "window_s": lag * dt}
        return self

    def pool(self, time_s: np.ndarray, force_bw: np.ndarray, min_steps: int = POOL_MIN_STEPS) -> LoadingRates:
        """Re-estimate AVLR and VILR of the steps of the last :meth:`compute` from the foot's shared loading edge.

        Every step's loading edge is the foot's template scaled in force and time and shifted,
        ``F_i(t) = a_i g((t - c_i) / s_i)`` (:class:`_EdgeTemplate`: ``g`` fitted to all steps' samples on a common
        axis, ``a_i, c_i, s_i`` to each step's own samples from 0.75 loading times (t80 - t20) before t20 to 4
        past its reference: ``POOL_EDGE_*``). AVLR and VILR then follow the definitions on ``F_i``: reference
        force (impact peak of ``F_i`` near the step's own, or ``F_i`` at 13 % of stance), its 20 % and 80 %
        crossings, the largest secant slope over the VILR window between them. All of a step's samples on its
        edge (not the few between t20 and t80) set its two loading rates, with the sub-sample phases of all steps
        resolving the template. Steps really differ in amplitude and duration, which stay per step; shape is what
        is pooled. With fewer than ``min_steps`` valid steps, where the fit fails, or where the VILR window is
        not longer than ``POOL_MIN_WINDOW_S`` (0: never), the per-step estimates stay. The result is
        ``POOL_WEIGHT`` x the template's estimate + the rest x the step's own; the template's VILRs are first
        scaled to the geometric mean of their block mean and that of the own.

        ``time_s``, ``force_bw``: the same block as :meth:`compute` saw, ideally unfiltered (the fit averages the
        noise; a low-pass would bias the template's steepest slope). ``pooled_`` marks the steps re-estimated.
        """
        st = getattr(self, "_pool_state_", None)
        if st is None:
            return self
        t = np.asarray(time_s, float)
        f = np.asarray(force_bw, float)
        t20, t80, ref = self.t20_s_, self.t80_s_, self.reference_bw_
        with np.errstate(invalid="ignore"):
            valid = (np.isfinite(self.avlr_bw_s_) & np.isfinite(self.vilr_bw_s_) & np.isfinite(t20)
                     & np.isfinite(t80) & (t80 > t20) & (ref > 0) & np.isfinite(st["ref_s"]))
        rows = np.flatnonzero(valid)
        if len(rows) < max(int(min_steps), 2) or st["window_s"] <= POOL_MIN_WINDOW_S + 1e-9:
            return self
        c0, s0, a0 = t20[rows], (t80 - t20)[rows], ref[rows]
        u_ref = (st["ref_s"][rows] - c0) / s0
        u_lo, u_hi = POOL_EDGE_FROM, float(min(np.percentile(u_ref, 90) + POOL_EDGE_PAST, POOL_EDGE_MAX))
        lo = np.maximum(np.searchsorted(t, c0 + u_lo * s0), st["first"][rows])
        hi = np.minimum(np.searchsorted(t, c0 + u_hi * s0, side="right"), st["stop"][rows])
        idx, owner = range_arange(lo, hi)
        keep = np.isfinite(f[idx])
        idx, owner = idx[keep], owner[keep]
        if len(idx) < 4 * len(rows):
            return self
        tpl = _EdgeTemplate().fit(t, f, idx, owner, a0, c0, s0, u_lo, u_hi)
        a, c, s = tpl.a_, tpl.c_, tpl.s_
        ue = np.arange(u_lo, tpl.u[-1], tpl.du / 4)
        ge = np.interp(ue, tpl.u, tpl.g)
        # Reference in template units: the template's maximum within 0.5 of the step's own impact peak, or the
        # template at 13 % of stance.
        u_own = (st["ref_s"][rows] - c) / s
        near = np.abs(ue[None, :] - u_own[:, None]) <= 0.5
        g_pk = np.where(near, ge[None, :], -np.inf).max(axis=1)
        g_ref = np.where(st["has_ip"][rows], g_pk, np.interp(u_own, ue, ge))
        u20 = _grid_crossing(ue, ge, 0.2 * g_ref)
        u80 = _grid_crossing(ue, ge, 0.8 * g_ref)
        with np.errstate(invalid="ignore", divide="ignore"):
            avlr = 0.6 * a * g_ref / (s * (u80 - u20))
            w = st["window_s"]
            h = w / s
            later = np.interp(ue[None, :] + h[:, None], ue, ge)
            inside = (ue[None, :] >= u20[:, None] - 1e-9) & (ue[None, :] + h[:, None] <= u80[:, None] + 1e-9)
            vilr = a * np.where(inside, later - ge[None, :], -np.inf).max(axis=1) / w
        ok = np.isfinite(avlr) & (avlr > 0) & np.isfinite(vilr) & (vilr > 0) & (g_ref > 0)
        rows, ok_rows = rows[ok], np.flatnonzero(ok)
        if len(rows) < max(int(min_steps), 2):
            return self
        own_avlr, own_vilr = self.avlr_bw_s_[rows], self.vilr_bw_s_[rows]
        # The template's steepest secant rests on the few samples near its steepest point and is a few per cent
        # off per foot; so is the block's mean of the steps' own VILRs. Both are estimates of the foot's VILR level
        # with similar noise (asymmetry compares these levels): the pooled VILR takes their geometric mean.
        # (Over the steps that follow the template.)
        conform = self._conformity(t, f, idx, owner, tpl, u20, u80)[ok_rows]
        fits = conform >= 0.5 if (conform >= 0.5).sum() >= 2 else np.ones(len(rows), dtype=bool)
        vilr = vilr[ok_rows] * np.sqrt(own_vilr[fits].mean() / vilr[ok_rows][fits].mean())
        avlr = avlr[ok_rows]
        w = POOL_WEIGHT * conform
        self.avlr_bw_s_[rows] = w * avlr + (1.0 - w) * own_avlr
        self.vilr_bw_s_[rows] = w * vilr + (1.0 - w) * own_vilr
        mostly = w >= 0.5 * POOL_WEIGHT
        self.t20_s_[rows[mostly]] = (c[ok_rows] + s[ok_rows] * u20[ok_rows])[mostly]
        self.t80_s_[rows[mostly]] = (c[ok_rows] + s[ok_rows] * u80[ok_rows])[mostly]
        self.pooled_[rows] = w > 0
        return self

    @staticmethod
    def _conformity(t, f, idx, owner, tpl: _EdgeTemplate, u20, u80) -> np.ndarray:
        """Per step, 1 where its loading edge fits the template within the noise, falling to 0 where it does not.

        On each step's edge (t20 - 0.5 to t80 + 0.5 loading times) its residuals from the fitted template are
        regressed on an offset and a slope in time: a steeper or slower edge than the template's leaves such a
        trend, noise spreads over all n samples. The trend's sum of squares over the noise variance is
        chi-square with 2 degrees of freedom when the step follows the template; the variance is the median over
        steps of the rest of their residual variance (over the median of chi-square(n - 2) / (n - 2)). Weight 1
        for a p-value above 10^-2, 0 below 10^-4 (``POOL_MISFIT_LOG_P``), log-linear between. A step whose edge
        has a shape of its own (faster or slower loading than the foot's others) keeps its own estimates instead
        of being pulled to the foot's shape.
        """
        m = len(tpl.a_)
        v = (t[idx] - tpl.c_[owner]) / tpl.s_[owner]
        res = f[idx] - tpl.a_[owner] * np.interp(v, tpl.u, tpl.g)
        with np.errstate(invalid="ignore"):
            edge = (v >= u20[owner] - 0.5) & (v <= u80[owner] + 0.5)
        o, v, res = owner[edge], v[edge], res[edge]
        n = np.bincount(o, minlength=m).astype(float)
        has = n >= 3
        nn = np.maximum(n, 1.0)
        v_mean = np.bincount(o, v, m) / nn
        dv = v - v_mean[o]
        r_mean = np.bincount(o, res, m) / nn
        sxx = np.bincount(o, dv * dv, m)
        sxr = np.bincount(o, dv * res, m)
        with np.errstate(invalid="ignore", divide="ignore"):
            ss_trend = n * r_mean**2 + np.where(sxx > 0, sxr**2 / sxx, 0.0)
        ss_rest = np.bincount(o, res * res, m) - ss_trend
        if not has.any():
            return np.ones(m)
        dof = float(np.median(n[has])) - 2.0
        dof = max(dof, 1.0)
        var = float(np.median(ss_rest[has] / np.maximum(n[has] - 2.0, 1.0))) / (chi2.median(dof) / dof)
        if not var > 0:
            return np.ones(m)
        with np.errstate(divide="ignore"):
            log_p = np.log10(chi2.sf(ss_trend / var, 2.0))
        return np.where(has, np.clip((log_p + POOL_MISFIT_LOG_P[1]) / (POOL_MISFIT_LOG_P[1] - POOL_MISFIT_LOG_P[0]),
                                     0.0, 1.0), 1.0)

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


def _grid_crossing(u: np.ndarray, g: np.ndarray, level: np.ndarray) -> np.ndarray:
    """First ``u`` where the piecewise-linear ``g`` (on the grid ``u``) reaches each ``level``; NaN if never."""
    above = g[None, :] >= np.asarray(level)[:, None]
    k = above.argmax(axis=1)
    hit = above[np.arange(len(k)), k] & (k > 0)
    km = np.clip(k - 1, 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((level - g[km]) / (g[k] - g[km]), 0.0, 1.0)
    return np.where(hit, u[km] + frac * (u[k] - u[km]), np.nan)


def _catmull_rom_coefficients(f: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, ...]:
    """``p1, c1, c2, c3`` of the Catmull-Rom cubic through ``f[j-1 .. j+2]`` on the interval ``[j, j + 1]``:
    ``p1 + ((c3 u + c2) u + c1) u`` at the fraction ``u`` (indices clipped to the array).
    """
    n = len(f)
    p0, p1, p2, p3 = (f[np.clip(j + d, 0, n - 1)] for d in (-1, 0, 1, 2))
    return p1, 0.5 * (p2 - p0), p0 - 2.5 * p1 + 2.0 * p2 - 0.5 * p3, 0.5 * (p3 - p0) + 1.5 * (p1 - p2)


def _catmull_rom(f: np.ndarray, j: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Catmull-Rom cubic through ``f[j-1 .. j+2]`` at the fraction ``u`` of the interval ``[j, j + 1]``."""
    p1, c1, c2, c3 = _catmull_rom_coefficients(f, j)
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
    if len(j) == 0 or len(f) < 2:
        return np.zeros(len(j))
    p1, c1, c2, c3 = _catmull_rom_coefficients(f, np.asarray(j) - 1)
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
