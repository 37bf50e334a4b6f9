"""The IMU metrics of a step or stride, as pure vectorised functions of per-sample signals and sample ranges.

Every function takes a signal and, per step, the ``[first, stop)`` sample range it is computed over (as the
issue's definitions say: stance IC..TO, step IC..next IC of the other foot, stride IC..next IC of the same foot,
or IC..IC + 100 ms), and returns one value per step (NaN for an empty range). No per-step Python loops: ragged
ranges are reduced with ``np.*.reduceat`` and prefix sums (:mod:`treadlab.analysis.ragged`), in groups of steps
so that temporaries stay bounded.

Definitions (``docs/analysis.md``, "Inertial sensors"):

- :func:`pelvic_drop_deg`: the largest obliquity during stance towards the swing side: ``max(obliquity)`` in a
  left stance (right side down is positive obliquity), ``max(-obliquity)`` in a right stance.
- :func:`detrended_range`: range of a signal after the range's least-squares line is removed (pelvic rotation
  over a stride).
- :func:`range_mean`, :func:`range_ptp`: mean and range (tilt per stride, trunk lean per step).
- :func:`vertical_oscillation_mm`: the vertical acceleration (gravity removed) integrated twice over the step
  (IC to the other foot's next IC, one period of the vertical motion on a treadmill): acceleration less its
  mean over the step (the velocity returns to its start: a constant error, such as gravity leaking through a
  small orientation error, is removed), velocity less its mean (the position returns to its start: the unknown
  initial velocity, and a linear drift of the acceleration, are removed); the peak-to-peak of that position.
  No line is fitted to the position: over one period a fitted line is not zero and would distort it.
- :func:`window_peak`: the largest value in a window and where it is (PTA, PPA).
- :func:`shock_attenuation_pct`: ``(1 - ppa / pta) * 100``.
"""

from __future__ import annotations

import numpy as np

from treadlab.analysis.ragged import range_arange, range_max, range_sum
from treadlab.vocabulary import G_MPS2

__all__ = ["GROUP_SAMPLES", "SPAN_SAMPLES", "by_span", "detrended_range", "has_break", "pelvic_drop_deg",
           "range_mean", "range_ptp", "shock_attenuation_pct", "vertical_oscillation_mm", "window_peak"]

#: Samples per group of ragged ranges (bounds the temporaries of :func:`detrended_range` and friends).
GROUP_SAMPLES = 1 << 21


#: Samples of signal a group of steps is computed over by :func:`by_span` (about 2 MB of float64 per signal).
SPAN_SAMPLES = 1 << 18


def by_span(fn, x: np.ndarray, first: np.ndarray, stop: np.ndarray, *per_step, index_out: tuple[int, ...] = (),
            span: int = SPAN_SAMPLES):
    """``fn(x, first, stop, *per_step)`` computed group by group of steps on the slice of ``x`` the group covers.

    The metrics of a step depend only on its own samples, so each group of steps (those whose first sample is in
    one span of ``span`` samples) is computed on ``x[lo:hi]`` with its ranges shifted by ``lo``: the
    temporaries (float64 copies, prefix sums) are those of a span, not of the session. Empty ranges give NaN.

    Parameters
    ----------
    fn : callable
        One of this module's metrics; returns an array, or a tuple of arrays, one value per step.
    x : ndarray, shape (n,) (a strided column is fine: only the slices are copied)
    first, stop : ndarray of int, shape (k,)
    *per_step : ndarray, shape (k,)
        Further per-step arguments (the foot of :func:`pelvic_drop_deg`).
    index_out : tuple of int
        Positions of outputs that are sample indices (shifted back by ``lo``; -1 stays -1).
    span : int

    Returns
    -------
    ndarray or tuple of ndarray
    """
    n = len(x)
    first, stop, ok = _valid(first, stop, n)
    rows = np.flatnonzero(ok)
    rows = rows[np.argsort(first[rows], kind="stable")]
    outs = None
    k = len(first)
    g0 = 0
    while g0 < len(rows):  # one iteration per group of steps (a span of samples: a few an hour)
        lo = int(first[rows[g0]])
        g1 = max(g0 + 1, int(np.searchsorted(first[rows], lo + span, side="left")))
        sel = rows[g0:g1]
        g0 = g1
        hi = int(stop[sel].max())
        r = fn(x[lo:hi], first[sel] - lo, stop[sel] - lo, *(np.asarray(p)[sel] for p in per_step))
        single = not isinstance(r, tuple)
        r = (r,) if single else r
        if outs is None:
            outs = [np.full(k, -1 if j in index_out else np.nan,
                            dtype=np.int64 if j in index_out else np.float64) for j in range(len(r))]
        for j, v in enumerate(r):
            outs[j][sel] = np.where(v >= 0, v + lo, -1) if j in index_out else v
    if outs is None:
        r = fn(x[:0], np.zeros(0, np.int64), np.zeros(0, np.int64), *(np.asarray(p)[:0] for p in per_step))
        single = not isinstance(r, tuple)
        outs = [np.full(k, -1 if j in index_out else np.nan, dtype=np.int64 if j in index_out else np.float64)
                for j in range(1 if single else len(r))]
    return outs[0] if single else tuple(outs)


