"""Live step metrics from the ring buffers, computed with the analysis package's own functions.

Every poll (a few per second) re-runs contact detection and the loading-rate computation on the last few
seconds of each foot's total force; steps that finished since the last poll are added to a short history per
foot. Cadence, strike class of the last steps, VILR per foot and the running asymmetry are read from that
history. Nothing here re-implements the maths: contacts come from
:class:`treadlab.analysis.contacts.ContactDetection`, loading rates from
:class:`treadlab.analysis.metrics.LoadingRates`, the strike index from
:class:`treadlab.analysis.strike.StrikeIndex` and the symmetry index from :mod:`treadlab.analysis.asymmetry`.
"""

from __future__ import annotations

import warnings
from collections import deque

import numpy as np
import pandas as pd

from treadlab.analysis.asymmetry import symmetry_index
from treadlab.analysis.contacts import ContactDetection
from treadlab.analysis.metrics import LoadingRates, lowpass
from treadlab.analysis.session import G_MPS2
from treadlab.analysis.strike import StrikeIndex

_SHORT = {"rearfoot": "R", "midfoot": "M", "forefoot": "F"}


class LiveStepMetrics:
    """History of the most recent steps of each foot.

    Parameters
    ----------
    body_mass_kg : float
        Converts force to body weights (BW) for VILR.
    history_n : int
        Steps kept per foot (running asymmetry and cadence use them).
    shown_n : int
        Strike classes shown per foot.
    filter_cutoff_hz : float
        Low-pass applied before the loading rate, as in the offline analysis.

    Attributes
    ----------
    steps_ : dict of str to deque of dict
        Per foot, newest last: ``ic_s``, ``to_s``, ``vilr_bw_s``, ``strike_index_pct``, ``strike_class``,
        ``contact_ms``.
    new_steps_n_ : int
        Steps added by the last :meth:`update`.
    """

    def __init__(self, body_mass_kg: float = 70.0, history_n: int = 20, shown_n: int = 5,
                 filter_cutoff_hz: float = 50.0) -> None:
        self.body_mass_kg = body_mass_kg
        self.history_n = history_n
        self.shown_n = shown_n
        self.filter_cutoff_hz = filter_cutoff_hz
        self.steps_: dict[str, deque] = {"left": deque(maxlen=history_n), "right": deque(maxlen=history_n)}
        self.new_steps_n_ = 0

    def reset(self, body_mass_kg: float | None = None) -> None:
        """Forget the history (new participant or new capture)."""
        if body_mass_kg is not None:
            self.body_mass_kg = body_mass_kg
        for d in self.steps_.values():
            d.clear()

    def update(self, side: str, time_s: np.ndarray, total_n: np.ndarray, moment_y_nmm: np.ndarray | None,
               foot_length_mm: float) -> int:
        """Add the steps of ``side`` that ended inside the window and are not in the history yet.

        Parameters
        ----------
        side : str
            ``"left"`` or ``"right"``.
        time_s, total_n : ndarray, shape (n,)
            The last seconds of the foot's total force on the session clock.
        moment_y_nmm : ndarray, shape (n,) or None
            Sum of sensel force times position along the foot (N mm), for the strike index.
        foot_length_mm : float
            Insole length for the strike index.

        Returns
        -------
        int
            Number of new steps.
        """
        t = np.asarray(time_s, dtype=np.float64)
        f = np.asarray(total_n, dtype=np.float64)
        if len(t) < 32:
            return 0
        det = ContactDetection().detect(t, f)
        c = det.contacts_
        # Only complete steps: stance ended before the window's end, started after its beginning.
        done = c[(c["stop"] < len(t) - 1) & (c["first"] > 0)]
        hist = self.steps_[side]
        last_ic = hist[-1]["ic_s"] if hist else -np.inf
        new = done[done["ic_s"] > last_ic + 0.05]
        if new.empty:
            return 0
        first = new["first"].to_numpy(np.int64)
        stop = new["stop"].to_numpy(np.int64)
        ic = new["ic_s"].to_numpy()
        to = new["to_s"].to_numpy()
        force_bw = lowpass(t, f, self.filter_cutoff_hz) / (self.body_mass_kg * G_MPS2)
        rates = LoadingRates().compute(t, force_bw, first, stop, ic, to)
        strike = np.full(len(first), np.nan)
        classes = np.full(len(first), "", dtype=object)
        if moment_y_nmm is not None and foot_length_mm > 0:
            tab = StrikeIndex().compute(t, f, np.asarray(moment_y_nmm, np.float64), foot_length_mm, first, stop,
                                        ic).table_
            strike = tab["strike_index_pct"].to_numpy()
            classes = tab["strike_class"].to_numpy()
        for i in range(len(first)):  # once per new step (a few per second), never per sample
            hist.append({"ic_s": float(ic[i]), "to_s": float(to[i]), "vilr_bw_s": float(rates.vilr_bw_s_[i]),
                         "strike_index_pct": float(strike[i]), "strike_class": str(classes[i]),
                         "contact_ms": float((to[i] - ic[i]) * 1e3)})
        self.new_steps_n_ = len(first)
        return len(first)

    def table(self, side: str) -> pd.DataFrame:
        """The history of one foot as a step table (the analysis' column names)."""
        return pd.DataFrame(list(self.steps_[side]),
                            columns=["ic_s", "to_s", "vilr_bw_s", "strike_index_pct", "strike_class", "contact_ms"])

    def cadence_spm(self) -> float:
        """Steps per minute from the initial contacts of both feet in the history (NaN with fewer than 3)."""
        ics = np.sort(np.concatenate([self.table(s)["ic_s"].to_numpy() for s in ("left", "right")]))
        if len(ics) < 3:
            return float("nan")
        ics = ics[-min(len(ics), 12):]
        return float(60.0 * (len(ics) - 1) / (ics[-1] - ics[0]))

    def texts(self) -> dict[str, str]:
        """Formatted values for :class:`~treadlab.lab.gui.live_views.MetricsView`."""
        out: dict[str, str] = {}
        cad = self.cadence_spm()
        out["cadence"] = "–" if not np.isfinite(cad) else f"{cad:.0f} steps/min"
        tables = {s: self.table(s) for s in ("left", "right")}
        out["steps"] = f"L {len(tables['left'])}  R {len(tables['right'])}"
        for side, tab in tables.items():
            if tab.empty:
                continue
            classes = tab["strike_class"].tail(self.shown_n)
            si = tab["strike_index_pct"].iloc[-1]
            last = f" ({si:.0f} %)" if np.isfinite(si) else ""
            out[f"strike_{side}"] = " ".join(_SHORT.get(c, "?") for c in classes) + last
            vilr = tab["vilr_bw_s"].iloc[-1]
            out[f"vilr_{side}"] = "–" if not np.isfinite(vilr) else f"{vilr:.0f} BW/s"
        si = sc = float("nan")
        if not (tables["left"].empty or tables["right"].empty):
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # mean of an all-NaN column is NaN, as meant
                means = {s: tab[["vilr_bw_s", "contact_ms"]].mean(skipna=True) for s, tab in tables.items()}
            si = symmetry_index(means["left"]["vilr_bw_s"], means["right"]["vilr_bw_s"])
            sc = symmetry_index(means["left"]["contact_ms"], means["right"]["contact_ms"])
        if np.isfinite(si) or np.isfinite(sc):
            out["asymmetry"] = f"VILR {si:+.1f} %, contact {sc:+.1f} %"
        return out


class ToeOffTrigger:
    """Says when a foot has just left the ground, so the step analysis runs once per step, not on every poll.

    Parameters
    ----------
    min_level_n : float
        The contact level is 30 % of the window's peak force, at least this.

    Attributes
    ----------
    checked_s_ : float
        Time of the newest sample already looked at.
    in_contact_ : bool
        A sample above the contact level was seen since the last toe-off.
    """

    def __init__(self, min_level_n: float = 50.0) -> None:
        self.min_level_n = min_level_n
        self.checked_s_ = -np.inf
        self.in_contact_ = False

    def reset(self) -> None:
        """Forget the past (new time base)."""
        self.checked_s_ = -np.inf
        self.in_contact_ = False

    def due(self, time_s: np.ndarray, total_n: np.ndarray) -> bool:
        """True once after each toe-off: the new samples went above the contact level and the newest is below."""
        if len(time_s) == 0:
            return False
        level = max(self.min_level_n, 0.3 * float(np.max(total_n)))
        new = time_s > self.checked_s_
        self.checked_s_ = float(time_s[-1])
        if np.any(total_n[new] > level):
            self.in_contact_ = True
        if self.in_contact_ and total_n[-1] < level:
            self.in_contact_ = False
            return True
        return False
