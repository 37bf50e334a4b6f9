"""From a force plate's channels to the signals the gait analysis works with, in the runner's frame.

A plate reports forces (N) and either moments (N mm) or a centre of pressure (mm) in its own frame; the device
names which of its axes is vertical (up) and which points the way the runner faces (``axes``, e.g.
``{"vertical": "z", "forward": "x"}``, a letter with an optional sign: ``"-y"``). This module turns them into

- ``fz_n``: the vertical force, positive under load;
- ``m_fwd_nmm``, ``m_lat_nmm``: the *first moments* of the vertical force, ``COP * Fz``, along the runner's
  forward and rightward directions (N mm). They are linear in the channels, so a low-pass applied to them and to
  ``fz_n`` is the low-pass of F and M the centre of pressure is then computed from
  (``COP = lowpass(m) / lowpass(Fz)``, :func:`cop_mm`);
- ``belt_speed_mps`` when the plate reports it.

Frames. The rightward direction is ``forward x vertical`` (a right-handed plate frame: with x forward and z up,
right is -y). As the force kind defines it (:mod:`treadlab.kinds.force`), ``origin_mm`` is the centre of the plate's
top surface in the frame of the COP channels, and the moments are taken about that frame's origin: the centre of
pressure ``r`` lies on the surface (``r_v = origin_v``), and ``M = r x F`` gives its two horizontal components,
in the same frame as COP channels would be. ``size_mm`` (length along the forward axis, width across) bounds the
surface around ``origin_mm``: a COP off the plate is not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from treadlab.errors import AnalysisError

__all__ = ["PlateAxes", "PlateSignals", "cop_mm", "parse_axis", "plate_signals"]

_LETTERS = "xyz"


def parse_axis(text: str) -> tuple[int, float]:
    """An axis name (``"x"``, ``"-z"``, ``"+y"``) as (index 0..2, sign +-1)."""
    s = str(text).strip().lower()
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if s not in _LETTERS or not s:
        raise AnalysisError(f"invalid force-plate axis {text!r}: give x, y or z with an optional sign")
    return _LETTERS.index(s), sign


@dataclass(frozen=True)
class PlateAxes:
    """The runner's directions in a plate frame: ``(index, sign)`` of vertical (up), forward and rightward."""

    vertical: tuple[int, float]
    forward: tuple[int, float]
    right: tuple[int, float]

    @classmethod
    def from_axes(cls, axes: dict) -> PlateAxes:
        """From the device's ``axes`` attribute (``vertical`` and ``forward``; defaults z and x)."""
        v = parse_axis((axes or {}).get("vertical", "z"))
        f = parse_axis((axes or {}).get("forward", "x"))
        if v[0] == f[0]:
            raise AnalysisError(f"force plate axes {axes!r}: vertical and forward are the same axis")
        lat = 3 - v[0] - f[0]
        cyclic = 1.0 if (f[0], v[0], lat) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
        return cls(v, f, (lat, cyclic * v[1] * f[1]))  # e_right = e_fwd x e_up


@dataclass
class PlateSignals:
    """One belt's per-sample signals (every array shape (n,)).

    Attributes
    ----------
    time_s : ndarray of float64
    fz_n : ndarray
        Vertical force, positive under load.
    m_fwd_nmm, m_lat_nmm : ndarray
        First moments ``COP_forward * Fz`` and ``COP_right * Fz`` (N mm).
    belt_speed_mps : ndarray or None
        The device's belt speed, when it has the channel.
    cop_bounds_mm : tuple or None
        ``((fwd_lo, fwd_hi), (right_lo, right_hi))``: where the surface lies (None: not known).
    """

    time_s: np.ndarray
    fz_n: np.ndarray
    m_fwd_nmm: np.ndarray
    m_lat_nmm: np.ndarray
    belt_speed_mps: np.ndarray | None = None
    cop_bounds_mm: tuple | None = None


def _get(ch: dict, prefix: str, axis: int) -> np.ndarray | None:
    v = ch.get(f"{prefix}{_LETTERS[axis]}")
    return None if v is None else np.asarray(v, dtype=np.float64)


