"""The "force" analysis source: the step table of a force plate or instrumented treadmill session.

``analyze(path, source="force")`` (``lab analyze FILE --source force``) finds the session's force device (the
first split-belt one, else the first one), reads its channels once, and makes the same step table and summary as
the insole source, with ``source`` "force". Definitions and constants: ``docs/analysis.md`` ("Force plates").
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from treadlab.analysis.api import GaitAnalysis, _timed, whole_stride_mean_force
from treadlab.analysis.force.events import ForceContacts, assign_feet, crossovers
from treadlab.analysis.force.plate import PlateAxes, PlateSignals, cop_mm, plate_signals
from treadlab.analysis.force.strike import ForceStrikeIndex
from treadlab.analysis.gaitclass import QUALITY_OK, QUALITY_SHORT
from treadlab.analysis.insolepass import AVLR_CUTOFF_FACTOR
from treadlab.analysis.metrics import LoadingRates, lowpass, step_force_metrics
from treadlab.analysis.ragged import range_sum
from treadlab.analysis.session import Session
from treadlab.analysis.store import FootSignals
from treadlab.errors import AnalysisError
from treadlab.vocabulary import FEET, G_MPS2

__all__ = ["BODY_MASS_TOLERANCE", "LOADING_CUTOFF_HZ", "ForceBodyMassWarning", "force_devices", "force_steps",
           "run_force"]

#: The force's body mass and the given one may differ by this fraction before a warning.
BODY_MASS_TOLERANCE = 0.05
#: Default zero-lag low-pass (4th order) of the vertical force for loading rates ("auto"; docs/analysis.md).
LOADING_CUTOFF_HZ = 100.0
_KINETIC = ("impact_peak_bw", "impact_peak_s", "avlr_bw_s", "vilr_bw_s", "peak_force_bw", "peak_force_s",
            "impulse_bw_s", "strike_index_pct")


class ForceBodyMassWarning(UserWarning):
    """The body mass from the plate's whole-stride mean vertical force and the given one differ by more than 5 %."""


def force_devices(s: Session) -> list:
    """The session's force devices (kind "force"), split-belt ones first, then by name."""
    return sorted(s.of_kind("force"), key=lambda d: (d.belts != "split", d.name))


def _belt_signals(d) -> dict[str, PlateSignals]:
    """Per belt ("single", or "left" and "right") the plate signals of force device ``d`` (one read)."""
    axes = PlateAxes.from_axes(d.axes)
    t = d.read_time(0, d.n_samples)
    ch = d.read_channels(list(d.channels), 0, d.n_samples)
    out = {}
    for plate in d.plates():  # one or two belts
        base = {b: ch[name] for b, name in plate.channels.items()}
        out[plate.belt] = plate_signals(t, base, axes, plate.origin_mm, plate.size_mm, base.get("belt_speed"))
    return out


def _belt_travel_mm(t: np.ndarray, speed_mps: np.ndarray | None, nominal_mps: float) -> np.ndarray:
    """Cumulative belt travel (mm) at every sample: the speed channel integrated, else the nominal speed."""
    if speed_mps is not None and np.isfinite(speed_mps).any():
        v = np.nan_to_num(np.asarray(speed_mps, np.float64), nan=float(np.nanmedian(speed_mps)))
        v = np.abs(v)
        dt = np.diff(t, prepend=t[0])
        dt[~np.isfinite(dt) | (dt < 0)] = 0.0
        return np.cumsum(0.5 * (v + np.r_[v[0], v[:-1]]) * dt) * 1e3
    return (t - t[0]) * abs(nominal_mps) * 1e3 if np.isfinite(nominal_mps) else np.full(len(t), np.nan)