def _groups(first: np.ndarray, stop: np.ndarray):
    """Slices of the steps whose total range length is about ``GROUP_SAMPLES`` each."""
    lengths = np.maximum(np.asarray(stop) - np.asarray(first), 0)
    cum = np.cumsum(lengths)
    i = 0
    n = len(lengths)
    while i < n:  # one iteration per group of steps (a few per hour of data)
        base = cum[i - 1] if i else 0
        j = max(i + 1, int(np.searchsorted(cum, base + GROUP_SAMPLES, side="right")))
        yield slice(i, min(j, n))
        i = j


def _valid(first, stop, n):
    first = np.clip(np.asarray(first, dtype=np.int64), 0, n)
    stop = np.clip(np.asarray(stop, dtype=np.int64), 0, n)
    return first, stop, stop > first


def _seg_sum(v: np.ndarray, k: int, nonempty: np.ndarray, bnd: np.ndarray) -> np.ndarray:
    """Sums of concatenated ranges (``bnd``: the first element of each non-empty range)."""
    out = np.zeros(k)
    out[nonempty] = np.add.reduceat(v, bnd)
    return out


def has_break(breaks: np.ndarray, first: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """True for ranges ``[first, stop)`` that hold a break (a sample index that starts a new continuous run)."""
    br = np.sort(np.asarray(breaks, dtype=np.int64))
    return np.searchsorted(br, stop, side="left") > np.searchsorted(br, first, side="right")


def range_mean(x: np.ndarray, first: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Mean of ``x`` over each range (NaN for empty ranges)."""
    first, stop, ok = _valid(first, stop, len(x))
    s = range_sum(x, first, stop)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, s / np.maximum(stop - first, 1), np.nan)


def range_ptp(x: np.ndarray, first: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Peak-to-peak of ``x`` over each range (NaN for empty ranges)."""
    x = np.asarray(x, dtype=np.float64)
    return range_max(x, first, stop) + range_max(-x, first, stop)


def pelvic_drop_deg(obliquity_deg: np.ndarray, first: np.ndarray, stop: np.ndarray, foot: np.ndarray) -> np.ndarray:
    """Pelvic drop of each stance ``[first, stop)`` (IC to TO) of ``foot`` ("left"/"right"), degrees.

    Positive: the swing side (opposite ``foot``) is lower than while standing; negative: a hip hike.
    """
    obl = np.asarray(obliquity_deg, dtype=np.float64)
    left = np.asarray(foot) == "left"
    return np.where(left, range_max(obl, first, stop), range_max(-obl, first, stop))


def detrended_range(x: np.ndarray, first: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Range of ``x`` over each range after that range's least-squares straight line is removed.

    Parameters
    ----------
    x : ndarray, shape (n,)
    first, stop : ndarray of int, shape (k,)

    Returns
    -------
    ndarray, shape (k,)
        NaN for ranges of fewer than 3 samples.
    """
    x = np.asarray(x, dtype=np.float64)
    first, stop, ok = _valid(first, stop, len(x))
    out = np.full(len(first), np.nan)
    for sl in _groups(first, stop):  # one iteration per group of ~2 M samples
        a, b = first[sl], stop[sl]
        idx, owner = range_arange(a, b)
        if len(idx) == 0:
            continue
        m = (b - a).astype(np.float64)
        u = (idx - a[owner]).astype(np.float64)  # sample number within the range
        xs = x[idx]
        bounds = np.cumsum(np.concatenate([[0], b - a]))[:-1]
        nonempty = b > a
        bnd = bounds[nonempty]
        su = np.zeros(len(a))
        sx = np.zeros(len(a))
        suu = np.zeros(len(a))
        sux = np.zeros(len(a))
        su[nonempty] = np.add.reduceat(u, bnd)
        sx[nonempty] = np.add.reduceat(xs, bnd)
        suu[nonempty] = np.add.reduceat(u * u, bnd)
        sux[nonempty] = np.add.reduceat(u * xs, bnd)
        with np.errstate(invalid="ignore", divide="ignore"):
            den = m * suu - su * su
            slope = np.where(den > 0, (m * sux - su * sx) / den, 0.0)
            icpt = (sx - slope * su) / np.maximum(m, 1)
        r = xs - (icpt[owner] + slope[owner] * u)
        hi = np.full(len(a), np.nan)
        lo = np.full(len(a), np.nan)
        hi[nonempty] = np.maximum.reduceat(r, bnd)
        lo[nonempty] = np.minimum.reduceat(r, bnd)
        out[sl] = np.where(m >= 3, hi - lo, np.nan)
    return np.where(ok, out, np.nan)


def vertical_oscillation_mm(acc_vertical_g: np.ndarray, rate_hz: float, first: np.ndarray,
                            stop: np.ndarray) -> np.ndarray:
    """Peak-to-peak vertical displacement over each range (a step: IC to the other foot's next IC), mm.

    Parameters
    ----------
    acc_vertical_g : ndarray, shape (n,)
        Earth-vertical specific force (g; 1 at rest).
    rate_hz : float
    first, stop : ndarray of int

    Returns
    -------
    ndarray
        NaN for ranges of fewer than 8 samples.
    """
    a_all = (np.asarray(acc_vertical_g, dtype=np.float64) - 1.0) * G_MPS2
    first, stop, ok = _valid(first, stop, len(a_all))
    dt = 1.0 / float(rate_hz)
    out = np.full(len(first), np.nan)
    for sl in _groups(first, stop):  # one iteration per group of ~2 M samples
        a, b = first[sl], stop[sl]
        nonempty = b > a
        if not nonempty.any():
            continue
        idx, owner = range_arange(a, b)
        m = (b - a).astype(np.float64)
        bnd = np.cumsum(np.concatenate([[0], b - a]))[:-1][nonempty]

        k = len(a)

        def seg_sum(v, k=k, nonempty=nonempty, bnd=bnd):
            return _seg_sum(v, k, nonempty, bnd)

        def seg_cumsum(v, k=k, nonempty=nonempty, bnd=bnd, owner=owner):
            c = np.cumsum(v)
            start = np.zeros(k)
            start[nonempty] = c[bnd] - v[bnd]
            return c - start[owner]

        acc = a_all[idx]
        acc = acc - (seg_sum(acc) / np.maximum(m, 1))[owner]
        vel = seg_cumsum(acc) * dt
        vel = vel - (seg_sum(vel) / np.maximum(m, 1))[owner]
        pos = seg_cumsum(vel) * dt  # returns to its start: the velocity's mean over the step is zero
        hi = np.full(len(a), np.nan)
        lo = np.full(len(a), np.nan)
        hi[nonempty] = np.maximum.reduceat(pos, bnd)
        lo[nonempty] = np.minimum.reduceat(pos, bnd)
        out[sl] = np.where(m >= 8, (hi - lo) * 1000.0, np.nan)
    return np.where(ok, out, np.nan)


def window_peak(x: np.ndarray, first: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest value of ``x`` in each range and its sample index (-1 and NaN for empty ranges)."""
    from treadlab.analysis.ragged import range_argmax

    x = np.asarray(x, dtype=np.float64)
    first, stop, ok = _valid(first, stop, len(x))
    peak = range_max(x, first, stop)
    where = range_argmax(x, first, stop) if len(first) else np.empty(0, dtype=np.int64)
    return np.where(ok, peak, np.nan), np.where(ok, where, -1)


def shock_attenuation_pct(ppa_g: np.ndarray, pta_g: np.ndarray) -> np.ndarray:
    """``(1 - ppa / pta) * 100`` per step (NaN where either is missing or PTA is not positive)."""
    ppa, pta = np.asarray(ppa_g, dtype=float), np.asarray(pta_g, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pta > 0, (1.0 - ppa / pta) * 100.0, np.nan)
