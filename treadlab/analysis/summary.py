"""The summary of a step table: the dict that ``lab analyze --json`` prints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from treadlab.analysis.asymmetry import symmetry_angle, symmetry_index
from treadlab.analysis.gaitclass import GAITS, QUALITY_OK, QUALITY_VALUES, summary_gait, summary_rows
from treadlab.vocabulary import FEET, STRIKE_CLASSES, json_clean

__all__ = ["FEET", "SUMMARY_METRICS", "json_clean", "metric_stats", "summarize"]

SUMMARY_METRICS = (
    "strike_index_pct",
    "avlr_bw_s",
    "vilr_bw_s",
    "impact_peak_bw",
    "peak_force_bw",
    "impulse_bw_s",
    "contact_time_ms",
    "flight_time_ms",
    "step_time_ms",
    "stride_time_ms",
    "duty_factor",
)


def metric_stats(values) -> dict:
    """``{mean, sd, median, n}`` of the finite values (NaN statistics when there are none; sd needs two)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = int(len(v))
    return {
        "mean": float(v.mean()) if n else float("nan"),
        "sd": float(v.std(ddof=1)) if n > 1 else float("nan"),
        "median": float(np.median(v)) if n else float("nan"),
        "n": n,
    }


def summarize(steps: pd.DataFrame, *, duration_s: float, extra: dict | None = None, gait: str = "auto") -> dict:
    """Summary of a step table: means over the steps of quality "ok" of one gait.

    Parameters
    ----------
    steps : DataFrame
        One row per step with a ``foot`` column and the per-step metric columns.
    duration_s : float
        Length of the analysed window.
    extra : dict, optional
        Keys added at the top level (body weight, insole scale, file, segment...).
    gait : {"auto", "running", "walking", "all"}
        Which steps the means cover (:func:`~treadlab.analysis.gaitclass.summary_gait`): "auto" is running when
        there are running steps, else walking; "all" is walking and running together. Standing is never a step.

    Returns
    -------
    dict
        ``duration_s``, ``gait`` (the gait summarised), ``gaits`` (per gait: ``steps`` of quality "ok",
        ``duration_s`` (first to last contact), ``cadence_spm``; standing: ``periods``, ``duration_s`` and
        ``intervals_s``, the times either foot stood, merged),
        ``quality`` (rows per quality value), ``cadence_spm``, ``step_count``, ``feet.left``/``feet.right``
        (``steps``, ``strike_counts``, and ``{mean, sd, median, n}`` per metric), ``asymmetry_si_pct`` and
        ``asymmetry_sa_pct`` keyed by metric, plus ``extra``.
    """
    out: dict = {"duration_s": float(duration_s)}
    out.update(extra or {})
    chosen = summary_gait(steps, gait)
    out["gait"] = chosen
    out["gaits"] = _gaits(steps)
    q = steps["quality"].astype(str) if "quality" in steps else pd.Series(QUALITY_OK, index=steps.index)
    out["quality"] = {v: int((q == v).sum()) for v in QUALITY_VALUES}
    steps = steps[summary_rows(steps, chosen)]
    st = steps["step_time_ms"].to_numpy(dtype=float) if "step_time_ms" in steps else np.empty(0)
    st = st[np.isfinite(st)]
    out["cadence_spm"] = float(60000.0 / st.mean()) if len(st) else float("nan")
    out["step_count"] = int(len(steps))
    feet: dict = {}
    for foot in FEET:
        part = steps[steps["foot"] == foot] if len(steps) else steps
        classes = part["strike_class"].astype(str) if "strike_class" in part else pd.Series(dtype=str)
        d: dict = {"steps": int(len(part)),
                   "strike_counts": {c: int((classes == c).sum()) for c in STRIKE_CLASSES}}
        for m in SUMMARY_METRICS:
            d[m] = metric_stats(part[m] if m in part else [])
        feet[foot] = d
    out["feet"] = feet
    out["asymmetry_si_pct"] = {m: symmetry_index(feet["left"][m]["mean"], feet["right"][m]["mean"])
                               for m in SUMMARY_METRICS}
    out["asymmetry_sa_pct"] = {m: symmetry_angle(feet["left"][m]["mean"], feet["right"][m]["mean"])
                               for m in SUMMARY_METRICS}
    return out


def _union(start: np.ndarray, stop: np.ndarray) -> list[list[float]]:
    """Overlapping intervals merged (either foot standing), in time order."""
    out: list[list[float]] = []
    for a, b in sorted(zip(start.tolist(), stop.tolist())):  # one iteration per standing row (a few)
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _gaits(steps: pd.DataFrame) -> dict:
    """Per gait: steps of quality "ok", duration and cadence (standing: rows and their total stance time)."""
    out = {}
    for g in GAITS:
        part = steps[steps["gait"] == g] if "gait" in steps else steps.iloc[:0]
        if g == "standing":
            periods = _union(part["ic_s"].to_numpy(dtype=float), part["to_s"].to_numpy(dtype=float))
            out[g] = {"periods": len(periods), "duration_s": float(sum(b - a for a, b in periods)),
                      "intervals_s": periods}
            continue
        if "quality" in part:
            part = part[part["quality"] == QUALITY_OK]
        st = part["step_time_ms"].to_numpy(dtype=float) if "step_time_ms" in part else np.empty(0)
        st = st[np.isfinite(st)]
        out[g] = {"steps": int(len(part)),
                  "duration_s": float(part["to_s"].max() - part["ic_s"].min()) if len(part) else 0.0,
                  "cadence_spm": float(60000.0 / st.mean()) if len(st) else float("nan")}
    return out

