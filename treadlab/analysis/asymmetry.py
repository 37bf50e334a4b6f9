"""Left-right asymmetry of per-foot means: symmetry index (Robinson 1987) and symmetry angle (Zifchock 2008).

Both are signed so that a positive value means the right side is larger.

- ``SI = (R - L) / (0.5 (R + L)) x 100`` (%); undefined (NaN) when ``R + L`` is 0.
- ``SA = (45 deg - arctan(L / R)) / 90 deg x 100`` (%), for same-signed L and R; when the result exceeds 100 in
  magnitude (opposite signs) 180 deg is subtracted as in Zifchock et al. (2008). Bounded to -100..100 and,
  unlike SI, independent of which side is the reference.
"""

from __future__ import annotations

import numpy as np

__all__ = ["symmetry_angle", "symmetry_index"]


def symmetry_index(left, right):
    """Symmetry index in % (positive: right larger); NaN where undefined. Works on scalars and arrays."""
    left, right = np.asarray(left, float), np.asarray(right, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        si = (right - left) / (0.5 * (right + left)) * 100.0
    si = np.where(np.isfinite(si), si, np.nan)
    return float(si) if si.ndim == 0 else si


def symmetry_angle(left, right):
    """Symmetry angle in % (positive: right larger); NaN where undefined. Works on scalars and arrays."""
    left, right = np.asarray(left, float), np.asarray(right, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        sa = (45.0 - np.degrees(np.arctan2(left, right))) / 90.0 * 100.0
    sa = np.where(sa > 100.0, sa - 200.0, sa)
    sa = np.where(np.isfinite(sa) & ((left != 0) | (right != 0)), sa, np.nan)
    return float(sa) if sa.ndim == 0 else sa
