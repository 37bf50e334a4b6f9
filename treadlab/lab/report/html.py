"""The two reports as self-contained HTML: :func:`render_session` (``lab report``) and :func:`render_compare`
(``lab compare``). Figures are embedded PNGs; the numbers come unchanged from the analysis summary or from
:mod:`treadlab.analysis.compare` and are embedded once more as JSON (see :mod:`.page`).
"""

from __future__ import annotations

import numpy as np

from treadlab.analysis.compare import CADENCE, METRICS, STRIKE_CLASSES, Comparison
from treadlab.lab.report import figures as figs
from treadlab.lab.report import figures_compare as cfigs
from treadlab.lab.report import pelvis_panel, retraining
from treadlab.lab.report.model import SessionView
from treadlab.lab.report.page import DEFAULT_BANDS_PCT, esc, figure, fmt, meta_list, num, page, si_badge
from treadlab.vocabulary import FEET, METRIC_LABELS

#: Metrics of the per-foot table, in order (names as in the analysis summary) -> (label, unit, decimals); the IMU
#: metrics have their own panel (:mod:`.pelvis_panel`).
TABLE_METRICS = METRIC_LABELS


def _header_items(view: SessionView) -> list[tuple[str, str]]:
    m = view.meta
    devices = ", ".join(m.get("devices") or []) or "–"
    return [
        ("Participant", esc(m.get("participant") or "–")), ("Condition", esc(m.get("condition") or "–")),
        ("Date", esc(m.get("date") or "–")), ("Speed", f"{fmt(m.get('treadmill_speed_mps'), 2)} m/s"),
        ("Shoe", esc(m.get("shoe") or "–")), ("Body mass", f"{fmt(m.get('body_mass_kg'), 1)} kg"),
        ("Duration", f"{num('duration_s', view.summary.get('duration_s'), 0)} s"), ("Devices", esc(devices)),
    ]


def _quality_line(view: SessionView) -> str:
    q = view.quality
    parts = [f"lost samples: {fmt(q.get('lost_samples'), 0)}", f"gaps: {fmt(q.get('gaps'), 0)}",
             f"CRC errors: {fmt(q.get('crc_errors'), 0)}", f"clock fit: {esc(q.get('clock') or '–')}"]
    line = '<p class="quality"><b>Data quality</b> · ' + " · ".join(parts) + "</p>"
    for text in view.summary.get("warnings") or []:
        line += f'<p class="quality warning"><b>Check</b> · {esc(text)}</p>'
    return line


def _foot_metric(view: SessionView, foot: str, metric: str, stat: str = "mean") -> str:
    value = view.summary.get("feet", {}).get(foot, {}).get(metric, {}).get(stat)
    return num(f"feet.{foot}.{metric}.{stat}", value, METRICS.get(metric, ("", "", 1))[2], foot)


def _strike_shares(view: SessionView, foot: str) -> str:
    counts = view.summary.get("feet", {}).get(foot, {}).get("strike_counts", {})
    total = sum(int(counts.get(k) or 0) for k in STRIKE_CLASSES)
    parts = []
    for k in STRIKE_CLASSES:
        c = int(counts.get(k) or 0)
        share = 100.0 * c / total if total else float("nan")
        parts.append(f'{k} <span class="num-share" data-count="{c}" data-total="{total}">{fmt(share, 0)}</span>%')
    return f'<div class="{foot}"><b>{foot}</b>: ' + ", ".join(parts) + "</div>"