def force_steps(sig: PlateSignals, breaks: np.ndarray, bw_n: float, norm_n: float, foot_length_mm: float,
                speed_mps: float, contact: ForceContacts, loading: LoadingRates, strike: ForceStrikeIndex,
                loading_cutoff_hz: float | None) -> tuple[pd.DataFrame, dict]:
    """Contacts and per-step metrics of one belt (foot still unassigned on a single belt).

    Returns the table (``first_sample``, ``stop_sample``, ``ic_s``, ``to_s``, kinetics, strike index,
    ``lateral_mm``, ``quality``, ``impulse_n_s``) and the belt's filtered signals (``time_s``, ``force``,
    ``force_bw``, ``cop_mm`` as (right, forward), ``fz_contact_n``).
    """
    t = sig.time_s
    fz = sig.fz_n
    f_load = lowpass(t, fz, loading_cutoff_hz, breaks)
    f_contact = f_load if contact.cutoff_hz == loading_cutoff_hz else None
    c = contact.detect(t, fz, breaks, filtered_n=f_contact).contacts_
    f_cop = lowpass(t, fz, strike.cutoff_hz, breaks, order=2)
    m_fwd = lowpass(t, sig.m_fwd_nmm, strike.cutoff_hz, breaks, order=2)
    m_lat = lowpass(t, sig.m_lat_nmm, strike.cutoff_hz, breaks, order=2)
    cop = cop_mm(f_cop, m_fwd, m_lat, strike.gate_bw * bw_n, sig.cop_bounds_mm)
    first = c["first"].to_numpy(np.int64)
    stop = c["stop"].to_numpy(np.int64)
    ic, to = c["ic_s"].to_numpy(), c["to_s"].to_numpy()
    dt = np.gradient(t) if len(t) > 1 else np.ones(len(t))
    table = pd.DataFrame({"ic_s": ic, "to_s": to, "contact_time_ms": (to - ic) * 1e3})
    table["quality"] = np.where(c["short"].to_numpy(bool), QUALITY_SHORT, QUALITY_OK).astype(object)
    table["impulse_n_s"] = range_sum(fz * dt, first, stop)
    good = np.isfinite(cop[:, 1])
    n_lat = range_sum(good.astype(np.float64), first, stop)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["lateral_mm"] = range_sum(np.where(good, cop[:, 1], 0.0), first, stop) / n_lat
    force_bw = f_load / norm_n
    ok = table["quality"].to_numpy() == QUALITY_OK
    for col in _KINETIC:
        table[col] = np.nan
    table["loading_reference"] = ""
    table["strike_class"] = ""
    table["strike_flag"] = ""
    table["cop_gate_s"] = np.nan
    table["belt_travel_mm"] = np.nan
    rows = np.flatnonzero(ok)
    if len(rows):
        fo, so, ico, too = first[rows], stop[rows], ic[rows], to[rows]
        # As for insoles: the impact peak and AVLR from a less filtered force (AVLR_CUTOFF_FACTOR x the cutoff).
        avlr_bw = lowpass(t, fz, AVLR_CUTOFF_FACTOR * loading_cutoff_hz, breaks) / norm_n if loading_cutoff_hz \
            else force_bw
        lr = loading.compute(t, force_bw, fo, so, ico, too, avlr_force_bw=avlr_bw)
        table.loc[rows, "impact_peak_bw"] = lr.impact_peak_bw_
        table.loc[rows, "impact_peak_s"] = lr.impact_peak_s_
        table.loc[rows, "avlr_bw_s"] = lr.avlr_bw_s_
        table.loc[rows, "vilr_bw_s"] = lr.vilr_bw_s_
        table.loc[rows, "loading_reference"] = np.where(np.isfinite(lr.impact_peak_bw_), "impact_peak",
                                                        "stance_13pct")
        fm = step_force_metrics(t, force_bw, fo, so, raw_force_bw=fz / norm_n)
        for col in fm:
            table.loc[rows, col] = fm[col].to_numpy()
        belt = _belt_travel_mm(t, sig.belt_speed_mps, speed_mps)
        if np.isfinite(foot_length_mm) and foot_length_mm > 0:
            si = strike.compute(t, f_cop, cop[:, 0], belt, fo, so, bw_n, foot_length_mm).table_
            for col in ("strike_index_pct", "strike_class", "strike_flag", "cop_gate_s", "belt_travel_mm"):
                table.loc[rows, col] = si[col].to_numpy()
            if not np.isfinite(belt).all():
                table.loc[rows, "strike_index_pct"] = np.nan
                table.loc[rows, "strike_class"] = ""
                table.loc[rows, "strike_flag"] = "no_belt_speed"
        else:
            table.loc[rows, "strike_flag"] = "no_foot_length"
    table["first_sample"] = first
    table["stop_sample"] = stop
    signals = {"time_s": t, "force": fz.astype(np.float32), "force_bw": force_bw.astype(np.float32),
               "cop_mm": cop[:, ::-1].astype(np.float32), "fz_contact_n": contact.filtered_n_}
    return table, signals


def _foot_length(s: Session, d, strike: ForceStrikeIndex) -> float:
    for v in (strike.foot_length_mm, d.attrs.get("foot_length_mm"), s.attrs.get("foot_length_mm")):
        try:
            if v is not None and np.isfinite(float(v)) and float(v) > 0:
                return float(v)
        except (TypeError, ValueError):
            continue
    return float("nan")


