"""Views of force plates and instrumented treadmills for reports and the live view: the vertical load and the
centre of pressure of each plate in the runner's frame, and the centre-of-pressure "butterfly" on the belt.

Coordinates (``docs/reports.md``): *forward* is the runner's direction (against the belt), *right* the runner's
right, both from the device's ``axes`` (vertical and forward axis with a sign; right = forward x vertical). The
COP comes from the plate's ``COP`` channels or, without them, from its forces and moments, both in the frame of
``origin_mm`` (the force kind's definition: ``origin_mm`` is the plate's surface centre in that frame, and the
moments are taken about the frame's origin, as :mod:`treadlab.analysis.force.plate` reads them): the COP lies on
the surface, ``r_v = o_v``, and with ``(a, b, v)`` the axes in cyclic order and ``v`` vertical, ``M = r x F``
gives ``COP_a = (o_v F_a - M_b) / F_v`` and ``COP_b = (M_a + o_v F_b) / F_v``. It is defined only where the plate
carries at least
:data:`MIN_LOAD_N` (the force analysis filters first and asks for 10 % of body weight; a picture need not).
Pure numpy, vectorised; reading is chunked (``ForceData.iter_force``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from treadlab.analysis.ragged import sampled_runs

__all__ = ["MIN_LOAD_N", "PlateAxes", "force_cop_trace", "plate_load_and_cop"]

#: A plate's COP is drawn only where its vertical load is at least this (N).
MIN_LOAD_N = 50.0
#: Samples of long sessions are this many runs of consecutive samples, spread evenly.
RUNS_N = 12
_AXES = ("x", "y", "z")


def _axis(text) -> tuple[int, float]:
    s = str(text).strip().lower()
    sign = -1.0 if s.startswith("-") else 1.0
    letter = s.lstrip("+-")
    if letter not in _AXES:
        raise ValueError(f"an axis is x, y or z with an optional sign, got {text!r}")
    return _AXES.index(letter), sign


class PlateAxes:
    """The role axes of a force device's plate frame (from INFO/attribute ``axes``).

    Attributes
    ----------
    v, f, r : int
        Index (0 x, 1 y, 2 z) of the vertical, forward and right axis.
    v_sign, f_sign, r_sign : float
        Sign turning the axis into the role's direction.
    """

    def __init__(self, axes: dict | None) -> None:
        axes = axes or {"vertical": "z", "forward": "x"}
        self.v, self.v_sign = _axis(axes.get("vertical", "z"))
        self.f, self.f_sign = _axis(axes.get("forward", "x"))
        right = np.cross(self.f_sign * np.eye(3)[self.f], self.v_sign * np.eye(3)[self.v])
        self.r = int(np.argmax(np.abs(right)))
        self.r_sign = float(np.sign(right[self.r]))

    def names(self) -> dict[str, str]:
        """Base channel names: vertical force, COP forward/right, and the two moments the COP needs."""
        a, b = (self.v + 1) % 3, (self.v + 2) % 3
        return {"F": f"F{_AXES[self.v]}", "COPf": f"COP{_AXES[self.f]}", "COPr": f"COP{_AXES[self.r]}",
                "Ma": f"M{_AXES[a]}", "Mb": f"M{_AXES[b]}"}


def plate_load_and_cop(values: dict, channels: dict, axes: PlateAxes, origin_mm,
                       min_load_n: float = MIN_LOAD_N) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertical load (N, positive under load) and COP right and forward (mm) of one plate.

    Parameters
    ----------
    values : dict of str to ndarray
        Calibrated channels by device channel name.
    channels : dict of str to str
        The plate's base name -> device channel name (``{"Fz": "Fz_l", ...}``).
    axes : PlateAxes
    origin_mm : array_like, shape (3,)
        The plate's surface centre in the frame of the COP channels and the moments (NaN: unknown, taken as 0);
        only its vertical component (the surface's height) enters the COP from moments.
    min_load_n : float
        COP is NaN below this load.

    Returns
    -------
    load_n, right_mm, forward_mm : ndarray, shape (k,)
        NaN everywhere when the plate has no vertical force channel; COP NaN without COP or moment channels.
    """
    n = axes.names()
    fv_name = channels.get(n["F"])
    k = len(next(iter(values.values()))) if values else 0
    if fv_name is None:
        nan = np.full(k, np.nan)
        return nan, nan.copy(), nan.copy()
    fv = np.asarray(values[fv_name], dtype=np.float64)
    load = axes.v_sign * fv
    pos = np.full((k, 3), np.nan)
    o = np.nan_to_num(np.asarray(origin_mm, dtype=np.float64).ravel()[:3], nan=0.0)
    if n["COPf"] in channels and n["COPr"] in channels:
        pos[:, axes.f] = values[channels[n["COPf"]]]
        pos[:, axes.r] = values[channels[n["COPr"]]]
    elif n["Ma"] in channels and n["Mb"] in channels:
        a, b = (axes.v + 1) % 3, (axes.v + 2) % 3
        ma = np.asarray(values[channels[n["Ma"]]], np.float64)
        mb = np.asarray(values[channels[n["Mb"]]], np.float64)
        fa, fb = (np.asarray(values[channels[c]], np.float64) if c in channels else 0.0
                  for c in (f"F{_AXES[a]}", f"F{_AXES[b]}"))
        with np.errstate(divide="ignore", invalid="ignore"):
            pos[:, a] = (o[axes.v] * fa - mb) / fv
            pos[:, b] = (ma + o[axes.v] * fb) / fv
    low = ~(load >= min_load_n)
    right = np.where(low, np.nan, axes.r_sign * pos[:, axes.r])
    forward = np.where(low, np.nan, axes.f_sign * pos[:, axes.f])
    return load, right, forward