def _cards(view: SessionView, bands: tuple[float, float]) -> str:
    s = view.summary
    asym = s.get("asymmetry_si_pct", {})
    cards = [f'<div class="card"><h3>Cadence</h3><span class="big">{num("cadence_spm", s.get("cadence_spm"), 0)}'
             f'</span> steps/min<br><small>{num("step_count", s.get("step_count"), 0)} steps</small></div>']
    cards.append('<div class="card"><h3>Strike pattern (share of steps)</h3>'
                 + "".join(_strike_shares(view, f) for f in FEET)
                 + "strike index " + si_badge("asymmetry_si_pct.strike_index_pct", asym.get("strike_index_pct"), bands)
                 + "</div>")
    for metric in ("vilr_bw_s", "avlr_bw_s", "contact_time_ms"):
        label, unit, _ = METRICS[metric]
        body = " / ".join(f'<span class="big">{_foot_metric(view, f, metric)}</span>' for f in FEET)
        title = esc(label[:1].upper() + label[1:])
        cards.append(f'<div class="card"><h3>{title} left / right</h3>{body} {esc(unit)}<br>'
                     f'{si_badge(f"asymmetry_si_pct.{metric}", asym.get(metric), bands)}</div>')
    return '<section class="cards">' + "".join(cards) + "</section>"


def _metric_table(view: SessionView, bands: tuple[float, float]) -> str:
    rows = []
    feet = view.summary.get("feet", {})
    for metric, (label, unit, dec) in TABLE_METRICS.items():
        if not any(metric in feet.get(f, {}) for f in FEET):
            continue
        cells = []
        for f in FEET:
            cells += [num(f"feet.{f}.{metric}.{k}", feet.get(f, {}).get(metric, {}).get(k), d, f)
                      for k, d in (("mean", dec), ("sd", dec), ("n", 0))]
        si = view.summary.get("asymmetry_si_pct", {}).get(metric)
        rows.append(f"<tr><td>{esc(label)} ({esc(unit)})</td>" + "".join(f"<td>{c}</td>" for c in cells)
                    + f"<td>{si_badge(f'asymmetry_si_pct.{metric}', si, bands)}</td></tr>")
    head = ("<thead><tr><th>metric</th><th class=left>left mean</th><th>SD</th><th>n</th>"
            "<th class=right>right mean</th><th>SD</th><th>n</th><th>asymmetry</th></tr></thead>")
    return f"<table>{head}<tbody>{''.join(rows)}</tbody></table>"


def _foot_dict(view: SessionView, key: str) -> dict:
    return {f: getattr(view.foot(f), key) for f in FEET if getattr(view.foot(f), key) is not None}


def _sample_note(used: list) -> str:
    """" (from 300 of 4812 and ... steps, spread over the session)" when a figure used a sample of the steps."""
    if all(u == n for u, n in used):
        return ""
    return " (from " + " and ".join(f"{u} of {n}" for u, n in used) + " steps, spread over the session)"


