"""The IMU analysis of a session: per-step columns for any source (a step enricher), the ``imu`` source of steps
for sessions with IMUs alone, and the summary's IMU keys.

Registered with :mod:`treadlab.analysis.api` on import (``treadlab.analysis`` imports it):

- the step enricher ``"imu"`` (runs after any source when the session has an imu): the columns of
  :data:`STEP_COLUMNS` (NaN where a sensor is absent or does not cover the step), the summary's
  ``feet.<side>.<metric>`` for :data:`FOOT_METRICS`, ``pelvis.<key>`` for :data:`PELVIS_METRICS` (mean, sd,
  median, n over strides), ``imu`` (per device: standing period, forward-direction strength, clipped samples;
  and, when the steps come from the insoles or the mat, ``ic_diff_ms``: per imu, the median of IMU minus
  insole initial contact, a self-check of the rig), and the method ``ga.pelvic_obliquity_curves(n_points=101)``:
  per stance side the mean obliquity over the stride (IC of that foot to its next IC) on a 0-100% axis, signed
  so that positive is the swing side (the other foot's side) lower, as pelvic drop;
- the source ``"imu"`` (``analyze(..., source="imu")``, ``lab analyze --source imu``): steps from the tibiae
  (initial contact) and the pelvis (initial contact, toe-off, foot) (:mod:`~treadlab.analysis.imu.events`).

Options: ``analyze(..., options={"imu": ImuOptions(...)})``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from treadlab.analysis import api
from treadlab.analysis.gaitclass import QUALITY_OK
from treadlab.analysis.imu import events as ev
from treadlab.analysis.imu import metrics as mx
from treadlab.analysis.imu.align import StandingReference
from treadlab.analysis.imu.orientation import VqfSettings
from treadlab.analysis.imu.process import KEEP_ALL, KEEP_BY_PLACEMENT, ImuSignals, process_imu
from treadlab.analysis.metrics import stance_curves
from treadlab.analysis.segments import Segment
from treadlab.analysis.summary import metric_stats
from treadlab.errors import AnalysisError
from treadlab.vocabulary import FEET

__all__ = ["FOOT_METRICS", "PELVIS_METRICS", "STEP_COLUMNS", "ImuOptions", "imu_step_columns", "imu_steps",
           "session_errors", "session_signals"]

#: Per-step metrics with ``feet.<side>.<metric>`` in the summary.
FOOT_METRICS = ("pelvic_drop_deg", "trunk_lean_deg", "vertical_oscillation_mm", "pta_g", "ppa_g",
                "shock_attenuation_pct")
#: ``pelvis.<key>`` of the summary: key -> the per-stride column it summarises.
PELVIS_METRICS = {"rotation_range_deg": "pelvic_rotation_deg", "tilt_mean_deg": "pelvic_tilt_mean_deg",
                  "tilt_range_deg": "pelvic_tilt_range_deg"}
#: Columns the enricher adds to the steps table.
STEP_COLUMNS = FOOT_METRICS + tuple(PELVIS_METRICS.values()) + ("imu_flag",)
PTA_WINDOW_S = 0.100
#: Largest distance (s) between an IMU and an insole initial contact that counts as the same contact.
IC_MATCH_S = 0.15


@dataclass(frozen=True)
class ImuOptions:
    """Options of the IMU analysis.

    Attributes
    ----------
    vqf : VqfSettings
        The orientation filter's settings.
    standing : dict of str to StandingReference
        Per placement, a standing pose from a separate standing recording
        (:func:`~treadlab.analysis.imu.process.standing_from_device`); the others find their own.
    standing_marker : str
        The label of the marker at which to look for the standing period (when the session has one).
    pta_window_s : float
        PTA and PPA window after initial contact.
    """

    vqf: VqfSettings = field(default_factory=VqfSettings)
    standing: dict = field(default_factory=dict)
    standing_marker: str = "standing"
    pta_window_s: float = PTA_WINDOW_S


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _imus(session) -> dict:
    """The session's imus by placement (the first of each placement)."""
    out: dict = {}
    for d in session.of_kind("imu"):
        out.setdefault(d.placement, d)
    return out


def _same_options(a: ImuOptions, b: ImuOptions) -> bool:
    """Options that give the same signals (standing references, which hold arrays, by identity)."""
    if a is b:
        return True
    return (a.vqf == b.vqf and a.standing_marker == b.standing_marker and a.standing.keys() == b.standing.keys()
            and all(a.standing[k] is b.standing[k] for k in a.standing))


