"""Foot strike: strike index (Cavanagh and Lafortune 1980) and the region-onset view.

Strike index: the centre of pressure at initial contact along the foot's long axis, from the heel, in % of foot
length. "At initial contact" uses the first ``window_ms`` (20 ms) of stance: the moment ``My = sum f_i y_i`` is
fitted by least squares as ``F(t) (a + b (t - IC))``, i.e. a COP moving linearly in time, weighted by force, and
``a`` is the COP at initial contact. The first samples carry little force and a noisy COP; the fit uses all of
the window without the bias of a plain mean (the COP moves forward during the window).
Classes: rearfoot < 33.3 %, midfoot 33.3-66.7 %, forefoot > 66.7 %. Values outside 0-100 are flagged in
``strike_flag`` ("outside_0_100"), not clamped.

Region onset: the time from initial contact until the heel region (first third of the foot) and the forefoot
region (last third) each carry ``onset_frac`` of their own peak force in that step. ``onset_diff_ms`` =
forefoot onset minus heel onset: clearly positive means heel first (rearfoot), clearly negative forefoot first
(forefoot), within ``onset_tolerance_ms`` of zero both together (midfoot). ``strike_agree`` says whether that
class equals the strike-index class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from treadlab.analysis.ragged import first_true, range_arange, range_max, range_sum
from treadlab.vocabulary import STRIKE_BOUNDS_PCT, STRIKE_CLASSES, classify_strike

__all__ = ["STRIKE_BOUNDS_PCT", "STRIKE_CLASSES", "StrikeIndex", "classify_strike"]


class StrikeIndex:
    """Strike index and region onsets of every step of one foot.

    Parameters
    ----------
    window_ms : float
        COP at initial contact is averaged (force-weighted) over this window from initial contact.
    onset_frac : float
        A region's onset is where its force first reaches this fraction of its peak in the step.
    onset_tolerance_ms : float
        Heel and forefoot onsets closer than this count as simultaneous (midfoot).
    max_extrapolation_frac : float
        A fitted COP at initial contact farther than this fraction of foot length from the window's
        force-weighted mean COP is not trusted and the mean is used; from half that distance on, the two are
        blended linearly (guards against an ill-conditioned fit without a jump).
    baseline_ms : float
        Force and moment are corrected by their mean over this window of swing just before initial contact
        (removes a drifting swing-phase reading, which would pull the COP towards the sensels' centroid).

    Attributes
    ----------
    table_ : DataFrame
        Columns ``strike_index_pct``, ``strike_class``, ``strike_flag``, ``onset_diff_ms``, ``onset_class``,
        ``strike_agree``.
    """

    def __init__(self, window_ms: float = 20.0, onset_frac: float = 0.1, onset_tolerance_ms: float = 10.0,
                 baseline_ms: float = 30.0, max_extrapolation_frac: float = 0.1):
        self.window_ms = window_ms
        self.baseline_ms = baseline_ms
        self.max_extrapolation_frac = max_extrapolation_frac
        self.onset_frac = onset_frac
        self.onset_tolerance_ms = onset_tolerance_ms

    def compute(self, time_s: np.ndarray, force: np.ndarray, moment_y: np.ndarray, foot_length_mm: float,
                first: np.ndarray, stop: np.ndarray, ic_s: np.ndarray,
                regions: dict[str, np.ndarray] | None = None) -> StrikeIndex:
        """Compute for steps with sample ranges ``[first, stop)``.

        Parameters
        ----------
        time_s : ndarray
        force : ndarray
            Total force (any unit, not baseline-corrected: it must match ``moment_y``).
        moment_y : ndarray
            Sum of sensel force times position along the long axis (force x mm).
        foot_length_mm : float
        first, stop : ndarray of int
        ic_s : ndarray
            Initial contact times.
        regions : dict, optional
            ``{"heel": force, "forefoot": force}`` for the region-onset view.

        Returns
        -------
        StrikeIndex
            ``self``.
        """
        t = np.asarray(time_s, float)
        k = len(first)
        dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        n_pre = max(3, int(round(self.baseline_ms * 1e-3 / dt)))
        pre_b = np.maximum(first - 1, 0)
        pre_a = np.maximum(pre_b - n_pre, 0)
        n_pre_eff = np.maximum(pre_b - pre_a, 1)
        w_end = ic_s + self.window_ms * 1e-3
        w_full = np.minimum(np.searchsorted(t, w_end, side="right"), stop)
        w_stop = np.maximum(w_full, np.minimum(first + 3, stop))
        # The first sample after the window's end counts in part (its share of the sample interval that lies
        # inside), so that the estimate moves smoothly with IC: the last samples, with the most force, weigh most
        # in the fit, and a whole sample more or less moved the strike index by up to 10 points.
        partial = (w_stop == w_full) & (w_stop < stop) & (w_stop > 0)
        last = np.clip(w_stop, 1, max(len(t) - 1, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.clip((w_end - t[last - 1]) / (t[last] - t[last - 1]), 0.0, 1.0) if len(t) > 1 else 0.0
        share = np.where(partial & np.isfinite(share), share, 0.0)
        w_stop = w_stop + (share > 0)
        f_base = range_sum(force, pre_a, pre_b) / n_pre_eff
        m_base = range_sum(moment_y, pre_a, pre_b) / n_pre_eff
        # Least squares of the moment on force and force x time: My = F (a + b tau), a = COP at IC.
        idx, owner = range_arange(first, w_stop)
        # Sums over the window samples only (gathered, so memory scales with the steps, not the samples).
        f = np.asarray(force, float)[idx] - f_base[owner]
        m = np.asarray(moment_y, float)[idx] - m_base[owner]
        tau = (t[idx] - ic_s[owner]) * 1e3
        weight = np.where((idx == w_stop[owner] - 1) & (share[owner] > 0), share[owner], 1.0)

        def per_step(x: np.ndarray) -> np.ndarray:
            return np.bincount(owner, weights=x * weight, minlength=k)

        s_ff = per_step(f * f)
        s_fft = per_step(f * f * tau)
        s_fftt = per_step(f * f * tau * tau)
        s_mf = per_step(m * f)
        s_mft = per_step(m * f * tau)
        det = s_ff * s_fftt - s_fft**2
        with np.errstate(invalid="ignore", divide="ignore"):
            cop_fit = (s_mf * s_fftt - s_mft * s_fft) / det
            cop_mean = per_step(m) / per_step(f)
        good = np.isfinite(cop_fit) & (det > 1e-9 * s_ff * s_fftt)
        # Beyond max_extrapolation_frac of foot length from the mean the fit is not trusted (the mean is used), and
        # from half that on it is blended into the mean, so that a tiny change of IC cannot jump the estimate.
        reach = self.max_extrapolation_frac * foot_length_mm
        with np.errstate(invalid="ignore", divide="ignore"):
            trust = np.clip(2.0 - 2.0 * np.abs(cop_fit - cop_mean) / reach, 0.0, 1.0)
        cop_ic = np.where(good, cop_mean + trust * (cop_fit - cop_mean), cop_mean)
        si = cop_ic / foot_length_mm * 100.0
        si = np.where(np.isfinite(si), si, np.nan)
        flag = np.where(np.isfinite(si) & ((si < 0) | (si > 100)), "outside_0_100", "")
        table = pd.DataFrame({"strike_index_pct": si, "strike_class": classify_strike(si), "strike_flag": flag})
        diff = np.full(k, np.nan)
        if regions is not None and k:
            onsets = []
            idx, owner = range_arange(first, stop)
            for name in ("heel", "forefoot"):  # two regions, each vectorised over every step
                r = np.asarray(regions[name], float)
                base = range_sum(r, pre_a, pre_b) / n_pre_eff
                rc = np.full(len(r), -np.inf)
                rc[idx] = r[idx] - base[owner]
                peak = range_max(rc, first, stop)
                lvl = np.full(len(r), np.inf)
                lvl[idx] = self.onset_frac * peak[owner]
                i = first_true((rc >= lvl) & (rc > 0), first, stop)
                onsets.append(np.where(i >= 0, t[np.clip(i, 0, None)], np.nan))
            diff = (onsets[1] - onsets[0]) * 1e3
        tol = self.onset_tolerance_ms
        onset_class = np.where(~np.isfinite(diff), "", np.where(diff > tol, "rearfoot",
                                                                np.where(diff < -tol, "forefoot", "midfoot")))
        table["onset_diff_ms"] = diff
        table["onset_class"] = onset_class
        table["strike_agree"] = np.where((onset_class != "") & (table["strike_class"] != ""),
                                         onset_class == table["strike_class"].to_numpy(), False)
        self.table_ = table
        return self
