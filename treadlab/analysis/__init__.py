"""Gait analysis from session files. Never imports drivers: it reads files through its own reader.

Public API (``docs/analysis.md``): :func:`read_session`, :func:`analyze` and the :class:`GaitAnalysis` it returns,
the algorithm objects :class:`ContactDetection`, :class:`LoadingRates`, :class:`StrikeIndex`,
:class:`MatAnalysis`, and the plain functions :func:`symmetry_index`, :func:`symmetry_angle`,
:func:`classify_strike`, :func:`add_timing`, :func:`summarize`.
"""

from __future__ import annotations

from treadlab.analysis import force, force_export, imu_reader  # noqa: F401 - kinds register sources, readers, C3D
from treadlab.analysis.api import FootSignals, GaitAnalysis, InsoleScaleWarning, analyze
from treadlab.analysis.asymmetry import symmetry_angle, symmetry_index
from treadlab.analysis.contacts import ContactDetection
from treadlab.analysis.force_reader import ForceData, ForcePlate  # registers the "force" reader
from treadlab.analysis.imu import session as _imu_session  # noqa: F401 - the IMU enricher and source "imu"
from treadlab.analysis.mat import MatAnalysis, match_steps
from treadlab.analysis.metrics import LoadingRates, lowpass, stance_curves
from treadlab.analysis.segments import Segment, resolve_segment
from treadlab.analysis.session import (
    G_MPS2,
    DeviceData,
    InsoleData,
    MatData,
    Session,
    StreamData,
    read_session,
    register_reader,
)
from treadlab.analysis.strike import STRIKE_BOUNDS_PCT, STRIKE_CLASSES, StrikeIndex, classify_strike
from treadlab.analysis.summary import SUMMARY_METRICS, json_clean, summarize
from treadlab.analysis.timing import add_timing

__all__ = [
    "G_MPS2", "STRIKE_BOUNDS_PCT", "STRIKE_CLASSES", "SUMMARY_METRICS",
    "ContactDetection", "DeviceData", "FootSignals", "GaitAnalysis", "InsoleData", "InsoleScaleWarning",
    "LoadingRates", "StreamData", "register_reader", "ForceData", "ForcePlate",
    "MatAnalysis", "MatData", "Segment", "Session", "StrikeIndex",
    "add_timing", "analyze", "classify_strike", "json_clean", "lowpass", "match_steps", "read_session",
    "resolve_segment", "stance_curves", "summarize", "symmetry_angle", "symmetry_index",
]
