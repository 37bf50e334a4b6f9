"""Vertical ground reaction force of one stance, and the loading-rate definitions used for ground truth.

Stance shape
------------
A stance lasts ``contact_time``; ``u`` in [0, 1] is the fraction of stance elapsed. The force is
``F(u) = K * g(phi(u))`` with a dimensionless shape ``g`` (per strike class), a piecewise-linear time warp ``phi``
that compresses the loading window (:func:`make_stance_shape`: slopes between the 20 % and 80 % levels scale by the
loading-rate factor, force values and the reference point do not change) and an amplitude ``K`` (N) set from the
step's impulse. The shape is

    g(phi) = sin(pi * phi**gamma)**q + c3 * sin(3 * pi * phi) + a_imp * x**m * exp(m * (1 - x)),  x = phi / phi_imp

the first term is the active peak (at ``phi = 0.5**(1/gamma)``), the second makes the double hump of walking, the
third is the impact transient (a gamma-shaped pulse peaking at ``phi_imp``, zero at contact).

Definitions (the analysis uses the same; ground truth evaluates them on the noise-free force on a 0.1 ms grid)
------------------------------------------------------------------------------------------------------------
- BW = body_mass_kg * 9.80665 N (standard gravity, :data:`treadlab.vocabulary.G_MPS2`).
- Impact peak: the first peak of F (``scipy.signal.find_peaks``) within the first :data:`IMPACT_WINDOW_FRAC` of
  stance with a prominence of at least :data:`IMPACT_MIN_PROMINENCE_BW` BW; none (NaN) when there is no such peak.
  Running rearfoot strikes have one; the model's midfoot and forefoot strikes rise monotonically and have none.
  In walking the first (weight-acceptance) hump of the double-hump force falls in that window and counts.
- Reference force ``Fref``: the impact peak force, or the force at :data:`NO_IMPACT_REF_FRAC` of stance when there
  is no impact peak.
- ``t20``, ``t80``: first instants (linear interpolation between grid points) where F reaches 20 % and 80 % of Fref.
- AVLR = (0.8 - 0.2) * Fref / (t80 - t20), in BW/s.
- VILR = the largest ``(F(t + w) - F(t)) / w`` over grid instants ``t20 <= t <= t80 - w``, in BW/s, with
  ``w`` = 1 ms (:data:`VILR_WINDOW_S`), or the device's sample interval when that is longer (the definition:
  "the largest slope over 1 ms, or the sample interval when it is longer than 1 ms"). The truth of a device
  sampled at 200 Hz therefore uses ``w`` = 5 ms (:func:`vilr_window_s`, ``GaitModel.steps_for_rate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from treadlab.vocabulary import G_MPS2

GRAVITY_MPS2 = G_MPS2  # standard gravity, as in the analysis
TRUTH_GRID_S = 1e-4
IMPACT_WINDOW_FRAC = 0.30
IMPACT_MIN_PROMINENCE_BW = 0.05
NO_IMPACT_REF_FRAC = 0.13
VILR_WINDOW_S = 1e-3

#: Shape parameters per strike class (running) and for walking: gamma, q, c3, a_imp, phi_imp, m.
SHAPES: dict[str, tuple[float, float, float, float, float, float]] = {
    "rearfoot": (0.868, 2.0, 0.0, 0.40, 0.13, 10.6),
    "midfoot": (0.85, 1.7, 0.0, 0.10, 0.10, 4.0),
    "forefoot": (0.82, 1.5, 0.0, 0.0, 0.13, 4.0),
    "walking": (1.0, 1.0, 0.3, 0.0, 0.13, 4.0),
}
SHAPE_NAMES = tuple(SHAPES)


def shape(phi: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Dimensionless stance shape ``g(phi)``.

    Parameters
    ----------
    phi : ndarray
        Warped stance fraction in [0, 1].
    params : ndarray, shape (..., 6)
        ``gamma, q, c3, a_imp, phi_imp, m`` broadcastable against ``phi``.
    """
    gamma, q, c3, a_imp, phi_imp, m = (params[..., i] for i in range(6))
    phi = np.clip(phi, 0.0, 1.0)
    active = np.clip(np.sin(np.pi * phi**gamma), 0.0, None) ** q
    x = phi / phi_imp
    with np.errstate(under="ignore"):
        impact = a_imp * np.exp(m * (np.log(np.maximum(x, 1e-300)) + 1.0 - x))
    return active + c3 * np.sin(3.0 * np.pi * phi) + np.where(x > 0, impact, 0.0)


@dataclass(frozen=True, eq=False)
class StanceShape:
    """The warped stance shape ``g(phi(u))`` of one foot (see the module docstring).

    Attributes
    ----------
    params : ndarray, shape (6,)
        Shape parameters (a row of :data:`SHAPES`).
    u_knots, phi_knots : ndarray, shape (5,)
        The piecewise-linear time warp: ``phi = interp(u, u_knots, phi_knots)``.
    integral : float
        ``int_0^1 g(phi(u)) du``.
    g_max : float
        Maximum of ``g``.
    """

    params: np.ndarray
    u_knots: np.ndarray
    phi_knots: np.ndarray
    integral: float
    g_max: float

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """``g(phi(u))`` for stance fractions ``u``."""
        return shape(np.interp(u, self.u_knots, self.phi_knots), self.params)


