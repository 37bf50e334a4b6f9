"""The analyst's entry point: :func:`analyze` a session file into a step table, a summary and per-step arrays.

>>> from treadlab.analysis import analyze                       # doctest: +SKIP
>>> with analyze("run.h5") as ga:                               # doctest: +SKIP
...     ga.steps.groupby("foot")["avlr_bw_s"].mean()
...     ga.summary["asymmetry_si_pct"]["contact_time_ms"]
...     warm = ga.select(from_marker="warm-up end", to_marker="cool-down")
...     curves = warm.force_curves("left")                     # (steps, 101) BW, 0-100 % stance
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from treadlab.analysis import mat as matmod
from treadlab.analysis.contacts import ContactDetection
from treadlab.analysis.metrics import LoadingRates, auto_cutoff_hz, lowpass, stance_curves, step_force_metrics
from treadlab.analysis.ragged import range_sum
from treadlab.analysis.segments import Segment, resolve_segment
from treadlab.analysis.session import InsoleData, Session, read_session
from treadlab.analysis.strike import StrikeIndex
from treadlab.analysis.summary import FEET, summarize
from treadlab.analysis.timing import add_timing
from treadlab.errors import AnalysisError, ConfigError

__all__ = ["FootSignals", "GaitAnalysis", "InsoleScaleWarning", "analyze"]

SCALE_TOLERANCE = 0.15
#: Automatic filter: noise of 1-ms slopes as a fraction of the foot's median VILR.
RELATIVE_SLOPE_NOISE = 0.03
#: The impact peak and AVLR use this times the VILR cutoff. 2 (less smoothing, since they average over many
#: samples) reached the 0.4 x rate cap at 200 Hz, i.e. no smoothing: 99 noisy sensels then made t20/t80 jitter
#: by ~1 ms and AVLR 11 % off. 1.4 keeps AVLR within 9 % there and changes little elsewhere.
AVLR_CUTOFF_FACTOR = 1.4


class InsoleScaleWarning(UserWarning):
    """The insoles' whole-stride mean force and the body weight from body mass disagree by more than 15%."""


@dataclass
class FootSignals:
    """Per-sample signals of one foot that the step table was computed from.

    Attributes
    ----------
    foot : str
    time_s : ndarray
    force : ndarray of float32
        Baseline-corrected total force (N, or counts when uncalibrated), unfiltered.
    force_bw : ndarray of float32
        The same, low-pass filtered and divided by the normalising body weight.
    cop_mm : ndarray, shape (n, 2) or None
        Centre of pressure in the foot frame (None for a mat).
    breaks : ndarray of int
    device : InsoleData or MatData
    """

    foot: str
    time_s: np.ndarray
    force: np.ndarray
    force_bw: np.ndarray
    cop_mm: np.ndarray | None
    breaks: np.ndarray
    device: object = None
    extra: dict = field(default_factory=dict)


def _insole_contacts(ins: InsoleData, contact: ContactDetection) -> tuple[pd.DataFrame, np.ndarray, np.ndarray,
                                                                          float]:
    breaks = ins.break_indices()
    det = contact.detect(ins.time, ins.total_force_n, breaks)
    return det.contacts_, det.corrected_, breaks, det.raw_noise_