def _session_figures(view: SessionView) -> list[str]:
    out = []
    curves = _foot_dict(view, "curves_bw")
    if curves:
        out.append(figure("force", figs.png_base64(figs.force_curves(curves)),
                          "Vertical force through stance, mean ± SD over steps. Look for a sharp early spike "
                          "(impact peak, heel landing) and whether left and right curves overlap.",
                          "vertical force curves, left and right"))
    outlines = _foot_dict(view, "outline_mm")
    cops = _foot_dict(view, "cop_mm")
    if cops:
        tds = {f: view.foot(f).touchdown_y_mm for f in FEET}
        out.append(figure("gaitline", figs.png_base64(figs.gait_lines(cops, outlines, tds)),
                          "Centre-of-pressure path of each step (thin) and on average (thick); the dot is where the "
                          "foot touches down on average (strike index): near the heel for rearfoot landings.",
                          "centre of pressure gait lines on the foot outlines"))
    if view.butterfly_mm and any(np.isfinite(v).any() for v in view.butterfly_mm.values()):
        out.append(figure("butterfly", figs.png_base64(figs.butterfly(view.butterfly_mm)),
                          "Centre of pressure on the treadmill over time (butterfly): each line is one contact, "
                          "carried back by the belt; mirror-image left and right lines mean both sides load alike."
                          + (f" {view.butterfly_note}" if view.butterfly_note else ""),
                          "butterfly diagram of the centre of pressure"))
    pressure = {f: {"positions_mm": v.positions_mm, "areas_mm2": v.areas_mm2, "peak_kpa": v.peak_kpa,
                    "mean_kpa": v.mean_kpa, "outline_mm": v.outline_mm}
                for f, v in view.feet.items() if v.peak_kpa is not None and v.positions_mm is not None}
    if pressure:
        sample = _sample_note([view.foot(f).map_steps for f in pressure])
        out.append(figure("pressure", figs.png_base64(figs.pressure_maps(pressure)),
                          f"Peak (left pair) and mean (right pair) pressure under each foot{sample}: dark areas "
                          "carry the most load.",
                          "peak and mean pressure maps per foot"))
    if view.footprints_kpa:
        sample = _sample_note(view.footprint_steps)
        out.append(figure("footprint", figs.png_base64(figs.footprints(view.footprints_kpa, view.pitch_mm)),
                          f"Mean footprint of each foot on the treadmill mat{sample}, following the foot along the "
                          "belt: dark areas carry the load through contact.",
                          "mean footprint per foot on the pressure mat"))
    si = {f: view.step_values(f, "strike_index_pct") for f in FEET}
    if any(v.size for v in si.values()):
        out.append(figure("strike", figs.png_base64(figs.strike_distribution(si)),
                          "Where each step first touches down, in % of foot length from the heel: most steps in one "
                          "band means a consistent landing.", "strike index distribution per foot"))
        steps = {f: {"t_s": view.step_values(f, "ic_s"), "avlr_bw_s": view.step_values(f, "avlr_bw_s"),
                     "strike_index_pct": si[f]} for f in FEET if si[f].size}
        out.append(figure("overtime", figs.png_base64(figs.over_time(steps, view.markers)),
                          "Loading rate and landing of every step over the session: look for drift with fatigue "
                          "and for changes at the markers (dotted lines).", "per-step AVLR and strike index over time"))
    return out


def render_session(view: SessionView, bands_pct: tuple[float, float] = DEFAULT_BANDS_PCT) -> str:
    """The one-session coach report.

    Parameters
    ----------
    view : SessionView
    bands_pct : (float, float)
        Asymmetry bands: |SI| below the first is fine, up to the second "watch", above "flag".

    Returns
    -------
    str
        The whole HTML document.
    """
    title = f"Running report: {view.meta.get('participant') or 'runner'}"
    body = [f"<h1>{esc(title)}</h1><p>{esc(view.source)}</p>", meta_list(_header_items(view)), _quality_line(view),
            "<h2>Headlines</h2>", _cards(view, bands_pct)]
    panel_doc = None
    if pelvis_panel.has_panel(view):  # IMUs: the pelvis and shock panel beside the foot metrics
        panel, panel_doc = pelvis_panel.session_panel(view)
        body.append(panel)
    if view.retraining is not None:  # a feedback session: the retraining section comes first after the headlines
        body.append(retraining.retraining_html(view.retraining))
    body += ["<h2>Figures</h2>", *_session_figures(view), "<h2>Every metric per foot</h2>",
             _metric_table(view, bands_pct)]
    doc = {"kind": "session", "source": view.source, "bands_pct": list(bands_pct), **view.summary}
    if panel_doc is not None:
        doc["pelvis_panel"] = panel_doc
    if view.retraining is not None:
        doc["retraining"] = view.retraining["numbers"]
        doc.update(retraining.top_level(view.retraining["numbers"]))
    return page(title, "\n".join(body), doc)


# --------------------------------------------------------------------------------------------- comparison


