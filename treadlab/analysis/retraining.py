"""Numbers of a retraining session: how fast the runner reached the target band, and whether it held.

Reads the ``/feedback`` group of a session file (:func:`read_feedback`) and, from the offline step table (the same
values as ``lab analyze``), computes per phase the share of steps in band, the time to criterion, the retention
ratio, baseline versus retention with a 95 % CI and Hedges' g, and the side effects on the other metrics
(:func:`retraining_numbers`). Definitions in ``docs/feedback.md``:

- time to criterion: from the start of the first feedback phase to the first step (both feet, in order of
  initial contact) from which the centred rolling median of 10 steps stays in band for 20 steps;
- retention ratio: ``(retention mean - baseline mean) / (feedback mean - baseline mean)``; baseline = the phases
  without feedback before the first feedback phase, feedback = the phases with feedback (faded ones included),
  retention = the phases without feedback after the first feedback phase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from treadlab.analysis.compare import hedges_g, welch_ci
from treadlab.errors import SessionFileError
from treadlab.sessionfile import open_session_file

__all__ = ["FeedbackRecord", "SIDE_EFFECT_METRICS", "in_band", "phase_slug", "read_feedback",
           "retention_ratio", "retraining_numbers", "time_to_criterion"]

SIDE_EFFECT_METRICS = ("cadence_spm", "contact_time_ms", "vilr_bw_s", "avlr_bw_s", "strike_index_pct")
MEDIAN_STEPS = 10
HOLD_STEPS = 20


@dataclass
class FeedbackRecord:
    """The ``/feedback`` group: attributes, phases (start, stop, name, share), cues, band rows."""

    attrs: dict
    phases: pd.DataFrame
    cues: pd.DataFrame
    band: pd.DataFrame


def read_feedback(path: str | Path | h5py.File) -> FeedbackRecord | None:
    """The ``/feedback`` group of a session file (None when it has none; a file being recorded reads too).

    ``path`` may be an open file (it stays open).

    Raises
    ------
    SessionFileError
        The group is there but damaged.
    """
    if isinstance(path, h5py.File):
        return _read_group(path, Path(path.filename))
    path = Path(path)
    f, _ = open_session_file(path)
    with f:
        return _read_group(f, path)


def _read_group(f: h5py.File, path: Path) -> FeedbackRecord | None:
    g = f.get("feedback")
    if g is None:
        return None
    try:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
        ph = g["phases"]
        names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in ph["name"][()]]
        phases = pd.DataFrame({"start": ph["start"][()], "stop": ph["stop"][()], "name": names})
        cols = {k: g["cues"][k][()] for k in ("time", "ic", "foot", "value", "in_band", "phase")}
        band = pd.DataFrame({k: g["band"][k][()] for k in ("time", "low", "high")}) if "band" in g else \
            pd.DataFrame({"time": [], "low": [], "high": []})
    except (KeyError, OSError, ValueError) as exc:
        raise SessionFileError(f"{path.name}: /feedback is damaged ({exc})") from None
    n = min(len(v) for v in cols.values())  # a file being written may hold a row more in some columns
    cues = pd.DataFrame({k: v[:n] for k, v in cols.items()})
    cues = cues[np.isfinite(cues["time"].to_numpy())].reset_index(drop=True)
    return FeedbackRecord(attrs, phases, cues, band)


def phase_slug(name: str) -> str:
    """A phase name as used in ``data-metric`` paths: lower case, runs of other characters as ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "phase"


