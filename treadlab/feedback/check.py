"""Cues against ground truth: which true initial contact each cue answers, and its latency (bench and tests)."""

from __future__ import annotations

import numpy as np

__all__ = ["match_contacts", "percentiles_ms"]


def match_contacts(cue_ic_s: np.ndarray, true_ic_s: np.ndarray, tolerance_s: float = 0.05) -> np.ndarray:
    """Index of the nearest true contact of every cue's live contact estimate (-1 when none within tolerance).

    Parameters
    ----------
    cue_ic_s : ndarray
        The cues' ``ic`` column (NaN for beats).
    true_ic_s : ndarray
        The simulator's initial contacts on the session clock, sorted.
    """
    ic = np.asarray(cue_ic_s, dtype=float)
    tr = np.asarray(true_ic_s, dtype=float)
    if not len(tr):
        return np.full(len(ic), -1)
    j = np.clip(np.searchsorted(tr, ic), 1, max(len(tr) - 1, 1))
    jm = np.where(np.abs(tr[j - 1] - ic) <= np.abs(tr[np.minimum(j, len(tr) - 1)] - ic), j - 1, j)
    jm = np.minimum(jm, len(tr) - 1)
    ok = np.isfinite(ic) & (np.abs(tr[jm] - ic) <= tolerance_s)
    return np.where(ok, jm, -1)


def percentiles_ms(x_s: np.ndarray, q=(50, 95, 99)) -> dict:
    """Percentiles of seconds, in ms (NaN when empty)."""
    x = np.asarray(x_s, dtype=float)
    x = x[np.isfinite(x)]
    return {f"p{k}": float(np.percentile(x, k) * 1e3) if len(x) else float("nan") for k in q}