def _auto_cutoff(ins: InsoleData, contacts: pd.DataFrame, force: np.ndarray, breaks: np.ndarray, noise: float,
                 norm_n: float, loading: LoadingRates) -> float:
    """The low-pass cutoff of one foot, in two passes.

    First VILR with a fixed slope-noise target; then the highest cutoff whose noise on VILR slopes (the secant
    over the VILR window, :func:`~treadlab.analysis.metrics.secant_slope_noise`) is RELATIVE_SLOPE_NOISE of the
    foot's median VILR, times ``(window / 2 ms)^0.7`` when the window is longer than 2 ms (the sample interval
    below 500 Hz). A long secant has few slopes in a loading window for noise to raise the maximum of, while a
    low-pass cuts deeper into it: at 200 Hz, 5.7 % is the balance (calibrated on the simulated runners of
    tests/test_analysis_known.py). Sharp rear-foot impacts, with their high VILR, keep more bandwidth.
    """
    t = ins.time
    rate_hz = 1.0 / float(np.median(np.diff(t)))
    window_s = max(1, int(round(loading.vilr_interval_ms * 1e-3 * rate_hz))) / rate_hz
    fc0 = auto_cutoff_hz(rate_hz, noise / norm_n, window_s=window_s)
    if ins.n_values < 2 or contacts.empty:
        return fc0
    f0 = lowpass(t, force, fc0, breaks) / norm_n
    v0 = loading.compute(t, f0, contacts["first"].to_numpy(np.int64), contacts["stop"].to_numpy(np.int64),
                         contacts["ic_s"].to_numpy(), contacts["to_s"].to_numpy()).vilr_bw_s_
    if not np.isfinite(v0).any():
        return fc0
    frac = RELATIVE_SLOPE_NOISE * max(1.0, window_s / 2e-3) ** 0.7
    return auto_cutoff_hz(rate_hz, noise / norm_n, max(frac * float(np.nanmedian(v0)), 0.5), window_s)


def _insole_table(foot: str, ins: InsoleData, contacts: pd.DataFrame, force: np.ndarray, breaks: np.ndarray,
                  norm_n: float, *, cutoff_hz: float | str | None, noise: float, loading: LoadingRates,
                  strike: StrikeIndex) -> tuple[pd.DataFrame, FootSignals]:
    t = ins.time
    first = contacts["first"].to_numpy(np.int64)
    stop = contacts["stop"].to_numpy(np.int64)
    ic, to = contacts["ic_s"].to_numpy(), contacts["to_s"].to_numpy()
    force_bw = (lowpass(t, force, cutoff_hz, breaks) / norm_n).astype(np.float32)  # kept per sample: float32
    avlr_bw = lowpass(t, force, AVLR_CUTOFF_FACTOR * cutoff_hz, breaks) / norm_n if cutoff_hz else force_bw
    table = pd.DataFrame({"foot": foot, "ic_s": ic, "to_s": to, "contact_time_ms": (to - ic) * 1e3})
    dt = np.gradient(t) if len(t) > 1 else np.ones(len(t))
    table["impulse_n_s"] = range_sum(force * dt, first, stop)
    if ins.n_values > 1:
        lr = loading.compute(t, force_bw, first, stop, ic, to, avlr_force_bw=avlr_bw)
        table["impact_peak_bw"] = lr.impact_peak_bw_
        table["impact_peak_s"] = lr.impact_peak_s_
        table["loading_reference"] = np.where(np.isfinite(lr.impact_peak_bw_), "impact_peak", "stance_13pct")
        table["avlr_bw_s"] = lr.avlr_bw_s_
        table["vilr_bw_s"] = lr.vilr_bw_s_
        fm = step_force_metrics(t, force_bw, first, stop, raw_force_bw=force / norm_n)
        for c in fm:
            table[c] = fm[c].to_numpy()
        si = strike.compute(t, ins.total_force_n, ins.moments_nmm[:, 1], ins.foot_length_mm, first, stop, ic,
                            ins.region_forces_n).table_
        for c in si:
            table[c] = si[c].to_numpy()
        cop = ins.cop_mm
    else:  # a footswitch: timing only
        for c in ("impact_peak_bw", "impact_peak_s", "avlr_bw_s", "vilr_bw_s", "peak_force_bw", "peak_force_s",
                  "impulse_bw_s", "strike_index_pct", "onset_diff_ms"):
            table[c] = np.nan
        for c in ("loading_reference", "strike_class", "strike_flag", "onset_class"):
            table[c] = ""
        table["strike_agree"] = False
        cop = None
    table["first_sample"] = first
    table["stop_sample"] = stop
    return table, FootSignals(foot, t, force, force_bw, cop, breaks, ins, {"filter_cutoff_hz": cutoff_hz})


