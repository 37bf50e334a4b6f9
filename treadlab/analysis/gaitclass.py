"""Gait of every step (standing, walking, running) and the quality flags of the step table.

Walking and running are told apart by **double support against flight**: walking, the other foot lands before
this one lifts (negative flight time: both feet on the ground); running, there is a flight phase with neither
foot down. In steady gait this is the duty factor (contact time / stride time) above or below 0.5, the
classical definition of the gaits (Alexander R McN (1989) "Optimization and gaits in the locomotion of
vertebrates", Physiol Rev 69:1199-1227; Alexander & Jayes (1983) J Zool 201:135-152); it holds at any speed (a
slow jog still has a flight phase, a race walker never has one). Each step is judged by its own flight time,
which stays right in irregular strides where a per-step duty factor does not (a long step followed by a short
one: a running contact can exceed half of that stride). A step without a flight time (the last of a foot, one
before a break) uses its duty factor, then its contact time against its step time, then the gait of the nearest
classified step of the same foot (running when there is none).

**Standing**: a contact of at least ``STANDING_MIN_MS`` (2 s) is not a step: the longest stance of slow
walking (about 60 steps/min, a 2-s stride of which stance is ~65 %) is ~1.3 s. Standing rows keep their
times (``ic_s`` = when the foot was loaded, or the recording's start) and get no metrics.

Quality (``quality`` column): ``"ok"``; ``"short_contact"`` (shorter than the contact detection's
``min_contact_ms``, 80 ms: shorter than any running stance, e.g. a toe touching down in a stumble: kept with its
times, no kinetic metrics); ``"standing"``. Only ``"ok"`` steps enter the means of the summary. Timing never
rejects a step: an irregular stride, a stumble's short then long step, a change of pace all stay ``"ok"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["GAITS", "QUALITY_OK", "QUALITY_SHORT", "QUALITY_STANDING", "QUALITY_VALUES", "STANDING_MIN_MS",
           "WALK_DUTY_FACTOR", "classify_gait", "summary_gait", "summary_rows"]

STANDING_MIN_MS = 2000.0
WALK_DUTY_FACTOR = 0.5
QUALITY_OK = "ok"
QUALITY_SHORT = "short_contact"
QUALITY_STANDING = "standing"
QUALITY_VALUES = (QUALITY_OK, QUALITY_SHORT, QUALITY_STANDING)
GAITS = ("standing", "walking", "running")
_TIMING = ("flight_time_ms", "step_time_ms", "stride_time_ms", "duty_factor", "cadence_spm")
#: Per-step metrics that a standing period does not have (NaN; text columns empty).
_KINETIC = ("strike_index_pct", "onset_diff_ms", "impact_peak_bw", "impact_peak_s", "avlr_bw_s", "vilr_bw_s",
            "peak_force_bw", "peak_force_s", "impulse_bw_s", "step_length_m", "step_width_m")
_KINETIC_TEXT = ("strike_class", "strike_flag", "onset_class", "loading_reference")


def classify_gait(steps: pd.DataFrame) -> pd.DataFrame:
    """Add ``gait`` ("standing", "walking", "running") and make sure ``quality`` is there.

    Standing rows (quality "standing", or contacts of at least ``STANDING_MIN_MS``) get NaN timing (a standing
    period has no stride) and no kinetic metrics, and the intervals of other steps that end at one are NaN.

    Parameters
    ----------
    steps : DataFrame
        After :func:`~treadlab.analysis.timing.add_timing` (``foot``, ``ic_s``, ``to_s``, ``contact_time_ms``,
        ``duty_factor``, ``flight_time_ms``, ``step_time_ms``; ``quality`` optional).

    Returns
    -------
    DataFrame
        A copy with ``gait`` and ``quality``.
    """
    out = steps.copy()
    n = len(out)
    ct = out["contact_time_ms"].to_numpy(dtype=float) if "contact_time_ms" in out else np.full(n, np.nan)
    quality = out["quality"].to_numpy(dtype=object) if "quality" in out else np.full(n, QUALITY_OK, dtype=object)
    standing = (quality == QUALITY_STANDING) | (ct >= STANDING_MIN_MS)
    quality = np.where(standing, QUALITY_STANDING, quality)
    duty = _col(out, "duty_factor")
    flight = _col(out, "flight_time_ms")
    step = _col(out, "step_time_ms")
    walk = np.full(n, np.nan)
    with np.errstate(invalid="ignore"):
        walk = np.where(np.isfinite(flight), flight < 0, walk)
        walk = np.where(np.isnan(walk) & np.isfinite(duty), duty > WALK_DUTY_FACTOR, walk)
        walk = np.where(np.isnan(walk) & np.isfinite(step) & np.isfinite(ct), ct > step, walk)
    walk[standing] = np.nan
    feet = out["foot"].to_numpy() if "foot" in out else np.full(n, "")
    for foot in np.unique(feet):  # two iterations: left and right
        rows = np.flatnonzero((feet == foot) & ~standing)
        # Nearest classified step of the same foot (forward, then backward fill).
        filled = pd.Series(walk[rows]).ffill().bfill().to_numpy()
        walk[rows] = filled
    gait = np.where(standing, "standing", np.where(walk == 1.0, "walking", "running"))
    out["gait"] = gait
    out["quality"] = quality
    if standing.any():
        for c in _TIMING + _KINETIC:
            if c in out:
                out.loc[standing, c] = np.nan
        for c in _KINETIC_TEXT:
            if c in out:
                out.loc[standing, c] = ""
        _drop_intervals_into_standing(out, standing)
    return out


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy(dtype=float) if name in df else np.full(len(df), np.nan)


def _drop_intervals_into_standing(out: pd.DataFrame, standing: np.ndarray) -> None:
    """Step, stride and flight times that end at a standing row's ``ic_s`` are not intervals between steps."""
    ic = out["ic_s"].to_numpy(dtype=float)
    stand_ic = ic[standing]
    if "stride_time_ms" in out:
        end = ic + out["stride_time_ms"].to_numpy(dtype=float) * 1e-3
        hit = np.isin(np.round(end, 9), np.round(stand_ic, 9))
        out.loc[hit, ["stride_time_ms", "duty_factor"]] = np.nan
    if "step_time_ms" in out:
        end = ic + out["step_time_ms"].to_numpy(dtype=float) * 1e-3
        hit = np.isin(np.round(end, 9), np.round(stand_ic, 9))
        out.loc[hit, [c for c in ("step_time_ms", "flight_time_ms", "cadence_spm") if c in out]] = np.nan


def summary_gait(steps: pd.DataFrame, gait: str = "auto") -> str:
    """The gait a summary covers: ``gait`` itself, or with "auto" running when the steps hold any "ok" running
    step, else walking.
    """
    if gait not in ("auto", "running", "walking", "all"):
        raise ValueError(f"gait must be auto, running, walking or all, got {gait!r}")
    if gait != "auto":
        return gait
    if "gait" not in steps:
        return "all"
    ok = steps["quality"] == QUALITY_OK if "quality" in steps else np.ones(len(steps), dtype=bool)
    return "running" if ((steps["gait"] == "running") & ok).any() else "walking"


def summary_rows(steps: pd.DataFrame, gait: str) -> np.ndarray:
    """Boolean mask of the steps a summary of ``gait`` (from :func:`summary_gait`) averages: quality "ok" and,
    unless "all", that gait (standing is never a step).
    """
    mask = np.ones(len(steps), dtype=bool)
    if "quality" in steps:
        mask &= (steps["quality"] == QUALITY_OK).to_numpy()
    if "gait" in steps:
        mask &= (steps["gait"] != "standing").to_numpy()
        if gait in ("running", "walking"):
            mask &= (steps["gait"] == gait).to_numpy()
    return mask
