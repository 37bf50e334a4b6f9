"""Timing metrics from the contacts of both feet: step, stride and flight time, duty factor, cadence.

- stride time: to the next initial contact of the same foot;
- step time: to the next initial contact of the other foot;
- flight time: from this foot's toe-off to that next contact of the other foot (negative in walking: then its
  magnitude is the double-support time);
- duty factor: contact time / stride time; cadence (per step): 60000 / step time.

A value is NaN when the interval spans a break in the data, or a missed step: the other foot's next contact is
missing (it comes after this foot's next contact), or a stride holds other than one contact of the other foot.
The missed step is told by the order of contacts, never by an interval's length: irregular strides (a stumble's
short and long step, a change of pace, the first steps on a starting belt) keep their times. Only when the
other foot has no contacts at all does a stride longer than ``max_stride_factor`` times the median count as
a missed step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["add_timing"]


def add_timing(steps: pd.DataFrame, break_times_s: np.ndarray | None = None,
               max_stride_factor: float = 1.6) -> pd.DataFrame:
    """Add ``stride_time_ms``, ``step_time_ms``, ``flight_time_ms``, ``duty_factor``, ``cadence_spm``.

    Parameters
    ----------
    steps : DataFrame
        Columns ``foot``, ``ic_s``, ``to_s``.
    break_times_s : ndarray, optional
        Times of the first sample after each break in the data (either foot).
    max_stride_factor : float

    Returns
    -------
    DataFrame
        A copy, sorted by ``ic_s``.
    """
    out = steps.sort_values("ic_s", kind="stable").reset_index(drop=True).copy()
    br = np.sort(np.asarray(break_times_s if break_times_s is not None else [], dtype=float))
    n = len(out)
    stride = np.full(n, np.nan)
    step = np.full(n, np.nan)
    flight = np.full(n, np.nan)
    feet = out["foot"].to_numpy()
    ic_all = out["ic_s"].to_numpy(dtype=float)
    to_all = out["to_s"].to_numpy(dtype=float)
    for foot in np.unique(feet):  # two iterations: left and right
        mine = np.flatnonzero(feet == foot)
        other = np.flatnonzero(feet != foot)
        ic, to = ic_all[mine], to_all[mine]
        nxt_same = np.append(ic[1:], np.nan)
        o_ic = ic_all[other]
        j = np.searchsorted(o_ic, ic, side="right")
        nxt_other = np.where(j < len(o_ic), o_ic[np.clip(j, 0, max(len(o_ic) - 1, 0))] if len(o_ic) else np.nan,
                             np.nan)
        s = nxt_same - ic
        med = np.nanmedian(s) if np.isfinite(s).any() else np.nan
        broken_same = np.searchsorted(br, ic, side="right") != np.searchsorted(br, np.nan_to_num(nxt_same), "right")
        if len(o_ic):  # a stride holds exactly one contact of the other foot, or a step was missed
            between = np.searchsorted(o_ic, np.nan_to_num(nxt_same, nan=np.inf), "left") - j
            missed = between != 1
        else:
            missed = s > max_stride_factor * med
        bad_same = broken_same | ~np.isfinite(s) | missed
        stride[mine] = np.where(bad_same, np.nan, s)
        broken_o = np.searchsorted(br, ic, side="right") != np.searchsorted(br, np.nan_to_num(nxt_other), "right")
        bad_o = broken_o | ~np.isfinite(nxt_other) | (np.isfinite(nxt_same) & (nxt_other > nxt_same))
        bad_o |= ~np.isfinite(nxt_same) & ((nxt_other - ic) > 0.5 * max_stride_factor * med)
        step[mine] = np.where(bad_o, np.nan, nxt_other - ic)
        flight[mine] = np.where(bad_o, np.nan, nxt_other - to)
    out["stride_time_ms"] = stride * 1e3
    out["step_time_ms"] = step * 1e3
    out["flight_time_ms"] = flight * 1e3
    with np.errstate(invalid="ignore", divide="ignore"):
        out["duty_factor"] = (to_all - ic_all) / stride
        out["cadence_spm"] = 60.0 / step
    return out
