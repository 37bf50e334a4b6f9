"""The one calibration formula of treadlab: ``value = gain * (raw - offset)``, per value.

Dependency-free (numpy only) on purpose: the session reader, the mat analysis, the LSL outlet and the app's live
view all calibrate through :func:`apply_calibration`, whichever layer they sit in. Forces and pressures are
clipped at zero (a reading below the offset is noise, not a pull); external streams keep their sign.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_calibration"]


def apply_calibration(raw: np.ndarray, gain: np.ndarray | float, offset: np.ndarray | float, *,
                      clip: bool = False, dtype=np.float32) -> np.ndarray:
    """Calibrated values ``gain * (raw - offset)``.

    Parameters
    ----------
    raw : ndarray
        Raw counts, any shape whose last axes broadcast against ``gain`` and ``offset``.
    gain, offset : ndarray or float
        Per value (broadcast over the rows).
    clip : bool
        Set negative results to zero (forces and pressures).
    dtype : dtype
        Of the computation and the result (float32 for sensel data, float64 for external streams).

    Returns
    -------
    ndarray
        A new array of ``raw``'s shape.
    """
    out = np.asarray(raw).astype(dtype)  # always a copy: the caller's buffer is never changed
    out -= np.asarray(offset, dtype=dtype)
    out *= np.asarray(gain, dtype=dtype)
    if clip:
        np.maximum(out, 0.0, out=out)
    return out
