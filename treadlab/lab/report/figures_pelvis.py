"""Pelvis figures of the reports: the mean pelvic obliquity over the stride per stance side (same conventions as
:mod:`.figures`: left blue, right vermillion, before dashed and paler, after solid).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from treadlab.lab.report.figures import COLOURS, FEET, _figure, _has, _legend
from treadlab.lab.report.figures_compare import STYLES


def _curve(c) -> np.ndarray | None:
    """A mean curve: a 1-D array as given, the NaN-mean of a 2-D (strides, points) array."""
    if not _has(c):
        return None
    a = np.asarray(c, dtype=float)
    if a.ndim == 2:
        ok = np.isfinite(a)
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.where(n > 0, np.where(ok, a, 0.0).sum(axis=0) / n, np.nan)
    return a


def _axes(fig: Figure):
    ax = fig.subplots(1, 1)
    ax.axhline(0.0, color="#888", linewidth=0.8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("stride (% from the stance foot's initial contact to its next)")
    ax.set_ylabel("pelvic obliquity (deg, + swing side down)")
    return ax


def pelvic_obliquity(curves_deg: dict[str, np.ndarray]) -> Figure:
    """Mean pelvic obliquity over the stride of each stance side (relative to standing), left and right."""
    fig = _figure(2.8)
    ax = _axes(fig)
    for foot in FEET:
        c = _curve(curves_deg.get(foot))
        if c is None:
            continue
        ax.plot(np.linspace(0.0, 100.0, c.size), c, color=COLOURS[foot], linewidth=2, label=f"{foot} stance")
    _legend(ax, loc="upper right")
    return fig


def pelvic_obliquity_compare(before_deg: dict[str, np.ndarray], after_deg: dict[str, np.ndarray]) -> Figure:
    """Mean pelvic obliquity over the stride per stance side, before (dashed) and after (solid)."""
    fig = _figure(2.8)
    ax = _axes(fig)
    for foot in FEET:
        for when, curves in (("before", before_deg), ("after", after_deg)):
            c = _curve(curves.get(foot))
            if c is None:
                continue
            ax.plot(np.linspace(0.0, 100.0, c.size), c, color=COLOURS[foot], linewidth=2,
                    label=f"{foot} stance, {when}", **STYLES[when])
    _legend(ax, loc="upper right")
    return fig