STEP_COLUMNS = (
    "foot", "ic_s", "to_s", "contact_time_ms", "flight_time_ms", "step_time_ms", "stride_time_ms", "duty_factor",
    "cadence_spm", "strike_index_pct", "strike_class", "strike_flag", "onset_diff_ms", "onset_class",
    "strike_agree", "impact_peak_bw", "impact_peak_s", "loading_reference", "avlr_bw_s", "vilr_bw_s",
    "peak_force_bw", "peak_force_s", "impulse_bw_s", "impulse_n_s", "first_sample", "stop_sample",
)


def _order(table: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in STEP_COLUMNS if c in table] + [c for c in table if c not in STEP_COLUMNS]
    return table[cols].sort_values("ic_s", kind="stable").reset_index(drop=True)


def whole_stride_mean_force(steps: pd.DataFrame) -> float:
    """Sum over feet of the mean force over whole strides (stance impulse / stride time); NaN without strides."""
    total = 0.0
    for foot in FEET:
        part = steps[(steps["foot"] == foot) & np.isfinite(steps["stride_time_ms"])]
        if part.empty:
            return float("nan")
        total += part["impulse_n_s"].sum() / (part["stride_time_ms"].sum() * 1e-3)
    return float(total)


class GaitAnalysis:
    """Steps, summary and per-step arrays of one session (or a segment of it). Made by :func:`analyze`.

    Attributes
    ----------
    session : Session
    source : str
        "insoles" or "mat".
    segment : Segment
    steps : DataFrame
        One row per foot contact in the segment (columns in ``docs/analysis.md``).
    all_steps : DataFrame
        Every step of the session.
    summary : dict
        The same dict as ``lab analyze --json``.
    signals : dict of str to FootSignals
    body_weight_n : float
        From body mass (NaN without one).
    insole_mean_force_n : float
        Whole-stride mean of left plus right force.
    norm_n : float
        The force that is 1 BW in every ``*_bw`` metric.
    warnings : list of str
    """

    def __init__(self, session: Session, source: str, all_steps: pd.DataFrame, signals: dict, segment: Segment,
                 info: dict, owns_session: bool = False, mat_result=None):
        self.session = session
        self.source = source
        self.all_steps = all_steps
        self.signals = signals
        self.segment = segment
        self.info = info
        self.mat_result = mat_result
        self._owns = owns_session
        self.body_weight_n = info["body_weight_n"]
        self.insole_mean_force_n = info["insole_mean_force_n"]
        self.norm_n = info["norm_n"]
        self.warnings = list(info.get("warnings", []))
        self.steps = all_steps[segment.contains(all_steps["ic_s"])].reset_index(drop=True)
        extra = {"file": str(session.path), "source": source, "segment": segment.to_dict(),
                 "body_mass_kg": session.body_mass_kg, "treadmill_speed_mps": session.treadmill_speed_mps}
        extra.update({k: v for k, v in info.items() if k not in ("norm_n",)})
        extra["normalising_force_n"] = self.norm_n
        self.summary = summarize(self.steps, duration_s=segment.duration_s, extra=extra)
        self.summary["markers"] = [{"time_s": float(r.time), "label": str(r.label)}
                                   for r in session.markers.itertuples() if segment.contains(r.time)]
        if mat_result is not None:
            self.summary["mat"] = mat_result.summary(segment)

    # Segments ---------------------------------------------------------------------------------------------
    def select(self, start_s: float | None = None, stop_s: float | None = None, *, from_marker: str | None = None,
               to_marker: str | None = None) -> GaitAnalysis:
        """The analysis restricted to steps whose initial contact lies in a window (times and/or markers)."""
        seg = resolve_segment(self.session.time_range_s, self.session.markers, start_s=start_s, stop_s=stop_s,
                              from_marker=from_marker, to_marker=to_marker, where=self.session.path.name)
        return GaitAnalysis(self.session, self.source, self.all_steps, self.signals, seg, self.info,
                            mat_result=self.mat_result)

    @property
    def markers(self) -> pd.DataFrame:
        """Markers of the session (``time``, ``label``)."""
        return self.session.markers

    # Per-step arrays --------------------------------------------------------------------------------------
    def _foot(self, foot: str) -> tuple[FootSignals, pd.DataFrame]:
        if foot not in self.signals:
            raise AnalysisError(f"no {foot} foot in this analysis (feet: {', '.join(self.signals) or 'none'})")
        return self.signals[foot], self.steps[self.steps["foot"] == foot]

    def force_curves(self, foot: str, n_points: int = 101) -> np.ndarray:
        """Force (BW, filtered) of each step of ``foot`` on a stance-normalised axis: shape (steps, n_points)."""
        sig, part = self._foot(foot)
        return stance_curves(sig.time_s, sig.force_bw, part["ic_s"].to_numpy(), part["to_s"].to_numpy(), n_points)

    def cop_paths(self, foot: str, n_points: int = 101) -> np.ndarray:
        """COP (mm, foot frame) of each step on a stance-normalised axis: shape (steps, n_points, 2).

        NaN where the foot carries almost nothing (and for footswitches and mats).
        """
        sig, part = self._foot(foot)
        if sig.cop_mm is None:
            return np.full((len(part), n_points, 2), np.nan)
        return stance_curves(sig.time_s, sig.cop_mm, part["ic_s"].to_numpy(), part["to_s"].to_numpy(), n_points)

    def pressure_maps(self, foot: str) -> dict:
        """Peak and mean value per sensel of ``foot`` over the stance phases of the segment's steps.

        One chunked pass over the raw data. Returns ``peak``, ``mean`` (per sensel, in ``unit``: kPa for
        pressure insoles, else N or counts), ``positions_mm``, ``areas_mm2``, ``foot_length_mm``, ``unit``,
        ``steps``.
        """
        sig, part = self._foot(foot)
        ins = sig.device
        if not isinstance(ins, InsoleData):
            raise AnalysisError(f"pressure maps need insoles; the {foot} foot comes from a mat (use mat_footprint)")
        mask = np.zeros(ins.n_samples, dtype=bool)
        from treadlab.analysis.ragged import range_arange

        idx, _ = range_arange(part["first_sample"].to_numpy(), part["stop_sample"].to_numpy())
        mask[idx] = True
        peak = np.zeros(ins.n_values)
        total = np.zeros(ins.n_values)
        count = 0
        rows = np.flatnonzero(mask)
        lo, hi = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        for a, block in ins.iter_forces(lo, hi):  # one iteration per ~32 MiB block
            m = mask[a:a + len(block)]
            if m.any():
                sel = block[m]
                np.maximum(peak, sel.max(axis=0), out=peak)
                total += sel.sum(axis=0, dtype=np.float64)
                count += int(m.sum())
        factor = 1.0 / ins.sensel_force_factor if ins.unit == "kPa" else np.ones(ins.n_values)
        return {"peak": peak * factor, "mean": total / max(count, 1) * factor, "unit": ins.unit or "counts",
                "positions_mm": ins.positions_mm, "areas_mm2": ins.areas_mm2, "foot_length_mm": ins.foot_length_mm,
                "steps": int(len(part))}

    def mat_footprint(self, foot: str) -> dict:
        """Mean footprint of ``foot`` on the mat: per-step peak images in the belt frame, aligned at the heel,
        averaged over the segment (see :meth:`MatAnalysis.mean_footprint`)."""
        if self.mat_result is None:
            raise AnalysisError("this session has no pressure mat")
        return self.mat_result.mean_footprint(foot, self.segment)

    # Lifecycle --------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the session file if :func:`analyze` opened it."""
        if self._owns:
            self.session.close()

    def __enter__(self) -> GaitAnalysis:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def analyze(session: Session | str | Path, *, source: str = "insoles", normalise: str = "body_mass",
            filter_cutoff_hz: float | str | None = "auto", contact: ContactDetection | None = None,
            loading: LoadingRates | None = None, strike: StrikeIndex | None = None,
            start_s: float | None = None, stop_s: float | None = None, from_marker: str | None = None,
            to_marker: str | None = None) -> GaitAnalysis:
    """Analyse a session: steps of both feet, metrics, summary.

    Parameters
    ----------
    session : Session, str or Path
        An open session, or a path (then the returned analysis owns the file: close it or use ``with``).
    source : {"insoles", "mat"}
    normalise : {"body_mass", "insole"}
        Divide forces by body mass x g, or by the insoles' whole-stride mean force (``insole_scale`` x BW).
        Uncalibrated insoles, or a session without body mass, always use "insole".
    filter_cutoff_hz : "auto", float or None
        Cutoff of the zero-lag 4th-order Butterworth low-pass applied before every force metric. "auto" sets it
        from the measured sensor noise so that the noise on 1-ms slopes is 3% of the median VILR (two passes,
        :func:`~treadlab.analysis.metrics.auto_cutoff_hz`; the lower of the two feet's cutoffs is used for
        both, so filtering does not bias the asymmetry); None: no filter. The impact peak and AVLR use
        1.4 x this cutoff (``AVLR_CUTOFF_FACTOR``; they average over many samples and need less smoothing).
    contact, loading, strike : algorithm objects, optional
        Parameters of contact detection, loading rates and strike index.
    start_s, stop_s, from_marker, to_marker : optional
        The segment reported in ``steps`` and ``summary`` (see :meth:`GaitAnalysis.select`).

    Returns
    -------
    GaitAnalysis

    Raises
    ------
    SessionFileError, AnalysisError, ConfigError
    """
    if source not in ("insoles", "mat"):
        raise ConfigError(f"invalid source {source!r}: choose 'insoles' or 'mat'")
    if normalise not in ("body_mass", "insole"):
        raise ConfigError(f"invalid normalise {normalise!r}: choose 'body_mass' or 'insole'")
    owns = not isinstance(session, Session)
    s = read_session(session) if owns else session
    try:
        seg = resolve_segment(s.time_range_s, s.markers, start_s=start_s, stop_s=stop_s,
                              from_marker=from_marker, to_marker=to_marker, where=s.path.name)
        if source == "mat":
            return _analyze_mat(s, seg, owns, normalise)
        return _analyze_insoles(s, seg, owns, normalise, filter_cutoff_hz, contact or ContactDetection(),
                                loading or LoadingRates(), strike or StrikeIndex())
    except Exception:
        if owns:
            s.close()
        raise


