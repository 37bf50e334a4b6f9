"""Smooth building blocks of the simulated IMUs, with exact first and second time derivatives.

A :class:`Jet` carries a function's value and its first and second derivatives at each sample instant; sums,
products, sine and cosine follow the chain and product rules, so the accelerometer (second derivative of position)
and the gyroscope (first derivative of the Cardan angles) come out in closed form, without finite differences.

Shapes of a local phase ``u`` in [0, 1] (a step or a stride), each returned with its derivatives in ``u``:

- :func:`smooth5`: the quintic smoothstep ``10u^3 - 15u^4 + 6u^5`` (0 -> 1 with zero first and second derivatives at
  both ends), used to move between values given at step boundaries;
- :func:`beta_pulse`: ``(u/p)^a ((1-u)/(1-p))^b`` with ``min(a, b) = 3`` and peak 1 at ``u = p`` (zero with zero
  first and second derivatives at both ends);
- :func:`impact_pulse`: a displacement whose second derivative is a short transient after initial contact (a
  Ricker wavelet: no net change of velocity or position), normalised to a peak acceleration of 1;
- :func:`landing`: the height of a foot that comes down at unit speed and stops on the ground with a gamma-shaped
  deceleration (the tibial shock).

Whatever the per-step durations and amplitudes, a signal built from these blocks is twice continuously
differentiable, so the accelerometer is continuous and exact.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Jet", "beta_pulse", "compose", "hermite5", "impact_pulse", "landing", "local", "smooth5"]


class Jet:
    """Value ``v`` and time derivatives ``d`` (first) and ``dd`` (second) of a function at sample instants.

    ``v`` is an array; ``d`` and ``dd`` are arrays of its shape or floats (constants, broadcast).
    """

    __slots__ = ("d", "dd", "v")

    def __init__(self, v, d=0.0, dd=0.0) -> None:
        self.v = v if type(v) is np.ndarray and v.dtype == np.float64 else np.asarray(v, dtype=np.float64)
        self.d = _fit(d, self.v.shape)
        self.dd = _fit(dd, self.v.shape)

    @staticmethod
    def _lift(other) -> Jet:
        return other if isinstance(other, Jet) else Jet(other)

    def __add__(self, other) -> Jet:
        o = self._lift(other)
        return Jet(self.v + o.v, self.d + o.d, self.dd + o.dd)

    __radd__ = __add__

    def __neg__(self) -> Jet:
        return Jet(-self.v, -self.d, -self.dd)

    def __sub__(self, other) -> Jet:
        return self + (-self._lift(other))

    def __rsub__(self, other) -> Jet:
        return self._lift(other) - self

    def __mul__(self, other) -> Jet:
        if not isinstance(other, Jet):  # a constant (scalar or per-sample array)
            c = np.asarray(other, dtype=np.float64)
            return Jet(self.v * c, self.d * c, self.dd * c)
        return Jet(self.v * other.v, self.d * other.v + self.v * other.d,
                   self.dd * other.v + 2.0 * self.d * other.d + self.v * other.dd)

    __rmul__ = __mul__

    def sin(self) -> Jet:
        """``sin`` of the jet."""
        s, c = np.sin(self.v), np.cos(self.v)
        return Jet(s, c * self.d, c * self.dd - s * self.d**2)

    def cos(self) -> Jet:
        """``cos`` of the jet."""
        s, c = np.sin(self.v), np.cos(self.v)
        return Jet(c, -s * self.d, -s * self.dd - c * self.d**2)

    def full(self) -> Jet:
        """The jet with its derivatives as arrays of the value's shape."""
        shape = self.v.shape
        return Jet(self.v, np.broadcast_to(self.d, shape).copy(), np.broadcast_to(self.dd, shape).copy())


def _fit(x, shape: tuple):
    """``x`` as a float64 array of ``shape``, or a float for a constant (broadcast in every operation; the hot
    path of every jet: :meth:`Jet.full` makes arrays of them).
    """
    if type(x) is np.ndarray and x.shape == shape and x.dtype == np.float64:
        return x
    if type(x) is float:
        return x
    if np.ndim(x) == 0:
        return float(x)
    return np.broadcast_to(np.asarray(x, dtype=np.float64), shape)


def local(shape: tuple[np.ndarray, np.ndarray, np.ndarray], duration_s: np.ndarray) -> Jet:
    """A shape of ``u = (t - t0) / duration_s`` (its value and ``u``-derivatives) as a jet in time."""
    f, f1, f2 = shape
    return Jet(f, f1 / duration_s, f2 / duration_s**2)


def compose(shape: tuple[np.ndarray, np.ndarray, np.ndarray], u: Jet) -> Jet:
    """A shape's value and ``u``-derivatives at ``u.v``, chained through the phase jet ``u`` (time derivatives)."""
    f, f1, f2 = shape
    return Jet(f, f1 * u.d, f2 * u.d**2 + f1 * u.dd)


