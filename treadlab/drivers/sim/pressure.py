"""Plantar pressure of a simulated foot: a smooth blob around the centre of pressure, clipped to the foot.

The pressure kernel is an anisotropic Gaussian in the foot frame (``x`` lateral, ``y`` from the heel) with
standard deviations :data:`SIGMA_X_FRAC` and :data:`SIGMA_Y_FRAC` of the foot length, centred near the centre of
pressure (COP) and zero outside the foot outline. Insoles: one value per sensel, ``force * area * kernel``
normalised to sum to the vertical force, with the blob centre shifted so that the force-weighted sensel centroid
matches the COP. Mat: the kernel in kPa on the mat's cells, normalised by the kernel's integral over the outline
(precomputed per foot length), so cells times their area sum to the vertical force when the foot is on the mat.
"""

from __future__ import annotations

import functools

import numpy as np

from treadlab.drivers.layouts import outline_edges_mm

SIGMA_X_FRAC = 0.11
SIGMA_Y_FRAC = 0.14
#: COP line: the centre of pressure's ``x`` as a function of ``y`` along the foot (fractions of the foot length).
COP_LINE_Y_FRAC = np.array([0.0, 0.15, 0.30, 0.60, 0.72, 0.85, 0.93, 1.0])
COP_LINE_X_FRAC = np.array([0.0, 0.015, 0.04, 0.05, 0.01, -0.04, -0.08, -0.08])
_CENTROID_PASSES = 6


def cop_line_x_mm(y_mm: np.ndarray, foot_length_mm: float) -> np.ndarray:
    """Lateral position of the COP path at ``y_mm`` along a foot of ``foot_length_mm``."""
    return np.interp(np.asarray(y_mm) / foot_length_mm, COP_LINE_Y_FRAC, COP_LINE_X_FRAC) * foot_length_mm


def _kernel_weights(centre_mm: np.ndarray, positions_mm: np.ndarray, areas_mm2: np.ndarray,
                    foot_length_mm: float) -> np.ndarray:
    """``area * kernel`` of every sensel for blob centres ``centre_mm`` (k, 2), rows normalised to sum 1."""
    sx = SIGMA_X_FRAC * foot_length_mm
    sy = SIGMA_Y_FRAC * foot_length_mm
    w = positions_mm[None, :, 0] - centre_mm[:, 0:1]
    w *= w
    w *= -0.5 / (sx * sx)
    dy = positions_mm[None, :, 1] - centre_mm[:, 1:2]
    dy *= dy
    dy *= -0.5 / (sy * sy)
    w += dy
    np.exp(w, out=w)
    w *= areas_mm2[None, :]
    w *= 1.0 / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    return w


@functools.lru_cache(maxsize=32)
def _centre_shift_table(positions_mm: bytes, areas_mm2: bytes, foot_length_mm: float) -> np.ndarray:
    """Blob centre minus COP that puts the sensels' force centroid on the COP, for COPs on the COP line.

    Returns an array (n_y, 3) of COP ``y`` and the ``x``, ``y`` shifts, found by fixed-point iteration.
    """
    pos = np.frombuffer(positions_mm).reshape(-1, 2)
    areas = np.frombuffer(areas_mm2)
    y = np.linspace(0.0, foot_length_mm, 261)
    cop = np.column_stack([cop_line_x_mm(y, foot_length_mm), y])
    centre = cop.copy()
    for _ in range(_CENTROID_PASSES):
        centre += cop - _kernel_weights(centre, pos, areas, foot_length_mm) @ pos
    return np.column_stack([y, centre - cop])


