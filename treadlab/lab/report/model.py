"""What a report shows, as plain data: filled from :mod:`treadlab.analysis` by :mod:`.collect`, drawn by
:mod:`.html`. Keeping this separate lets the figures and the page be tested on any data, and keeps every number
traceable to the analysis output it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class FootView:
    """Per-step arrays and pressure maps of one foot (any may be None when the rig lacks the sensor).

    Attributes
    ----------
    curves_bw : ndarray, shape (n_steps, k)
        Vertical force per step in BW on a stance-normalised axis.
    cop_mm : ndarray, shape (n_steps, k, 2)
        COP path per step in the foot frame (x lateral, y from the heel), NaN where undefined.
    positions_mm, areas_mm2 : ndarray
        Sensel layout of the insole.
    peak_kpa, mean_kpa : ndarray, shape (sensels,)
        Peak and mean pressure per sensel over the steps.
    outline_mm : ndarray, shape (m, 2)
        Foot outline in the foot frame.
    touchdown_y_mm : float or None
        Mean strike position along the foot (mean strike index x foot length / 100), mm from the heel.
    map_steps : (int, int)
        Steps the pressure maps were computed from, and steps in the segment.
    """

    curves_bw: np.ndarray | None = None
    cop_mm: np.ndarray | None = None
    positions_mm: np.ndarray | None = None
    areas_mm2: np.ndarray | None = None
    peak_kpa: np.ndarray | None = None
    mean_kpa: np.ndarray | None = None
    outline_mm: np.ndarray | None = None
    map_steps: tuple[int, int] = (0, 0)
    touchdown_y_mm: float | None = None


@dataclass
class SessionView:
    """One analysed session (or a segment of it).

    Attributes
    ----------
    source : str
        File name, with the segment (``FILE:MARK1..MARK2``) when one was chosen.
    meta : dict
        ``participant``, ``condition``, ``date``, ``treadmill_speed_mps``, ``shoe``, ``body_mass_kg``,
        ``duration_s``, ``devices`` (list of str).
    quality : dict
        ``lost_samples``, ``gaps``, ``crc_errors`` (ints or None) and ``clock`` (text).
    summary : dict
        The analysis summary, as ``lab analyze --json`` prints it.
    steps : DataFrame
        The step table.
    feet : dict of str to FootView
    footprints_kpa : dict or None
        Mean footprint of each foot on the mat, ``{foot: (L, W)}``, heel side at row 0.
    footprint_steps : list of (int, int)
        Steps used for the mean footprints (sampled, of all) per foot.
    pitch_mm : float
        Mat sensel pitch.
    butterfly_mm : dict or None
        COP over time in the treadmill frame, ``{"both": (k, 2)}`` from the mat or ``{foot: (k, 2)}`` from
        the insoles; x to the right, y forward.
    butterfly_note : str
        How it was made (shown in the caption).
    markers : list of (float, str)
    retraining : dict or None
        The retraining section (:func:`treadlab.lab.report.retraining.retraining_doc`) of a feedback session.
    pelvis_obliquity_deg : dict or None
        Mean pelvic obliquity over the stride per stance side, ``{foot: (k,)}`` (or ``(strides, k)``), 0-100 % of
        the stride from that foot's initial contact, relative to standing (a pelvis IMU).
    """

    source: str
    meta: dict
    quality: dict
    summary: dict
    steps: pd.DataFrame
    feet: dict[str, FootView] = field(default_factory=dict)
    footprints_kpa: dict[str, np.ndarray] | None = None
    footprint_steps: list[tuple[int, int]] = field(default_factory=list)
    pitch_mm: float = 1.0
    butterfly_mm: dict[str, np.ndarray] | None = None
    butterfly_note: str = ""
    markers: list[tuple[float, str]] = field(default_factory=list)
    retraining: dict | None = None
    pelvis_obliquity_deg: dict[str, np.ndarray] | None = None

    def foot(self, side: str) -> FootView:
        """The :class:`FootView` of ``side`` (an empty one when absent)."""
        return self.feet.get(side) or FootView()

    def step_values(self, side: str, column: str) -> np.ndarray:
        """One step-table column for one foot (empty when absent)."""
        if column not in self.steps or "foot" not in self.steps:
            return np.empty(0)
        return self.steps.loc[self.steps["foot"] == side, column].to_numpy(dtype=float)