def session_signals(session, options: ImuOptions | None = None, strict: bool = True) -> dict[str, ImuSignals]:
    """Every imu of the session processed (:func:`process_imu`), by placement; cached per session and options.

    With ``strict`` a sensor that cannot be analysed (no standing period, too short) raises its
    :class:`AnalysisError`; without, it is left out and its message is in :func:`session_errors`.
    """
    opts = options or ImuOptions()
    cached = _CACHE.get(session)
    if cached is None or not _same_options(cached[0], opts):
        marker_s = None
        if len(session.markers) and opts.standing_marker in set(session.markers["label"]):
            marker_s = session.marker_time(opts.standing_marker)
        out, errors = {}, {}
        for placement, dev in _imus(session).items():  # one iteration per sensor (at most four)
            ref = opts.standing.get(placement)
            if ref is not None and not isinstance(ref, StandingReference):
                raise AnalysisError(f"imu standing for {placement!r} must be a StandingReference, "
                                    f"got {type(ref).__name__}")
            try:
                out[placement] = process_imu(dev, settings=opts.vqf, marker_s=marker_s, standing=ref,
                                             orientation=not placement.startswith("tibia"),
                                             keep=KEEP_BY_PLACEMENT.get(placement, KEEP_ALL))
            except AnalysisError as exc:
                errors[dev.name] = str(exc)
        cached = (opts, out, errors)
        _CACHE[session] = cached
    if strict and cached[2]:
        raise AnalysisError("; ".join(cached[2].values()))
    return cached[1]


def session_errors(session) -> dict[str, str]:
    """Per imu left out of the last :func:`session_signals` of ``session``: why."""
    cached = _CACHE.get(session)
    return dict(cached[2]) if cached is not None else {}


# --- per-step columns -------------------------------------------------------------------------------------

