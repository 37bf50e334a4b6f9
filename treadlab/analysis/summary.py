"""The summary of a step table: the dict that ``lab analyze --json`` prints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from treadlab.analysis.asymmetry import symmetry_angle, symmetry_index
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


def summarize(steps: pd.DataFrame, *, duration_s: float, extra: dict | None = None) -> dict:
    """Summary of a step table.

    Parameters
    ----------
    steps : DataFrame
        One row per step with a ``foot`` column and the per-step metric columns.
    duration_s : float
        Length of the analysed window.
    extra : dict, optional
        Keys added at the top level (body weight, insole scale, file, segment...).

    Returns
    -------
    dict
        ``duration_s``, ``cadence_spm``, ``step_count``, ``feet.left``/``feet.right`` (``steps``,
        ``strike_counts``, and ``{mean, sd, median, n}`` per metric), ``asymmetry_si_pct`` and
        ``asymmetry_sa_pct`` keyed by metric, plus ``extra``.
    """
    out: dict = {"duration_s": float(duration_s)}
    out.update(extra or {})
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
