"""The pelvis and shock panel of the reports (IMUs on the pelvis, trunk and shins): pelvic drop per stance side,
pelvic rotation and tilt, trunk lean, vertical oscillation, PTA, pelvis peak and shock attenuation per side, each
with its left-right difference, and the statement of what each metric is validated against.

Shown only when the session has those metrics (``feet.<side>.<metric>`` and ``pelvis.<key>`` of the analysis
summary with at least one value). A metric is shown with its count of strides beside it, and marked "few
strides" below :data:`MIN_STRIDES` (IMU-NOTES: a real change of a pelvic angle is of the order of the
between-day error, so it is read from at least 100 strides per condition).
"""

from __future__ import annotations

import numpy as np

from treadlab.analysis.compare import DIFFERENCE_METRICS, METRICS, Comparison, welch_ci
from treadlab.analysis.imu.session import PELVIS_METRICS
from treadlab.lab.report import figures as figs
from treadlab.lab.report import figures_pelvis as pfigs
from treadlab.lab.report.model import SessionView
from treadlab.lab.report.page import esc, figure, num
from treadlab.vocabulary import FEET, IMU_METRIC_LABELS, PELVIS_STRIDE_LABELS

#: Strides of a metric below which the report marks it "few strides" (its count is always beside it).
MIN_STRIDES = 100

#: Per-step metrics of the panel, in order (steps-table columns, ``feet.<side>.<metric>`` in the summary).
STEP_METRICS = tuple(IMU_METRIC_LABELS)
#: Per-stride pelvis metrics (``pelvis.<key>``) and their names in :mod:`treadlab.analysis.compare`.
STRIDE_METRICS = {key: PELVIS_METRICS[key] for key in PELVIS_STRIDE_LABELS}

#: What each metric is validated against: the simulator's known answers (the accuracy the tests of the whole
#: simulated path hold it to: simulated IMUs and insoles, serial, recorder, file, analysis, with per-side pelvic
#: drop 2-10 deg, mounting misalignment up to 10 deg, noise and gyroscope bias), and the best accuracy reported in
#: the literature (IMU-NOTES.md). None is validated against motion capture or force plates on people by treadlab.
VALIDATION: dict[str, tuple[str, str]] = {
    "pelvic_drop_deg": ("within 1.5 deg RMSE and 0.5 deg mean bias per side",
                        "a Kalman-filtered sacral IMU reached about 0.3 deg bias against motion capture (24 runners); "
                        "IMU frontal-plane angles vary 0.7-5.0 deg between days; a commercial sacral system failed "
                        "every validity criterion"),
    "pelvic_rotation_deg": ("within 2 deg", "as pelvic drop; transverse-plane angles are the least repeatable"),
    "pelvic_tilt_mean_deg": ("relative to standing (an IMU gives no absolute tilt)",
                             "tilt relative to a standing trial only; absolute tilt needs an anatomical reference"),
    "pelvic_tilt_range_deg": ("within 1.5 deg", "as pelvic drop"),
    "trunk_lean_deg": ("within 1.5 deg", "no validation of a trunk IMU's lean while running found"),
    "vertical_oscillation_mm": ("within 10 mm", "a Kalman-filtered sacral IMU reached about 2 mm position bias"),
    "pta_g": ("within 10 % (median over steps)",
              "needs the tibia sampled at 1000 Hz or more; PTA above 8 g is used as a screen for retraining"),
    "ppa_g": ("through shock attenuation", "no validation found"),
    "shock_attenuation_pct": ("within 5 points",
                              "peak-ratio definition (1 - pelvis peak / tibia peak); the literature mostly uses "
                              "the 10-20 Hz spectral transfer function instead"),
}


def _has(c) -> bool:
    return c is not None and np.asarray(c).size > 0 and bool(np.isfinite(np.asarray(c, dtype=float)).any())


def _label(metric: str) -> tuple[str, str, int]:
    return METRICS[metric]


def _stats(summary: dict, foot: str, metric: str) -> dict:
    return summary.get("feet", {}).get(foot, {}).get(metric) or {}


def _n(stats: dict) -> int:
    n = stats.get("n") if stats else None
    return int(n) if n is not None else 0


def step_metrics_present(summary: dict) -> list[str]:
    """The per-step IMU metrics with at least one value on either side."""
    return [m for m in STEP_METRICS if any(_n(_stats(summary, f, m)) for f in FEET)]