def _norm(s: Session, mean_force: float, calibrated: bool, normalise: str, warn_list: list,
          required: bool = True) -> dict:
    bw = s.body_weight_n
    scale = mean_force / bw if np.isfinite(bw) and bw > 0 else float("nan")
    if calibrated and np.isfinite(scale) and abs(scale - 1.0) > SCALE_TOLERANCE:
        msg = (f"{s.path.name}: insoles' whole-stride mean force {mean_force:.0f} N is {scale:.2f} x body weight "
               f"({bw:.0f} N from {s.body_mass_kg:g} kg); check the calibration or the body mass")
        warn_list.append(msg)
        warnings.warn(msg, InsoleScaleWarning, stacklevel=3)
    used = normalise
    if not calibrated or not np.isfinite(bw):
        used = "insole"
    norm = bw if used == "body_mass" else mean_force
    if (not np.isfinite(norm) or norm <= 0) and not required:
        norm = bw if np.isfinite(bw) and bw > 0 else 1.0
    if not np.isfinite(norm) or norm <= 0:
        raise AnalysisError(f"{s.path.name}: cannot normalise forces (no body mass and no whole strides)")
    return {"body_weight_n": bw, "insole_mean_force_n": mean_force, "insole_scale": scale,
            "normalised_by": used, "norm_n": norm, "warnings": warn_list}


