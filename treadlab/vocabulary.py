"""The words and constants of gait analysis that every layer of treadlab shares, defined once.

Dependency-free (numpy only): the simulator (:mod:`treadlab.drivers.sim`), the analysis, the comparison and the
reports use the same feet, strike classes and bounds (with one rule for a missing strike index), metric labels,
standard gravity and JSON cleaning.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["FEET", "G_MPS2", "METRIC_LABELS", "STRIKE_BOUNDS_PCT", "STRIKE_CLASSES", "classify_strike",
           "json_clean", "metric_table_label"]

FEET = ("left", "right")

G_MPS2 = 9.80665
"""Standard gravity (m/s^2): body weight = body mass x G_MPS2, in the analysis and in the simulator."""

STRIKE_CLASSES = ("rearfoot", "midfoot", "forefoot")
#: Strike-index class boundaries in % of foot length (Cavanagh and Lafortune 1980).
STRIKE_BOUNDS_PCT = (100.0 / 3.0, 200.0 / 3.0)
#: The class of a step without a strike index (NaN): no class.
NO_STRIKE_CLASS = ""

#: Per-foot step metrics as reports and tables name them: column -> (label, unit, decimals).
METRIC_LABELS: dict[str, tuple[str, str, int]] = {
    "strike_index_pct": ("strike index", "% foot length", 0),
    "vilr_bw_s": ("VILR", "BW/s", 0),
    "avlr_bw_s": ("AVLR", "BW/s", 0),
    "impact_peak_bw": ("impact peak", "BW", 2),
    "peak_force_bw": ("peak force", "BW", 2),
    "contact_time_ms": ("contact time", "ms", 0),
    "flight_time_ms": ("flight time", "ms", 0),
    "step_time_ms": ("step time", "ms", 0),
}


def metric_table_label(metric: str) -> str:
    """A metric's short label with its unit symbol, for table headers: "strike index (%)", "VILR (BW/s)"."""
    label, unit, _ = METRIC_LABELS[metric]
    return f"{label} ({unit.split()[0]})"


def classify_strike(strike_index_pct) -> np.ndarray:
    """Class names of strike indices: rearfoot below 33.3 %, midfoot to 66.7 %, forefoot above.

    Values outside 0-100 are classed by the nearest class; NaN gets :data:`NO_STRIKE_CLASS` (``""``).
    """
    si = np.asarray(strike_index_pct, dtype=float)
    cls = np.array(STRIKE_CLASSES, dtype=object)[np.digitize(np.nan_to_num(si), STRIKE_BOUNDS_PCT)]
    return np.where(np.isfinite(si), cls, NO_STRIKE_CLASS)


def json_clean(obj):
    """A copy of ``obj`` that ``json.dumps`` accepts: numpy scalars to Python, NaN and inf to None."""
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [json_clean(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    return obj
