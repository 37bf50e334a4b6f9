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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from treadlab.analysis import mat as matmod
from treadlab.analysis.contacts import ContactDetection
from treadlab.analysis.gaitclass import QUALITY_OK, classify_gait, summary_gait, summary_rows
from treadlab.analysis.insolepass import FootPass
from treadlab.analysis.metrics import LoadingRates
from treadlab.analysis.segments import Segment, resolve_segment
from treadlab.analysis.session import Session, read_session
from treadlab.analysis.store import BLOCK_SAMPLES, FootSignals, SignalStore
from treadlab.analysis.strike import StrikeIndex
from treadlab.analysis.summary import summarize
from treadlab.analysis.timing import add_timing
from treadlab.errors import AnalysisError, ConfigError
from treadlab.vocabulary import FEET

__all__ = ["ENRICHERS", "SOURCES", "AnalysisSource", "FootSignals", "GaitAnalysis", "InsoleScaleWarning",
           "StepEnricher", "analyze", "default_source", "register_enricher", "register_source"]

SCALE_TOLERANCE = 0.15


class InsoleScaleWarning(UserWarning):
    """The insoles' whole-stride mean force and the body weight from body mass disagree by more than 15%."""


STEP_COLUMNS = (
    "foot", "gait", "quality", "ic_s", "to_s", "contact_time_ms", "flight_time_ms", "step_time_ms",
    "stride_time_ms", "duty_factor", "cadence_spm", "strike_index_pct", "strike_class", "strike_flag",
    "onset_diff_ms", "onset_class",
    "strike_agree", "impact_peak_bw", "impact_peak_s", "loading_reference", "avlr_bw_s", "vilr_bw_s",
    "peak_force_bw", "peak_force_s", "impulse_bw_s", "impulse_n_s", "first_sample", "stop_sample",
)


def _timed(table: pd.DataFrame, break_times: np.ndarray) -> pd.DataFrame:
    """Timing (:func:`add_timing`), gait and quality (:func:`classify_gait`), columns in order."""
    return _order(classify_gait(add_timing(table, break_times)))


def _order(table: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in STEP_COLUMNS if c in table] + [c for c in table if c not in STEP_COLUMNS]
    return table[cols].sort_values("ic_s", kind="stable").reset_index(drop=True)


def whole_stride_mean_force(steps: pd.DataFrame) -> float:
    """Sum over feet of the mean force over whole strides (stance impulse / stride time); NaN without strides."""
    total = 0.0
    for foot in FEET:
        part = steps[(steps["foot"] == foot) & np.isfinite(steps["stride_time_ms"])]
        if "quality" in part:  # standing and short contacts are not strides
            part = part[part["quality"] == QUALITY_OK]
        if part.empty:
            return float("nan")
        total += part["impulse_n_s"].sum() / (part["stride_time_ms"].sum() * 1e-3)
    return float(total)


def _ranges(part: pd.DataFrame) -> tuple:
    """Sample ranges of steps (insoles), or none (a mat's in-memory signals are read whole)."""
    if "first_sample" in part and "stop_sample" in part:
        return part["first_sample"].to_numpy(np.int64), part["stop_sample"].to_numpy(np.int64)
    return None, None