def stride_metrics_present(summary: dict) -> list[str]:
    """The ``pelvis.<key>`` keys with at least one stride."""
    pel = summary.get("pelvis") or {}
    return [k for k in STRIDE_METRICS if _n(pel.get(k) or {})]


def has_panel(view: SessionView) -> bool:
    """True when the session has any IMU metric (the panel is shown)."""
    return bool(step_metrics_present(view.summary) or stride_metrics_present(view.summary)
                or _obliquity(view))


def _count(path: str, n: int) -> str:
    few = n < MIN_STRIDES
    cls = ' class="few" title="fewer than 100 strides: read with care"' if few else ""
    mark = ", few strides" if few else ""
    return f"<small{cls}>(n = {num(path, n, 0)}{mark})</small>"


def _mean_sd_n(prefix: str, stats: dict, dec: int, foot: str = "") -> str:
    if not _n(stats):
        return "–"
    return (f"{num(prefix + '.mean', stats.get('mean'), dec, foot)} ± {num(prefix + '.sd', stats.get('sd'), dec)} "
            + _count(prefix + ".n", _n(stats)))


def _obliquity(view: SessionView) -> dict:
    return {f: c for f, c in (view.pelvis_obliquity_deg or {}).items() if _has(c)}


def validation_html(metrics: list[str]) -> str:
    """The statement of what the shown metrics are validated against."""
    rows = "".join(f"<tr><td>{esc(_label(m)[0])}</td><td>{esc(VALIDATION[m][0])}</td><td>{esc(VALIDATION[m][1])}"
                   "</td></tr>" for m in metrics if m in VALIDATION)
    head = ("<thead><tr><th>metric</th><th>validated against the simulator's known answers</th>"
            "<th>best accuracy reported in the literature</th></tr></thead>")
    return ('<div class="validation"><p><b>Validation.</b> These metrics are validated against the known answers '
            "of simulated runners through the whole recording and analysis path; none is validated here against "
            "motion capture or force plates on people. Read a change as real only when it is beyond the "
            "step-to-step noise and its 95% interval excludes zero.</p>"
            f"<table>{head}<tbody>{rows}</tbody></table></div>")


