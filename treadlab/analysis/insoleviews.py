"""Views of the insoles for reports: the butterfly (COP of both feet in the treadmill's frame) and pressure maps
in bounded time for long sessions.

Insoles measure the COP in each foot's own frame; on a treadmill the foot is carried back by the belt during
contact. With the belt speed (the session's ``treadmill_speed_mps``) the COP is placed in the treadmill frame:

- forward = COP along the foot (from the heel) minus the belt travel since initial contact, with every heel
  landing at the same place (insoles cannot see where a foot lands: that needs the mat);
- right = for the right foot ``+step_width/2 + x``, for the left foot ``-(step_width/2 + x)`` (x lateral in the
  foot frame), with an assumed step width.

So the lanes' distance is assumed, the shapes along them are measured. With a mat, use
:func:`treadlab.analysis.matviews.cop_trace` instead (measured placement).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from treadlab.analysis.ragged import range_arange, sampled_runs

#: Lateral distance assumed between the feet's long axes when only insoles are present.
ASSUMED_STEP_WIDTH_MM = 100.0


def insole_cop_trace(signals: dict, steps: pd.DataFrame, speed_mps: float,
                     step_width_mm: float = ASSUMED_STEP_WIDTH_MM, max_points: int = 20000) -> pd.DataFrame:
    """COP of both insoles during each contact of ``steps``, in the treadmill frame.

    Parameters
    ----------
    signals : dict
        ``{foot: FootSignals}`` from the analysis (COP in the foot frame, read a group of steps at a time).
    steps : DataFrame
        Contacts to draw (``foot``, ``ic_s``, ``to_s``, ``first_sample``, ``stop_sample``).
    speed_mps : float
        Belt speed.
    step_width_mm : float
    max_points : int
        At most about this many points are returned (each foot's samples evenly thinned).

    Returns
    -------
    DataFrame
        ``time_s``, ``foot``, ``right_mm``, ``forward_mm`` (centred), one row per sample in contact, left foot
        first, with a NaN row after each contact so that plotted lines break there; empty without a belt speed
        or COP.
    """
    cols = {"time_s": [], "foot": [], "right_mm": [], "forward_mm": []}
    if not np.isfinite(speed_mps) or speed_mps <= 0:
        return pd.DataFrame(cols)
    parts = []
    for foot, side in (("left", -1.0), ("right", 1.0)):
        sig = signals.get(foot)
        part = steps[steps["foot"] == foot].sort_values("ic_s")
        if sig is None or not sig.has_cop or len(part) == 0 or "first_sample" not in part:
            continue
        ic, to = part["ic_s"].to_numpy(float), part["to_s"].to_numpy(float)
        first, stop = part["first_sample"].to_numpy(np.int64), part["stop_sample"].to_numpy(np.int64)
        thin = max(1, int(np.sum(stop - first)) // max(1, max_points // 2))
        chunks = []
        for sl, off, block in sig.iter_steps(first, stop):  # one iteration per group of steps (bounded memory)
            t = np.asarray(block["time_s"], dtype=float)
            idx, owner = range_arange(first[sl] - off, stop[sl] - off)
            k = owner + sl.start
            keep = (t[idx] >= ic[k]) & (t[idx] <= to[k]) & np.isfinite(block["cop_mm"][idx]).all(axis=1)
            idx, k = idx[keep], k[keep]
            chunks.append((t[idx], k, block["cop_mm"][idx].astype(float)))
        tt = np.concatenate([c[0] for c in chunks])[::thin]
        kk = np.concatenate([c[1] for c in chunks])[::thin]
        cop = np.concatenate([c[2] for c in chunks]).reshape(-1, 2)[::thin]
        if len(tt) == 0:
            continue
        forward = cop[:, 1] - speed_mps * 1e3 * (tt - ic[kk])
        right = side * (0.5 * step_width_mm + cop[:, 0])
        # A NaN row after each contact: lines break between contacts.
        last = np.r_[kk[1:] != kk[:-1], True]
        pos = np.flatnonzero(last) + 1
        parts.append(pd.DataFrame({
            "time_s": np.insert(tt, pos, tt[last]), "foot": foot,
            "right_mm": np.insert(right, pos, np.nan), "forward_mm": np.insert(forward, pos, np.nan)}))
    if not parts:
        return pd.DataFrame(cols)
    out = pd.concat(parts, ignore_index=True)  # foot by foot (in walking the feet overlap in time)
    if np.isfinite(out["forward_mm"]).any():
        out["forward_mm"] -= np.nanmean(np.nanpercentile(out["forward_mm"], [5, 95]))
    return out


#: Pressure maps of segments with more steps than this are computed from a sample of the steps (bounded time).
MAX_MAP_STEPS = 300
#: The sample is this many runs of consecutive steps, spread evenly over the segment (few contiguous reads).
MAP_RUNS_N = 12


def pressure_maps(ga, foot: str, max_steps: int = MAX_MAP_STEPS, runs_n: int = MAP_RUNS_N) -> dict:
    """Peak and mean value per sensel of ``foot`` over stance, as :meth:`GaitAnalysis.pressure_maps`, in bounded time.

    Up to ``max_steps`` steps this *is* ``ga.pressure_maps(foot)`` (every stance sample of the segment). Longer
    segments (a 60-minute run has about 5,000 steps per foot) use ``runs_n`` runs of consecutive steps spread
    evenly over the segment, ``max_steps`` steps in all: the mean map is then a sample mean and the peak the
    maximum over the sampled steps (can only be lower than over every step).

    Returns
    -------
    dict
        The keys of :meth:`GaitAnalysis.pressure_maps` plus ``sampled_steps`` (steps used).
    """
    sig = ga.signals[foot]
    part = ga.steps[ga.steps["foot"] == foot]
    if len(part) <= max_steps:
        return {**ga.pressure_maps(foot), "sampled_steps": int(len(part))}
    ins = sig.device
    first_sample = part["first_sample"].to_numpy(np.int64)
    stop_sample = part["stop_sample"].to_numpy(np.int64)
    peak = np.zeros(ins.n_values)
    total = np.zeros(ins.n_values)
    count = used = 0
    for i, j in sampled_runs(len(part), max_steps, runs_n):  # one iteration per run of consecutive steps
        a, b = int(first_sample[i]), int(stop_sample[j - 1])
        idx, _ = range_arange(first_sample[i:j] - a, stop_sample[i:j] - a)
        sel = ins.forces(a, b, rows=idx[idx < min(b, ins.n_samples) - a])  # the stance samples only
        if len(sel):
            np.maximum(peak, sel.max(axis=0), out=peak)
            total += sel.sum(axis=0, dtype=np.float64)
            count += len(sel)
            used += j - i
    factor = 1.0 / ins.sensel_force_factor if ins.unit == "kPa" else np.ones(ins.n_values)
    return {"peak": peak * factor, "mean": total / max(count, 1) * factor, "unit": ins.unit or "counts",
            "positions_mm": ins.positions_mm, "areas_mm2": ins.areas_mm2, "foot_length_mm": ins.foot_length_mm,
            "steps": int(len(part)), "sampled_steps": int(used)}