class GaitAnalysis:
    """Steps, summary and per-step arrays of one session (or a segment of it). Made by :func:`analyze`.

    Attributes
    ----------
    session : Session
    source : str
        "insoles" or "mat".
    segment : Segment
    steps : DataFrame
        One row per foot contact in the segment (columns in ``docs/analysis.md``), standing and flagged rows
        included.
    summary_steps : DataFrame
        The rows of ``steps`` the summary averages and the per-step arrays (force curves, COP paths, pressure
        maps) cover: quality "ok", of the summary's gait (``summary["gait"]``).
    gait : str
        The gait asked for ("auto", "running", "walking", "all"; see ``summarize``).
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
    enrichments : dict
        Per registered :class:`StepEnricher` that ran: its state (what it attached to the steps came from).
    """

    def __init__(self, session: Session, source: str, all_steps: pd.DataFrame, signals: dict, segment: Segment,
                 info: dict, owns_session: bool = False, mat_result=None, store: SignalStore | None = None,
                 gait: str = "auto", enrichments: dict | None = None):
        self.session = session
        self.enrichments = dict(enrichments or {})
        self.gait = gait
        self._store = store  # per-sample signals on disk; owned by the analysis analyze() made, not by selections
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
        inside = segment.contains(all_steps["ic_s"])
        if "gait" in all_steps:  # a standing period overlapping the segment is in it
            inside |= ((all_steps["gait"] == "standing") & (all_steps["to_s"] > segment.start_s)
                       & (all_steps["ic_s"] < segment.stop_s)).to_numpy()
        self.steps = all_steps[inside].reset_index(drop=True)
        self.summary_steps = self.steps[summary_rows(self.steps, summary_gait(self.steps, gait))].reset_index(drop=True)
        extra = {"file": str(session.path), "source": source, "segment": segment.to_dict(),
                 "body_mass_kg": session.body_mass_kg, "treadmill_speed_mps": session.treadmill_speed_mps}
        extra.update({k: v for k, v in info.items() if k not in ("norm_n",)})
        extra["normalising_force_n"] = self.norm_n
        self.summary = summarize(self.steps, duration_s=segment.duration_s, extra=extra, gait=gait)
        self.summary["markers"] = [{"time_s": float(r.time), "label": str(r.label)}
                                   for r in session.markers.itertuples() if segment.contains(r.time)]
        if mat_result is not None:
            self.summary["mat"] = mat_result.summary(segment)
        for name, state in self.enrichments.items():  # one iteration per enricher (a few)
            ENRICHERS[name].summarize(self, state)

    def with_gait(self, gait: str) -> GaitAnalysis:
        """The same analysis whose summary averages ``gait`` (it takes over this one's files: use it instead)."""
        return GaitAnalysis(self.session, self.source, self.all_steps, self.signals, self.segment, self.info,
                            self._owns, mat_result=self.mat_result, store=self._store, gait=gait,
                            enrichments=self.enrichments)

    # Segments ---------------------------------------------------------------------------------------------
    def select(self, start_s: float | None = None, stop_s: float | None = None, *, from_marker: str | None = None,
               to_marker: str | None = None) -> GaitAnalysis:
        """The analysis restricted to steps whose initial contact lies in a window (times and/or markers)."""
        seg = resolve_segment(self.session.time_range_s, self.session.markers, start_s=start_s, stop_s=stop_s,
                              from_marker=from_marker, to_marker=to_marker, where=self.session.path.name)
        return GaitAnalysis(self.session, self.source, self.all_steps, self.signals, seg, self.info,
                            mat_result=self.mat_result, gait=self.gait, enrichments=self.enrichments)

    @property
    def markers(self) -> pd.DataFrame:
        """Markers of the session (``time``, ``label``)."""
        return self.session.markers

    # Per-step arrays --------------------------------------------------------------------------------------
    def _foot(self, foot: str) -> tuple[FootSignals, pd.DataFrame]:
        if foot not in self.signals:
            raise AnalysisError(f"no {foot} foot in this analysis (feet: {', '.join(self.signals) or 'none'})")
        return self.signals[foot], self.summary_steps[self.summary_steps["foot"] == foot]

    def force_curves(self, foot: str, n_points: int = 101) -> np.ndarray:
        """Force (BW, filtered) of each step of ``foot`` on a stance-normalised axis: shape (steps, n_points)."""
        sig, part = self._foot(foot)
        return sig.stance_curves("force_bw", part["ic_s"].to_numpy(), part["to_s"].to_numpy(), *_ranges(part),
                                 n_points=n_points)

    def cop_paths(self, foot: str, n_points: int = 101) -> np.ndarray:
        """COP (mm, foot frame) of each step on a stance-normalised axis: shape (steps, n_points, 2).

        NaN where the foot carries almost nothing (and for footswitches and mats).
        """
        sig, part = self._foot(foot)
        if not sig.has_cop:
            return np.full((len(part), n_points, 2), np.nan)
        return sig.stance_curves("cop_mm", part["ic_s"].to_numpy(), part["to_s"].to_numpy(), *_ranges(part),
                                 n_points=n_points)

    def pressure_maps(self, foot: str) -> dict:
        """Peak and mean value per sensel of ``foot`` over the stance phases of the segment's steps.

        One chunked pass over the raw data. Returns ``peak``, ``mean`` (per sensel, in ``unit``: kPa for
        pressure insoles, else N or counts), ``positions_mm``, ``areas_mm2``, ``foot_length_mm``, ``unit``,
        ``steps``.
        """
        sig, part = self._foot(foot)
        ins = sig.device
        if self.source != "insoles":
            raise AnalysisError(f"pressure maps need insoles; the {foot} foot comes from the {self.source} "
                                "(use mat_footprint)")
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
        averaged over the segment (see :meth:`MatAnalysis.mean_footprint`).
        """
        if self.mat_result is None:
            raise AnalysisError("this session has no pressure mat")
        return self.mat_result.mean_footprint(foot, self.segment)

    # Lifecycle --------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Delete the analysis' temporary signals and close the session file if :func:`analyze` opened it.

        Selections made from this analysis (:meth:`select`) share both: use them before closing it.
        """
        if self._store is not None:
            self._store.close()
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
            to_marker: str | None = None, block_samples: int = BLOCK_SAMPLES, gait: str = "auto",
            options: dict | None = None) -> GaitAnalysis:
    """Analyse a session: steps of both feet, metrics, summary.

    Parameters
    ----------
    session : Session, str or Path
        An open session, or a path (then the returned analysis owns the file: close it or use ``with``).
    source : str
        A name of :data:`SOURCES` ("insoles", "mat", "force"...), or "auto": the first the session can give
        (:func:`default_source`).
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
    block_samples : int
        Insole samples per block of the streaming passes (``treadlab.analysis.insolepass``): memory is bounded by
        the block, not by the length of the session. Sessions up to 1.5 blocks are analysed in one piece.
    gait : {"auto", "running", "walking", "all"}
        The steps the summary averages (``steps`` keeps every row, with its ``gait``): "auto" (running when the
        segment has running steps, else walking), one gait, or "all" (walking and running; never standing).

    Returns
    -------
    GaitAnalysis

    Raises
    ------
    SessionFileError, AnalysisError, ConfigError
    """
    if source not in SOURCES and source != "auto":
        raise ConfigError(f"invalid source {source!r}: choose {' or '.join(repr(k) for k in SOURCES)} or 'auto'")
    if normalise not in ("body_mass", "insole"):
        raise ConfigError(f"invalid normalise {normalise!r}: choose 'body_mass' or 'insole'")
    if gait not in ("auto", "running", "walking", "all"):
        raise ConfigError(f"invalid gait {gait!r}: choose 'auto', 'running', 'walking' or 'all'")
    owns = not isinstance(session, Session)
    s = read_session(session) if owns else session
    try:
        # One BLAS thread: the analysis' matrix products are small (five columns, or a banded system), where
        # BLAS threads only add waiting, and several times over on a shared, loaded machine.
        with threadpool_limits(limits=1, user_api="blas"):
            source = default_source(s) if source == "auto" else source  # the first source the session has
            seg = resolve_segment(s.time_range_s, s.markers, start_s=start_s, stop_s=stop_s,
                                  from_marker=from_marker, to_marker=to_marker, where=s.path.name)
            src = SOURCES[source]
            extra = {"options": options or {}} if src.takes_options else {}
            ga = src.run(s, seg, owns, normalise, filter_cutoff_hz, contact or ContactDetection(),
                         loading or LoadingRates(), strike or StrikeIndex(), block_samples, **extra)
            try:
                ga = _enrich(ga, options or {})
            except BaseException:
                if ga._store is not None:  # noqa: SLF001 - the analysis made here owns its store
                    ga._store.close()  # noqa: SLF001
                raise
        return ga if gait == "auto" else ga.with_gait(gait)
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
                     strike, block_samples: int) -> GaitAnalysis:
    missing = [f for f in FEET if f not in s.insoles]
    if missing:
        have = ", ".join(f"{n} ({d.kind or '?'} {d.side})" for n, d in s.devices.items()) or "none"
        raise AnalysisError(f"{s.path.name} has no {' or '.join(missing)} insole (devices: {have})")
    store = SignalStore()
    try:
        return _insole_passes(s, seg, owns, normalise, cutoff_hz, contact, loading, strike, block_samples, store)
    except BaseException:
        store.close()
        raise


