"""Before-versus-after comparison of two step tables: differences with confidence intervals, effect sizes,
strike-pattern shifts, asymmetry changes, and a plain-language summary that never claims more than the intervals allow.

The inputs are the per-step tables of :mod:`treadlab.analysis` (one row per foot contact, a ``foot`` column of
``"left"``/``"right"`` and one column per metric, named as in ``lab analyze --steps``). Nothing here detects steps
or computes gait metrics; this module only compares what the analysis measured.

Statistics (documented in ``docs/reports.md``):

- Difference of means (after minus before) with a Welch 95% confidence interval (unequal variances,
  Welch-Satterthwaite degrees of freedom). Steps of one session are treated as independent samples; drift with
  fatigue makes them slightly dependent, so the interval is, if anything, a little narrow.
- Effect size: Hedges' g (Cohen's d with the pooled SD, times the small-sample correction
  ``J = 1 - 3 / (4 (n1 + n2) - 9)``).
- Step-to-step noise: the pooled within-session SD of the metric. A change is "beyond noise" when its size is
  larger than that SD (``|g|`` above about 1) *and* its confidence interval excludes zero.
- Strike-pattern shift: share of each class before and after with Newcombe's hybrid score 95% interval of the
  difference of proportions (sensible at 0% and 100%, where the Wald interval collapses).
- Symmetry index ``SI = (R - L) / (0.5 (R + L)) * 100`` of the per-foot means, with a delta-method 95% interval;
  the change of SI between sessions gets the interval of the difference. Metrics registered with
  ``asymmetry="difference"`` (the IMU angles and accelerations) get the difference ``R - L`` in their unit with
  its Welch interval instead, and their changes are told in their unit, not in %.
- Per-stride metrics registered with a ``summary_path`` (pelvic rotation and tilt) are compared from the two
  summaries' statistics (mean, SD, n over strides), with the same Welch interval, Hedges' g and noise SD.

Metrics are registered with :func:`register_metric`; the insole metrics (``vocabulary.METRIC_LABELS``) and the
IMU metrics (``vocabulary.IMU_METRIC_LABELS``, ``vocabulary.PELVIS_STRIDE_LABELS``) are registered here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from treadlab.analysis.gaitclass import summary_gait, summary_rows
from treadlab.analysis.imu.session import PELVIS_METRICS
from treadlab.errors import AnalysisError
from treadlab.vocabulary import (
    FEET,
    IMU_METRIC_LABELS,
    METRIC_LABELS,
    PELVIS_STRIDE_LABELS,
    STRIKE_CLASSES,
    classify_strike,
    json_clean,
)

#: Per-foot metrics compared, in report order: name -> (label, unit, decimals) (see :func:`register_metric`).
METRICS: dict[str, tuple[str, str, int]] = dict(METRIC_LABELS)
#: Metrics whose asymmetry is the difference R - L (in their unit) and whose changes are told in their unit.
DIFFERENCE_METRICS: set[str] = set()
#: Metrics compared from the summaries' statistics, ``foot="both"``: name -> path of keys into a summary.
SUMMARY_STAT_METRICS: dict[str, tuple[str, ...]] = {}
#: A change whose whole 95% interval lies within this many % of the "before" mean is called practically unchanged.
TRIVIAL_PCT = 1.0
#: Both feet pooled: steps per minute from each step's step time.
CADENCE = ("cadence", "steps/min", 0)


@dataclass(frozen=True)
class MetricChange:
    """One metric of one foot (or ``"both"``), before versus after.

    Attributes
    ----------
    metric, foot : str
        Metric name (a step-table column, or ``"cadence_spm"``) and ``"left"``, ``"right"`` or ``"both"``.
    before_mean, before_sd, after_mean, after_sd : float
        Step statistics of each session (NaN when there are no steps).
    before_n, after_n : int
        Number of steps with a value.
    diff : float
        ``after_mean - before_mean``.
    ci_low, ci_high : float
        Welch 95% confidence interval of ``diff`` (NaN with fewer than two steps on a side).
    pct_change, pct_ci_low, pct_ci_high : float
        The same in % of ``before_mean``.
    hedges_g : float
        Effect size.
    noise_sd : float
        Pooled step-to-step SD.
    ci_excludes_zero, beyond_noise : bool
        The interval excludes zero; and, in addition, ``|diff| > noise_sd``.
    """

    metric: str
    foot: str
    before_mean: float
    before_sd: float
    before_n: int
    after_mean: float
    after_sd: float
    after_n: int
    diff: float
    ci_low: float
    ci_high: float
    pct_change: float
    pct_ci_low: float
    pct_ci_high: float
    hedges_g: float
    noise_sd: float
    ci_excludes_zero: bool
    beyond_noise: bool


@dataclass(frozen=True)
class Comparison:
    """Everything :func:`compare_steps` found; :meth:`to_dict` is the JSON of ``lab compare --json``.

    Attributes
    ----------
    changes : list of MetricChange
        Every metric per foot, then cadence (``foot="both"``).
    strike : dict
        ``{foot: {class: {"before_pct", "after_pct", "diff_pct", "ci_low_pct", "ci_high_pct", "clear"}}}``.
    asymmetry : dict
        ``{metric: {"before_si_pct", "after_si_pct", "before_ci", "after_ci", "change", "change_ci", "clear"}}``.
    summary : list of str
        Plain-language sentences, most important first.
    """

    changes: list[MetricChange]
    strike: dict
    asymmetry: dict
    summary: list[str] = field(default_factory=list)

    def change(self, metric: str, foot: str) -> MetricChange:
        """The :class:`MetricChange` of ``metric`` and ``foot``; KeyError when absent."""
        for c in self.changes:
            if c.metric == metric and c.foot == foot:
                return c
        raise KeyError(f"{metric}/{foot}")

    def to_dict(self) -> dict:
        """Plain JSON-serialisable numbers (NaN becomes None)."""
        return json_clean({
            "changes": [asdict(c) for c in self.changes],
            "strike": self.strike,
            "asymmetry": self.asymmetry,
            "summary": list(self.summary),
        })




def register_metric(name: str, label: str, unit: str, decimals: int, *, asymmetry: str = "si",
                    summary_path: tuple[str, ...] | None = None) -> None:
    """Compare ``name`` too (in :func:`compare_steps`, the reports' tables and their plain language).

    Parameters
    ----------
    name : str
        A step-table column (per foot), or, with ``summary_path``, the name of a per-stride metric.
    label, unit : str
    decimals : int
        As shown in reports.
    asymmetry : {"si", "difference"}
        Left-right asymmetry as a symmetry index (%) or as the difference R - L in ``unit``.
    summary_path : tuple of str, optional
        Where the summary holds the metric's ``{mean, sd, n}`` (e.g. ``("pelvis", "rotation_range_deg")``): it is
        then compared from the two summaries' statistics (``foot="both"``), not from the step tables.
    """
    if asymmetry not in ("si", "difference"):
        raise ValueError(f"asymmetry must be 'si' or 'difference', got {asymmetry!r}")
    METRICS[name] = (label, unit, int(decimals))
    if asymmetry == "difference":
        DIFFERENCE_METRICS.add(name)
    if summary_path is not None:
        SUMMARY_STAT_METRICS[name] = tuple(summary_path)


for _name, (_label, _unit, _dec) in IMU_METRIC_LABELS.items():
    register_metric(_name, _label, _unit, _dec, asymmetry="difference")
for _name, (_label, _unit, _dec) in PELVIS_STRIDE_LABELS.items():  # named as their per-stride step columns
    register_metric(PELVIS_METRICS[_name], _label, _unit, _dec, asymmetry="difference",
                    summary_path=("pelvis", _name))


# ------------------------------------------------------------------------------------------------ statistics


def welch_ci(before: np.ndarray, after: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Difference of means ``after - before`` and its Welch confidence interval.

    Parameters
    ----------
    before, after : array_like
        Samples (NaNs are dropped).
    confidence : float
        Two-sided level.

    Returns
    -------
    diff, low, high : float
        NaN bounds when a side has fewer than two values; zero-width when both variances are zero.
    """
    a = _finite(before)
    b = _finite(after)
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan"), float("nan")
    diff = float(b.mean() - a.mean())
    if a.size < 2 or b.size < 2:
        return diff, float("nan"), float("nan")
    da, db = a - a.mean(), b - b.mean()
    scale = max(float(np.abs(da).max()), float(np.abs(db).max()))
    if scale == 0.0:
        return diff, diff, diff
    # scipy's Welch interval of the centred samples divided by their spread: the half-width moves with neither
    # the means nor (but for the factor) the scale, and so cannot suffer from cancellation or from tiny variances
    # underflowing to 0/0 in the Welch-Satterthwaite degrees of freedom.
    ci = stats.ttest_ind(db / scale, da / scale, equal_var=False).confidence_interval(confidence)
    half = 0.5 * (float(ci.high) - float(ci.low)) * scale
    return diff, diff - half, diff + half


def welch_ci_from_stats(before: dict, after: dict, confidence: float = 0.95) -> tuple[float, float, float]:
    """:func:`welch_ci` from each sample's ``{mean, sd, n}`` (a summary's statistics) instead of the samples.

    Returns
    -------
    diff, low, high : float
        NaN when a side has no value; NaN bounds with fewer than two on a side.
    """
    ma, sa, na = _stat(before)
    mb, sb, nb = _stat(after)
    if na == 0 or nb == 0:
        return float("nan"), float("nan"), float("nan")
    diff = mb - ma
    if na < 2 or nb < 2 or not (np.isfinite(sa) and np.isfinite(sb)):
        return diff, float("nan"), float("nan")
    va, vb = sa * sa / na, sb * sb / nb
    se = float(np.sqrt(va + vb))
    if se == 0.0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, dof)) * se
    return diff, diff - half, diff + half


