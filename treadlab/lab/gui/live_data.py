"""Qt-free derivations the live view needs from ring-buffer data: calibrated forces, total force, centre of
pressure, the current step's COP trace, and the mat's footprints. All vectorised; one matrix product per poll.
"""

from __future__ import annotations

import numpy as np

from treadlab.analysis import cop as copmod
from treadlab.calibration import apply_calibration


class InsoleGeometry:
    """Calibration and sensel layout of one insole, turned into one weight matrix.

    Parameters
    ----------
    positions_mm : ndarray, shape (n, 2)
        Sensel centres (x medio-lateral, y heel to toe).
    areas_mm2 : ndarray, shape (n,), optional
        Sensel areas; used when the calibration unit is kPa (force = pressure x area).
    unit : str
        Calibration unit, ``"N"`` or ``"kPa"`` (anything else: raw counts).
    gain, offset : ndarray, shape (n,), optional
        ``value = gain * (raw - offset)``; identity when None.

    Attributes
    ----------
    weights_ : ndarray, shape (n, 3), float32
        Columns: newtons per calibrated unit, times 1, x and y; ``forces @ weights_`` gives the total force and
        the two first moments at once.
    """

    def __init__(self, positions_mm: np.ndarray, areas_mm2: np.ndarray | None = None, unit: str = "N",
                 gain: np.ndarray | None = None, offset: np.ndarray | None = None) -> None:
        self.positions_mm = np.asarray(positions_mm, dtype=np.float64).reshape(-1, 2)
        n = len(self.positions_mm)
        self.gain = np.ones(n, np.float32) if gain is None else np.asarray(gain, np.float32).ravel()
        self.offset = np.zeros(n, np.float32) if offset is None else np.asarray(offset, np.float32).ravel()
        if unit == "kPa":
            areas = np.ones(n) if areas_mm2 is None else np.asarray(areas_mm2, np.float64).ravel()
            to_n = areas * 1e-3
        else:
            to_n = np.ones(n)
        self.unit = unit
        self.to_newton = to_n.astype(np.float32)
        self.weights_ = (np.column_stack([np.ones(n), self.positions_mm]) * to_n[:, None]).astype(np.float32)

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated values (N or kPa), float32, negative readings clipped to zero; shape of ``raw``."""
        return apply_calibration(raw, self.gain, self.offset, clip=True)

    def sums(self, raw: np.ndarray) -> np.ndarray:
        """Total force (N) and first moments ``sum(f_i x_i)``, ``sum(f_i y_i)`` (N mm) per sample, shape (k, 3)."""
        return (self.calibrated(raw) @ self.weights_).astype(np.float64)

    def total_and_cop(self, raw: np.ndarray, min_force_n: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
        """Total force (N) and centre of pressure (mm) of every sample.

        Parameters
        ----------
        raw : ndarray, shape (k, n)
        min_force_n : float
            Below this total force the COP is NaN (foot in the air).

        Returns
        -------
        total_n : ndarray, shape (k,)
        cop_mm : ndarray, shape (k, 2)
        """
        m = self.sums(raw)
        return m[:, 0], self.cop(m, min_force_n)

    def cop(self, sums: np.ndarray, min_force_n: float = 20.0) -> np.ndarray:
        """:func:`cop_from_sums` within this insole's layout bounds."""
        return cop_from_sums(sums, min_force_n, copmod.layout_bounds_mm(self.positions_mm))


def cop_from_sums(sums: np.ndarray, min_force_n: float = 20.0, bounds=None) -> np.ndarray:
    """Centre of pressure (mm), shape (k, 2), from :meth:`InsoleGeometry.sums`; NaN below ``min_force_n``.

    The analysis' one COP rule (:func:`treadlab.analysis.cop.cop_from_sums`) with the live view's load level.
    """
    return copmod.cop_from_sums(sums, min_force_n, bounds, dtype=np.float64)


def current_step_slice(total_n: np.ndarray, threshold_n: float) -> slice | None:
    """Samples of the newest contact (running or just finished): the latest run with ``total_n >= threshold_n``.

    Returns None when the window has no contact at all.
    """
    on = np.asarray(total_n) >= threshold_n
    idx = np.flatnonzero(on)
    if len(idx) == 0:
        return None
    last = int(idx[-1])
    off_before = np.flatnonzero(~on[:last])
    first = int(off_before[-1]) + 1 if len(off_before) else 0
    return slice(first, last + 1)


def step_threshold_n(total_n: np.ndarray, floor_n: float = 20.0) -> float:
    """Contact threshold for the live COP trace: 5 % of the window's peak, at least ``floor_n``."""
    peak = float(np.max(total_n, initial=0.0))
    return max(floor_n, 0.05 * peak)


def footprints(frames: np.ndarray) -> np.ndarray:
    """Peak of each mat sensel over the given frames, shape (rows, cols): where the feet were recently."""
    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) == 0:
        raise ValueError("footprints needs a (k, rows, cols) stack with k >= 1")
    return frames.max(axis=0)