def _insole_passes(s: Session, seg: Segment, owns: bool, normalise: str, cutoff_hz, contact, loading, strike,
                   block_samples: int, store: SignalStore) -> GaitAnalysis:
    passes = {f: FootPass(f, s.insoles[f], store, block_samples).spill().detect_contacts(contact) for f in FEET}
    for f in FEET:
        if passes[f].contacts_.empty:
            raise AnalysisError(f"no steps found on the {f} insole of {s.path.name}")
    # Whole-stride mean force needs only contacts and strides: a first timing pass in raw force units.
    rough = pd.concat([passes[f].contacts_.assign(foot=f) for f in FEET], ignore_index=True)
    break_times = np.sort(np.concatenate([passes[f].break_times_s_ for f in FEET]))
    rough_t = add_timing(rough[["foot", "ic_s", "to_s", "impulse_n_s", "quality"]], break_times)
    calibrated = all(s.insoles[f].calibrated and s.insoles[f].n_values > 1 for f in FEET)
    info = _norm(s, whole_stride_mean_force(rough_t), calibrated, normalise, [])
    if cutoff_hz == "auto":  # one cutoff for both feet, so that filtering does not bias the asymmetry
        cutoff_hz = min(passes[f].auto_cutoff(info["norm_n"], loading) for f in FEET)
    tables, signals = [], {}
    for f in FEET:
        tab, signals[f] = passes[f].table(info["norm_n"], cutoff_hz, loading, strike)
        tables.append(tab)
    steps = _timed(pd.concat(tables, ignore_index=True), break_times)
    info["parameters"] = {"filter_cutoff_hz": dict.fromkeys(FEET, cutoff_hz),
                          "contact": _params(contact), "loading": _params(loading), "strike": _params(strike)}
    info["blocks"] = {f: passes[f].n_blocks for f in FEET}
    info["gaps"] = {name: int(len(d.gaps)) for name, d in s.devices.items()}
    mat_result = None
    if s.mats:
        mat_result = matmod.MatAnalysis().detect(s.mats[0], info["norm_n"], s.treadmill_speed_mps,
                                                 foot_length_mm=_insole_foot_length(s))
        info["mat_agreement"] = matmod.match_steps(steps, mat_result.steps_)
    return GaitAnalysis(s, "insoles", steps, signals, seg, info, owns, mat_result=mat_result, store=store)