def make_stance_shape(params: np.ndarray, loading_factor: float = 1.0) -> StanceShape:
    """Build the warped shape whose loading slopes are ``loading_factor`` (>= 1) times those of ``g``.

    The shape's loading window (from 75 % of the way to its 20 % crossing to a quarter of the way from its 80 %
    crossing to the reference point: the impact peak, or 13 % of stance) is traversed ``loading_factor`` times
    faster; the time saved goes to the stretches before and after it, so the reference point, its force and
    everything after it stay where they were. AVLR and VILR therefore scale by exactly ``loading_factor``.
    """
    if not loading_factor >= 1.0:
        raise ValueError(f"loading_factor must be >= 1, got {loading_factor}")
    params = np.asarray(params, dtype=np.float64)
    phi = np.linspace(0.0, 1.0, 20001)
    g = shape(phi, params[None, :])
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(phi))])
    peaks, _ = find_peaks(g, prominence=0.02 * g.max())
    peaks = peaks[phi[peaks] <= IMPACT_WINDOW_FRAC]
    phi_ref = float(phi[peaks[0]]) if peaks.size else NO_IMPACT_REF_FRAC
    g_ref = float(np.interp(phi_ref, phi, g))
    rising = phi <= phi_ref
    phi20 = float(np.interp(0.2 * g_ref, np.maximum.accumulate(g[rising]), phi[rising]))
    phi80 = float(np.interp(0.8 * g_ref, np.maximum.accumulate(g[rising]), phi[rising]))
    phi_lo = 0.75 * phi20
    phi_hi = phi80 + 0.25 * (phi_ref - phi80)
    window_u = (phi_hi - phi_lo) / loading_factor
    spare = phi_ref - window_u
    a = spare * phi_lo / (phi_lo + phi_ref - phi_hi)
    u_knots = np.array([0.0, a, a + window_u, phi_ref, 1.0])
    phi_knots = np.array([0.0, phi_lo, phi_hi, phi_ref, 1.0])
    seg = np.diff(np.interp(phi_knots, phi, cumulative))
    integral = float(np.sum(seg * np.diff(u_knots) / np.diff(phi_knots)))
    return StanceShape(params, u_knots, phi_knots, integral, float(g.max()))


def vilr_window_s(rate_hz: float | None = None) -> float:
    """Window of the VILR slope for a device sampled at ``rate_hz``: 1 ms, or the sample interval when longer."""
    if rate_hz is None or not rate_hz > 0:
        return VILR_WINDOW_S
    return max(VILR_WINDOW_S, 1.0 / float(rate_hz))


def _crossing_s(force: np.ndarray, level: float, dt_s: float) -> float:
    """First instant where ``force`` reaches ``level`` (linear interpolation), or NaN."""
    above = np.flatnonzero(force >= level)
    if above.size == 0:
        return float("nan")
    i = int(above[0])
    if i == 0:
        return 0.0
    f0, f1 = force[i - 1], force[i]
    return (i - 1 + (level - f0) / (f1 - f0)) * dt_s


def loading_metrics(force_n: np.ndarray, dt_s: float, bw_n: float,
                    vilr_window: float = VILR_WINDOW_S) -> tuple[float, float, float, float]:
    """Impact peak, peak force, AVLR and VILR of one stance by the definitions of this module.

    Parameters
    ----------
    force_n : ndarray, shape (n,)
        Vertical force over one stance, from initial contact to toe-off, sampled every ``dt_s``.
    dt_s : float
        Sampling interval (ground truth uses :data:`TRUTH_GRID_S`).
    bw_n : float
        Body weight in N.
    vilr_window : float
        Window of the VILR slope in s (1 ms; see :func:`vilr_window_s` for a device's window).

    Returns
    -------
    impact_peak_bw, peak_force_bw, avlr_bw_s, vilr_bw_s : float
        ``impact_peak_bw`` is NaN when there is no impact peak.
    """
    n = len(force_n)
    f_max = float(force_n.max())
    peaks, _ = find_peaks(force_n, prominence=IMPACT_MIN_PROMINENCE_BW * bw_n)
    peaks = peaks[peaks <= IMPACT_WINDOW_FRAC * (n - 1)]
    if peaks.size:
        f_ref = float(force_n[peaks[0]])
        impact_bw = f_ref / bw_n
    else:
        x = NO_IMPACT_REF_FRAC * (n - 1)
        f_ref = float(np.interp(x, np.arange(n), force_n))
        impact_bw = float("nan")
    t20 = _crossing_s(force_n, 0.2 * f_ref, dt_s)
    t80 = _crossing_s(force_n, 0.8 * f_ref, dt_s)
    avlr = 0.6 * f_ref / (t80 - t20) / bw_n
    lag = max(1, int(round(vilr_window / dt_s)))
    w_s = lag * dt_s
    i0 = int(np.ceil(t20 / dt_s - 1e-9))
    i1 = int(np.floor((t80 - w_s) / dt_s + 1e-9))
    if i1 >= i0:
        slopes = (force_n[i0 + lag : i1 + lag + 1] - force_n[i0 : i1 + 1]) / w_s
        vilr = float(slopes.max()) / bw_n
    else:
        vilr = avlr
    return impact_bw, f_max / bw_n, avlr, vilr
