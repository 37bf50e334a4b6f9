"""The centre of pressure (COP) of an insole, computed in one place for every view and export of treadlab.

The COP is the force-weighted mean of the sensel positions: ``(sum f_i x_i, sum f_i y_i) / sum f_i``, from the
per-sample sums that the reader's linear pass gives (total force and first moments,
:meth:`~treadlab.analysis.session.InsoleData.iter_derived`). At light load it is noise: values below the
calibration offset are kept in that pass (so that noise averages out of the totals), and a ratio of two noisy
sums near zero runs far beyond the insole (up to 180 mm on the simulated runners of ``lab demo``). So:

- the COP is defined only where the foot's total force is at least :data:`MIN_LOAD_BW` of body weight (the
  analysis' normalising force), or, when no body weight is known, :data:`MIN_LOAD_PEAK_FRAC` of the 99th
  percentile of the foot's total force (about its steps' peaks: :func:`min_load`); NaN elsewhere;
- a defined COP is clipped to the layout's bounds (the box of the sensel centres, :func:`layout_bounds_mm`): a
  COP of non-negative sensel forces always lies inside it, and below-offset noise moves a loaded foot's COP by
  a few millimetres at most (at 5 % of body weight, at most 24 mm beyond the edge sensels on the demo runners).

Used by the analysis (the per-sample COP of :class:`~treadlab.analysis.store.FootSignals`, hence the report's
gait lines and butterfly), :attr:`InsoleData.cop_mm <treadlab.analysis.session.InsoleData.cop_mm>`, the C3D
export and the app's live COP.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_LOAD_BW", "MIN_LOAD_PEAK_FRAC", "cop_from_sums", "layout_bounds_mm", "min_load"]

#: The COP is drawn and exported only where the foot carries at least this fraction of body weight.
MIN_LOAD_BW = 0.05
#: Without a body weight: this fraction of the 99th percentile of the foot's total force (2 % of a running
#: step's peak of about 2.5 BW is 5 % BW).
MIN_LOAD_PEAK_FRAC = 0.02


def layout_bounds_mm(positions_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corner (x, y) of the box of the sensel centres (mm), each shape (2,)."""
    pos = np.asarray(positions_mm, dtype=np.float64).reshape(-1, 2)
    if len(pos) == 0:
        return np.full(2, -np.inf), np.full(2, np.inf)
    return pos.min(axis=0), pos.max(axis=0)


def min_load(body_weight: float | None = None, total_force: np.ndarray | None = None) -> float:
    """The least total force at which the COP is defined (in the force's unit).

    Parameters
    ----------
    body_weight : float, optional
        Body weight (or the analysis' normalising force) in the unit of the total force; used when finite and
        positive: :data:`MIN_LOAD_BW` of it.
    total_force : ndarray, optional
        The foot's total force; without a body weight, :data:`MIN_LOAD_PEAK_FRAC` of its 99th percentile.

    Returns
    -------
    float
        Positive; ``inf`` (no COP anywhere) when neither gives a level.
    """
    if body_weight is not None and np.isfinite(body_weight) and body_weight > 0:
        return float(MIN_LOAD_BW * body_weight)
    if total_force is not None:
        f = np.asarray(total_force, dtype=np.float64)
        f = f[np.isfinite(f)]
        if len(f):
            level = MIN_LOAD_PEAK_FRAC * float(np.percentile(f, 99))
            if level > 0:
                return level
    return float("inf")


def cop_from_sums(sums: np.ndarray, min_force: float,
                  bounds: tuple[np.ndarray, np.ndarray] | None = None, dtype=np.float32) -> np.ndarray:
    """Centre of pressure (mm) from per-sample sums.

    Parameters
    ----------
    sums : ndarray, shape (n, >=3)
        Columns total force, ``sum f_i x_i``, ``sum f_i y_i`` (further columns are ignored).
    min_force : float
        Below this total force the COP is NaN (see :func:`min_load`); never below a tiny positive level.
    bounds : (lower, upper), optional
        The layout's box (:func:`layout_bounds_mm`); a defined COP is clipped to it.
    dtype : dtype
        Of the result.

    Returns
    -------
    ndarray, shape (n, 2)
        NaN where the foot carries less than ``min_force``.
    """
    s = np.asarray(sums)
    total = s[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        cop = (s[:, 1:3] / total[:, None]).astype(dtype)
    loaded = total >= max(float(min_force), 1e-9)
    cop[~loaded] = np.nan
    if bounds is not None:
        lo, hi = (np.asarray(b, dtype=dtype) for b in bounds)
        np.clip(cop, lo, hi, out=cop)  # NaN stays NaN
    return cop