def in_band(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    """True where ``low <= value <= high`` (a missing bound is open); False for NaN."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if low is not None and np.isfinite(low):
        ok &= v >= low
    if high is not None and np.isfinite(high):
        ok &= v <= high
    return ok


def time_to_criterion(ic_s: np.ndarray, values: np.ndarray, low: float | None, high: float | None, start_s: float,
                      median_steps: int = MEDIAN_STEPS, hold_steps: int = HOLD_STEPS) -> tuple[float, int]:
    """Seconds and steps from ``start_s`` to the first step from which the median stays in band.

    The steps from ``start_s`` on (both feet, in order), their centred rolling median over ``median_steps``
    (fewer at the ends), and the first step ``i`` with the median in band at steps ``i .. i + hold_steps - 1``.

    Returns
    -------
    seconds, steps : float, int
        ``(ic_i - start_s, i)`` with ``i`` counted from 0 at the first step after ``start_s``; ``(nan, -1)``
        when the criterion is never met.
    """
    ic = np.asarray(ic_s, dtype=float)
    order = np.argsort(ic, kind="stable")
    ic, v = ic[order], np.asarray(values, dtype=float)[order]
    keep = (ic >= start_s) & np.isfinite(v)
    ic, v = ic[keep], v[keep]
    if len(v) < hold_steps:
        return float("nan"), -1
    med = pd.Series(v).rolling(median_steps, center=True, min_periods=1).median().to_numpy()
    ok = in_band(med, low, high).astype(np.int64)
    run = np.convolve(ok, np.ones(hold_steps, np.int64), mode="valid")  # in-band count of each hold window
    hit = np.flatnonzero(run == hold_steps)
    if not len(hit):
        return float("nan"), -1
    i = int(hit[0])
    return float(ic[i] - start_s), i


def retention_ratio(baseline: np.ndarray, feedback: np.ndarray, retention: np.ndarray) -> float:
    """``(mean retention - mean baseline) / (mean feedback - mean baseline)`` (NaN when undefined)."""
    b, f, r = (np.asarray(x, dtype=float) for x in (baseline, feedback, retention))
    b, f, r = b[np.isfinite(b)], f[np.isfinite(f)], r[np.isfinite(r)]
    if not (len(b) and len(f) and len(r)):
        return float("nan")
    den = f.mean() - b.mean()
    return float((r.mean() - b.mean()) / den) if den != 0 else float("nan")


def _groups(phases: pd.DataFrame, shares: list[float]) -> dict[str, list[int]]:
    on = [i for i, s in enumerate(shares) if s > 0]
    first_on = on[0] if on else len(shares)
    return {"baseline": [i for i in range(first_on) if shares[i] <= 0], "feedback": on,
            "retention": [i for i in range(first_on + 1, len(shares)) if shares[i] <= 0]}


def retraining_numbers(steps: pd.DataFrame, phases: pd.DataFrame, shares: list[float], metric: str,
                       low: float | None, high: float | None) -> dict:
    """Every number of the retraining section.

    Parameters
    ----------
    steps : DataFrame
        The offline step table (``foot``, ``ic_s`` and the metric columns).
    phases : DataFrame
        ``start``, ``stop``, ``name``.
    shares : list of float
        The cued share of each phase (0 off, 1 on).
    metric : str
        The target metric.
    low, high : float or None
        The band.

    Returns
    -------
    dict
        ``metric``, ``band`` (low, high), ``phases`` (name, slug, start_s, stop_s, share, steps, mean,
        in_band_pct), ``in_band_pct_<slug>``, ``time_to_criterion_s``, ``time_to_criterion_steps``,
        ``retention_ratio``, ``baseline_vs_retention`` (baseline/retention mean and n, diff, ci_low, ci_high,
        hedges_g), ``side_effects`` ({metric: same fields}).
    """
    ic = steps["ic_s"].to_numpy(dtype=float)
    phase_of = np.full(len(ic), -1)
    for i, row in enumerate(phases.itertuples()):  # a few phases
        phase_of[(ic >= row.start) & (ic < row.stop)] = i
    vals = steps[metric].to_numpy(dtype=float) if metric in steps else np.full(len(ic), np.nan)
    flags = in_band(vals, low, high)
    out: dict = {"metric": metric, "band": {"low": low, "high": high}, "phases": []}
    for i, row in enumerate(phases.itertuples()):  # a few phases
        sel = (phase_of == i) & np.isfinite(vals)
        pct = float(100.0 * flags[sel].mean()) if sel.any() else float("nan")
        slug = phase_slug(row.name)
        out["phases"].append({"name": row.name, "slug": slug, "start_s": float(row.start), "stop_s": float(row.stop),
                              "share": float(shares[i]) if i < len(shares) else float("nan"),
                              "steps": int(sel.sum()), "mean": float(vals[sel].mean()) if sel.any() else float("nan"),
                              "in_band_pct": pct})
        out[f"in_band_pct_{slug}"] = pct
    groups = _groups(phases, list(shares))
    pick = {k: np.isin(phase_of, v) for k, v in groups.items()}
    start_on = float(phases["start"].iloc[groups["feedback"][0]]) if groups["feedback"] else float("nan")
    t_s, n = time_to_criterion(ic, vals, low, high, start_on) if np.isfinite(start_on) else (float("nan"), -1)
    out["time_to_criterion_s"] = t_s
    out["time_to_criterion_steps"] = n if n >= 0 else None
    out["retention_ratio"] = retention_ratio(vals[pick["baseline"]], vals[pick["feedback"]], vals[pick["retention"]])
    out["baseline_vs_retention"] = _contrast(vals[pick["baseline"]], vals[pick["retention"]])
    out["side_effects"] = {m: _contrast(steps[m].to_numpy(float)[pick["baseline"]],
                                        steps[m].to_numpy(float)[pick["retention"]])
                           for m in SIDE_EFFECT_METRICS if m != metric and m in steps}
    return out


def _contrast(base: np.ndarray, ret: np.ndarray) -> dict:
    b, r = base[np.isfinite(base)], ret[np.isfinite(ret)]
    diff, lo, hi = welch_ci(b, r)
    return {"baseline_mean": float(b.mean()) if len(b) else float("nan"), "baseline_n": int(len(b)),
            "retention_mean": float(r.mean()) if len(r) else float("nan"), "retention_n": int(len(r)),
            "diff": diff, "ci_low": lo, "ci_high": hi, "hedges_g": hedges_g(b, r)}
