"""The retraining section of the coach report (sessions with a ``/feedback`` group), and its figure.

:func:`retraining_doc` computes the numbers (:func:`treadlab.analysis.retraining.retraining_numbers`) from the
offline step table and the protocol stored in the file; :func:`retraining_html` draws the section: the per-step
series of the target metric with the phases shaded, the band and every cue marked; the share of steps in band
per phase; time to criterion; the retention ratio; baseline versus retention (95 % CI, Hedges' g); side effects.
Every number is a ``data-metric`` span: ``time_to_criterion_s``, ``time_to_criterion_steps``, ``retention_ratio``
and ``in_band_pct_<phase>`` at the top of the page's JSON (:func:`top_level`), the others under ``retraining.``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from treadlab.analysis.retraining import read_feedback, retraining_numbers
from treadlab.errors import ConfigError
from treadlab.feedback.protocol import parse_protocol
from treadlab.lab.report import figures as figs
from treadlab.lab.report.page import esc, figure, num
from treadlab.vocabulary import IMU_METRIC_LABELS

LABELS = {"strike_index_pct": ("strike index", "% of foot length", 1), "cadence_spm": ("cadence", "steps/min", 1),
          "vilr_bw_s": ("VILR", "BW/s", 1), "avlr_bw_s": ("AVLR", "BW/s", 1),
          "impact_peak_bw": ("impact peak", "BW", 2), "contact_time_ms": ("contact time", "ms", 0),
          "pelvic_drop_deg": IMU_METRIC_LABELS["pelvic_drop_deg"], "pta_g": IMU_METRIC_LABELS["pta_g"]}


def retraining_doc(path, steps: pd.DataFrame) -> dict | None:
    """The retraining numbers of a session file (None without ``/feedback``), plus what the figure needs."""
    rec = read_feedback(path)
    if rec is None or rec.phases.empty:
        return None
    try:
        proto = parse_protocol(str(rec.attrs.get("protocol", "")), str(rec.attrs.get("protocol_name", "protocol")))
    except ConfigError:
        return None
    shares = [p.share for p in proto.phases][: len(rec.phases)]
    low, high = proto.low, proto.high
    if proto.relative:  # the band from the offline baseline median, as the engine set it from the live one
        base = rec.phases[rec.phases["name"] == proto.baseline_phase]
        vals = steps[proto.metric].to_numpy(float) if proto.metric in steps else np.empty(0)
        ic = steps["ic_s"].to_numpy(float)
        if len(base) and len(vals):
            sel = (ic >= base["start"].iloc[0]) & (ic < base["stop"].iloc[0]) & np.isfinite(vals)
            if sel.any():
                proto.set_baseline(float(np.median(vals[sel])))
                low, high = proto.low, proto.high
    doc = retraining_numbers(steps, rec.phases, shares, proto.metric, low, high)
    doc.update({"cue_kind": proto.cue_kind, "protocol": proto.name, "cues_n": int(len(rec.cues)),
                "audio_sink": str(rec.attrs.get("audio_sink", "")),
                "audio_latency_ms": float(rec.attrs.get("audio_latency_ms", math.nan))})
    series = steps[["foot", "ic_s"]].assign(value=steps[proto.metric] if proto.metric in steps else np.nan)
    return {"numbers": doc, "series": series, "cues": rec.cues}


def series_figure(series: pd.DataFrame, cues: pd.DataFrame, numbers: dict) -> Figure:
    """The target metric per step over the session: phases shaded (feedback darker), band, cue ticks."""
    fig = Figure(figsize=(figs.WIDTH_IN, 3.2), layout="constrained")
    ax = fig.subplots()
    t_max = float(np.nanmax(series["ic_s"])) if len(series) else 1.0
    scale, unit = (60.0, "min") if t_max > 180.0 else (1.0, "s")
    for p in numbers["phases"]:
        shade = "#d9ead3" if p["share"] >= 1 else ("#eef5ea" if p["share"] > 0 else "#f4f4f4")
        ax.axvspan(p["start_s"] / scale, p["stop_s"] / scale, color=shade, zorder=0)
        ax.text((p["start_s"] + p["stop_s"]) / 2 / scale, 1.0, p["name"], transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=7)
    lo, hi = numbers["band"]["low"], numbers["band"]["high"]
    for b in (lo, hi):
        if b is not None and math.isfinite(b):
            ax.axhline(b, color="#1b7837", linewidth=1, linestyle="--")
    for foot in figs.FEET:
        s = series[series["foot"] == foot]
        ax.plot(s["ic_s"] / scale, s["value"], ".", markersize=2.5, color=figs.COLOURS[foot], label=foot)
    if len(cues):
        ax.plot(cues["time"] / scale, np.zeros(len(cues)), "|", color="#444", markersize=6,
                transform=ax.get_xaxis_transform(), label="cue")
    label, u, _ = LABELS.get(numbers["metric"], (numbers["metric"], "", 1))
    ax.set_ylabel(f"{label} ({u})")
    ax.set_xlabel(f"session time ({unit})")
    ax.legend(loc="upper right", ncols=3)
    return fig


def retraining_html(doc: dict) -> str:
    """The section's HTML (numbers traceable to ``retraining.*`` in the page's JSON)."""
    n = doc["numbers"]
    label, unit, dec = LABELS.get(n["metric"], (n["metric"], "", 1))
    lo, hi = n["band"]["low"], n["band"]["high"]
    band = " to ".join(x for x in (num("retraining.band.low", lo, dec) if lo is not None else "",
                                   num("retraining.band.high", hi, dec) if hi is not None else "") if x)
    ttc = n["time_to_criterion_s"]
    ttc_text = (f'{num("time_to_criterion_s", ttc, 0)} s, '
                f'{num("time_to_criterion_steps", n["time_to_criterion_steps"], 0)} steps'
                if ttc is not None and math.isfinite(ttc) else
                '<span class="num" data-metric="time_to_criterion_s" data-value="null">not reached'
                '</span><span class="num" data-metric="time_to_criterion_steps" data-value="null">'
                '</span>')
    bvr = n["baseline_vs_retention"]
    cards = [
        f'<div class="card"><h3>Target</h3><span class="big">{esc(label)}</span> {band} {esc(unit)}<br>'
        f'<small>cue: {esc(doc["numbers"]["cue_kind"])}, {num("retraining.cues_n", n["cues_n"], 0)} cues</small>'
        "</div>",
        f'<div class="card"><h3>Time to criterion</h3><span class="big">{ttc_text}</span><br><small>from the start '
        "of feedback until the median of 10 steps stays in band for 20 steps</small></div>",
        f'<div class="card"><h3>Retention ratio</h3><span class="big">'
        f'{num("retention_ratio", n["retention_ratio"], 2)}</span><br><small>1 = all of the change '
        "kept without cues, 0 = back to baseline</small></div>",
        f'<div class="card"><h3>Baseline → retention</h3><span class="big">'
        f'{num("retraining.baseline_vs_retention.diff", bvr["diff"], dec)}</span> {esc(unit)}<br><small>95% CI '
        f'{num("retraining.baseline_vs_retention.ci_low", bvr["ci_low"], dec)} to '
        f'{num("retraining.baseline_vs_retention.ci_high", bvr["ci_high"], dec)}, Hedges\' g '
        f'{num("retraining.baseline_vs_retention.hedges_g", bvr["hedges_g"], 2)}</small></div>',
    ]
    rows = "".join(
        f"<tr><td>{esc(p['name'])}</td><td>{esc(_share_text(p['share']))}</td>"
        f"<td>{num(f'retraining.phases.{i}.steps', p['steps'], 0)}</td>"
        f"<td>{num(f'retraining.phases.{i}.mean', p['mean'], dec)}</td>"
        f"<td>{num('in_band_pct_' + p['slug'], p['in_band_pct'], 0)}%</td></tr>"
        for i, p in enumerate(n["phases"]))
    phase_table = ("<table><thead><tr><th>phase</th><th>feedback</th><th>steps</th>"
                   f"<th>mean {esc(label)} ({esc(unit)})</th><th>steps in band</th></tr></thead>"
                   f"<tbody>{rows}</tbody></table>")
    side = []
    for m, c in n["side_effects"].items():
        lab, u, d = LABELS.get(m, (m, "", 1))
        p = f"retraining.side_effects.{m}"
        side.append(f"<tr><td>{esc(lab)} ({esc(u)})</td><td>{num(p + '.baseline_mean', c['baseline_mean'], d)}</td>"
                    f"<td>{num(p + '.retention_mean', c['retention_mean'], d)}</td>"
                    f"<td>{num(p + '.diff', c['diff'], d + 1)}</td><td>{num(p + '.ci_low', c['ci_low'], d + 1)} to "
                    f"{num(p + '.ci_high', c['ci_high'], d + 1)}</td><td>{num(p + '.hedges_g', c['hedges_g'], 2)}"
                    "</td></tr>")
    side_table = ("<table><thead><tr><th>other metric</th><th>baseline</th><th>retention</th><th>change</th>"
                  "<th>95% CI</th><th>Hedges' g</th></tr></thead><tbody>" + "".join(side) + "</tbody></table>")
    fig = figure("retraining", figs.png_base64(series_figure(doc["series"], doc["cues"], n)),
                 f"{label[:1].upper() + label[1:]} of every step: phases shaded (darker with feedback), the band "
                 "dashed, every cue a tick at the bottom.", f"per-step {label} with phases and cues")
    return ('<section id="retraining"><h2>Retraining</h2><section class="cards">' + "".join(cards) + "</section>"
            + fig + phase_table + "<h3>Side effects (baseline vs retention)</h3>" + side_table + "</section>")


def compare_figure(before: dict, after: dict) -> Figure:
    """Both sessions' target metric per step on one axis, against time since each one's first feedback phase."""
    fig = Figure(figsize=(figs.WIDTH_IN, 3.2), layout="constrained")
    ax = fig.subplots()
    for doc, style, name in ((before, {"color": "#999999"}, "before"), (after, {"color": "#0b5394"}, "after")):
        n = doc["numbers"]
        on = [p["start_s"] for p in n["phases"] if p["share"] > 0]
        t0 = on[0] if on else 0.0
        s = doc["series"]
        ax.plot(s["ic_s"] - t0, s["value"], ".", markersize=2.5, label=name, **style)
        med = s.sort_values("ic_s")["value"].rolling(10, center=True, min_periods=1).median()
        ax.plot(s.sort_values("ic_s")["ic_s"] - t0, med, "-", linewidth=1.5, **style)
    n = after["numbers"]
    for b in (n["band"]["low"], n["band"]["high"]):
        if b is not None and math.isfinite(b):
            ax.axhline(b, color="#1b7837", linewidth=1, linestyle="--")
    ax.axvline(0.0, color="k", linewidth=1, linestyle=":")
    label, u, _ = LABELS.get(n["metric"], (n["metric"], "", 1))
    ax.set_ylabel(f"{label} ({u})")
    ax.set_xlabel("time since feedback started (s)")
    ax.legend(loc="upper left")
    return fig


def compare_html(before: dict | None, after: dict | None) -> str:
    """The retraining part of ``lab compare`` (empty unless both sessions have feedback with the same target)."""
    if not before or not after or before["numbers"]["metric"] != after["numbers"]["metric"]:
        return ""
    rows = []
    for key, name in (("time_to_criterion_s", "time to criterion (s)"), ("retention_ratio", "retention ratio")):
        dec = 0 if key.endswith("_s") else 2
        rows.append(f"<tr><td>{esc(name)}</td><td>{num(f'retraining.before.{key}', before['numbers'][key], dec)}"
                    f"</td><td>{num(f'retraining.after.{key}', after['numbers'][key], dec)}</td></tr>")
    table = ("<table><thead><tr><th>retraining</th><th>before</th><th>after</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>")
    label = LABELS.get(after["numbers"]["metric"], (after["numbers"]["metric"],))[0]
    fig = figure("retraining-compare", figs.png_base64(compare_figure(before, after)),
                 f"{label[:1].upper() + label[1:]} of every step in both sessions, aligned at the start of feedback "
                 "(dots: steps; lines: median of 10 steps; dashed: the band).", f"{label} per step, both sessions")
    return '<section id="retraining-compare"><h2>Retraining</h2>' + fig + table + "</section>"


def top_level(numbers: dict) -> dict:
    """The section's headline numbers as top-level keys of the page's JSON."""
    keys = ("time_to_criterion_s", "time_to_criterion_steps", "retention_ratio")
    return {k: v for k, v in numbers.items() if k in keys or k.startswith("in_band_pct_")}


def _share_text(share: float) -> str:
    return "on" if share >= 1 else ("off" if share <= 0 else f"{share:.0%} of steps")