def _plates(force) -> list:
    return force.plates()


def force_cop_trace(force, start_s: float = -np.inf, stop_s: float = np.inf, max_points: int = 20000,
                    min_load_n: float = MIN_LOAD_N, centre: bool = True) -> pd.DataFrame:
    """Centre of pressure of every plate of a force device over time (the butterfly on the belt).

    Parameters
    ----------
    force : ForceData
        The force device (``treadlab.analysis.force_reader``).
    start_s, stop_s : float
        Time window (session clock).
    max_points : int
        At most about this many samples per plate: all in a short window, else :data:`RUNS_N` runs of
        consecutive samples spread evenly over it (bounded time for an hour at 1000 Hz).
    min_load_n : float
        COP is NaN below this load.
    centre : bool
        Centre both coordinates on the middle of their 5-95 % range (over all plates: a single belt's two lanes
        then lie either side of 0, like the mat's butterfly).

    Returns
    -------
    DataFrame
        ``time_s``, ``belt`` ("single", "left", "right"), ``right_mm``, ``forward_mm``, ``load_n``; NaN
        positions where the plate is unloaded.
    """
    t = force.time
    i0, i1 = int(np.searchsorted(t, start_s)), int(np.searchsorted(t, stop_s, side="right"))
    axes = PlateAxes(force.axes)
    plates = _plates(force)
    names = sorted({c for p in plates for c in p.channels.values()})
    parts = []
    for r0, r1 in sampled_runs(i1 - i0, max_points, RUNS_N):  # runs of samples spread over the window
        for _, times, vals in force.iter_force(i0 + r0, i0 + r1, names=names):  # one iteration per block
            for p in plates:
                load, right, fwd = plate_load_and_cop(vals, p.channels, axes, p.origin_mm, min_load_n)
                parts.append(pd.DataFrame({"time_s": times, "belt": p.belt, "right_mm": right, "forward_mm": fwd,
                                           "load_n": load}))
    cols = ["time_s", "belt", "right_mm", "forward_mm", "load_n"]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: [] for c in cols})
    if centre and np.isfinite(out["forward_mm"].to_numpy(dtype=float)).any():
        for c in ("right_mm", "forward_mm"):
            v = out[c].to_numpy(dtype=float)
            out[c] = v - float(np.nanmean(np.nanpercentile(v, [5, 95])))
    return out[cols]


def butterfly_arrays(trace: pd.DataFrame) -> dict[str, np.ndarray]:
    """The trace as the report's butterfly wants it: ``{"both": (k, 2)}`` for a single belt, ``{"left": ...,
    "right": ...}`` for split belts (x right, y forward, mm).
    """
    out = {}
    for belt, part in trace.groupby("belt", sort=False):
        key = "both" if belt == "single" else str(belt)
        out[key] = part[["right_mm", "forward_mm"]].to_numpy(dtype=float)
    return out