def hedges_g(before: np.ndarray, after: np.ndarray) -> float:
    """Hedges' g of ``after - before``: Cohen's d with the pooled SD and the small-sample correction.

    Returns NaN with fewer than two values on a side or a pooled SD of zero.
    """
    a = _finite(before)
    b = _finite(after)
    sd = pooled_sd(a, b)
    if not np.isfinite(sd) or sd == 0.0:
        return float("nan")
    n = a.size + b.size
    return float((b.mean() - a.mean()) / sd * (1.0 - 3.0 / (4.0 * n - 9.0)))


def pooled_sd(before: np.ndarray, after: np.ndarray) -> float:
    """Pooled within-sample standard deviation (NaN with fewer than two values on a side)."""
    a = _finite(before)
    b = _finite(after)
    if a.size < 2 or b.size < 2:
        return float("nan")
    return float(np.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)))


def symmetry_index_ci(left: np.ndarray, right: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Symmetry index of the means, ``(R - L) / (0.5 (R + L)) * 100``, with a delta-method interval.

    The index itself is :func:`treadlab.analysis.asymmetry.symmetry_index` of the two means.

    Returns
    -------
    si, low, high : float
        NaN when either side is empty or ``R + L`` is zero; NaN bounds with fewer than two values on a side.
    """
    lv = _finite(left)
    rv = _finite(right)
    if lv.size == 0 or rv.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean_l, mean_r = lv.mean(), rv.mean()
    total = mean_l + mean_r
    if total == 0.0:
        return float("nan"), float("nan"), float("nan")
    si = float(200.0 * (mean_r - mean_l) / total)
    if lv.size < 2 or rv.size < 2:
        return si, float("nan"), float("nan")
    grad_r = 400.0 * mean_l / total**2
    grad_l = -400.0 * mean_r / total**2
    se = float(np.sqrt(grad_r**2 * rv.var(ddof=1) / rv.size + grad_l**2 * lv.var(ddof=1) / lv.size))
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    return si, si - z * se, si + z * se


def strike_classes(steps: pd.DataFrame) -> np.ndarray:
    """Strike class of each step: the table's ``strike_class`` column, else classes of ``strike_index_pct``."""
    if "strike_class" in steps:
        return steps["strike_class"].astype(str).to_numpy()
    if "strike_index_pct" not in steps:
        return np.full(len(steps), "")
    return classify_strike(steps["strike_index_pct"].to_numpy(dtype=float)).astype(str)


# ------------------------------------------------------------------------------------------------ comparison


def compare_steps(before: pd.DataFrame, after: pd.DataFrame, metrics: tuple[str, ...] | None = None,
                  summaries: tuple[dict, dict] | None = None) -> Comparison:
    """Compare two step tables metric by metric and foot by foot.

    Parameters
    ----------
    before, after : pandas.DataFrame
        Step tables (``foot`` column and metric columns). Metric columns absent from both are skipped. With
        ``quality`` and ``gait`` columns, only the steps a summary averages are compared (``summary_rows``).
    metrics : tuple of str, optional
        Metrics to compare, default every one of :data:`METRICS` present.
    summaries : (dict, dict), optional
        The two sessions' summaries: the metrics of :data:`SUMMARY_STAT_METRICS` they hold are compared from
        their statistics (``foot="both"``, after cadence).

    Returns
    -------
    Comparison

    Raises
    ------
    AnalysisError
        When either table has no steps at all.
    """
    # Only the steps a summary averages: quality "ok", of the table's summary gait (running when it has any).
    before = before[summary_rows(before, summary_gait(before))]
    after = after[summary_rows(after, summary_gait(after))]
    for name, tab in (("before", before), ("after", after)):
        if len(tab) == 0 or "foot" not in tab:
            raise AnalysisError(f"the {name} segment has no steps to compare")
    chosen = metrics or tuple(METRICS)
    names = [m for m in chosen if m not in SUMMARY_STAT_METRICS and (m in before or m in after)]
    changes = []
    for metric in names:
        for foot in FEET:
            changes.append(metric_change(metric, foot, _values(before, metric, foot), _values(after, metric, foot)))
    if "step_time_ms" in before and "step_time_ms" in after:
        changes.append(metric_change("cadence_spm", "both", _cadence(before), _cadence(after)))
    if summaries is not None:
        for metric, path in SUMMARY_STAT_METRICS.items():
            sb, sa = _at(summaries[0], path), _at(summaries[1], path)
            if metric in chosen and (sb is not None or sa is not None):
                changes.append(stats_change(metric, "both", sb or {}, sa or {}))
    strike = strike_shift(before, after)
    asym = {m: (side_difference_change(before, after, m) if m in DIFFERENCE_METRICS
                else asymmetry_change(before, after, m)) for m in names}
    comp = Comparison(changes=changes, strike=strike, asymmetry=asym)
    return Comparison(changes=changes, strike=strike, asymmetry=asym, summary=plain_summary(comp))


def metric_change(metric: str, foot: str, before: np.ndarray, after: np.ndarray) -> MetricChange:
    """Build the :class:`MetricChange` of two samples of one metric."""
    a = _finite(before)
    b = _finite(after)
    diff, low, high = welch_ci(a, b)
    mean_a = float(a.mean()) if a.size else float("nan")
    mean_b = float(b.mean()) if b.size else float("nan")
    scale = 100.0 / abs(mean_a) if a.size and mean_a != 0.0 else float("nan")
    noise = pooled_sd(a, b)
    excludes = bool(np.isfinite(low) and (low > 0.0 or high < 0.0))
    return MetricChange(
        metric=metric, foot=foot,
        before_mean=mean_a, before_sd=_sd(a), before_n=int(a.size),
        after_mean=mean_b, after_sd=_sd(b), after_n=int(b.size),
        diff=diff, ci_low=low, ci_high=high,
        pct_change=diff * scale, pct_ci_low=low * scale, pct_ci_high=high * scale,
        hedges_g=hedges_g(a, b), noise_sd=noise,
        ci_excludes_zero=excludes, beyond_noise=bool(excludes and np.isfinite(noise) and abs(diff) > noise),
    )


def stats_change(metric: str, foot: str, before: dict, after: dict) -> MetricChange:
    """The :class:`MetricChange` of a metric known by its statistics ``{mean, sd, n}`` (a summary's) only."""
    ma, sa, na = _stat(before)
    mb, sb, nb = _stat(after)
    diff, low, high = welch_ci_from_stats(before, after)
    scale = 100.0 / abs(ma) if na and ma != 0.0 else float("nan")
    noise = float("nan")
    g = float("nan")
    if na >= 2 and nb >= 2 and np.isfinite(sa) and np.isfinite(sb):
        noise = float(np.sqrt(((na - 1) * sa * sa + (nb - 1) * sb * sb) / (na + nb - 2)))
        if noise > 0:
            g = float(diff / noise * (1.0 - 3.0 / (4.0 * (na + nb) - 9.0)))
    excludes = bool(np.isfinite(low) and (low > 0.0 or high < 0.0))
    return MetricChange(
        metric=metric, foot=foot, before_mean=ma, before_sd=sa, before_n=na, after_mean=mb, after_sd=sb,
        after_n=nb, diff=diff, ci_low=low, ci_high=high, pct_change=diff * scale, pct_ci_low=low * scale,
        pct_ci_high=high * scale, hedges_g=g, noise_sd=noise, ci_excludes_zero=excludes,
        beyond_noise=bool(excludes and np.isfinite(noise) and abs(diff) > noise),
    )


def wilson_interval(p: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p = k / n`` observed in ``n`` trials (NaN when ``n`` is 0).

    ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`` with ``k = round(p n)``.
    """
    if n <= 0 or not np.isfinite(p):
        return float("nan"), float("nan")
    ci = stats.binomtest(int(round(p * n)), int(n)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def proportion_difference(p_before: float, n_before: int, p_after: float, n_after: int,
                          confidence: float = 0.95) -> tuple[float, float, float]:
    """``p_after - p_before`` with Newcombe's hybrid score interval (from two Wilson intervals).

    Unlike the Wald interval it stays sensible at 0% and 100% (e.g. every step rearfoot before, none after).
    """
    lb, ub = wilson_interval(p_before, n_before, confidence)
    la, ua = wilson_interval(p_after, n_after, confidence)
    d = p_after - p_before
    low = d - np.sqrt((p_after - la) ** 2 + (ub - p_before) ** 2)
    high = d + np.sqrt((ua - p_after) ** 2 + (p_before - lb) ** 2)
    return float(d), float(low), float(high)


def strike_shift(before: pd.DataFrame, after: pd.DataFrame) -> dict:
    """Share of each strike class per foot before and after, with a Newcombe 95% interval of the difference."""
    cls_b, cls_a = strike_classes(before), strike_classes(after)
    foot_b, foot_a = before["foot"].to_numpy(), after["foot"].to_numpy()
    out: dict = {}
    for foot in FEET:
        kb, ka = cls_b[foot_b == foot], cls_a[foot_a == foot]
        kb, ka = kb[np.isin(kb, STRIKE_CLASSES)], ka[np.isin(ka, STRIKE_CLASSES)]
        nb, na = kb.size, ka.size
        out[foot] = {}
        for name in STRIKE_CLASSES:
            pb = float(np.mean(kb == name)) if nb else float("nan")
            pa = float(np.mean(ka == name)) if na else float("nan")
            d, low, high = proportion_difference(pb, nb, pa, na)
            out[foot][name] = {
                "before_pct": 100.0 * pb, "after_pct": 100.0 * pa, "diff_pct": 100.0 * d,
                "ci_low_pct": 100.0 * low, "ci_high_pct": 100.0 * high,
                "clear": bool(np.isfinite(low) and (low > 0 or high < 0)),
                "before_n": int(np.sum(kb == name)), "after_n": int(np.sum(ka == name)),
            }
    return out


def asymmetry_change(before: pd.DataFrame, after: pd.DataFrame, metric: str) -> dict:
    """Symmetry index of ``metric`` before and after, and its change with a 95% interval."""
    sib, lob, hib = symmetry_index_ci(_values(before, metric, "left"), _values(before, metric, "right"))
    sia, loa, hia = symmetry_index_ci(_values(after, metric, "left"), _values(after, metric, "right"))
    return {"before_si_pct": sib, "before_ci": [lob, hib], "after_si_pct": sia, "after_ci": [loa, hia],
            **_signed_change(sib, lob, hib, sia, loa, hia)}


def _signed_change(b: float, lob: float, hib: float, a: float, loa: float, hia: float) -> dict:
    """The change ``a - b`` of two independent signed estimates with 95% intervals: ``change``, ``change_ci``,
    ``clear`` (the interval excludes zero) and ``closer`` (|estimate| fell: the whole interval of the change lies
    between 0 and -2 x the estimate before, so it fell without overshooting to the other side).
    """
    z = float(stats.norm.ppf(0.975))
    se = np.hypot((hib - lob) / (2 * z), (hia - loa) / (2 * z))
    change = a - b
    low, high = change - z * se, change + z * se
    if b > 0:
        closer = bool(high < 0 and low > -2 * b)
    elif b < 0:
        closer = bool(low > 0 and high < -2 * b)
    else:
        closer = False
    return {"change": change, "change_ci": [low, high], "clear": bool(np.isfinite(low) and (low > 0 or high < 0)),
            "closer": closer}


def side_difference_change(before: pd.DataFrame, after: pd.DataFrame, metric: str) -> dict:
    """Left-right difference ``R - L`` of ``metric`` (its unit) before and after, each with its Welch 95%
    interval, and the change of the difference with the interval of a difference of independent estimates.

    Returns
    -------
    dict
        ``before_diff``, ``before_ci``, ``after_diff``, ``after_ci``, ``change``, ``change_ci``, ``clear`` (the
        change's interval excludes zero), ``closer`` (|R - L| fell: the whole interval of the change lies between
        0 and -2 x the difference before, as for the symmetry index).
    """
    db, lob, hib = welch_ci(_values(before, metric, "left"), _values(before, metric, "right"))
    da, loa, hia = welch_ci(_values(after, metric, "left"), _values(after, metric, "right"))
    return {"before_diff": db, "before_ci": [lob, hib], "after_diff": da, "after_ci": [loa, hia],
            **_signed_change(db, lob, hib, da, loa, hia)}


# ------------------------------------------------------------------------------------------------ helpers


def _stat(d: dict) -> tuple[float, float, int]:
    """``(mean, sd, n)`` of a summary's statistics (NaN, NaN, 0 when missing)."""
    n = d.get("n") if d else None
    n = int(n) if n is not None else 0
    mean = d.get("mean") if d else None
    sd = d.get("sd") if d else None
    mean = float(mean) if mean is not None and n else float("nan")
    sd = float(sd) if sd is not None else float("nan")
    return mean, sd, n


def _at(doc: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _finite(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def _sd(a: np.ndarray) -> float:
    return float(a.std(ddof=1)) if a.size >= 2 else float("nan")


def _values(steps: pd.DataFrame, metric: str, foot: str) -> np.ndarray:
    if metric not in steps:
        return np.empty(0)
    return steps.loc[steps["foot"] == foot, metric].to_numpy(dtype=float)


def _cadence(steps: pd.DataFrame) -> np.ndarray:
    st = steps["step_time_ms"].to_numpy(dtype=float)
    st = st[np.isfinite(st) & (st > 0)]
    return 60000.0 / st


# ------------------------------------------------------------------------------------------------ plain language


def plain_summary(comp: Comparison) -> list[str]:
    """Sentences for a coach, generated from the numbers of a :class:`Comparison`.

    A direction ("fell", "rose", "moved") is stated only when its 95% interval excludes zero, and then with the
    interval's range; otherwise the sentence says there is no clear change and gives both values.
    """
    out = []
    strike = _strike_sentence(comp.strike)
    if strike:
        out.append(strike)
    for metric in ("vilr_bw_s", "avlr_bw_s"):
        for foot in FEET:
            try:
                out.append(_change_sentence(comp.change(metric, foot)))
            except KeyError:
                continue
    try:
        out.append(_change_sentence(comp.change("cadence_spm", "both")))
    except KeyError:
        pass
    for foot in FEET:
        try:
            out.append(_change_sentence(comp.change("contact_time_ms", foot)))
        except KeyError:
            continue
    for metric in ("vilr_bw_s", "avlr_bw_s", "contact_time_ms"):
        if metric in comp.asymmetry:
            out.append(_asym_sentence(metric, comp.asymmetry[metric]))
    for metric in IMU_SENTENCES:  # the pelvis and shock metrics, when the sessions have them
        for foot in (*FEET, "both"):
            try:
                out.append(_change_sentence(comp.change(metric, foot)))
            except KeyError:
                continue
    return [s for s in out if s]


#: The IMU metrics the plain-language summary speaks of, in order.
IMU_SENTENCES = ("pelvic_drop_deg", "pelvic_rotation_deg", "trunk_lean_deg", "pta_g", "shock_attenuation_pct")


def _label(metric: str) -> tuple[str, str, int]:
    return CADENCE if metric == "cadence_spm" else METRICS[metric]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if np.isfinite(value) else "n/a"


def _change_sentence(c: MetricChange) -> str:
    label, unit, dec = _label(c.metric)
    subject = _cap(label) if c.foot == "both" else f"{_cap(c.foot)} {label}"
    if c.before_n == 0 or c.after_n == 0:
        return ""
    values = f"{_fmt(c.before_mean, dec)} to {_fmt(c.after_mean, dec)} {unit}"
    if not c.ci_excludes_zero:
        return f"{subject}: no clear change ({values})."
    if max(abs(c.pct_ci_low), abs(c.pct_ci_high)) < TRIVIAL_PCT:
        return f"{subject}: practically unchanged ({values})."
    verb = "rose" if c.diff > 0 else "fell"
    if c.metric in DIFFERENCE_METRICS:  # angles and accelerations: the change in the metric's unit
        lo, hi = sorted((abs(c.ci_low), abs(c.ci_high)))
        return (f"{subject} {verb} {_fmt(abs(c.diff), dec + 1)} {unit} (95% CI {_fmt(lo, dec + 1)} to "
                f"{_fmt(hi, dec + 1)} {unit}), from {values}.")
    lo, hi = sorted((abs(c.pct_ci_low), abs(c.pct_ci_high)))
    if np.isfinite(c.pct_change):
        d = 1 if lo < 1.0 else 0  # "0 to 5%" would read as if the interval touched zero
        return f"{subject} {verb} {abs(c.pct_change):.0f}% (95% CI {lo:.{d}f} to {hi:.{d}f}%), from {values}."
    return f"{subject} {verb}, from {values}."


def _modal(shares: dict, key: str) -> str:
    return max(STRIKE_CLASSES, key=lambda k: shares[k][key] if np.isfinite(shares[k][key]) else -1.0)


def _strike_sentence(strike: dict) -> str:
    parts, moves = [], set()
    for foot in FEET:
        shares = strike.get(foot)
        if not shares or not all(sum(shares[k][n] for k in STRIKE_CLASSES) for n in ("before_n", "after_n")):
            continue
        mb, ma = _modal(shares, "before_pct"), _modal(shares, "after_pct")
        if mb != ma and shares[mb]["clear"] and shares[ma]["clear"]:
            moves.add((mb, ma))
            parts.append(f"{foot} {mb} {shares[mb]['before_pct']:.0f}% to {shares[mb]['after_pct']:.0f}%, "
                         f"{ma} {shares[ma]['before_pct']:.0f}% to {shares[ma]['after_pct']:.0f}%")
        else:
            parts.append(f"{foot} mostly {ma} ({shares[ma]['after_pct']:.0f}% of steps after)")
    if not parts:
        return ""
    if len(moves) == 1 and len(parts) == 2 and all("mostly" not in p for p in parts):
        mb, ma = next(iter(moves))
        return f"Most steps moved from {mb} to {ma} landing ({'; '.join(parts)})."
    if moves:
        return f"The landing changed on one side only or differently ({'; '.join(parts)})."
    return f"The landing pattern did not change clearly ({'; '.join(parts)})."


def _asym_sentence(metric: str, a: dict) -> str:
    label = METRICS[metric][0]
    b, f = a["before_si_pct"], a["after_si_pct"]
    if not (np.isfinite(b) and np.isfinite(f)):
        return ""
    values = f"from {abs(b):.0f}% to {abs(f):.0f}%"
    if a["closer"]:
        return f"The sides came closer in {label}: asymmetry fell {values}."
    if a["clear"] and abs(f) > abs(b):
        return f"The sides moved apart in {label}: asymmetry rose {values}."
    return f"{_cap(label)} asymmetry: no clear change ({values})."