def _ends(steps: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ic = steps["ic_s"].to_numpy(dtype=float)
    step = steps["step_time_ms"].to_numpy(dtype=float) if "step_time_ms" in steps else np.full(len(ic), np.nan)
    stride = steps["stride_time_ms"].to_numpy(dtype=float) if "stride_time_ms" in steps else np.full(len(ic), np.nan)
    return ic + step * 1e-3, ic + stride * 1e-3


class _Rows:
    """Sample ranges of one sensor for time windows, NaN-safe (empty where a window is not covered)."""

    def __init__(self, sig: ImuSignals, breaks: np.ndarray):
        self.sig = sig
        self.breaks = breaks

    def __call__(self, t0: np.ndarray, t1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = self.sig.time_s
        ok = np.isfinite(t0) & np.isfinite(t1) & (t1 > t0) & (t0 >= t[0]) & (t1 <= t[-1] + 1.5 / self.sig.rate_hz)
        a = self.sig.rows_at(np.where(ok, t0, t[0]))
        b = self.sig.rows_at(np.where(ok, t1, t[0]))
        ok &= ~mx.has_break(self.breaks, a, b)
        return np.where(ok, a, 0), np.where(ok, b, 0)


def imu_step_columns(signals: dict[str, ImuSignals], steps: pd.DataFrame, breaks: dict | None = None,
                     pta_window_s: float = PTA_WINDOW_S) -> tuple[pd.DataFrame, np.ndarray]:
    """The IMU columns of a steps table (see :data:`STEP_COLUMNS`).

    Parameters
    ----------
    signals : dict of str to ImuSignals
        By placement.
    steps : DataFrame
        ``foot``, ``ic_s``, ``to_s``, ``step_time_ms``, ``stride_time_ms`` (after
        :func:`~treadlab.analysis.timing.add_timing`); rows of gait "standing" get NaN.
    breaks : dict of str to ndarray, optional
        Per placement, sample indices that start a new continuous run (windows over one are NaN).
    pta_window_s : float

    Returns
    -------
    columns : DataFrame
        Indexed like ``steps``.
    obliquity_curves : ndarray, shape (steps, 101)
        Per step, the pelvis obliquity over its stride, signed as pelvic drop (NaN without a pelvis sensor).
    """
    n = len(steps)
    breaks = breaks or {}
    cols = {c: np.full(n, np.nan) for c in STEP_COLUMNS if c != "imu_flag"}
    flags = np.full(n, "", dtype=object)
    curves = np.full((n, 101), np.nan)
    foot = steps["foot"].to_numpy(dtype=object)
    ic = steps["ic_s"].to_numpy(dtype=float)
    to = steps["to_s"].to_numpy(dtype=float)
    live = (steps["gait"] != "standing").to_numpy() if "gait" in steps else np.ones(n, bool)
    ic = np.where(live, ic, np.nan)
    step_end, stride_end = _ends(steps)
    win = ic + pta_window_s

    def rows(placement):
        sig = signals[placement]
        return sig, _Rows(sig, breaks.get(placement, np.empty(0, dtype=np.int64)))

    if "pelvis" in signals:
        sig, r = rows("pelvis")
        if sig.angles_deg is not None:
            a, b = r(ic, to)
            cols["pelvic_drop_deg"] = mx.by_span(mx.pelvic_drop_deg, sig.angles_deg[:, 1], a, b, foot)
            a, b = r(ic, stride_end)
            cols["pelvic_rotation_deg"] = mx.by_span(mx.detrended_range, sig.angles_deg[:, 0], a, b)
            cols["pelvic_tilt_mean_deg"] = mx.by_span(mx.range_mean, sig.angles_deg[:, 2], a, b)
            cols["pelvic_tilt_range_deg"] = mx.by_span(mx.range_ptp, sig.angles_deg[:, 2], a, b)
            a, b = r(ic, step_end)
            cols["vertical_oscillation_mm"] = mx.by_span(_vo(sig.rate_hz), sig.acc_lab_g[:, 2], a, b)
            ok = np.flatnonzero(np.isfinite(cols["pelvic_rotation_deg"]))
            for f, sign in (("left", 1.0), ("right", -1.0)):  # two iterations
                rws = ok[foot[ok] == f]
                if len(rws):
                    curves[rws] = _curves(sig, sign, ic[rws], stride_end[rws])
        a, b = r(ic, win)
        cols["ppa_g"], _ = mx.by_span(mx.window_peak, sig.acc_axial_g, a, b, index_out=(1,))
        clipped = _any_clipped(sig.clipped_rows, a, b)
        cols["ppa_g"][clipped] = np.nan
        flags[clipped] = "ppa_clipped"
    if "trunk" in signals and signals["trunk"].angles_deg is not None:
        sig, r = rows("trunk")
        a, b = r(ic, step_end)
        cols["trunk_lean_deg"] = mx.by_span(mx.range_mean, sig.angles_deg[:, 2], a, b)
    for f in FEET:
        key = f"tibia_{f}"
        if key not in signals:
            continue
        sig, r = rows(key)
        mine = foot == f
        a, b = r(np.where(mine, ic, np.nan), np.where(mine, win, np.nan))
        pta, _ = mx.by_span(mx.window_peak, sig.acc_axial_g, a, b, index_out=(1,))
        clipped = _any_clipped(sig.clipped_rows, a, b) & mine
        pta[clipped] = np.nan
        flags[clipped] = np.where(flags[clipped] == "", "pta_clipped", flags[clipped] + ",pta_clipped")
        cols["pta_g"] = np.where(mine, pta, cols["pta_g"])
    cols["shock_attenuation_pct"] = mx.shock_attenuation_pct(cols["ppa_g"], cols["pta_g"])
    out = pd.DataFrame(cols, index=steps.index)
    out["imu_flag"] = flags
    return out, curves


def _vo(rate_hz: float):
    """:func:`~treadlab.analysis.imu.metrics.vertical_oscillation_mm` at ``rate_hz``, a ``(x, first, stop)`` metric."""
    def vo(x, first, stop):
        return mx.vertical_oscillation_mm(x, rate_hz, first, stop)
    return vo


def _curves(sig: ImuSignals, sign: float, ic_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """The pelvis's signed obliquity of each stride on a 101-point axis, a span of samples at a time."""
    out = np.full((len(ic_s), 101), np.nan)
    a, b = sig.rows_at(ic_s), sig.rows_at(end_s)
    i = 0
    while i < len(a):  # one iteration per span of mx.SPAN_SAMPLES samples (a few an hour)
        j = max(i + 1, int(np.searchsorted(a, a[i] + mx.SPAN_SAMPLES, side="left")))
        lo, hi = max(0, int(a[i:j].min()) - 1), min(sig.n_samples, int(b[i:j].max()) + 1)
        out[i:j] = stance_curves(sig.time_s[lo:hi], sign * sig.angles_deg[lo:hi, 1].astype(np.float64),
                                 ic_s[i:j], end_s[i:j], 101)
        i = j
    return out


def _any_clipped(clipped_rows: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    c = np.asarray(clipped_rows, dtype=np.int64)
    return (np.searchsorted(c, b, side="left") > np.searchsorted(c, a, side="left")) & (b > a)


# --- the enricher --------------------------------------------------------------------------------------------

def _breaks(session, signals: dict) -> dict:
    devs = _imus(session)
    return {p: devs[p].breaks_from_blocks([(0, s.time_s)]) for p, s in signals.items() if p in devs}


def _enrich(session, steps: pd.DataFrame, source: str, options) -> tuple[pd.DataFrame, dict]:
    opts = options or ImuOptions()
    signals = session_signals(session, opts, strict=False)
    cols, curves = imu_step_columns(signals, steps, _breaks(session, signals), opts.pta_window_s)
    out = steps.drop(columns=[c for c in STEP_COLUMNS if c in steps]).join(cols)
    key = dict(zip(zip(out["foot"], out["ic_s"]), range(len(out))))
    devices = {s.name: s.info for s in signals.values()}
    devices.update({name: {"error": msg} for name, msg in session_errors(session).items()})
    state = {"curves": curves, "key": key, "devices": devices}
    if source != "imu":
        state["ic_diff_ms"] = _ic_check(signals, steps)
    return out, state


def _ic_check(signals: dict, steps: pd.DataFrame) -> dict:
    """Per imu, median (and n) of IMU minus source initial contact (ms) over the contacts matched within 150 ms."""
    out = {}
    live = steps[(steps["gait"] != "standing")] if "gait" in steps else steps
    for placement, sig in signals.items():  # one iteration per sensor
        if placement == "pelvis":
            found, _ = _pelvis_steps(sig)
            imu_ic = found["ic_s"].to_numpy(dtype=float)
            ref = live["ic_s"].to_numpy(dtype=float)
        elif placement.startswith("tibia_"):
            foot = placement.split("_", 1)[1]
            imu_ic = ev.tibia_events(sig.time_s, sig.acc_axial_g, sig.rate_hz, sig.standing.stop_s)
            ref = live.loc[live["foot"] == foot, "ic_s"].to_numpy(dtype=float)
        else:
            continue
        d = _nearest_diff(imu_ic, np.sort(ref))
        out[sig.name] = {"placement": placement, "median_ms": float(np.median(d) * 1e3) if len(d) else float("nan"),
                         "n": int(len(d))}
    return out


def _nearest_diff(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    if len(ref) == 0 or len(x) == 0:
        return np.empty(0)
    j = np.clip(np.searchsorted(ref, x), 1, len(ref) - 1) if len(ref) > 1 else np.zeros(len(x), dtype=np.int64)
    cand = np.stack([ref[np.maximum(j - 1, 0)], ref[j]], axis=1)
    best = cand[np.arange(len(x)), np.argmin(np.abs(cand - x[:, None]), axis=1)]
    d = x - best
    return d[np.abs(d) <= IC_MATCH_S]


def _summarize(ga, state: dict) -> None:
    steps = ga.summary_steps
    for f in FEET:
        part = steps[steps["foot"] == f] if len(steps) else steps
        d = ga.summary["feet"].setdefault(f, {})
        for m in FOOT_METRICS:
            d[m] = metric_stats(part[m] if m in part else [])
    ga.summary["pelvis"] = {k: metric_stats(steps[c] if c in steps else []) for k, c in PELVIS_METRICS.items()}
    imu = {"devices": state["devices"],
           "clipped_steps": int((steps["imu_flag"] != "").sum()) if "imu_flag" in steps else 0}
    if "ic_diff_ms" in state:
        imu["ic_diff_ms"] = state["ic_diff_ms"]
    ga.summary["imu"] = imu
    errors = [d["error"] for d in state["devices"].values() if "error" in d]
    if errors:
        ga.warnings = ga.warnings + [e for e in errors if e not in ga.warnings]
        ga.summary["warnings"] = list(ga.summary.get("warnings", [])) + [
            e for e in errors if e not in ga.summary.get("warnings", [])]
    curves, key = state["curves"], state["key"]

    def pelvic_obliquity_curves(n_points: int = 101) -> dict:
        """Mean pelvic obliquity over the stride per stance side (deg, + swing side down), ``n_points`` 0-100%."""
        out = {}
        for f in FEET:
            rows = [key.get(k) for k in zip(steps.loc[steps["foot"] == f, "foot"], steps.loc[steps["foot"] == f,
                                                                                             "ic_s"])]
            c = curves[[r for r in rows if r is not None]]
            c = c[np.isfinite(c).all(axis=1)] if len(c) else c
            if len(c) == 0:
                out[f] = None
                continue
            mean = c.mean(axis=0)
            out[f] = mean if n_points == 101 else np.interp(np.linspace(0, 100, n_points), np.arange(101.0), mean)
        return out

    ga.pelvic_obliquity_curves = pelvic_obliquity_curves


# --- the source ----------------------------------------------------------------------------------------------

def _pelvis_steps(sig: ImuSignals) -> tuple[pd.DataFrame, dict]:
    obl = None if sig.angles_deg is None else sig.angles_deg[:, 1]
    return ev.pelvis_events(sig.time_s, sig.acc_lab_g, sig.rate_hz, obl, start_s=sig.standing.stop_s)


def imu_steps(signals: dict[str, ImuSignals]) -> tuple[pd.DataFrame, dict]:
    """Steps from the IMUs alone: ``foot``, ``ic_s``, ``to_s``, ``quality`` (see :mod:`.events`).

    IC from the tibiae when there are both, else from the pelvis; toe-off and, without tibiae, the foot from the
    pelvis.
    """
    info: dict = {}
    pel = None
    if "pelvis" in signals:
        pel, info["pelvis"] = _pelvis_steps(signals["pelvis"])
    tib = {f: signals.get(f"tibia_{f}") for f in FEET}
    if all(t is not None for t in tib.values()):
        parts = []
        for f, sig in tib.items():  # two iterations
            ic = ev.tibia_events(sig.time_s, sig.acc_axial_g, sig.rate_hz, sig.standing.stop_s)
            to = np.full(len(ic), np.nan)
            if pel is not None and len(pel):
                pi = np.sort(pel["ic_s"].to_numpy(dtype=float))
                pt = pel.sort_values("ic_s")["to_s"].to_numpy(dtype=float)
                j = np.clip(np.searchsorted(pi, ic), 0, len(pi) - 1)
                j = np.where((j > 0) & (np.abs(pi[np.maximum(j - 1, 0)] - ic) < np.abs(pi[j] - ic)), j - 1, j)
                to = np.where(np.abs(pi[j] - ic) < IC_MATCH_S, pt[j], np.nan)
            parts.append(pd.DataFrame({"foot": f, "ic_s": ic, "to_s": to}))
        steps = pd.concat(parts, ignore_index=True)
        info["ic_from"] = "tibia"
    elif pel is not None:
        steps = pel
        info["ic_from"] = "pelvis"
    else:
        raise AnalysisError("steps from IMUs need a pelvis sensor or a sensor on each tibia")
    steps = steps.assign(quality=QUALITY_OK).sort_values("ic_s", kind="stable").reset_index(drop=True)
    return steps, info


def _analyze_imu(s, seg: Segment, owns: bool, normalise: str, cutoff_hz, contact, loading, strike,
                 block_samples: int, options: dict | None = None):
    opts = (options or {}).get("imu") or ImuOptions()
    signals = session_signals(s, opts, strict=False)
    p = set(signals)
    if "pelvis" not in p and not {"tibia_left", "tibia_right"} <= p:
        why = "; ".join(session_errors(s).values())
        raise AnalysisError(f"{s.path.name}: steps from IMUs need a pelvis sensor or one on each tibia"
                            + (f" ({why})" if why else ""))
    steps, info = imu_steps(signals)
    if steps.empty:
        raise AnalysisError(f"no steps found in the IMUs of {s.path.name}")
    steps = api._timed(steps, np.empty(0))  # noqa: SLF001 - the same timing and gait as every source
    bw = s.body_weight_n
    meta = {"body_weight_n": bw, "insole_mean_force_n": float("nan"), "insole_scale": float("nan"),
            "normalised_by": "body_mass", "norm_n": bw if np.isfinite(bw) and bw > 0 else 1.0, "warnings": [],
            "imu_events": info, "gaps": {name: int(len(d.gaps)) for name, d in s.devices.items()}}
    return api.GaitAnalysis(s, "imu", steps, {}, seg, meta, owns)


def _has_imu(session) -> bool:
    return bool(session.of_kind("imu"))


def _imu_source_available(session) -> bool:
    p = _imus(session)
    return "pelvis" in p or ("tibia_left" in p and "tibia_right" in p)


api.register_enricher(api.StepEnricher("imu", _has_imu, _enrich, _summarize))
api.register_source(api.AnalysisSource("imu", _analyze_imu, _imu_source_available, takes_options=True))