def _compare_table(comp: Comparison) -> str:
    rows = []
    for c in comp.changes:
        label, unit, dec = CADENCE if c.metric == "cadence_spm" else METRICS[c.metric]
        p = f"changes.{c.metric}.{c.foot}"
        beyond = '<span class="yes">yes</span>' if c.beyond_noise else '<span class="no">no</span>'
        cells = [
            f"{num(p + '.before_mean', c.before_mean, dec)} ± {num(p + '.before_sd', c.before_sd, dec)} "
            f"({num(p + '.before_n', c.before_n, 0)})",
            f"{num(p + '.after_mean', c.after_mean, dec)} ± {num(p + '.after_sd', c.after_sd, dec)} "
            f"({num(p + '.after_n', c.after_n, 0)})",
            num(p + ".diff", c.diff, dec + 1),
            f"{num(p + '.ci_low', c.ci_low, dec + 1)} to {num(p + '.ci_high', c.ci_high, dec + 1)}",
            num(p + ".hedges_g", c.hedges_g, 2), beyond,
        ]
        rows.append(f'<tr><td class="{c.foot}">{esc(label)} ({esc(unit)}), {esc(c.foot)}</td>'
                    + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    head = ("<thead><tr><th>metric, foot</th><th>before mean ± SD (n)</th><th>after mean ± SD (n)</th>"
            "<th>change</th><th>95% CI</th><th>Hedges' g</th><th>beyond step noise</th></tr></thead>")
    return f"<table>{head}<tbody>{''.join(rows)}</tbody></table>"


def _strike_table(comp: Comparison) -> str:
    rows = []
    for foot in FEET:
        for k in STRIKE_CLASSES:
            s = comp.strike.get(foot, {}).get(k)
            if not s:
                continue
            p = f"strike.{foot}.{k}"
            rows.append(f'<tr><td class="{foot}">{foot}, {k}</td><td>{num(p + ".before_pct", s["before_pct"], 0)}%'
                        f'</td><td>{num(p + ".after_pct", s["after_pct"], 0)}%</td><td>'
                        f'{num(p + ".ci_low_pct", s["ci_low_pct"], 0)} to '
                        f'{num(p + ".ci_high_pct", s["ci_high_pct"], 0)}'
                        "</td></tr>")
    head = "<thead><tr><th>foot, landing</th><th>before</th><th>after</th><th>95% CI of the change (points)</th></tr>"
    return f"<table>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _asym_table(comp: Comparison, bands: tuple[float, float]) -> str:
    rows = []
    for metric, a in comp.asymmetry.items():
        if "before_si_pct" not in a:  # a left-right difference (the IMU metrics: their own panel)
            continue
        p = f"asymmetry.{metric}"
        rows.append(f"<tr><td>{esc(METRICS[metric][0])}</td><td>"
                    f"{si_badge(p + '.before_si_pct', a['before_si_pct'], bands)}"
                    f"</td><td>{si_badge(p + '.after_si_pct', a['after_si_pct'], bands)}</td><td>"
                    f"{num(p + '.change', a['change'], 1)} ({num(p + '.change_ci.0', a['change_ci'][0], 1)} to "
                    f"{num(p + '.change_ci.1', a['change_ci'][1], 1)})</td></tr>")
    head = "<thead><tr><th>metric</th><th>before</th><th>after</th><th>change of SI, points (95% CI)</th></tr></thead>"
    return f"<table>{head}<tbody>{''.join(rows)}</tbody></table>"


def _per_foot_steps(view: SessionView) -> dict:
    cols = [m for m, _ in cfigs.DISTRIBUTIONS]
    return {f: {c: view.step_values(f, c) for c in cols} for f in FEET}


def _compare_figures(before: SessionView, after: SessionView) -> list[str]:
    out = []
    cb, ca = _foot_dict(before, "curves_bw"), _foot_dict(after, "curves_bw")
    if cb or ca:
        out.append(figure("force", figs.png_base64(cfigs.force_curves(cb, ca)),
                          "Vertical force through stance before (dashed) and after (solid): a smaller early spike "
                          "means a softer landing.", "force curves before and after, per foot"))
    pb, pa = _foot_dict(before, "cop_mm"), _foot_dict(after, "cop_mm")
    if pb or pa:
        outlines = _foot_dict(after, "outline_mm") or _foot_dict(before, "outline_mm")
        tdb = {f: before.foot(f).touchdown_y_mm for f in FEET}
        tda = {f: after.foot(f).touchdown_y_mm for f in FEET}
        out.append(figure("gaitline", figs.png_base64(cfigs.gait_lines(pb, pa, outlines, tdb, tda)),
                          "Average centre-of-pressure path before (dashed) and after (solid); the dots mark "
                          "touch-down: a dot further from the heel means a more forward landing.",
                          "gait lines before and after"))
    diff = {}
    for f in FEET:
        vb, va = before.foot(f), after.foot(f)
        if vb.mean_kpa is not None and va.mean_kpa is not None and np.shape(vb.mean_kpa) == np.shape(va.mean_kpa):
            diff[f] = {"positions_mm": va.positions_mm, "areas_mm2": va.areas_mm2, "outline_mm": va.outline_mm,
                       "diff_kpa": np.asarray(va.mean_kpa, float) - np.asarray(vb.mean_kpa, float)}
    if diff:
        out.append(figure("pressurediff", figs.png_base64(cfigs.pressure_difference(diff)),
                          "Mean pressure after minus before: red areas carry more load after, blue areas less.",
                          "pressure difference maps per foot"))
    out.append(figure("distributions", figs.png_base64(cfigs.distributions(_per_foot_steps(before),
                                                                           _per_foot_steps(after))),
                      "Step-to-step spread before and after (boxes: middle half of the steps, line: median): "
                      "boxes that do not overlap show a change larger than the step-to-step noise.",
                      "per-step distributions of AVLR, strike index and contact time"))
    return out


def render_compare(before: SessionView, after: SessionView, comp: Comparison,
                   bands_pct: tuple[float, float] = DEFAULT_BANDS_PCT) -> str:
    """The before-versus-after report.

    Parameters
    ----------
    before, after : SessionView
    comp : Comparison
        From :func:`treadlab.analysis.compare.compare_steps` of the two step tables.
    bands_pct : (float, float)
        Asymmetry bands.

    Returns
    -------
    str
        The whole HTML document.
    """
    who = after.meta.get("participant") or before.meta.get("participant") or "runner"
    title = f"Before and after: {who}"
    summary = "".join(f"<li>{esc(s)}</li>" for s in comp.summary)
    heads = [
        ("Before", esc(before.source)), ("After", esc(after.source)),
        ("Before: condition", esc(before.meta.get("condition") or "–")),
        ("After: condition", esc(after.meta.get("condition") or "–")),
        ("Before: cadence", f"{num('before.cadence_spm', before.summary.get('cadence_spm'), 0)} steps/min"),
        ("After: cadence", f"{num('after.cadence_spm', after.summary.get('cadence_spm'), 0)} steps/min"),
        ("Before: date", esc(before.meta.get("date") or "–")), ("After: date", esc(after.meta.get("date") or "–")),
    ]
    body = [f"<h1>{esc(title)}</h1>", meta_list(heads), "<h2>In short</h2>", f'<ul class="summary">{summary}</ul>',
            "<h2>Landing</h2>", _strike_table(comp), "<h2>Left-right asymmetry</h2>", _asym_table(comp, bands_pct),
            pelvis_panel.compare_panel(before, after, comp), "<h2>Figures</h2>", *_compare_figures(before, after),
            "<h2>Every metric per foot</h2>",
            _compare_table(comp)]
    both = retraining.compare_html(before.retraining, after.retraining)
    if both:  # two feedback sessions with the same target: their series on one axis, after the summary
        body.insert(4, both)
    cd = comp.to_dict()
    changes: dict = {}
    for c in cd["changes"]:
        changes.setdefault(c["metric"], {})[c["foot"]] = c
    doc = {"kind": "compare", "before_source": before.source, "after_source": after.source,
           "bands_pct": list(bands_pct), "before": before.summary, "after": after.summary, "changes": changes,
           "strike": cd["strike"], "asymmetry": cd["asymmetry"], "summary": cd["summary"]}
    if both:
        doc["retraining"] = {"before": before.retraining["numbers"], "after": after.retraining["numbers"]}
    return page(title, "\n".join(body), doc)
