"""The words and constants of gait analysis that every layer of treadlab shares, defined once.

Dependency-free (numpy only): the simulator (:mod:`treadlab.drivers.sim`), the analysis, the comparison and the
reports use the same feet, strike classes and bounds (with one rule for a missing strike index), metric labels,
standard gravity and JSON cleaning.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["FEET", "G_MPS2", "IMU_METRIC_LABELS", "METRIC_LABELS", "PELVIS_STRIDE_LABELS", "STRIKE_BOUNDS_PCT",
           "STRIKE_CLASSES", "classify_strike", "json_clean", "metric_table_label"]

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


# ------------------------------------------------------------------------------------------------ IMU metrics

#: Per-step metrics of the inertial sensors (pelvis, trunk, tibiae; issue 14), steps-table columns and
#: ``feet.<side>.<metric>`` in the summary: column -> (label, unit, decimals). Their left-right asymmetry is a
#: difference (R - L, in the metric's unit), not a symmetry index: a pelvic drop of 1 and 3 degrees is not "100 %".
IMU_METRIC_LABELS: dict[str, tuple[str, str, int]] = {
    "pelvic_drop_deg": ("pelvic drop", "deg", 1),
    "trunk_lean_deg": ("trunk lean", "deg", 1),
    "vertical_oscillation_mm": ("vertical oscillation", "mm", 0),
    "pta_g": ("peak tibial acceleration", "g", 1),
    "ppa_g": ("peak pelvis acceleration", "g", 1),
    "shock_attenuation_pct": ("shock attenuation", "%", 0),
}

#: Per-stride pelvis metrics of the summary (``pelvis.<key>``: mean, sd, n over strides): key -> (label, unit,
#: decimals).
PELVIS_STRIDE_LABELS: dict[str, tuple[str, str, int]] = {
    "rotation_range_deg": ("pelvic rotation range", "deg", 1),
    "tilt_mean_deg": ("pelvic tilt, mean", "deg", 1),
    "tilt_range_deg": ("pelvic tilt range", "deg", 1),
}
