"""Foot contacts (initial contact to toe-off) from one foot's total force, with hysteresis.

Works on calibrated forces and raw counts alike: every threshold is a fraction of the foot's own loading
amplitude above a running baseline, so a swing-phase reading that sits at 20-40 N and drifts, or an
uncalibrated sensor, needs no tuning. Walking (double support) and running (flight) are handled alike, since
each foot is treated on its own. No contact is made across a break in the data (sequence gap, reconnection).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d, maximum_filter1d, minimum_filter1d, uniform_filter1d

from treadlab.analysis.ragged import first_true, range_arange, range_max

__all__ = ["ContactDetection", "baseline", "hysteresis"]


#: A contact longer than the baseline window (standing) is bridged: see :func:`baseline`.
LONG_WINDOW_FACTOR = 48


def baseline(force: np.ndarray, window_n: int, bridge_frac: float | None = None) -> np.ndarray:
    """Running lower envelope: a moving minimum over ``window_n`` samples, smoothed by a moving mean.

    The window must be longer than a stride so that it always contains some swing phase. Where it holds none
    (a foot loaded for longer than the window: standing), the moving minimum rises to the standing load and the
    stance would read as swing; with ``bridge_frac``, a moving minimum more than ``bridge_frac`` x the loading
    amplitude above the minimum over ``LONG_WINDOW_FACTOR`` windows (2 minutes for 2.5 s: standing of up to
    about a minute), and within a window of such a place, is replaced by a straight line between the swings
    either side. In running and walking no window lacks a swing, and nothing changes.
    """
    window_n = max(1, min(int(window_n), len(force)))
    m = minimum_filter1d(force, window_n, mode="nearest")
    if bridge_frac is not None and len(m) > window_n:
        floor = minimum_filter1d(m, min(LONG_WINDOW_FACTOR * window_n, len(m)), mode="nearest")
        amp = float(np.percentile(force - floor, 99))
        # Widened by a window: the minimum near a standing period holds the slopes of its weight transfers.
        bad = maximum_filter1d(m > floor + bridge_frac * amp, 2 * window_n + 1, mode="nearest")
        if bad.any() and not bad.all():
            good = np.flatnonzero(~bad)
            m = m.copy()
            m[bad] = np.interp(np.flatnonzero(bad), good, m[good])
    return uniform_filter1d(m, window_n, mode="nearest")


def hysteresis(x: np.ndarray, on: float, off: float) -> np.ndarray:
    """Boolean state that turns on when ``x > on`` and off when ``x < off`` (``off <= on``), vectorised."""
    event = np.zeros(len(x), dtype=np.int8)
    event[x < off] = -1
    event[x > on] = 1
    last = np.where(event != 0, np.arange(len(x)), 0)
    np.maximum.accumulate(last, out=last)
    return event[last] == 1


def _crossing_time(t: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray, level: float) -> np.ndarray:
    """Linear interpolation of the time where ``x`` crosses ``level`` between samples a and b (= a + 1)."""
    xa, xb = x[a], x[b]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((level - xa) / (xb - xa), 0.0, 1.0)
    frac = np.where(np.isfinite(frac), frac, 0.0)
    return t[a] + frac * (t[b] - t[a])


class ContactDetection:
    """Detect the contacts of one foot.

    Parameters
    ----------
    on_frac : float
        A contact starts when the baseline-corrected force exceeds this fraction of the loading amplitude
        (the 99th percentile of the corrected force).
    off_frac : float
        It ends when the force falls below this fraction (hysteresis).
    low_frac, low_sigma : float
        Edge levels: the low level is the largest of ``low_frac`` x amplitude, ``low_sigma`` x the swing-phase
        noise of the smoothed force, and the swing's 90th percentile; the high level is ``edge_ratio`` x it.
    smooth_ms : float
        SD of the Gaussian smoothing of the force used for detection (no ringing, unlike a Butterworth filter).
    edge_ratio : float
        The high level is ``edge_ratio`` x the low level.
    edge_power, edge_pooling, edge_fit_frac : float
        Forces rise from contact roughly as ``t^1.2`` (forefoot) to ``t^1.8`` (rearfoot heel pad): 1.6. Initial
        contact is the step's crossing of the high level minus a lead times the time between its crossings of
        the low and the high level. The lead comes from a least-squares fit of ``A max(t - t0, 0)^edge_power``
        to the foot's pooled rising edge (every step's samples aligned at its high crossing, the samples before
        the onset included), refitted on the part below ``edge_fit_frac`` x the amplitude, where the power law
        holds (a heel impact steepens the edge above it). Fewer than 6 steps: the lead of the curve
        ``F ~ |t - t0|^edge_power`` through the two crossings, which also gives toe-off (falling edge). The time
        between the two crossings is ``edge_pooling`` x the foot's median plus the rest x the step's own (the
        low crossing is the noisy one).
    baseline_window_s : float
        Window of the running baseline (longer than a stride); 0 disables baseline removal.
    min_contact_ms, min_swing_ms : float
        Contacts separated by a swing shorter than ``min_swing_ms`` are merged (one contact whose force dipped).
        Shorter contacts than ``min_contact_ms`` are flagged in ``short_`` and, unless ``keep_short``, dropped.
    keep_short : bool
        Keep contacts shorter than ``min_contact_ms`` (the analysis does, and flags them: a step is never
        rejected for its timing alone).
    amplitude : float, optional
        The loading amplitude to use (99th percentile of :meth:`smoothed_excess`) instead of the one of the data
        given to :meth:`detect`: a long session analysed a block at a time uses the whole session's.

    Attributes
    ----------
    contacts_ : DataFrame
        One row per contact: ``first`` (first sample of stance), ``stop`` (first sample after stance), ``ic_s``,
        ``to_s``.
    corrected_ : ndarray of float32
        Force minus baseline.
    baseline_ : ndarray of float32
    amplitude_ : float
        Loading amplitude (force units).
    low_level_ : float
        Level of the edge extrapolation (force units above baseline).
    noise_ : float
        Robust SD of the smoothed force in swing.
    raw_noise_ : float
        Robust SD of the unsmoothed force's white noise in swing (from first differences).
    edge_lead_ : float
        Fitted lead of initial contact (onset to high crossing / median span); NaN when the fallback was used.
    cut_ : DataFrame
        Contacts under way at the first or the last sample (``first``, ``stop``, ``ic_s``, ``to_s`` = the first or
        last sample's time where cut): not whole steps, but a long one is standing.
    short_ : ndarray of bool
        Per row of ``contacts_``: shorter than ``min_contact_ms`` (kept, flagged; see ``keep_short``).
    """

    def __init__(self, on_frac: float = 0.15, off_frac: float = 0.06, low_frac: float = 0.003, low_sigma: float = 3.0,
                 smooth_ms: float = 2.0, edge_ratio: float = 4.0, baseline_window_s: float = 2.5,
                 min_contact_ms: float = 80.0, min_swing_ms: float = 60.0,
                 edge_power: float = 1.6, edge_pooling: float = 0.75, edge_fit_frac: float = 0.05,
                 amplitude: float | None = None, keep_short: bool = False):
        self.on_frac = on_frac
        self.off_frac = off_frac
        self.low_frac = low_frac
        self.low_sigma = low_sigma
        self.smooth_ms = smooth_ms
        self.edge_ratio = edge_ratio
        self.baseline_window_s = baseline_window_s
        self.min_contact_ms = min_contact_ms
        self.min_swing_ms = min_swing_ms
        self.edge_power = edge_power
        self.edge_pooling = edge_pooling
        self.edge_fit_frac = edge_fit_frac
        self.amplitude = amplitude
        self.keep_short = keep_short

    def smoothed_excess(self, time_s: np.ndarray, force: np.ndarray) -> np.ndarray:
        """The detection signal: force smoothed (Gaussian, ``smooth_ms``) minus its running baseline, float32."""
        x = np.asarray(force, dtype=np.float32)
        if len(x) < 4:
            return x.copy()
        xf, base = self._smooth(np.asarray(time_s, dtype=np.float64), x)
        return xf - base

    def _smooth(self, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed force and its running baseline (zeros when ``baseline_window_s`` is 0)."""
        rate_hz = 1.0 / float(np.median(np.diff(t)))
        sigma_n = self.smooth_ms * 1e-3 * rate_hz
        xf = gaussian_filter1d(x, sigma_n, mode="nearest") if sigma_n > 0.3 else x
        if self.baseline_window_s > 0:
            return xf, baseline(xf, int(round(self.baseline_window_s * rate_hz)), self.off_frac)
        return xf, np.zeros(len(x), dtype=np.float32)

    def detect(self, time_s: np.ndarray, force: np.ndarray, breaks: np.ndarray | None = None) -> ContactDetection:
        """Find the contacts.

        Parameters
        ----------
        time_s : ndarray, shape (n,)
        force : ndarray, shape (n,)
            Total force of one foot (any unit).
        breaks : ndarray of int, optional
            Sample indices that start a new continuous run (see ``InsoleData.break_indices``).

        Returns
        -------
        ContactDetection
            ``self``, with the results in the trailing-underscore attributes.
        """
        t = np.asarray(time_s, dtype=np.float64)
        x = np.asarray(force, dtype=np.float32)  # float32 working copies: forces to ~1e-4 N, half the memory
        n = len(x)
        empty = pd.DataFrame({"first": np.empty(0, np.int64), "stop": np.empty(0, np.int64),
                              "ic_s": np.empty(0), "to_s": np.empty(0)})
        self.contacts_ = empty
        self.cut_ = empty.copy()
        self.short_ = np.zeros(0, dtype=bool)
        self.baseline_ = np.zeros(n, dtype=np.float32)
        self.corrected_ = x.copy()
        self.amplitude_ = 0.0
        self.low_level_ = 0.0
        self.noise_ = 0.0
        self.raw_noise_ = 0.0
        self.edge_lead_ = float("nan")
        if n < 4:
            return self
        rate_hz = 1.0 / float(np.median(np.diff(t)))
        xf, self.baseline_ = self._smooth(t, x)
        xc = xf - self.baseline_
        amp = float(self.amplitude) if self.amplitude is not None else float(np.percentile(xc, 99))
        if not amp > 0:
            self.amplitude_ = 0.0
            return self
        state = hysteresis(xc, self.on_frac * amp, self.off_frac * amp)
        swing = xc[~state]
        offset = float(np.median(swing)) if len(swing) > 2 else 0.0
        sigma = 1.4826 * float(np.median(np.abs(swing - offset))) if len(swing) > 2 else 0.0
        self.baseline_ = self.baseline_ + offset
        xc = xc - offset
        amp -= offset
        self.amplitude_ = amp
        self.noise_ = sigma
        dsw = np.diff(x)[~state[1:] & ~state[:-1]]
        self.raw_noise_ = 1.4826 * float(np.median(np.abs(dsw - np.median(dsw)))) / np.sqrt(2) if len(dsw) > 2 else 0.0
        self.baseline_ = self.baseline_.astype(np.float32)  # per-sample state kept: float32 (forces to ~1e-4 N)
        self.corrected_ = (x - self.baseline_).astype(np.float32)
        # The swing's 90th percentile also bounds it: a sensel that flickers between two ADC steps in swing has no
        # spread by MAD but must not look like a contact onset.
        q90 = float(np.percentile(swing - offset, 90)) if len(swing) > 2 else 0.0
        low = min(max(self.low_frac * amp, self.low_sigma * sigma, 1.01 * q90), self.off_frac * amp)
        self.low_level_ = low
        d = np.diff(state.astype(np.int8))
        starts = np.flatnonzero(d == 1) + 1
        ends = np.flatnonzero(d == -1) + 1
        if state[0]:
            starts = np.concatenate([[0], starts])
        if state[-1]:
            ends = np.concatenate([ends, [n]])
        if len(starts) == 0:
            return self
        edge = (starts == 0) | (ends == n)
        self.cut_ = pd.DataFrame({"first": starts[edge], "stop": ends[edge], "ic_s": t[starts[edge]],
                                  "to_s": t[np.minimum(ends[edge], n - 1)]})
        # Refine to the low level: last sample at/below it before the start, first one at/after the end, searched
        # only within the neighbouring swings (a swing reading above the low level must not merge two steps).
        below = np.flatnonzero(xc <= low)
        prev_end = np.concatenate([[-1], ends[:-1]])
        next_start = np.concatenate([starts[1:], [n + 1]])
        k = np.searchsorted(below, starts) - 1
        k2 = np.searchsorted(below, ends)
        j = np.where(k >= 0, below[np.clip(k, 0, max(len(below) - 1, 0))], -1) if len(below) else np.full(len(k), -1)
        j2 = np.where(k2 < len(below), below[np.clip(k2, 0, max(len(below) - 1, 0))], n) if len(below) else \
            np.full(len(k2), n)
        inside_prev = (j >= prev_end) & (j >= 0)
        inside_next = (j2 < next_start) & (j2 < n)
        first = np.where(inside_prev, j + 1, starts)
        stop = np.where(inside_next, j2, ends)
        ok = (first >= 1) & (stop < n) & (starts > 0) & (ends < n)
        first, stop = first[ok], stop[ok]
        if len(first) == 0:
            return self
        # Merge contacts that share a stance after refinement or are separated by too short a swing.
        new = np.ones(len(first), dtype=bool)
        new[1:] = first[1:] >= stop[:-1] + max(1, int(self.min_swing_ms * 1e-3 * rate_hz))
        group_first = np.flatnonzero(new)
        group_last = np.append(group_first[1:] - 1, len(first) - 1)
        first, stop = first[group_first], stop[group_last]
        # Onset and end: extrapolated from the edge's crossings of the low and the high level back to zero force
        # along F ~ |t - t0|^edge_power. The time between the crossings is shrunk towards the foot's median, since
        # the low crossing is the noisy one (see _edge_span).
        high = min(self.edge_ratio * low, self.on_frac * amp)
        t_lo_up = _crossing_time(t, xc, first - 1, first, low)
        t_hi_up = self._first_crossing(t, xc, first, stop, high, t_lo_up)
        t_lo_dn = _crossing_time(t, xc, stop - 1, stop, low)
        t_hi_dn = self._last_crossing(t, xc, first, stop, high, t_lo_dn)
        ratio = high / low if high > low > 0 else 1.0
        lead = ratio ** (1.0 / self.edge_power) / (ratio ** (1.0 / self.edge_power) - 1.0) if ratio > 1.0 else 1.0
        dt = 1.0 / rate_hz
        span_up = self._edge_span(t_hi_up - t_lo_up, dt)
        i_hi = first_true(xc >= high, first, stop)
        i_hi = np.where(i_hi > first, i_hi, -1)
        prev_stop = np.concatenate([[0], stop[:-1]])
        # Initial contact: the lead comes from a fit of the foot's pooled rising edge (see _fitted_lead); the
        # two-crossing power law stays the fallback, and gives toe-off.
        lead_up = self._fitted_lead(t, self.corrected_, i_hi, prev_stop, t_hi_up, t_hi_up - t_lo_up, dt)
        self.edge_lead_ = lead_up
        ic = t_hi_up - (lead_up if np.isfinite(lead_up) else lead) * span_up
        to = t_hi_dn + lead * self._edge_span(t_lo_dn - t_hi_dn, dt)
        short = (to - ic) * 1e3 < self.min_contact_ms
        keep = np.ones(len(ic), dtype=bool) if self.keep_short else ~short
        if breaks is not None and len(breaks):
            br = np.asarray(breaks, dtype=np.int64)
            # The sample before `first` and the sample `stop` must be in the same continuous run.
            keep &= np.searchsorted(br, first - 1, side="right") == np.searchsorted(br, stop, side="right")
        self.contacts_ = pd.DataFrame({"first": first[keep], "stop": stop[keep], "ic_s": ic[keep], "to_s": to[keep]})
        self.short_ = short[keep]
        return self

    def _edge_span(self, span_s: np.ndarray, dt: float) -> np.ndarray:
        """Times from the low to the high crossing, shrunk towards the foot's median by ``edge_pooling``.

        The crossing of the low level (a few noise SDs) carries most of the timing noise; the foot's steps share
        their edge shape, so half of each step's own span and half of the foot's median span are used (at most
        twice the median plus one sample).
        """
        span_s = np.clip(span_s, 0.0, None)
        if len(span_s) < 3:
            return span_s
        med = float(np.median(span_s))
        w = self.edge_pooling
        return np.minimum((1.0 - w) * span_s + w * med, 2.0 * med + dt)

    def _fitted_lead(self, t: np.ndarray, force: np.ndarray, i_hi: np.ndarray, prev_stop: np.ndarray,
                     t_hi_s: np.ndarray, span_s: np.ndarray, dt_s: float, max_steps: int = 300,
                     max_samples: int = 10_000) -> float:
        """Time from onset to the high crossing, in units of the foot's median low-to-high span, from a least-squares
        fit of the foot's pooled rising edge (NaN when there are fewer than 6 usable steps).

        Every step's samples before its high crossing (back to ``4 x`` the median span plus 4 samples, never
        into the previous contact) are placed on a common axis ``tau = t - t_high``; the unsmoothed,
        baseline-corrected force is fitted as ``A max(tau + D, 0)^edge_power`` (``D`` by a grid search, ``A`` in
        closed form), the samples before the onset (zero force plus noise) included. The fit is then repeated on
        the samples below ``edge_fit_frac`` x the amplitude only: a power law holds near the onset, and the
        heel's impact steepens the edge above (at 200 Hz with a noisy insole the high level sits there). Pooled
        over up to ``max_steps`` steps (evenly spread; fewer when they would hold more than ``max_samples``
        samples: 161 x that many floats in the grid search), dozens of samples lie on the edge at any rate, with their
        sub-sample phases spread, so the onset no longer rests on one noisy crossing of a low level.
        """
        ok = (i_hi > 0) & np.isfinite(t_hi_s) & (span_s > 0)
        sel = np.flatnonzero(ok)
        if len(sel) < 6:
            return float("nan")
        med_s = float(np.median(span_s[sel]))
        window_s = 4.0 * med_s + 4.0 * dt_s
        m = int(np.ceil(window_s / dt_s))
        n_steps = max(6, min(max_steps, max_samples // m))  # the grid search holds 161 x samples floats
        if len(sel) > n_steps:
            sel = sel[np.linspace(0, len(sel) - 1, n_steps).round().astype(np.int64)]
        idx, owner = range_arange(np.maximum(i_hi[sel] - m, prev_stop[sel]), i_hi[sel])
        tau = t[idx] - t_hi_s[sel][owner]
        y = force[idx].astype(np.float64)
        p = self.edge_power
        d_s, a = _hinge_fit(tau, y, p, window_s)
        if a > 0:
            tau_cap = (self.edge_fit_frac * self.amplitude_ / a) ** (1.0 / p) - d_s
            low = tau <= tau_cap
            if tau_cap < 0 and low.sum() >= 3 * len(sel):
                d_s, a = _hinge_fit(tau[low], y[low], p, window_s)
        return d_s / med_s if a > 0 and 0 < d_s < window_s else float("nan")

    @staticmethod
    def _first_crossing(t, xc, first, stop, level, fallback) -> np.ndarray:
        """Time of the first upward crossing of ``level`` in ``[first, stop)`` (``fallback`` when there is none)."""
        i = first_true(xc >= level, first, stop)
        ok = i > first
        return np.where(ok, _crossing_time(t, xc, np.maximum(i - 1, 0), np.maximum(i, 1), level), fallback)

    @staticmethod
    def _last_crossing(t, xc, first, stop, level, fallback) -> np.ndarray:
        """Time of the last downward crossing of ``level`` in ``[first, stop)`` (``fallback`` when there is none)."""
        n = len(xc)
        last = range_max(np.where(xc >= level, np.arange(n), -1), first, stop).astype(np.int64)
        ok = (last >= first) & (last < stop - 1)
        lh = np.clip(last, 0, n - 2)
        return np.where(ok, _crossing_time(t, xc, lh, lh + 1, level), fallback)


def _hinge_fit(tau: np.ndarray, y: np.ndarray, power: float, max_lead_s: float) -> tuple[float, float]:
    """Least-squares fit of ``y ~ a max(tau + d, 0)^power`` over ``0 <= d <= max_lead_s``: ``(d, a)``.

    ``a`` is solved in closed form for every ``d`` of a grid (161 values, then 41 around the best), vectorised.
    """
    d = np.linspace(0.0, max_lead_s, 161)
    best = (float("nan"), 0.0)
    for _ in range(2):  # coarse grid, then a fine one around its best (two array passes, not a sample loop)
        g = np.clip(tau[None, :] + d[:, None], 0.0, None) ** power
        gy = g @ y
        gg = np.einsum("dn,dn->d", g, g)
        with np.errstate(invalid="ignore", divide="ignore"):
            sse = np.where(gg > 0, -(gy**2) / gg, np.inf)  # residual sum of squares minus y @ y
        j = int(np.argmin(sse))
        if not np.isfinite(sse[j]):
            return best
        best = (float(d[j]), float(gy[j] / gg[j]))
        step = d[1] - d[0]
        d = np.linspace(max(d[j] - step, 0.0), d[j] + step, 41)
    return best
