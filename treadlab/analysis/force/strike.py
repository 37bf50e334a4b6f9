"""Strike index from a force plate under a moving belt, without markers.

The stance foot moves with the belt, so the centre of pressure in belt coordinates,
``x_b(t) = COP_forward(t) + integral of v dt`` (belt speed ``v``, the belt running backwards), is the COP's position
along the foot up to a constant. The COP is trusted only where the low-passed vertical force is at least 10 % of
body weight (``gate_bw``); two instants of each stance are used:

- the **gate**: the first sample of stance with a trusted COP (the COP at initial contact, as near to it as the
  force allows);
- the **anchor**: the first sample after the force peak where the force falls to ``anchor_bw`` (50 %) of body
  weight. The heel is off the belt then and the foot pushes off over the metatarsal heads and the toes.

The heel lies ``anchor_frac`` x foot length behind the anchor, so the strike index, in % of foot length from the
heel (Cavanagh and Lafortune 1980), is ``SI = 100 (anchor_frac + (x_b(gate) - x_b(anchor)) / foot_length)``.
``anchor_frac`` = 0.82 and its sources are in ``docs/analysis.md`` ("Force plates"). Flags (``strike_flag``):
"gate_not_reached" (the force never reached the gate), "no_anchor" (it never fell back to ``anchor_bw`` after
its peak), "outside_-20_130" (an SI outside -20..130 %, kept, not clamped).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from treadlab.analysis.ragged import first_true, range_argmax
from treadlab.vocabulary import classify_strike

__all__ = ["ANCHOR_FRAC", "ForceStrikeIndex"]

#: Where the late-stance (50 % BW) centre of pressure lies, from the heel, in foot lengths (docs/analysis.md).
ANCHOR_FRAC = 0.82


class ForceStrikeIndex:
    """Strike index of every contact on one belt.

    Parameters
    ----------
    foot_length_mm : float or None
        Foot length; None: the session's (``foot_length_mm`` attribute of the file or the force device).
    cutoff_hz : float
        Zero-lag low-pass (2nd order) of force and moments before the COP.
    gate_bw : float
        COP only where the low-passed vertical force is at least this fraction of body weight.
    anchor_bw : float
        The anchor: where the force falls to this fraction of body weight after its peak.
    anchor_frac : float
        Distance from the heel to the COP at the anchor, in foot lengths.
    si_range_pct : tuple of float
        Strike indices outside are flagged.

    Attributes
    ----------
    table_ : DataFrame
        ``strike_index_pct``, ``strike_class``, ``strike_flag``, ``cop_gate_s``, ``cop_anchor_s``,
        ``belt_travel_mm`` (belt movement from gate to anchor).
    """

    def __init__(self, foot_length_mm: float | None = None, cutoff_hz: float = 20.0, gate_bw: float = 0.10,
                 anchor_bw: float = 0.50, anchor_frac: float = ANCHOR_FRAC,
                 si_range_pct: tuple[float, float] = (-20.0, 130.0)):
        self.foot_length_mm = foot_length_mm
        self.cutoff_hz = cutoff_hz
        self.gate_bw = gate_bw
        self.anchor_bw = anchor_bw
        self.anchor_frac = anchor_frac
        self.si_range_pct = si_range_pct

    def compute(self, time_s: np.ndarray, fz_n: np.ndarray, cop_fwd_mm: np.ndarray, belt_mm: np.ndarray,
                first: np.ndarray, stop: np.ndarray, bw_n: float, foot_length_mm: float) -> ForceStrikeIndex:
        """Strike index of the contacts ``[first, stop)``.

        Parameters
        ----------
        time_s : ndarray
        fz_n : ndarray
            Low-passed vertical force (N), the one the COP was computed from.
        cop_fwd_mm : ndarray
            Forward COP (mm), NaN where not trusted (below the gate).
        belt_mm : ndarray
            Cumulative belt travel (mm) at every sample (``cumulative integral of v dt``).
        first, stop : ndarray of int
        bw_n : float
            Body weight (N): the gate and the anchor are fractions of it.
        foot_length_mm : float
        """
        t = np.asarray(time_s, np.float64)
        f = np.asarray(fz_n, np.float64)
        cop = np.asarray(cop_fwd_mm, np.float64)
        k = len(first)
        gate = first_true(np.isfinite(cop) & (f >= self.gate_bw * bw_n), first, stop)
        peak = range_argmax(f, first, stop)
        anchor = first_true(f <= self.anchor_bw * bw_n, np.maximum(peak, first), stop)
        anchor = np.where(peak >= 0, anchor, -1)
        has_gate = gate >= 0
        has_anchor = has_gate & (anchor > gate) & (f[np.clip(peak, 0, None)] > self.anchor_bw * bw_n)
        g = np.clip(gate, 0, None)
        a = np.clip(anchor, 0, None)
        cop_a = cop[a]
        # The anchor sample itself sits at <= anchor_bw and so above the gate: its COP is trusted.
        delta = (cop[g] + belt_mm[g]) - (cop_a + belt_mm[a])
        with np.errstate(invalid="ignore"):
            si = np.where(has_anchor, 100.0 * (self.anchor_frac + delta / foot_length_mm), np.nan)
        lo, hi = self.si_range_pct
        flag = np.where(~has_gate, "gate_not_reached", np.where(~has_anchor, "no_anchor", ""))
        with np.errstate(invalid="ignore"):
            flag = np.where((flag == "") & ((si < lo) | (si > hi)), f"outside_{lo:g}_{hi:g}", flag)
        self.table_ = pd.DataFrame({
            "strike_index_pct": si,
            "strike_class": classify_strike(si),
            "strike_flag": flag.astype(object) if k else np.empty(0, dtype=object),
            "cop_gate_s": np.where(has_gate, t[g], np.nan),
            "cop_anchor_s": np.where(has_anchor, t[a], np.nan),
            "belt_travel_mm": np.where(has_anchor, belt_mm[a] - belt_mm[g], np.nan),
        })
        return self