def smooth5(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quintic smoothstep and its derivatives (0 before ``u = 0``, 1 after ``u = 1``)."""
    u = np.asarray(u, dtype=np.float64)
    inside = (u > 0.0) & (u < 1.0)
    x = np.clip(u, 0.0, 1.0)
    f = x**3 * (10.0 - 15.0 * x + 6.0 * x * x)
    f1 = np.where(inside, 30.0 * x * x * (1.0 - x) ** 2, 0.0)
    f2 = np.where(inside, 60.0 * x * (1.0 - x) * (1.0 - 2.0 * x), 0.0)
    return f, f1, f2


def beta_exponents(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exponents ``(a, b)`` of :func:`beta_pulse` with its peak at ``p``: the smaller one is 3."""
    p = np.asarray(p, dtype=np.float64)
    a = np.where(p <= 0.5, 3.0, 3.0 * p / (1.0 - p))
    b = np.where(p <= 0.5, 3.0 * (1.0 - p) / p, 3.0)
    return a, b


def beta_pulse(u: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pulse ``(u/p)^a ((1-u)/(1-p))^b`` of peak 1 at ``u = p`` (0 < p < 1), 0 outside (0, 1), with derivatives."""
    u = np.asarray(u, dtype=np.float64)
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), u.shape)
    a, b = beta_exponents(p)
    inside = (u > 0.0) & (u < 1.0)
    x = np.where(inside, u, 0.5)
    log_f = a * np.log(x / p) + b * np.log((1.0 - x) / (1.0 - p))
    f = np.where(inside, np.exp(log_f), 0.0)
    g1 = a / x - b / (1.0 - x)
    f1 = f * g1
    f2 = f * (g1 * g1 - a / x**2 - b / (1.0 - x) ** 2)
    return f, f1, f2


def beta_mean(p: float) -> float:
    """Mean of :func:`beta_pulse` over ``u`` in [0, 1] (a Beta function over the peak value)."""
    from scipy.special import beta as beta_fn

    a, b = (float(x) for x in beta_exponents(np.array(p)))
    peak = p**a * (1.0 - p) ** b
    return float(beta_fn(a + 1.0, b + 1.0) / peak)


#: Quintic Hermite basis (position and velocity at both ends, zero acceleration at both ends): polynomial
#: coefficients, lowest order first, of h00, h10, h01, h11.
_HERMITE = np.array([
    [1.0, 0.0, 0.0, -10.0, 15.0, -6.0],
    [0.0, 1.0, 0.0, -6.0, 8.0, -3.0],
    [0.0, 0.0, 0.0, 10.0, -15.0, 6.0],
    [0.0, 0.0, 0.0, -4.0, 7.0, -3.0],
])


def hermite5(tau: np.ndarray, duration_s: np.ndarray, x0, v0, x1, v1) -> Jet:
    """Quintic from ``(x0, v0, a=0)`` at ``tau = 0`` to ``(x1, v1, a=0)`` at ``tau = 1`` over ``duration_s`` (a jet)."""
    x = np.clip(np.asarray(tau, dtype=np.float64), 0.0, 1.0)
    powers = np.stack([x**i for i in range(6)])
    d1 = np.stack([i * x ** max(i - 1, 0) for i in range(6)])
    d2 = np.stack([i * (i - 1) * x ** max(i - 2, 0) for i in range(6)])
    h, h1, h2 = (np.tensordot(_HERMITE, m, axes=(1, 0)) for m in (powers, d1, d2))
    D = np.asarray(duration_s, dtype=np.float64)
    w = (x0, v0 * D, x1, v1 * D)
    val = sum(hi * wi for hi, wi in zip(h, w))
    der = sum(hi * wi for hi, wi in zip(h1, w)) / D
    acc = sum(hi * wi for hi, wi in zip(h2, w)) / D**2
    return Jet(val, der, acc)


#: The transient of :func:`impact_pulse` peaks this many ``sigma`` after contact.
IMPACT_CENTRE_SIGMAS = 5.0
#: ... and is evaluated this many ``sigma`` either side of its peak (beyond: below 1e-20 of the peak).
IMPACT_HALF_SPAN_SIGMAS = 10.0


def impact_pulse(tau_s: np.ndarray, sigma_s: float) -> Jet:
    """Displacement (m per m/s^2 of peak acceleration) of a transmitted impact ``tau_s`` after contact, as a jet.

    ``b = -sigma^2 exp(-y^2 / 2)``, ``y = (tau - 5 sigma) / sigma``: its acceleration ``(1 - y^2) exp(-y^2 / 2)``
    peaks at exactly 1 five ``sigma`` after contact, with dips of -0.45 either side, no net change of velocity or
    position (a Ricker wavelet; its spectrum peaks at ``sqrt(2) / (2 pi sigma)``). Zero beyond ten ``sigma`` from
    the peak (the Gaussian is below 2e-22 there), so it is smooth at every instant.
    """
    y = (np.asarray(tau_s, dtype=np.float64) - IMPACT_CENTRE_SIGMAS * sigma_s) / sigma_s
    inside = np.abs(y) < IMPACT_HALF_SPAN_SIGMAS
    e = np.where(inside, np.exp(-0.5 * np.minimum(y * y, IMPACT_HALF_SPAN_SIGMAS**2)), 0.0)
    return Jet(-sigma_s**2 * e, sigma_s * y * e, (1.0 - y * y) * e)


def landing(tau_s: np.ndarray, theta_s: float) -> Jet:
    """Height above the ground (m per m/s of landing speed) of a foot that lands at ``tau = 0``, as a jet.

    The foot comes down at unit speed and stops with a deceleration of gamma shape ``x^2 exp(-x) / (2 theta)``,
    ``x = tau / theta`` (peak ``2 exp(-2) / theta`` at ``2 theta``, continuous at contact): the height is
    ``theta exp(-x) (3 + 2x + x^2 / 2)`` after contact (``3 theta`` at contact, the stopping distance) and
    ``3 theta - tau`` before.
    """
    tau = np.asarray(tau_s, dtype=np.float64)
    after = tau > 0.0
    x = np.where(after, tau / theta_s, 0.0)
    e = np.exp(-x)
    h = np.where(after, theta_s * e * (3.0 + 2.0 * x + 0.5 * x * x), 3.0 * theta_s - tau)
    v = np.where(after, -e * (1.0 + x + 0.5 * x * x), -1.0)
    a = np.where(after, e * x * x / (2.0 * theta_s), 0.0)
    return Jet(h, v, a)
