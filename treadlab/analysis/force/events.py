"""Contacts on a force plate's vertical force, and which foot made each one.

Contacts (:class:`ForceContacts`): a hysteresis on the zero-lag low-passed vertical force (4th-order Butterworth,
``cutoff_hz`` 50 Hz, forwards and backwards): a contact starts when the force rises above ``on_n`` and lasts until
it falls below ``off_n``. Initial contact and toe-off are the crossings of ``off_n`` (linear interpolation between
samples), then moved to zero force along each edge (:meth:`ForceContacts._to_zero`): IC along the line through
the 10 N and 20 N crossings of the force low-passed at 150 Hz, TO along a pooled power law.
Contacts shorter than ``min_stance_ms`` (100 ms) are kept but flagged ("short_contact").

Which foot (:func:`assign_feet`), on one belt: contacts alternate strictly within a run; a run ends at a break in
the data or at an interval between initial contacts longer than ``reset_factor`` (1.5) x the median one. In each run
the parity whose centre of pressure lies further to the right (mean over its contacts of the COP's side-to-side
position over stance) is the right foot. On split belts the belt is the foot (:func:`crossovers` flags contacts
during which the other belt carries load too).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from treadlab.analysis.contacts import hysteresis
from treadlab.analysis.metrics import lowpass
from treadlab.analysis.ragged import first_true, range_max

__all__ = ["ONSET_CUTOFF_HZ", "ONSET_LEVELS", "ForceContacts", "assign_feet", "crossovers"]

#: Low-pass (zero-lag, 4th order) of the force on which the rising edge is located (docs/analysis.md).
ONSET_CUTOFF_HZ = 150.0
#: The rising edge's two levels, as fractions of ``off_n`` (10 N and 20 N by default; docs/analysis.md).
ONSET_LEVELS = (0.5, 1.0)


def _rise_time(t: np.ndarray, x: np.ndarray, lo: np.ndarray, stop: np.ndarray, level: float,
               top: float) -> np.ndarray:
    """Rising crossing of ``level`` by ``x`` in each contact: after the last sample below it before ``x`` first
    reaches ``top`` (searched from ``lo``, the end of the previous contact); NaN if none.
    """
    n = len(x)
    hi = first_true(x >= top, lo, stop)
    i = range_max(np.where(x < level, np.arange(n), -1), lo, np.where(hi >= 0, hi, lo), empty=-1).astype(np.int64)
    ok = (hi >= 0) & (i >= lo) & (i < n - 1)
    return np.where(ok, _crossing(t, x, np.clip(i, 0, n - 2), level), np.nan)


def _crossing(t: np.ndarray, x: np.ndarray, a: np.ndarray, level: float) -> np.ndarray:
    """Time where ``x`` crosses ``level`` between samples ``a`` and ``a + 1`` (linear interpolation)."""
    xa, xb = x[a], x[a + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((level - xa) / (xb - xa), 0.0, 1.0)
    return t[a] + np.nan_to_num(frac) * (t[a + 1] - t[a])


class ForceContacts:
    """Contact detection on a plate's vertical force.

    Parameters
    ----------
    on_n, off_n : float
        Hysteresis levels (N) of the low-passed vertical force: a contact starts above ``on_n``, ends below
        ``off_n``.
    cutoff_hz : float
        Zero-lag low-pass (4th order) applied before the thresholds.
    min_stance_ms : float
        Shorter contacts are flagged ``short_contact``.
    extrapolate : bool
        Move IC and TO from the ``off_n`` crossings to zero force along the edge (see the module).

    Attributes
    ----------
    contacts_ : DataFrame
        ``first``, ``stop`` (samples of stance above ``off_n``), ``ic_s``, ``to_s``, ``short``.
    filtered_n_ : ndarray
        The low-passed vertical force.
    """

    def __init__(self, on_n: float = 50.0, off_n: float = 20.0, cutoff_hz: float = 50.0,
                 min_stance_ms: float = 100.0, extrapolate: bool = True, onset_cutoff_hz: float = ONSET_CUTOFF_HZ):
        self.onset_cutoff_hz = onset_cutoff_hz
        self.on_n = on_n
        self.off_n = off_n
        self.cutoff_hz = cutoff_hz
        self.min_stance_ms = min_stance_ms
        self.extrapolate = extrapolate

    def detect(self, time_s: np.ndarray, fz_n: np.ndarray, breaks: np.ndarray | None = None,
               filtered_n: np.ndarray | None = None) -> ForceContacts:
        """Find the contacts (``filtered_n``: the already low-passed force, to skip the filter)."""
        t = np.asarray(time_s, dtype=np.float64)
        br = np.asarray(breaks if breaks is not None else [], dtype=np.int64)
        x = lowpass(t, fz_n, self.cutoff_hz, br) if filtered_n is None else np.asarray(filtered_n, np.float64)
        self.filtered_n_ = x
        n = len(x)
        empty = pd.DataFrame({"first": np.empty(0, np.int64), "stop": np.empty(0, np.int64), "ic_s": np.empty(0),
                              "to_s": np.empty(0), "short": np.empty(0, bool)})
        self.contacts_ = empty
        if n < 4:
            return self
        state = hysteresis(x, self.on_n, self.off_n)
        if len(br):  # a break ends any contact: no stance spans two runs
            state[br] = False
        d = np.diff(state.astype(np.int8))
        starts = np.flatnonzero(d == 1) + 1
        ends = np.flatnonzero(d == -1) + 1
        if state[0]:
            starts = np.r_[0, starts]
        if state[-1]:
            ends = np.r_[ends, n]
        # Back from the start (the first sample above on_n) to the first sample above off_n of the rising edge.
        below = np.flatnonzero(x <= self.off_n)
        k = np.searchsorted(below, starts) - 1
        j = np.where(k >= 0, below[np.clip(k, 0, max(len(below) - 1, 0))], -1) if len(below) else \
            np.full(len(starts), -1)
        run_start = np.r_[0, br][np.searchsorted(np.r_[0, br], starts, side="right") - 1]
        ok = (j >= run_start) & (ends < n) & (starts > 0)
        if len(br):  # the stance must end within its run (the sample below off_n after it included)
            ok &= np.searchsorted(br, starts, side="right") == np.searchsorted(br, ends, side="right")
        first, stop = (j + 1)[ok], ends[ok]
        if not len(first):
            return self
        ic = _crossing(t, x, first - 1, self.off_n)
        to = _crossing(t, x, stop - 1, self.off_n)
        if self.extrapolate:
            prev = np.r_[run_start[ok][:1], stop[:-1]]
            lo = np.maximum(prev, run_start[ok])
            light = lowpass(t, fz_n, self.onset_cutoff_hz, br) if self.onset_cutoff_hz else x
            ic, to = self._to_zero(t, x, light, lo, first, stop, ic, to)
        short = (to - ic) * 1e3 < self.min_stance_ms
        self.contacts_ = pd.DataFrame({"first": first, "stop": stop, "ic_s": ic, "to_s": to, "short": short})
        return self

    def _to_zero(self, t, x, light, lo, first, stop, ic, to) -> tuple[np.ndarray, np.ndarray]:
        """IC and TO moved to zero force along each edge.

        Rising edge: on the lightly filtered force ``light`` (:data:`ONSET_CUTOFF_HZ`), the straight line through
        its crossings of :data:`ONSET_LEVELS` x ``off_n`` (10 and 20 N), searched back from where it first reaches
        ``on_n``. Where a crossing is missing (the force never fell below 10 N since the last contact: standing on
        a single belt), the line through the contact filter's ``off_n`` and ``sqrt(off_n on_n)`` crossings. The
        50 Hz filter smears a rearfoot's slowly starting edge over several ms and the edge curves up above 30 N
        (the impact), so a line higher up or on that filter lands late (up to 5.6 ms); levels nearer zero are
        within the noise. Falling edge: a power law ``F ~ (t0 - t)^p`` with ``p`` pooled over the contacts: the
        median ratio of the times between the crossings of ``off_n``, ``on_n`` and ``on_n^2 / off_n`` (levels in a
        constant ratio) gives it by a grid search over 0.8 .. 4 (a straight line when fewer than 6 contacts have
        all three crossings).
        """
        t_lo, t_hi = (_rise_time(t, light, lo, stop, self.off_n * k, self.on_n) for k in ONSET_LEVELS)
        k_lo, k_hi = ONSET_LEVELS
        with np.errstate(invalid="ignore"):
            ic_line = t_lo - (t_hi - t_lo) * k_lo / (k_hi - k_lo)
        good = np.isfinite(ic_line) & (t_hi > t_lo) & (ic_line <= ic)
        # The fallback: the line through the contact filter's off_n and sqrt(off_n on_n) crossings.
        a = np.sqrt(self.on_n / max(self.off_n, 1e-9))
        d = self._edge_time(t, x, first, stop, self.off_n * a, True) - ic
        ic_out = np.where(good, ic_line, ic - np.where(np.isfinite(d) & (d > 0), d, 0.0) / (a - 1.0))
        a = self.on_n / max(self.off_n, 1e-9)
        t_on = self._edge_time(t, x, first, stop, self.off_n * a, False)
        t_hi2 = self._edge_time(t, x, first, stop, self.off_n * a * a, False)
        d1 = np.abs(t_on - to)
        d2 = np.abs(t_hi2 - t_on)
        ok = np.isfinite(d1) & np.isfinite(d2) & (d1 > 0) & (d2 > 0)
        power = 1.0
        if ok.sum() >= 6:
            grid = np.linspace(0.8, 4.0, 161)
            g = (a ** (1 / grid) - 1) / (a ** (2 / grid) - a ** (1 / grid))
            power = float(grid[np.argmin(np.abs(g - float(np.median(d1[ok] / d2[ok]))))])
        lead = np.where(np.isfinite(d1), d1, 0.0) / (a ** (1.0 / power) - 1.0)
        self.fall_power_ = power
        return ic_out, to + lead

    @staticmethod
    def _edge_time(t, x, first, stop, level, rising) -> np.ndarray:
        """First upward (``rising``) or last downward crossing of ``level`` within each stance; NaN if none."""
        n = len(x)
        above = x >= level
        idx = np.arange(n)
        if rising:
            i = (-range_max(np.where(above, -idx, -n), first, stop)).astype(np.int64)  # first sample above
            ok = (i > first) & (i < stop)
            tc = _crossing(t, x, np.clip(i - 1, 0, n - 2), level)
        else:
            i = range_max(np.where(above, idx, -1), first, stop).astype(np.int64)  # last sample above
            ok = (i >= first) & (i < stop - 1)
            tc = _crossing(t, x, np.clip(i, 0, n - 2), level)
        return np.where(ok, tc, np.nan)


def assign_feet(ic_s: np.ndarray, lateral_mm: np.ndarray, breaks_s: np.ndarray | None = None,
                reset_factor: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Left or right for contacts on one belt, from strict alternation and the side-to-side COP.

    Parameters
    ----------
    ic_s : ndarray
        Initial contacts, ascending.
    lateral_mm : ndarray
        Each contact's mean COP position to the runner's right (NaN when unknown).
    breaks_s : ndarray, optional
        Times of the first sample after each break in the data.
    reset_factor : float
        A gap between initial contacts longer than this x the median gap starts a new run.

    Returns
    -------
    feet : ndarray of str
        "left" / "right".
    run : ndarray of int
        Run number of every contact.
    """
    ic = np.asarray(ic_s, dtype=np.float64)
    lat = np.asarray(lateral_mm, dtype=np.float64)
    k = len(ic)
    if k == 0:
        return np.empty(0, dtype=object), np.empty(0, np.int64)
    gap = np.diff(ic)
    med = float(np.median(gap)) if len(gap) else np.inf
    new = np.r_[True, gap > reset_factor * med]
    br = np.sort(np.asarray(breaks_s if breaks_s is not None else [], dtype=np.float64))
    if len(br):
        seg = np.searchsorted(br, ic, side="right")
        new[1:] |= seg[1:] != seg[:-1]
    run = np.cumsum(new) - 1
    run_first = np.flatnonzero(new)
    parity = (np.arange(k) - run_first[run]) % 2
    good = np.isfinite(lat)
    n_runs = int(run[-1]) + 1
    key = run * 2 + parity
    s = np.bincount(key[good], lat[good], 2 * n_runs).reshape(n_runs, 2)
    c = np.bincount(key[good], minlength=2 * n_runs).reshape(n_runs, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / c
    right_parity = np.where(np.nan_to_num(mean[:, 1], nan=-np.inf) > np.nan_to_num(mean[:, 0], nan=-np.inf), 1, 0)
    feet = np.where(parity == right_parity[run], "right", "left").astype(object)
    return feet, run


def crossovers(first: np.ndarray, stop: np.ndarray, other_filtered_n: np.ndarray, on_n: float) -> np.ndarray:
    """Per contact of one belt: True when the other belt's filtered force exceeds ``on_n`` during it.

    The sample ranges of both belts are on the same sample grid (one split-belt device).
    """
    if not len(first):
        return np.zeros(0, dtype=bool)
    return range_max(np.asarray(other_filtered_n, np.float64), first, stop) > on_n