def _params(obj) -> dict:
    """An algorithm object's parameters (its attributes without a trailing underscore)."""
    return {k: v for k, v in vars(obj).items() if not k.endswith("_")}


def _insole_foot_length(s: Session) -> float | None:
    """The foot length of the session's insole layouts (median over the insoles), or None without insoles."""
    lengths = [float(ins.foot_length_mm) for ins in s.insoles.values()]
    lengths = [v for v in lengths if np.isfinite(v) and v > 0]
    return float(np.median(lengths)) if lengths else None


def _analyze_mat(s: Session, seg: Segment, owns: bool, normalise: str, *_unused) -> GaitAnalysis:
    if not s.mats:
        raise AnalysisError(f"{s.path.name} has no pressure mat (devices: {', '.join(s.devices) or 'none'})")
    mat = s.mats[0]
    res = matmod.MatAnalysis().detect(mat, 1.0, s.treadmill_speed_mps, foot_length_mm=_insole_foot_length(s))
    if res.steps_.empty:
        raise AnalysisError(f"no footprints found on the mat of {s.path.name}")
    rough = add_timing(res.steps_.assign(impulse_n_s=res.steps_["impulse_bw_s"]), res.break_times_)
    info = _norm(s, whole_stride_mean_force(rough), mat.calibrated, normalise, [], required=False)
    res.rescale(info["norm_n"])
    steps = _timed(res.steps_, res.break_times_)
    info["gaps"] = {name: int(len(d.gaps)) for name, d in s.devices.items()}
    info["belt_speed_mps"] = res.belt_speed_mps_
    signals = res.signals()
    return GaitAnalysis(s, "mat", steps, signals, seg, info, owns, mat_result=res)