def _breaks_s(t: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    return t[breaks] if len(breaks) else np.empty(0)


def run_force(s: Session, seg, owns: bool, normalise: str, cutoff_hz, contact, loading, strike,
              block_samples: int) -> GaitAnalysis:
    """The ``run`` of the "force" :class:`~treadlab.analysis.api.AnalysisSource`."""
    devs = force_devices(s)
    if not devs:
        raise AnalysisError(f"{s.path.name} has no force device (devices: {', '.join(s.devices) or 'none'})")
    d = devs[0]
    contact = contact if isinstance(contact, ForceContacts) else ForceContacts()
    strike = strike if isinstance(strike, ForceStrikeIndex) else ForceStrikeIndex()
    loading = loading if isinstance(loading, LoadingRates) else LoadingRates()
    load_hz = LOADING_CUTOFF_HZ if cutoff_hz == "auto" else cutoff_hz
    if d.n_samples < 16:
        raise AnalysisError(f"{s.path.name}: force device {d.name!r} has {d.n_samples} samples")
    belts = _belt_signals(d)
    breaks = d.break_indices()
    t0 = next(iter(belts.values())).time_s
    break_times = _breaks_s(t0, breaks)
    bw_given = s.body_weight_n
    warn: list[str] = []
    # The body weight sets the COP gate: the given one, else a first estimate from the force (mean over the file).
    bw_gate = bw_given if np.isfinite(bw_given) else float(np.mean(sum(b.fz_n for b in belts.values())))
    norm_guess = bw_gate  # forces are rescaled below when the normalising force turns out to be another one
    foot_len = _foot_length(s, d, strike)
    tables, sigs = {}, {}
    for key, sig in belts.items():  # one or two belts
        tables[key], sigs[key] = force_steps(sig, breaks, bw_gate, norm_guess, foot_len, s.treadmill_speed_mps,
                                             contact, loading, strike, load_hz)
    if "single" in tables:
        tab = tables["single"]
        feet, run = assign_feet(tab["ic_s"].to_numpy(), tab["lateral_mm"].to_numpy(), break_times)
        tab.insert(0, "foot", feet)
        tab["run"] = run
        tab["force_flag"] = ""
        steps = tab
        signals = dict.fromkeys(FEET, sigs["single"])
    else:
        parts = []
        for foot in FEET:
            tab = tables[foot]
            other = sigs["right" if foot == "left" else "left"]["fz_contact_n"]
            fo, so = tab["first_sample"].to_numpy(np.int64), tab["stop_sample"].to_numpy(np.int64)
            q = (so - fo) // 4  # the middle half of the stance: ignores the other foot's edges touching
            tab["crossover"] = crossovers(fo + q, so - q, other, contact.on_n)
            tab.insert(0, "foot", foot)
            parts.append(tab)
        steps = pd.concat(parts, ignore_index=True)
        signals = {f: sigs[f] for f in FEET}
    steps = _timed(steps, break_times)
    mean_force = whole_stride_mean_force(steps)
    force_mass = mean_force / G_MPS2 if np.isfinite(mean_force) else float("nan")
    if np.isfinite(s.body_mass_kg) and s.body_mass_kg > 0 and np.isfinite(force_mass):
        rel = force_mass / s.body_mass_kg - 1.0
        if abs(rel) > BODY_MASS_TOLERANCE:
            msg = (f"{s.path.name}: body mass from the force plate ({force_mass:.1f} kg, whole-stride mean vertical "
                   f"force / g) differs from the given {s.body_mass_kg:g} kg by {rel * 100:+.1f}%; check the body "
                   "mass or the plate's calibration and zero")
            warn.append(msg)
            warnings.warn(msg, ForceBodyMassWarning, stacklevel=3)
    norm_n = bw_given if normalise == "body_mass" and np.isfinite(bw_given) else mean_force
    if not np.isfinite(norm_n) or norm_n <= 0:
        raise AnalysisError(f"{s.path.name}: cannot normalise forces (no body mass and no whole strides)")
    if norm_n != norm_guess:  # forces were divided by the first guess: rescale the BW columns and signals
        scale = norm_guess / norm_n
        for col in ("impact_peak_bw", "avlr_bw_s", "vilr_bw_s", "peak_force_bw", "impulse_bw_s"):
            steps[col] = steps[col] * scale
        for sig in sigs.values():
            sig["force_bw"] = (sig["force_bw"] * scale).astype(np.float32)
    if "crossover" in steps:
        cross = steps["crossover"].to_numpy(bool) & (steps["gait"] == "running").to_numpy()
        steps["force_flag"] = np.where(cross, "crossover", "")
        for col in _KINETIC:
            steps.loc[cross, col] = np.nan
        steps.loc[cross, "strike_class"] = ""
        steps = steps.drop(columns="crossover")
    steps["source"] = "force"
    steps["onset_diff_ms"] = np.nan
    steps["onset_class"] = ""
    steps["strike_agree"] = False
    fs_by_foot = {f: FootSignals.from_arrays(f, signals[f]["time_s"], signals[f]["force"], signals[f]["force_bw"],
                                             signals[f]["cop_mm"], breaks, device=d,
                                             extra={"filter_cutoff_hz": load_hz})
                  for f in FEET}
    scale = mean_force / bw_given if np.isfinite(bw_given) and bw_given > 0 else float("nan")
    info = {"body_weight_n": bw_given, "insole_mean_force_n": mean_force, "insole_scale": scale,
            "normalised_by": "body_mass" if norm_n == bw_given else "force", "norm_n": norm_n, "warnings": warn,
            "force_body_mass_kg": force_mass, "force_mean_force_n": mean_force, "force_device": d.name,
            "belts": "split" if "single" not in tables else "single", "foot_length_mm": foot_len,
            "gaps": {name: int(len(x.gaps)) for name, x in s.devices.items()},
            "parameters": {"filter_cutoff_hz": dict.fromkeys(FEET, load_hz), "cop_cutoff_hz": strike.cutoff_hz,
                           "contact": _params(contact), "loading": _params(loading), "strike": _params(strike)}}
    return GaitAnalysis(s, "force", steps, fs_by_foot, seg, info, owns)


def _params(obj) -> dict:
    return {k: v for k, v in vars(obj).items() if not k.endswith("_")}