def session_panel(view: SessionView) -> tuple[str, dict]:
    """The panel of one session: HTML, and its numbers for the page's JSON (``pelvis_panel``).

    Means, SDs and counts come from the summary (``feet.<side>.<metric>``, ``pelvis.<key>``); the left-right
    difference ``R - L`` of each per-step metric and its Welch 95% interval are computed here from the step
    table's values (:func:`treadlab.analysis.compare.welch_ci`) and stored at ``pelvis_panel.<metric>``.
    """
    s = view.summary
    rows, doc = [], {}
    for m in step_metrics_present(s):
        label, unit, dec = _label(m)
        diff, low, high = welch_ci(view.step_values("left", m), view.step_values("right", m))
        doc[m] = {"diff": diff, "ci_low": low, "ci_high": high}
        p = f"pelvis_panel.{m}"
        cells = [_mean_sd_n(f"feet.{f}.{m}", _stats(s, f, m), dec, f) for f in FEET]
        cells.append(f"{num(p + '.diff', diff, dec)} ({num(p + '.ci_low', low, dec)} to "
                     f"{num(p + '.ci_high', high, dec)})")
        rows.append(f'<tr data-panel-metric="{esc(m)}"><td>{esc(label)} ({esc(unit)})</td>'
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    step_head = ("<thead><tr><th>per step (stance side)</th><th class=left>left mean ± SD</th>"
                 "<th class=right>right mean ± SD</th><th>right − left (95% CI)</th></tr></thead>")
    parts = ['<section class="pelvis" id="pelvis-panel"><h2>Pelvis, trunk and shock</h2>']
    if rows:
        parts.append(f"<table>{step_head}<tbody>{''.join(rows)}</tbody></table>")
    stride_rows = []
    for key in stride_metrics_present(s):
        m = STRIDE_METRICS[key]
        label, unit, dec = _label(m)
        stride_rows.append(f'<tr data-panel-metric="{esc(m)}"><td>{esc(label)} ({esc(unit)})</td>'
                           f"<td>{_mean_sd_n(f'pelvis.{key}', s['pelvis'][key], dec)}</td></tr>")
    if stride_rows:
        parts.append("<table><thead><tr><th>per stride (both sides)</th><th>mean ± SD</th></tr></thead>"
                     f"<tbody>{''.join(stride_rows)}</tbody></table>")
    curves = _obliquity(view)
    if curves:
        parts.append(figure("obliquity", figs.png_base64(pfigs.pelvic_obliquity(curves)),
                            "Pelvic obliquity over the stride, mean of each stance side, relative to standing: the "
                            "dip after each side's contact is its pelvic drop (swing side down).",
                            "mean pelvic obliquity over the stride, left and right stance"))
    shown = step_metrics_present(s) + [STRIDE_METRICS[k] for k in stride_metrics_present(s)]
    parts.append(validation_html(shown))
    parts.append("</section>")
    return "".join(parts), doc


def compare_panel(before: SessionView, after: SessionView, comp: Comparison) -> str:
    """The panel of a comparison: each IMU metric's change with its 95% interval and whether it is beyond the
    step-to-step noise, and the change of each left-right difference. Numbers trace to ``changes`` and
    ``asymmetry`` of the page's JSON.
    """
    imu = set(STEP_METRICS) | set(STRIDE_METRICS.values())
    changes = [c for c in comp.changes if c.metric in imu]
    out = []
    if changes:
        rows = []
        for c in changes:
            label, unit, dec = _label(c.metric)
            p = f"changes.{c.metric}.{c.foot}"
            beyond = '<span class="yes">yes</span>' if c.beyond_noise else '<span class="no">no</span>'
            side = "both sides" if c.foot == "both" else c.foot
            cells = [f"{num(p + '.before_mean', c.before_mean, dec)} " + _count(p + ".before_n", c.before_n),
                     f"{num(p + '.after_mean', c.after_mean, dec)} " + _count(p + ".after_n", c.after_n),
                     num(p + ".diff", c.diff, dec + 1),
                     f"{num(p + '.ci_low', c.ci_low, dec + 1)} to {num(p + '.ci_high', c.ci_high, dec + 1)}", beyond]
            rows.append(f'<tr data-panel-metric="{esc(c.metric)}" data-foot="{esc(c.foot)}">'
                        f'<td class="{esc(c.foot)}">{esc(label)} ({esc(unit)}), {esc(side)}</td>'
                        + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
        head = ("<thead><tr><th>metric, side</th><th>before</th><th>after</th><th>change</th><th>95% CI</th>"
                "<th>beyond step noise</th></tr></thead>")
        out.append(f"<table>{head}<tbody>{''.join(rows)}</tbody></table>")
    diffs = []
    for m, a in comp.asymmetry.items():
        if m not in DIFFERENCE_METRICS or m not in imu:
            continue
        label, unit, dec = _label(m)
        p = f"asymmetry.{m}"
        diffs.append(f'<tr data-panel-metric="{esc(m)}"><td>{esc(label)} ({esc(unit)})</td>'
                     f"<td>{num(p + '.before_diff', a['before_diff'], dec)}</td>"
                     f"<td>{num(p + '.after_diff', a['after_diff'], dec)}</td>"
                     f"<td>{num(p + '.change', a['change'], dec)} ({num(p + '.change_ci.0', a['change_ci'][0], dec)}"
                     f" to {num(p + '.change_ci.1', a['change_ci'][1], dec)})</td></tr>")
    if diffs:
        out.append("<table><thead><tr><th>right − left</th><th>before</th><th>after</th>"
                   "<th>change (95% CI)</th></tr></thead>" f"<tbody>{''.join(diffs)}</tbody></table>")
    cb, ca = _obliquity(before), _obliquity(after)
    if cb or ca:
        out.append(figure("obliquity", figs.png_base64(pfigs.pelvic_obliquity_compare(cb, ca)),
                          "Mean pelvic obliquity over the stride for each stance side, before (dashed) and after "
                          "(solid): a shallower dip after contact means less pelvic drop.",
                          "mean pelvic obliquity over the stride before and after, per stance side"))
    if not out:
        return ""
    shown = [m for m in (*STEP_METRICS, *STRIDE_METRICS.values()) if any(c.metric == m for c in changes)]
    return ('<section class="pelvis" id="pelvis-panel"><h2>Pelvis, trunk and shock</h2>' + "".join(out)
            + validation_html(shown) + "</section>")

