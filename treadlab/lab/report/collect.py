"""Fill a :class:`~treadlab.lab.report.model.SessionView` from the analysis API, and parse segment arguments.

Nothing here computes a gait metric: steps, summary, force curves, COP paths and pressure maps come from
:func:`treadlab.analysis.analyze` (:class:`~treadlab.analysis.api.GaitAnalysis`). This module only converts units
for display (per-sensel newtons to kPa), reads the data-quality counters the recorder wrote, and finds the foot
outline of the insole's layout.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from treadlab.analysis import insoleviews, matviews
from treadlab.analysis.api import GaitAnalysis, analyze, default_source
from treadlab.analysis.session import Session, read_session
from treadlab.drivers.layouts import foot_outline_mm, load_layout
from treadlab.errors import ConfigError, LabError, SessionFileError
from treadlab.lab.report.force import force_butterfly
from treadlab.lab.report.model import FootView, SessionView
from treadlab.lab.report.retraining import retraining_doc
from treadlab.vocabulary import FEET


@dataclass(frozen=True)
class SegmentSpec:
    """A session file, optionally restricted to the steps between two markers (``FILE:MARK1..MARK2``)."""

    path: Path
    from_marker: str | None = None
    to_marker: str | None = None

    @property
    def label(self) -> str:
        """How the report names it."""
        if self.from_marker is None and self.to_marker is None:
            return self.path.name
        return f"{self.path.name}:{self.from_marker or ''}..{self.to_marker or ''}"


_SEGMENT = re.compile(r"^(?P<path>.+):(?P<a>[^:]*)\.\.(?P<b>[^:]*)$")


def parse_segment(text: str) -> SegmentSpec:
    """Parse ``FILE``, ``FILE:MARK1..MARK2``, ``FILE:MARK1..`` or ``FILE:..MARK2``.

    Raises
    ------
    ConfigError
        When the text has a segment part with neither marker.
    SessionFileError
        When the file does not exist.
    """
    m = _SEGMENT.match(text)
    if m and not Path(text).exists():
        a, b = m.group("a").strip() or None, m.group("b").strip() or None
        if a is None and b is None:
            raise ConfigError(f"segment {text!r} names no marker: write FILE:MARK1..MARK2, FILE:MARK1.. or "
                              "FILE:..MARK2")
        spec = SegmentSpec(Path(m.group("path")), a, b)
    else:
        spec = SegmentSpec(Path(text))
    if not spec.path.exists():
        raise SessionFileError(f"session file {spec.path} does not exist")
    return spec


@contextlib.contextmanager
def open_analysis(spec: SegmentSpec, source: str | None = None) -> Iterator[GaitAnalysis]:
    """:func:`~treadlab.analysis.analyze` of the file, restricted to the segment; closes the file afterwards.

    Parameters
    ----------
    spec : SegmentSpec
    source : str or None
        A name of :data:`treadlab.analysis.api.SOURCES`; None: the first the session can give
        (:func:`~treadlab.analysis.api.default_source`: the insoles when it has both feet's, else the mat).
    """
    session = read_session(spec.path)
    try:
        if source is None:
            source = default_source(session)
        with analyze(session, source=source, from_marker=spec.from_marker, to_marker=spec.to_marker) as ga:
            yield ga
    finally:
        session.close()


# --------------------------------------------------------------------------------------------- views


def session_view(ga: GaitAnalysis, source: str) -> SessionView:
    """Everything a report shows about one analysed session or segment.

    Parameters
    ----------
    ga : GaitAnalysis
        The analysis (already restricted to the segment).
    source : str
        How the report names the data (file and segment).
    """
    s = ga.session
    feet = {}
    for foot in FEET:
        if foot not in ga.signals:
            continue
        feet[foot] = _foot_view(ga, foot)
    footprints, pitch, butterfly, fp_steps = _mat_views(ga)
    note = "Measured on the pressure mat."
    if butterfly is None and ga.source == "force":  # a force plate's own COP (lab/report/force.py)
        butterfly, note = force_butterfly(ga)
    if butterfly is None and ga.source != "force":
        tr = insoleviews.insole_cop_trace(ga.signals, ga.summary_steps, s.treadmill_speed_mps)
        butterfly = {f: tr.loc[tr["foot"] == f, ["right_mm", "forward_mm"]].to_numpy() for f in FEET} if len(tr) \
            else None
        note = (f"From the insoles at the belt speed ({s.treadmill_speed_mps:.2f} m/s), feet drawn "
                f"{insoleviews.ASSUMED_STEP_WIDTH_MM:.0f} mm apart (assumed; a mat measures it).")
    markers = [(float(m["time_s"]), str(m["label"])) for m in ga.summary.get("markers", [])]
    meta = {
        "participant": s.participant, "condition": s.condition, "shoe": s.shoe,
        "date": _date(s.start_utc or s.created), "treadmill_speed_mps": s.treadmill_speed_mps,
        "body_mass_kg": s.body_mass_kg, "duration_s": ga.summary.get("duration_s"),
        "devices": [_device_text(d) for d in s.devices.values()],
    }
    q = quality(s)
    return SessionView(source=source, meta=meta, quality=q, summary=ga.summary, steps=ga.summary_steps,
                       feet=feet, footprints_kpa=footprints, footprint_steps=fp_steps, pitch_mm=pitch,
                       butterfly_mm=butterfly, butterfly_note=note, markers=markers,
                       retraining=retraining_doc(s.path, ga.steps), pelvis_obliquity_deg=_pelvis_obliquity(ga))


def _pelvis_obliquity(ga: GaitAnalysis) -> dict | None:
    """Mean pelvic obliquity over the stride per stance side, when the analysis has a pelvis IMU."""
    curves = getattr(ga, "pelvic_obliquity_curves", None)
    if curves is None:
        return None
    out = curves() if callable(curves) else curves
    return {f: np.asarray(c, dtype=float) for f, c in (out or {}).items() if c is not None} or None


def _foot_view(ga: GaitAnalysis, foot: str) -> FootView:
    view = FootView(curves_bw=ga.force_curves(foot))
    dev = ga.signals[foot].device
    if not ga.signals[foot].has_cop or getattr(dev, "positions_mm", None) is None:
        return view
    view.cop_mm = ga.cop_paths(foot)
    si = ga.summary.get("feet", {}).get(foot, {}).get("strike_index_pct", {}).get("mean")
    if si is not None and np.isfinite(si) and np.isfinite(dev.foot_length_mm):
        view.touchdown_y_mm = float(si) / 100.0 * float(dev.foot_length_mm)
    view.outline_mm = outline_for(dev.info.get("layout"), dev.foot_length_mm)
    if dev.n_values > 1 and len(ga.steps):
        maps = insoleviews.pressure_maps(ga, foot)
        factor = to_kpa(maps["unit"], maps["areas_mm2"])
        if factor is not None:
            view.positions_mm = maps["positions_mm"]
            view.areas_mm2 = maps["areas_mm2"]
            view.peak_kpa = np.asarray(maps["peak"], float) * factor
            view.mean_kpa = np.asarray(maps["mean"], float) * factor
            view.map_steps = (int(maps["sampled_steps"]), int(maps["steps"]))
    return view


def to_kpa(unit: str, areas_mm2: np.ndarray) -> np.ndarray | None:
    """Factor per sensel from the pressure maps' unit to kPa (None for raw counts, which have no pressure)."""
    if unit == "kPa":
        return np.ones(len(areas_mm2))
    if unit == "N":
        return 1e3 / np.asarray(areas_mm2, dtype=float)  # N / mm^2 = MPa = 1000 kPa
    return None


def _mat_views(ga: GaitAnalysis) -> tuple[dict | None, float, np.ndarray | None, list]:
    """Mean footprint per foot (kPa), the butterfly of the segment and the steps the footprints are from (sampled,
    of all), when the session has a mat.
    """
    res = getattr(ga, "mat_result", None)
    if res is None or not len(res.steps_):
        return None, 1.0, None, []
    mat = res.mat
    seg = ga.segment
    steps = res.steps_[seg.contains(res.steps_["ic_s"])]
    fps = matviews.mean_footprints(mat, steps, res.belt_axis_, res.forward_sign_, res.belt_speed_mps_)
    factor = to_kpa(mat.unit, np.array([mat.pitch_mm**2]))
    images = None
    if factor is not None:
        images = {f: fps[f]["mean"] * float(factor[0]) for f in FEET if f in fps}
    trace = matviews.cop_trace(mat, res.belt_axis_, res.forward_sign_, seg.start_s, seg.stop_s)
    used = [(int(fps[f]["sampled_steps"]), int(fps[f]["steps"])) for f in FEET if f in fps]
    return images or None, float(mat.pitch_mm), {"both": trace[["right_mm", "forward_mm"]].to_numpy()}, used


def _device_text(dev) -> str:
    rate = f", {dev.rate_hz:g} Hz" if np.isfinite(dev.rate_hz) else ""
    side = f" {dev.side}" if dev.side else ""
    return f"{dev.name} ({dev.kind or '?'}{side}{rate})"


def _date(text: str) -> str:
    t = (text or "").replace("T", " ")
    return t[:16] + " UTC" if len(t) >= 16 else t


def quality(session: Session) -> dict:
    """Data-quality counters the recorder wrote, summed over devices (None where a file has none).

    Parameters
    ----------
    session : Session
        The open session (read through the analysis reader: the final device attributes, gaps).
    """
    out = {"lost_samples": None, "gaps": None, "crc_errors": None, "clock": None}
    lost = crc = gaps = 0
    have = False
    fits = []
    for name, d in {**session.devices, **session.streams}.items():
        a = d.attrs
        if "lost_samples" in a:
            have = True
            lost += int(a["lost_samples"])
            crc += int(a.get("crc_errors", 0))
        gaps += len(d.gaps)
        res, drift = float(a.get("fit_residual_ms", np.nan)), float(a.get("drift_ppm", np.nan))
        if np.isfinite(res):
            fits.append(f"{name} {drift:+.0f} ppm, residual {res:.2f} ms")
    out["gaps"] = gaps
    if have:
        out["lost_samples"], out["crc_errors"] = lost, crc
    out["clock"] = "; ".join(fits) if fits else "not fitted (recording or crashed file)"
    return out


def outline_for(layout, foot_length_mm: float) -> np.ndarray | None:
    """The foot outline of an insole layout (name or inline table), else the standard outline of the foot length."""
    if layout:
        with contextlib.suppress(LabError, TypeError, ValueError, KeyError):
            lay = load_layout(layout)
            if len(lay.outline_mm) >= 3:
                return np.asarray(lay.outline_mm, dtype=float)
    if not np.isfinite(foot_length_mm) or foot_length_mm <= 0:
        return None
    return np.asarray(foot_outline_mm(foot_length_mm), dtype=float)
