"""Plantar pressure of a simulated foot: a heel and a forefoot pressure region, clipped to the foot outline.

The pressure is the sum of two anisotropic Gaussian blobs in the foot frame (``x`` lateral, ``y`` from the heel):
one under the heel and one under the metatarsal heads. Their shares follow the centre of pressure (COP): with the
COP behind the heel centre (:data:`HEEL_Y_FRAC`) only the heel blob carries force, centred at the COP; with the
COP ahead of the metatarsal heads (:data:`FORE_Y_FRAC`, push-off) only the forefoot blob, centred at the COP; in
between the blobs sit at the heel and the metatarsal heads and share the force so that their centroid is the COP
(midstance: heel and forefoot loaded, the arch lightly). Each blob carries its share of the force, normalised over
the sensels (insoles) or over the outline (mat).

Insoles: one value per sensel, summing to the vertical force; both blob centres are shifted by a tabulated amount
(per layout, against COP ``y``) so that the force-weighted sensel centroid matches the COP despite the sensels'
discrete positions and the outline. Mat: kPa on the mat's cells; cells times their area sum to the vertical force
while the whole foot is on the mat.
"""

from __future__ import annotations

import functools

import numpy as np

from treadlab.drivers.layouts import outline_edges_mm

#: Centre of the heel region and of the metatarsal heads along the foot (fractions of the foot length).
HEEL_Y_FRAC = 0.13
FORE_Y_FRAC = 0.72
#: Standard deviations (x, y) of the heel and forefoot blobs, fractions of the foot length.
HEEL_SIGMA_FRAC = (0.085, 0.085)
FORE_SIGMA_FRAC = (0.13, 0.075)
#: COP line: the centre of pressure's ``x`` as a function of ``y`` along the foot (fractions of the foot length).
COP_LINE_Y_FRAC = np.array([0.0, 0.15, 0.30, 0.60, 0.72, 0.85, 0.93, 1.0])
COP_LINE_X_FRAC = np.array([0.0, 0.015, 0.04, 0.05, 0.01, -0.04, -0.08, -0.08])
_CENTROID_PASSES = 6


def cop_line_x_mm(y_mm: np.ndarray, foot_length_mm: float) -> np.ndarray:
    """Lateral position of the COP path at ``y_mm`` along a foot of ``foot_length_mm``."""
    return np.interp(np.asarray(y_mm) / foot_length_mm, COP_LINE_Y_FRAC, COP_LINE_X_FRAC) * foot_length_mm