def _analyze_insoles(s: Session, seg: Segment, owns: bool, normalise: str, cutoff_hz, contact, loading,
                     strike) -> GaitAnalysis:
    missing = [f for f in FEET if f not in s.insoles]
    if missing:
        have = ", ".join(f"{n} ({d.kind or '?'} {d.side})" for n, d in s.devices.items()) or "none"
        raise AnalysisError(f"{s.path.name} has no {' or '.join(missing)} insole (devices: {have})")
    pre = {f: _insole_contacts(s.insoles[f], contact) for f in FEET}
    for f in FEET:
        if pre[f][0].empty:
            raise AnalysisError(f"no steps found on the {f} insole of {s.path.name}")
    # Whole-stride mean force needs only contacts and strides: a first timing pass in raw force units.
    rough = []
    for f in FEET:
        c, force, _, _ = pre[f]
        ins = s.insoles[f]
        dt = np.gradient(ins.time)
        rough.append(pd.DataFrame({"foot": f, "ic_s": c["ic_s"], "to_s": c["to_s"],
                                   "impulse_n_s": range_sum(force * dt, c["first"].to_numpy(), c["stop"].to_numpy())}))
    break_times = np.sort(np.concatenate([s.insoles[f].time[pre[f][2]] for f in FEET]))
    for f in FEET:
        if pre[f][0].empty:
            raise AnalysisError(f"no steps found on the {f} insole of {s.path.name}")
    rough_t = add_timing(pd.concat(rough, ignore_index=True), break_times)
    calibrated = all(s.insoles[f].calibrated and s.insoles[f].n_values > 1 for f in FEET)
    info = _norm(s, whole_stride_mean_force(rough_t), calibrated, normalise, [])
    if cutoff_hz == "auto":  # one cutoff for both feet, so that filtering does not bias the asymmetry
        cutoff_hz = min(_auto_cutoff(s.insoles[f], pre[f][0], pre[f][1], pre[f][2], pre[f][3], info["norm_n"], loading)
                        for f in FEET)
    tables, signals = [], {}
    for f in FEET:
        c, force, breaks, noise = pre[f]
        tab, sig = _insole_table(f, s.insoles[f], c, force, breaks, info["norm_n"], cutoff_hz=cutoff_hz,
                                 noise=noise, loading=loading, strike=strike)
        tables.append(tab)
        signals[f] = sig
    steps = _order(add_timing(pd.concat(tables, ignore_index=True), break_times))
    info["parameters"] = {"filter_cutoff_hz": {f: signals[f].extra["filter_cutoff_hz"] for f in FEET},
                          "contact": vars(contact).copy(),
                          "loading": vars(loading).copy(), "strike": {k: v for k, v in vars(strike).items()
                                                                      if not k.endswith("_")}}
    info["parameters"]["contact"] = {k: v for k, v in info["parameters"]["contact"].items() if not k.endswith("_")}
    info["parameters"]["loading"] = {k: v for k, v in info["parameters"]["loading"].items() if not k.endswith("_")}
    info["gaps"] = {name: int(len(d.gaps)) for name, d in s.devices.items()}
    mat_result = None
    if s.mats:
        mat_result = matmod.MatAnalysis().detect(s.mats[0], info["norm_n"], s.treadmill_speed_mps)
        info["mat_agreement"] = matmod.match_steps(steps, mat_result.steps_)
    return GaitAnalysis(s, "insoles", steps, signals, seg, info, owns, mat_result=mat_result)


def _analyze_mat(s: Session, seg: Segment, owns: bool, normalise: str) -> GaitAnalysis:
    if not s.mats:
        raise AnalysisError(f"{s.path.name} has no pressure mat (devices: {', '.join(s.devices) or 'none'})")
    mat = s.mats[0]
    res = matmod.MatAnalysis().detect(mat, 1.0, s.treadmill_speed_mps)
    if res.steps_.empty:
        raise AnalysisError(f"no footprints found on the mat of {s.path.name}")
    rough = add_timing(res.steps_.assign(impulse_n_s=res.steps_["impulse_bw_s"]), res.break_times_)
    info = _norm(s, whole_stride_mean_force(rough), mat.calibrated, normalise, [], required=False)
    res.rescale(info["norm_n"])
    steps = _order(add_timing(res.steps_, res.break_times_))
    info["gaps"] = {name: int(len(d.gaps)) for name, d in s.devices.items()}
    info["belt_speed_mps"] = res.belt_speed_mps_
    signals = res.signals()
    return GaitAnalysis(s, "mat", steps, signals, seg, info, owns, mat_result=res)