@dataclass(frozen=True)
class AnalysisSource:
    """Where :func:`analyze` takes the steps from (``source=``, ``lab analyze --source``).

    Attributes
    ----------
    name : str
    run : callable
        ``run(session, segment, owns, normalise, cutoff_hz, contact, loading, strike, block_samples)``.
    available : callable
        ``available(session) -> bool``: the session has the devices this source needs.
    """

    name: str
    run: Callable
    available: Callable[[Session], bool]
    #: The source's ``run`` takes ``options=`` (the ``options`` dict of :func:`analyze`).
    takes_options: bool = False


#: The analysis sources, in order of preference when a report chooses one (:func:`default_source`).
SOURCES: dict[str, AnalysisSource] = {}


def register_source(source: AnalysisSource) -> None:
    """Add an analysis source (a new kind's own module calls this)."""
    SOURCES[source.name] = source


register_source(AnalysisSource("insoles", _analyze_insoles, lambda s: all(f in s.insoles for f in FEET)))
register_source(AnalysisSource("mat", _analyze_mat, lambda s: bool(s.mats)))


def default_source(session: Session) -> str:
    """The first source of :data:`SOURCES` the session can give (the first one when none can)."""
    return next((name for name, src in SOURCES.items() if src.available(session)), next(iter(SOURCES)))


@dataclass(frozen=True)
class StepEnricher:
    """Adds per-step columns (and summary keys) from other devices to the steps of any source.

    A new kind's analysis registers one (:func:`register_enricher`); :func:`analyze` runs every enricher whose
    ``available(session)`` is true after the source found the steps, in registration order.

    Attributes
    ----------
    name : str
    available : callable
        ``available(session) -> bool``.
    enrich : callable
        ``enrich(session, all_steps, source, options) -> (all_steps, state)``: the steps with the new columns
        (NaN where the devices do not cover a step), and whatever the summary needs later (``ga.enrichments``).
    summarize : callable
        ``summarize(ga, state)``: add keys to ``ga.summary`` (and attributes to ``ga``) for the steps of
        ``ga.summary_steps``; run for every :class:`GaitAnalysis` made from the analysis (selections too).
    """

    name: str
    available: Callable[[Session], bool]
    enrich: Callable
    summarize: Callable


#: The step enrichers, in the order they run.
ENRICHERS: dict[str, StepEnricher] = {}


def register_enricher(enricher: StepEnricher) -> None:
    """Add a step enricher (a new kind's own analysis module calls this)."""
    ENRICHERS[enricher.name] = enricher


def _enrich(ga: GaitAnalysis, options: dict) -> GaitAnalysis:
    """The analysis with every available enricher's columns added (the same object when none applies)."""
    steps, states = ga.all_steps, {}
    for name, e in ENRICHERS.items():  # one iteration per enricher (a few)
        if e.available(ga.session):
            steps, states[name] = e.enrich(ga.session, steps, ga.source, options.get(name))
    if not states:
        return ga
    return GaitAnalysis(ga.session, ga.source, _order(steps), ga.signals, ga.segment, ga.info,
                        ga._owns, mat_result=ga.mat_result, store=ga._store, gait=ga.gait,  # noqa: SLF001
                        enrichments=states)