def plate_signals(time_s: np.ndarray, channels: dict, axes: PlateAxes, origin_mm=None, size_mm=None,
                  belt_speed_mps: np.ndarray | None = None) -> PlateSignals:
    """One belt's signals from its channels (a dict base name ``Fx``, ``Mx``, ``COPx``... -> array).

    The centre of pressure comes from the two horizontal COP channels when the plate sends them (NaN or anything
    at low load: it is weighted by the vertical force), else from all three forces and the two horizontal moments.
    Raises :class:`AnalysisError` when neither set is there.
    """
    v, vs = axes.vertical
    f_i, f_s = axes.forward
    r_i, r_s = axes.right
    fv = _get(channels, "F", v)
    if fv is None:
        raise AnalysisError(f"force plate has no vertical force channel F{_LETTERS[v]}")
    origin = np.full(3, np.nan) if origin_mm is None else np.asarray(origin_mm, dtype=np.float64).ravel()[:3]
    forces = [_get(channels, "F", i) for i in range(3)]
    moments = [_get(channels, "M", i) for i in range(3)]
    horiz = [i for i in range(3) if i != v]
    first = {}
    cops = {a: _get(channels, "COP", a) for a in horiz}
    has_cop = all(c is not None for c in cops.values())
    if not has_cop and all(x is not None for x in forces) and all(moments[i] is not None for i in horiz):
        r_v = float(np.nan_to_num(origin[v]))  # the surface's height in the moments' frame
        for a in horiz:  # r_a * F_v from M = r x F (b the third axis)
            b = 3 - a - v
            if (a, b, v) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):  # M_b = r_v F_a - r_a F_v
                first[a] = r_v * forces[a] - moments[b]
            else:  # (b, a, v) cyclic: M_b = r_a F_v - r_v F_a
                first[a] = moments[b] + r_v * forces[a]
    else:
        missing = [f"COP{_LETTERS[a]}" for a, c in cops.items() if c is None]
        if missing:
            raise AnalysisError("force plate gives neither forces and moments nor a centre of pressure "
                                f"(missing {', '.join(missing)})")
        first = {a: np.nan_to_num(c) * fv for a, c in cops.items()}
    bounds = None
    size = None if size_mm is None else np.asarray(size_mm, dtype=np.float64).ravel()
    if size is not None and size.size >= 2 and np.isfinite(size[:2]).all() and np.isfinite(origin[[f_i, r_i]]).all():
        c_f, c_r = f_s * origin[f_i], r_s * origin[r_i]  # the surface centre, forward and rightward
        bounds = ((c_f - size[0] / 2.0, c_f + size[0] / 2.0), (c_r - size[1] / 2.0, c_r + size[1] / 2.0))
    return PlateSignals(
        time_s=np.asarray(time_s, dtype=np.float64),
        fz_n=vs * fv,
        m_fwd_nmm=f_s * vs * first[f_i],
        m_lat_nmm=r_s * vs * first[r_i],
        belt_speed_mps=None if belt_speed_mps is None else np.asarray(belt_speed_mps, dtype=np.float64),
        cop_bounds_mm=bounds,
    )


def cop_mm(fz_n: np.ndarray, m_fwd_nmm: np.ndarray, m_lat_nmm: np.ndarray, min_load_n: float,
           bounds: tuple | None = None) -> np.ndarray:
    """Centre of pressure (forward, right; mm) where the vertical force is at least ``min_load_n``, else NaN.

    Pass low-passed force and first moments (the zero-lag low-pass of F and M before the COP). With ``bounds``
    (:attr:`PlateSignals.cop_bounds_mm`) a COP off the plate surface is NaN too.
    """
    fz = np.asarray(fz_n, dtype=np.float64)
    ok = fz >= min_load_n
    out = np.full((len(fz), 2), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok, 0] = m_fwd_nmm[ok] / fz[ok]
        out[ok, 1] = m_lat_nmm[ok] / fz[ok]
    if bounds is not None:
        for j, (lo, hi) in enumerate(bounds):
            out[(out[:, j] < lo) | (out[:, j] > hi)] = np.nan
    return out
