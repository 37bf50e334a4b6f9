"""Vectorised reductions over many index ranges of one array (one range per step), without Python loops."""

from __future__ import annotations

import numpy as np

__all__ = ["first_true", "range_arange", "range_max", "range_sum", "sampled_runs"]


def _pairs(starts: np.ndarray, stops: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.clip(np.asarray(starts, dtype=np.int64), 0, n)
    stops = np.clip(np.asarray(stops, dtype=np.int64), 0, n)
    bounds = np.empty(2 * len(starts), dtype=np.int64)
    bounds[0::2] = starts
    bounds[1::2] = stops
    return bounds, stops > starts


def range_max(x: np.ndarray, starts: np.ndarray, stops: np.ndarray, empty: float = np.nan) -> np.ndarray:
    """Maximum of ``x[starts[i]:stops[i]]`` for every i (ranges may overlap); ``empty`` for empty ranges."""
    x = np.asarray(x, dtype=np.float64)
    if len(starts) == 0:
        return np.empty(0)
    padded = np.append(x, -np.inf)
    bounds, ok = _pairs(starts, stops, len(x))
    out = np.maximum.reduceat(padded, bounds)[0::2]
    return np.where(ok, out, empty)


def range_argmax(x: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Index of the first maximum of ``x`` in each range; -1 for empty ranges."""
    x = np.asarray(x, dtype=np.float64)
    m = range_max(x, starts, stops)
    if len(m) == 0:
        return np.empty(0, dtype=np.int64)
    level = np.full(len(x), np.inf)
    idx, owner = range_arange(starts, stops)
    level[idx] = m[owner]
    return first_true(x >= level, starts, stops)


def range_sum(x: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Sum of ``x[starts[i]:stops[i]]`` (float64 prefix sums, NaN treated as 0)."""
    c = np.concatenate([[0.0], np.cumsum(np.nan_to_num(np.asarray(x, dtype=np.float64)))])
    n = len(x)
    a = np.clip(np.asarray(starts, dtype=np.int64), 0, n)
    b = np.clip(np.asarray(stops, dtype=np.int64), 0, n)
    return np.where(b > a, c[b] - c[np.minimum(a, b)], 0.0)


def first_true(cond: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Index of the first True of ``cond`` in each range ``[starts[i], stops[i])``; -1 when there is none."""
    n = len(cond)
    if len(starts) == 0:
        return np.empty(0, dtype=np.int64)
    idx = np.where(cond, np.arange(n), n).astype(np.int64)
    padded = np.append(idx, n)
    bounds, ok = _pairs(starts, stops, n)
    out = np.minimum.reduceat(padded, bounds)[0::2]
    stops_c = np.clip(np.asarray(stops, dtype=np.int64), 0, n)
    return np.where(ok & (out < stops_c), out, -1)


def range_arange(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``arange(starts[i], stops[i])`` and, for each element, the range ``i`` it belongs to."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.maximum(np.asarray(stops, dtype=np.int64) - starts, 0)
    owner = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return starts[owner] + offsets, owner


def sampled_runs(n: int, max_n: int, runs_n: int) -> list[tuple[int, int]]:
    """``[start, stop)`` index runs that sample ``n`` items with at most about ``max_n`` of them: everything when
    ``n <= max_n``, else ``runs_n`` runs of consecutive items spread evenly (few contiguous reads of a file).
    """
    if n <= max_n:
        return [(0, n)] if n else []
    runs_n = max(1, min(runs_n, max_n))
    per_run = max(1, max_n // runs_n)
    firsts = np.unique(np.linspace(0, n - per_run, runs_n).astype(np.int64))
    return [(int(a), int(a) + per_run) for a in firsts]
