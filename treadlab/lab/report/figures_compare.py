"""Before-versus-after figures of the comparison report (same conventions as :mod:`.figures`)."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from treadlab.lab.report.figures import (
    COLOURS,
    FEET,
    _bands,
    _display_x,
    _figure,
    _foot_axes,
    _has,
    _legend,
    _mean_sd,
    _outline,
    _sensel_map,
    _stance_axis,
    nan_mean,
    touchdown_point,
)

STYLES = {"before": {"linestyle": "--", "alpha": 0.55}, "after": {"linestyle": "-", "alpha": 1.0}}


def force_curves(before_bw: dict[str, np.ndarray], after_bw: dict[str, np.ndarray]) -> Figure:
    """Mean vertical force per foot, before (dashed) and after (solid), one panel per foot."""
    fig = _figure(3.0)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, foot in zip(axes, FEET):
        for when, curves in (("before", before_bw), ("after", after_bw)):
            c = curves.get(foot)
            if not _has(c):
                continue
            mean, sd = _mean_sd(c)
            x = _stance_axis(mean.size)
            ax.fill_between(x, mean - sd, mean + sd, color=COLOURS[foot], alpha=0.12 * STYLES[when]["alpha"],
                            linewidth=0)
            ax.plot(x, mean, color=COLOURS[foot], linewidth=2, label=f"{when} ({len(c)} steps)", **STYLES[when])
        ax.set_title(foot)
        ax.set_xlim(0, 100)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("stance (% of contact time)")
        ax.set_ylabel("vertical force (BW)")
        _legend(ax, loc="upper right")
    return fig


def gait_lines(before_mm: dict[str, np.ndarray], after_mm: dict[str, np.ndarray],
               outline_mm: dict[str, np.ndarray | None], before_td_mm: dict[str, float] | None = None,
               after_td_mm: dict[str, float] | None = None) -> Figure:
    """Mean centre-of-pressure gait line per foot, before (dashed) and after (solid), on the foot outline; dots at
    touch-down (the mean strike position, see :func:`.figures.touchdown_point`).
    """
    fig = _figure(4.2)
    axes = _foot_axes(fig)
    for ax, foot in zip(axes[0], FEET):
        _outline(ax, foot, outline_mm.get(foot))
        for when, paths, td in (("before", before_mm, before_td_mm), ("after", after_mm, after_td_mm)):
            p = paths.get(foot)
            if not _has(p):
                continue
            mean = nan_mean(_display_x(foot, np.asarray(p, dtype=float)))
            ax.plot(mean[:, 0], mean[:, 1], color=COLOURS[foot], linewidth=2.5, label=when, **STYLES[when])
            p = touchdown_point(mean, (td or {}).get(foot))
            ax.plot(p[:1], p[1:], "o", color=COLOURS[foot], markersize=6, alpha=STYLES[when]["alpha"])
        ax.autoscale_view()
        _legend(ax, loc="lower center", fontsize=7)
    return fig


def pressure_difference(feet: dict[str, dict]) -> Figure:
    """Mean pressure after minus before, per sensel and foot, on a diverging scale centred on zero.

    Parameters
    ----------
    feet : dict
        ``{foot: {"positions_mm", "areas_mm2", "diff_kpa", "outline_mm"}}``.
    """
    fig = _figure(4.4)
    axes = _foot_axes(fig)
    vmax = max((np.nanmax(np.abs(f["diff_kpa"])) for f in feet.values() if _has(f.get("diff_kpa"))), default=1.0)
    vmax = max(float(vmax), 1e-6)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    coll = None
    for ax, foot in zip(axes[0], FEET):
        f = feet.get(foot)
        if f is None or not _has(f.get("diff_kpa")):
            ax.text(0.5, 0.5, "no pressure data", transform=ax.transAxes, ha="center")
            continue
        coll = _sensel_map(ax, foot, f["positions_mm"], f["areas_mm2"], f["diff_kpa"], f.get("outline_mm"), norm,
                           "RdBu_r")
    if coll is not None:
        fig.colorbar(coll, ax=axes[0].tolist(), label="mean pressure, after - before (kPa)", shrink=0.9)
    return fig


DISTRIBUTIONS = (("avlr_bw_s", "AVLR (BW/s)"), ("strike_index_pct", "strike index (%)"),
                 ("contact_time_ms", "contact time (ms)"))


def distributions(before: dict[str, dict[str, np.ndarray]], after: dict[str, dict[str, np.ndarray]]) -> Figure:
    """Per-step distributions (box plots) of AVLR, strike index and contact time, per foot, before and after.

    Parameters
    ----------
    before, after : dict
        ``{foot: {metric: (n,)}}``.
    """
    fig = _figure(3.2)
    axes = fig.subplots(1, len(DISTRIBUTIONS))
    for ax, (metric, label) in zip(axes, DISTRIBUTIONS):
        if metric == "strike_index_pct":
            _bands(ax, vertical=False)
        data, pos, colours, alphas = [], [], [], []
        for i, foot in enumerate(FEET):
            for j, (when, src) in enumerate((("before", before), ("after", after))):
                v = np.asarray(src.get(foot, {}).get(metric, []), dtype=float)
                data.append(v[np.isfinite(v)])
                pos.append(i * 2.6 + j)
                colours.append(COLOURS[foot])
                alphas.append(STYLES[when]["alpha"])
        keep = [k for k, d in enumerate(data) if d.size]
        if keep:
            bp = ax.boxplot([data[k] for k in keep], positions=[pos[k] for k in keep], widths=0.8,
                            patch_artist=True, showfliers=False, medianprops={"color": "k"})
            for k, box in zip(keep, bp["boxes"]):
                box.set_facecolor(colours[k])
                box.set_alpha(alphas[k])
        ax.set_xticks([0, 1, 2.6, 3.6], ["L before", "L after", "R before", "R after"], rotation=30, fontsize=7)
        ax.set_ylabel(label)
        ax.grid(axis="x", visible=False)
    return fig
