"""Step events as the samples arrive: initial contact, the metrics known at contact, after loading, at toe-off.

:class:`OnlineSteps` follows one foot's total force and moment sample batch by sample batch (a live capture).
Nothing here redefines a metric: every few seconds the foot's recent signal goes through the offline
:class:`~treadlab.analysis.contacts.ContactDetection` (its loading amplitude, baseline and edge levels, and the lag
between a step's crossing of the high edge level and its initial contact as the offline analysis places it); live,
initial contact is the crossing of that same level minus that lag. The per-step metrics are computed by the
offline classes on the buffered samples as soon as they are defined:

- at contact + ``strike_window_ms`` (15 ms): the strike index (:class:`~treadlab.analysis.strike.StrikeIndex`,
  COP at initial contact fitted over that window; 20 ms offline) and the cadence (60 / the time since the other
  foot's last contact: the cadence of the step that just ended, as :func:`~treadlab.analysis.timing.add_timing`
  defines it);
- at contact + ``loading_eval_ms`` (60 ms): impact peak, AVLR and VILR
  (:class:`~treadlab.analysis.metrics.LoadingRates` on the low-passed force with the analysis' automatic cutoff;
  the step's contact time is the foot's recent median until toe-off);
- at toe-off: the contact time.

Vectorised over the samples of a batch; Python runs once per crossing (a few per second), never per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from treadlab.analysis.contacts import ContactDetection, _crossing_time
from treadlab.analysis.insolepass import AVLR_CUTOFF_FACTOR, RELATIVE_SLOPE_NOISE
from treadlab.analysis.metrics import LoadingRates, auto_cutoff_hz, lowpass
from treadlab.analysis.strike import StrikeIndex, classify_strike

__all__ = ["CONTACT_METRICS", "LOADING_METRICS", "METRIC_STAGE", "TOEOFF_METRICS", "OnlineSteps", "StepEvent"]

#: Metrics known at contact + the strike window, after the loading phase, and at toe-off.
CONTACT_METRICS = ("strike_index_pct", "cadence_spm")
LOADING_METRICS = ("vilr_bw_s", "avlr_bw_s", "impact_peak_bw")
TOEOFF_METRICS = ("contact_time_ms",)
METRIC_STAGE = {**dict.fromkeys(CONTACT_METRICS, "contact"), **dict.fromkeys(LOADING_METRICS, "loading"),
                **dict.fromkeys(TOEOFF_METRICS, "toeoff")}


@dataclass
class StepEvent:
    """One stage of one step of one foot.

    Attributes
    ----------
    foot : str
    ic_s : float
        Live estimate of initial contact (session s).
    stage : {"contact", "loading", "toeoff"}
    values : dict of str to float
        The metrics this stage defines (see :data:`METRIC_STAGE`).
    data_s : float
        Time of the newest sample used (the metric could not be known earlier).
    step_n : int
        The foot's step count (0 for its first step).
    """

    foot: str
    ic_s: float
    stage: str
    values: dict = field(default_factory=dict)
    data_s: float = float("nan")
    step_n: int = 0


class OnlineSteps:
    """Step events of one foot from its samples as they arrive.

    Parameters
    ----------
    foot : {"left", "right"}
    foot_length_mm : float
    norm_n : float
        Force of 1 BW (body weight), for the loading rates.
    buffer_s : float
        Seconds of signal kept (for the calibration runs of :class:`ContactDetection`).
    calibrate_every_s : float
        Period of the calibration runs (made just after a contact's strike index, when the foot's own next
        event is furthest away; the other foot is in mid-swing).
    cutoff_every_s : float
        Period of the automatic filter cutoff's update (the costly part of a calibration).
    strike_window_ms, loading_eval_ms : float
        When the contact and the loading metrics are evaluated, after the live initial contact.
    contact : ContactDetection, optional
        The detection parameters (the offline defaults).
    stages : set of str, optional
        The stages whose metrics are computed (default all). A contact event is always given (its values empty
        when "contact" is not among them); the loading and toe-off events only when asked for. The work of a
        metric nobody uses (two filters per step for the loading rates) is not done in the path of a cue.
    other : OnlineSteps, optional
        The other foot, for the cadence (set by :meth:`pair`).

    Attributes
    ----------
    ready_ : bool
        Calibrated (at least ``buffer_s`` / 2 of signal with 3 contacts seen offline).
    steps_n_ : int
        Contacts seen live.
    last_ic_s_ : float
    """

    def __init__(self, foot: str, foot_length_mm: float, norm_n: float, buffer_s: float = 8.0,
                 calibrate_every_s: float = 2.0, cutoff_every_s: float = 30.0, strike_window_ms: float = 15.0,
                 loading_eval_ms: float = 60.0,
                 contact: ContactDetection | None = None, stages: set[str] | None = None) -> None:
        self.foot = foot
        self.foot_length_mm = float(foot_length_mm)
        self.norm_n = float(norm_n)
        self.buffer_s = buffer_s
        self.calibrate_every_s = calibrate_every_s
        self.cutoff_every_s = cutoff_every_s
        self._cutoff_at = -np.inf
        self.strike_window_ms = strike_window_ms
        self.loading_eval_ms = loading_eval_ms
        self.contact = contact or ContactDetection()
        self.stages = {"contact", "loading", "toeoff"} if stages is None else set(stages)
        self.strike = StrikeIndex(window_ms=strike_window_ms)
        self.loading = LoadingRates()
        self.other: OnlineSteps | None = None
        #: ``calibrator(foot, t, f, with_cutoff)`` runs calibrations elsewhere (a thread of its own, which then
        #: calls :meth:`apply`); None: in :meth:`feed`, inline.
        self.calibrator = None
        self._cal: dict = {}
        self._buf = np.empty((3, 0))  # time, force, moment; rows [_a, _n) are the signal kept
        self._a = self._n = 0
        self.ready_ = False
        self.steps_n_ = 0
        self.last_ic_s_ = -np.inf
        self._calibrated_at = -np.inf
        self._in_contact = False
        self._last_to_s = -np.inf
        self._pending: list[tuple[float, str, float, int]] = []  # (due_s, stage, ic_s, step_n)
        self._xc_prev = 0.0
        self._contact_ms: dict[int, float] = {}

    @staticmethod
    def pair(left: OnlineSteps, right: OnlineSteps) -> None:
        """Link the two feet (cadence needs the other foot's last contact)."""
        left.other, right.other = right, left

    # ------------------------------------------------------------------ calibration (the offline detector)

    def calibration(self, t: np.ndarray, f: np.ndarray, with_cutoff: bool) -> dict | None:
        """The detection parameters from a stretch of signal (no state is changed: any thread may call it).

        Returns None when the stretch has fewer than 3 usable contacts.
        """
        det = ContactDetection(**{k: v for k, v in vars(self.contact).items() if not k.endswith("_")}).detect(t, f)
        c = det.contacts_
        if len(c) < 3 or not det.amplitude_ > 0:
            return None
        xc = det.corrected_  # unsmoothed: live, a smoothing filter would lag at the newest samples
        high = min(det.edge_ratio * det.low_level_, det.on_frac * det.amplitude_)
        off = det.off_frac * det.amplitude_
        first = c["first"].to_numpy(np.int64)
        stop = c["stop"].to_numpy(np.int64)
        ic = c["ic_s"].to_numpy()
        to = c["to_s"].to_numpy()
        t_hi = np.array([self._up_time(t, xc, a, b, high) for a, b in zip(first, stop)])  # once per contact
        t_off = np.array([self._down_time(t, xc, a, b, off) for a, b in zip(first, stop)])
        ok = np.isfinite(t_hi) & np.isfinite(t_off)
        if ok.sum() < 3:
            return None
        rate_hz = 1.0 / float(np.median(np.diff(t)))
        cal = {"high": float(high), "off": float(off), "base": float(det.baseline_[-1]),
               "lead_s": float(np.median(t_hi[ok] - ic[ok])), "lag_to_s": float(np.median(to[ok] - t_off[ok])),
               "contact_s": float(np.median(to - ic)), "xc_last": float(xc[-1]), "cutoff_hz": None}
        if with_cutoff:
            # The analysis' automatic cutoff (FootPass.auto_cutoff): a first cutoff from the swing noise, then the
            # highest one whose slope noise is RELATIVE_SLOPE_NOISE of the foot's median VILR.
            window_s = max(1, int(round(self.loading.vilr_interval_ms * 1e-3 * rate_hz))) / rate_hz
            fc0 = auto_cutoff_hz(rate_hz, det.raw_noise_ / self.norm_n, window_s=window_s)
            f0 = lowpass(t, det.corrected_, fc0) / self.norm_n
            v0 = LoadingRates().compute(t, f0, first, stop, ic, to).vilr_bw_s_
            if np.isfinite(v0).any():
                frac = RELATIVE_SLOPE_NOISE * max(1.0, window_s / 2e-3) ** 0.7
                fc0 = auto_cutoff_hz(rate_hz, det.raw_noise_ / self.norm_n,
                                     max(frac * float(np.nanmedian(v0)), 0.5), window_s)
            cal["cutoff_hz"] = fc0
        return cal

    def apply(self, cal: dict | None) -> None:
        """Use new detection parameters (from :meth:`calibration`; one reference swap, safe between threads)."""
        if cal is None:
            return
        if cal["cutoff_hz"] is None:
            cal = {**cal, "cutoff_hz": self._cal["cutoff_hz"]}
        if not self.ready_:
            # state at the end of the stretch: inside a contact when the newest excess is above `off`
            self._in_contact = cal["xc_last"] > cal["off"]
            self._xc_prev = cal["xc_last"]
        self._cal = cal
        self.ready_ = True

    def _calibrate(self) -> None:
        t_last = float(self._t[-1])
        # also until a calibration has given a cutoff (the first may fail: a session starting with standing)
        with_cutoff = t_last - self._cutoff_at >= self.cutoff_every_s or self._cal.get("cutoff_hz") is None
        if with_cutoff:
            self._cutoff_at = t_last
        if self.calibrator is not None and self.ready_:
            self.calibrator(self, self._t.copy(), self._f.copy(), with_cutoff)
        else:
            self.apply(self.calibration(self._t, self._f, with_cutoff))

    @staticmethod
    def _up_time(t, xc, a, b, level) -> float:
        i = a + int(np.argmax(xc[a:b] >= level)) if b > a and np.any(xc[a:b] >= level) else -1
        return float(_crossing_time(t, xc, np.array([i - 1]), np.array([i]), level)[0]) if i > 0 else np.nan

    @staticmethod
    def _down_time(t, xc, a, b, level) -> float:
        above = np.flatnonzero(xc[a:b] >= level)
        if not len(above) or a + above[-1] + 1 >= len(t):
            return np.nan
        i = a + int(above[-1])
        return float(_crossing_time(t, xc, np.array([i]), np.array([i + 1]), level)[0])

    # ------------------------------------------------------------------ live

    def feed(self, time_s: np.ndarray, total_n: np.ndarray, moment_y_nmm: np.ndarray) -> list[StepEvent]:
        """Take a batch of samples; return the step events it completes (in time order).

        Parameters
        ----------
        time_s, total_n, moment_y_nmm : ndarray, shape (k,)
            Session times, total force (N) and moment along the foot (N mm) of the new samples.
        """
        t_new = np.asarray(time_s, dtype=np.float64)
        if not len(t_new):
            return []
        n_old = self._append(t_new, total_n, moment_y_nmm)
        t_last = float(self._t[-1])
        if not self.ready_:
            if t_last - self._calibrated_at >= self.calibrate_every_s and t_last - self._t[0] >= self.buffer_s / 2:
                self._calibrated_at = t_last
                self._calibrate()
            return []
        events = self._detect(n_old)
        events += self._evaluate(t_last)
        if t_last - self._calibrated_at >= self.calibrate_every_s and any(e.stage == "contact" for e in events):
            self._calibrated_at = t_last
            self._calibrate()
        return events

    @property
    def _t(self) -> np.ndarray:
        return self._buf[0, self._a:self._n]

    @property
    def _f(self) -> np.ndarray:
        return self._buf[1, self._a:self._n]

    @property
    def _m(self) -> np.ndarray:
        return self._buf[2, self._a:self._n]

    def _append(self, t: np.ndarray, f, m) -> int:
        """Add samples, drop those older than ``buffer_s``; returns how many of the kept ones are old.

        A preallocated buffer, compacted when full (amortised: no copy of the whole signal per batch).
        """
        k = len(t)
        if self._n > self._a:
            self._a += int(np.searchsorted(self._buf[0, self._a:self._n], t[-1] - self.buffer_s))
        kept = self._n - self._a
        if self._n + k > self._buf.shape[1]:
            cap = max(2 * (kept + k), 1024)
            new = np.empty((3, cap)) if cap > self._buf.shape[1] else self._buf
            new[:, :kept] = self._buf[:, self._a:self._n]
            self._buf, self._a, self._n = new, 0, kept
        self._buf[0, self._n:self._n + k] = t
        self._buf[1, self._n:self._n + k] = f
        self._buf[2, self._n:self._n + k] = m
        self._n += k
        return kept

    def _detect(self, n_old: int) -> list[StepEvent]:
        """Crossings of the high level (initial contact) and of the off level (toe-off) in the new samples."""
        cal = self._cal
        a = max(0, n_old - 1)
        xc = self._f[a:] - cal["base"]
        j0 = n_old - a
        t = self._t[a:]
        seg = np.concatenate([[self._xc_prev], xc[j0:]])
        self._xc_prev = float(seg[-1])
        high, off = cal["high"], cal["off"]
        up = np.flatnonzero((seg[1:] >= high) & (seg[:-1] < high))
        down = np.flatnonzero((seg[1:] < off) & (seg[:-1] >= off))
        events: list[StepEvent] = []
        crossings = sorted([(i, 1) for i in up] + [(i, -1) for i in down])
        for i, kind in crossings:  # a few per second
            k = j0 + i  # index into xc / t of the sample after the crossing
            if k < 1:
                continue
            if kind == 1 and not self._in_contact:
                t_hi = float(_crossing_time(t, xc, np.array([k - 1]), np.array([k]), high)[0])
                ic = t_hi - cal["lead_s"]
                if ic - self._last_to_s < self.contact.min_swing_ms * 1e-3:
                    continue
                self._in_contact = True
                self.last_ic_s_ = ic
                self._pending.append((ic + self.strike_window_ms * 1e-3, "contact", ic, self.steps_n_))
                if "loading" in self.stages:
                    self._pending.append((ic + self.loading_eval_ms * 1e-3, "loading", ic, self.steps_n_))
                self.steps_n_ += 1
            elif kind == -1 and self._in_contact:
                t_off = float(_crossing_time(t, xc, np.array([k - 1]), np.array([k]), off)[0])
                to = t_off + cal["lag_to_s"]
                if (to - self.last_ic_s_) * 1e3 < self.contact.min_contact_ms:
                    continue
                self._in_contact = False
                self._last_to_s = to
                if "toeoff" in self.stages:
                    self._pending.append((to, "toeoff", self.last_ic_s_, self.steps_n_ - 1))
                    self._contact_ms[self.steps_n_ - 1] = (to - self.last_ic_s_) * 1e3
        return events

    def _evaluate(self, t_last: float) -> list[StepEvent]:
        due = [p for p in self._pending if p[0] <= t_last]
        if not due:
            return []
        self._pending = [p for p in self._pending if p[0] > t_last]
        out = []
        for _, stage, ic, n in sorted(due):  # a few per second
            if stage == "contact":
                values = self._contact_values(ic) if "contact" in self.stages else {}
            elif stage == "loading":
                values = self._loading_values(ic)
            else:
                values = {"contact_time_ms": self._contact_ms.pop(n, np.nan)}
            out.append(StepEvent(self.foot, ic, stage, values, t_last, n))
        return out

    def _contact_values(self, ic: float) -> dict:
        a = max(0, int(np.searchsorted(self._t, ic - 0.1)))  # the swing before (the strike index's baseline)
        t = self._t[a:]
        first = int(np.searchsorted(t, ic))
        stop = len(t)
        si = np.nan
        if 0 < first < stop and self.foot_length_mm > 0:
            tab = self.strike.compute(t, self._f[a:], self._m[a:], self.foot_length_mm, np.array([first]),
                                      np.array([stop]), np.array([ic])).table_
            si = float(tab["strike_index_pct"].iloc[0])
        other = self.other.last_ic_s_ if self.other is not None else -np.inf
        step_s = ic - other
        cad = 60.0 / step_s if 0 < step_s < 2.0 else np.nan
        return {"strike_index_pct": si, "strike_class": str(classify_strike(np.array([si]))[0]), "cadence_spm": cad}

    def _loading_values(self, ic: float) -> dict:
        t = self._t
        a = max(0, int(np.searchsorted(t, ic - 0.2)))
        tt = t[a:]
        cal = self._cal
        force = self._f[a:] - cal["base"]
        first = int(np.searchsorted(tt, ic))
        stop = len(tt)
        nan = {"vilr_bw_s": np.nan, "avlr_bw_s": np.nan, "impact_peak_bw": np.nan}
        if not 0 < first < stop - 2 or len(tt) < 16:
            return nan
        f_bw = lowpass(tt, force, cal["cutoff_hz"]) / self.norm_n
        f_avlr = lowpass(tt, force, AVLR_CUTOFF_FACTOR * cal["cutoff_hz"]) / self.norm_n
        lr = self.loading.compute(tt, f_bw, np.array([first]), np.array([stop]), np.array([ic]),
                                  np.array([ic + cal["contact_s"]]), avlr_force_bw=f_avlr)
        return {"vilr_bw_s": float(lr.vilr_bw_s_[0]), "avlr_bw_s": float(lr.avlr_bw_s_[0]),
                "impact_peak_bw": float(lr.impact_peak_bw_[0])}