def blob_layout(cop_y_mm: np.ndarray, foot_length_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forefoot share and the heel and forefoot blob centres for COPs at ``cop_y_mm`` (on the COP line).

    Returns
    -------
    fore_share : ndarray, shape (k,)
    heel_centre_mm, fore_centre_mm : ndarray, shape (k, 2)
    """
    L = foot_length_mm
    y_heel = np.minimum(cop_y_mm, HEEL_Y_FRAC * L)
    y_fore = np.maximum(cop_y_mm, FORE_Y_FRAC * L)
    share = np.clip((cop_y_mm - HEEL_Y_FRAC * L) / ((FORE_Y_FRAC - HEEL_Y_FRAC) * L), 0.0, 1.0)
    heel = np.column_stack([cop_line_x_mm(y_heel, L), y_heel])
    fore = np.column_stack([cop_line_x_mm(y_fore, L), y_fore])
    return share, heel, fore


def _blob(positions_mm: np.ndarray, areas_mm2: np.ndarray, centre_mm: np.ndarray, sigma_mm: tuple) -> np.ndarray:
    """``area * Gaussian`` of every sensel for blob centres (k, 2), rows normalised to sum 1."""
    w = positions_mm[None, :, 0] - centre_mm[:, 0:1]
    w *= w
    w *= -0.5 / (sigma_mm[0] * sigma_mm[0])
    dy = positions_mm[None, :, 1] - centre_mm[:, 1:2]
    dy *= dy
    dy *= -0.5 / (sigma_mm[1] * sigma_mm[1])
    w += dy
    np.exp(w, out=w)
    w *= areas_mm2[None, :]
    w *= 1.0 / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    return w


def _weights(cop_y_mm: np.ndarray, shift_mm: np.ndarray, positions_mm: np.ndarray, areas_mm2: np.ndarray,
             foot_length_mm: float) -> np.ndarray:
    share, heel, fore = blob_layout(cop_y_mm, foot_length_mm)
    sig_h = (HEEL_SIGMA_FRAC[0] * foot_length_mm, HEEL_SIGMA_FRAC[1] * foot_length_mm)
    sig_f = (FORE_SIGMA_FRAC[0] * foot_length_mm, FORE_SIGMA_FRAC[1] * foot_length_mm)
    w = _blob(positions_mm, areas_mm2, heel + shift_mm, sig_h)
    w *= (1.0 - share)[:, None]
    wf = _blob(positions_mm, areas_mm2, fore + shift_mm, sig_f)
    wf *= share[:, None]
    w += wf
    return w


@functools.lru_cache(maxsize=32)
def _centre_shift_table(positions_mm: bytes, areas_mm2: bytes, foot_length_mm: float) -> np.ndarray:
    """Shift of both blobs that puts the sensels' force centroid on the COP, for COPs on the COP line.

    Returns an array (n_y, 3) of COP ``y`` and the ``x``, ``y`` shifts, found by fixed-point iteration.
    """
    pos = np.frombuffer(positions_mm).reshape(-1, 2)
    areas = np.frombuffer(areas_mm2)
    y = np.linspace(0.0, foot_length_mm, 261)
    cop = np.column_stack([cop_line_x_mm(y, foot_length_mm), y])
    shift = np.zeros_like(cop)
    for _ in range(_CENTROID_PASSES):
        shift += cop - _weights(y, shift, pos, areas, foot_length_mm) @ pos
    return np.column_stack([y, shift])


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
    shift = np.column_stack([np.interp(cop_mm[:, 1], table[:, 0], table[:, 1]),
                             np.interp(cop_mm[:, 1], table[:, 0], table[:, 2])])
    return _weights(cop_mm[:, 1], shift, pos, areas, foot_length_mm)


@functools.lru_cache(maxsize=16)
def _normaliser_tables(foot_length_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrals (mm2) of the heel and forefoot blobs over the outline, against the blob centre ``y``."""
    step = 1.0
    L = foot_length_mm
    ys = np.arange(0.5 * step, L, step)
    xs = np.arange(-0.25 * L, 0.25 * L, step)
    x_med, x_lat = outline_edges_mm(ys, L)
    inside = ((xs[None, :] >= x_med[:, None]) & (xs[None, :] <= x_lat[:, None])).astype(float)
    cy = np.linspace(0.0, L, 131)
    cx = cop_line_x_mm(cy, L)
    tables = []
    for sig in (HEEL_SIGMA_FRAC, FORE_SIGMA_FRAC):
        ey = np.exp(-0.5 * ((ys[None, :] - cy[:, None]) / (sig[1] * L)) ** 2)  # (c, ny)
        ex = np.exp(-0.5 * ((xs[None, :] - cx[:, None]) / (sig[0] * L)) ** 2)  # (c, nx)
        tables.append(np.einsum("cy,yx,cx->c", ey, inside, ex) * step * step)
    return cy, tables[0], tables[1]


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
    L = float(foot_length_mm)
    y_f = along_mm[None, :] - heel_along_mm[:, None]  # (k, na) foot-frame y of each row
    x_f = lateral_sign * (across_mm[None, :] - heel_across_mm[:, None])  # (k, nc)
    x_med, x_lat = outline_edges_mm(y_f, L)
    inside = (x_f[:, None, :] >= x_med[:, :, None]) & (x_f[:, None, :] <= x_lat[:, :, None])
    share, heel, fore = blob_layout(cop_mm[:, 1], L)
    cy, z_heel, z_fore = _normaliser_tables(L)
    ey = np.empty((len(force_n), len(along_mm), 2))
    ex = np.empty((len(force_n), 2, len(across_mm)))
    for i, (centre, sig, z, part) in enumerate(
        ((heel, HEEL_SIGMA_FRAC, z_heel, 1.0 - share), (fore, FORE_SIGMA_FRAC, z_fore, share))
    ):
        scale = force_n * part / np.interp(centre[:, 1], cy, z) * 1e3  # N/mm2 -> kPa
        ey[:, :, i] = np.exp(-0.5 * ((y_f - centre[:, 1:2]) / (sig[1] * L)) ** 2) * scale[:, None]
        ex[:, i, :] = np.exp(-0.5 * ((x_f - centre[:, 0:1]) / (sig[0] * L)) ** 2)
    out = np.matmul(ey, ex)  # both blobs, (k, along, across)
    out *= inside
    return out