def insole_weights(cop_mm: np.ndarray, positions_mm: np.ndarray, areas_mm2: np.ndarray,
                   foot_length_mm: float) -> np.ndarray:
    """Share of the vertical force carried by each sensel.

    Parameters
    ----------
    cop_mm : ndarray, shape (k, 2)
        Centre of pressure in the foot frame of the layout (finite, on the COP line of :func:`cop_line_x_mm`).
    positions_mm, areas_mm2 : ndarray, shapes (n, 2) and (n,)
        The layout.
    foot_length_mm : float
        Foot length of the layout.

    Returns
    -------
    ndarray, shape (k, n)
        Non-negative weights, each row summing to 1, whose centroid is the COP (up to the layout's reach:
        a COP beyond the outermost sensels cannot be matched).
    """
    pos = np.ascontiguousarray(positions_mm, dtype=np.float64)
    areas = np.ascontiguousarray(areas_mm2, dtype=np.float64)
    table = _centre_shift_table(pos.tobytes(), areas.tobytes(), float(foot_length_mm))
    centre = np.empty_like(cop_mm)
    centre[:, 0] = cop_mm[:, 0] + np.interp(cop_mm[:, 1], table[:, 0], table[:, 1])
    centre[:, 1] = cop_mm[:, 1] + np.interp(cop_mm[:, 1], table[:, 0], table[:, 2])
    return _kernel_weights(centre, pos, areas, foot_length_mm)


@functools.lru_cache(maxsize=16)
def _normaliser_table(foot_length_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Integral (mm2) of the kernel over the outline for COPs on the COP line, tabulated against COP ``y``."""
    step = 1.0
    ys = np.arange(0.5 * step, foot_length_mm, step)
    xs = np.arange(-0.25 * foot_length_mm, 0.25 * foot_length_mm, step)
    x_med, x_lat = outline_edges_mm(ys, foot_length_mm)
    inside = (xs[None, :] >= x_med[:, None]) & (xs[None, :] <= x_lat[:, None])
    cy = np.linspace(0.0, foot_length_mm, 131)
    cx = cop_line_x_mm(cy, foot_length_mm)
    sx = SIGMA_X_FRAC * foot_length_mm
    sy = SIGMA_Y_FRAC * foot_length_mm
    ey = np.exp(-0.5 * ((ys[None, :] - cy[:, None]) / sy) ** 2)  # (c, ny)
    ex = np.exp(-0.5 * ((xs[None, :] - cx[:, None]) / sx) ** 2)  # (c, nx)
    z = np.einsum("cy,yx,cx->c", ey, inside.astype(float), ex) * step * step
    return cy, z


def mat_pressure_kpa(force_n: np.ndarray, cop_mm: np.ndarray, heel_along_mm: np.ndarray,
                     heel_across_mm: np.ndarray, lateral_sign: float, along_mm: np.ndarray,
                     across_mm: np.ndarray, foot_length_mm: float) -> np.ndarray:
    """Pressure of one foot on the mat's cells.

    Parameters
    ----------
    force_n : ndarray, shape (k,)
        Vertical force of the foot.
    cop_mm : ndarray, shape (k, 2)
        COP in the foot frame.
    heel_along_mm, heel_across_mm : ndarray, shape (k,)
        Back of the heel on the belt frame (along = forward, across = to the runner's right).
    lateral_sign : float
        +1 for the right foot (lateral = runner's right), -1 for the left.
    along_mm, across_mm : ndarray
        Cell centres along and across the belt.
    foot_length_mm : float

    Returns
    -------
    ndarray, shape (k, len(along_mm), len(across_mm))
        Pressure in kPa.
    """
    y_f = along_mm[None, :] - heel_along_mm[:, None]  # (k, na) foot-frame y of each row
    x_f = lateral_sign * (across_mm[None, :] - heel_across_mm[:, None])  # (k, nc)
    x_med, x_lat = outline_edges_mm(y_f, foot_length_mm)
    inside = (x_f[:, None, :] >= x_med[:, :, None]) & (x_f[:, None, :] <= x_lat[:, :, None])
    sx = SIGMA_X_FRAC * foot_length_mm
    sy = SIGMA_Y_FRAC * foot_length_mm
    ey = np.exp(-0.5 * ((y_f - cop_mm[:, 1:2]) / sy) ** 2)
    ex = np.exp(-0.5 * ((x_f - cop_mm[:, 0:1]) / sx) ** 2)
    cy, z = _normaliser_table(float(foot_length_mm))
    scale = force_n / np.interp(cop_mm[:, 1], cy, z) * 1e3  # N/mm2 -> kPa
    return (ey * scale[:, None])[:, :, None] * ex[:, None, :] * inside
