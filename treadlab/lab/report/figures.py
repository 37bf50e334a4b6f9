"""Report figures, made with matplotlib's object API (no pyplot, no display, no global state).

Every function takes plain arrays (already computed by :mod:`treadlab.analysis`) and returns a
:class:`matplotlib.figure.Figure`; :func:`png_base64` turns one into the embedded image. Conventions, the same in
every figure: left is blue and right is vermillion (colour-blind safe), "before" is dashed and paler, "after" solid;
every axis carries its unit; forces are in body weights (BW), pressures in kPa, positions in mm.

Feet are drawn as seen from above: the left foot with its lateral side to the left, the right foot with its lateral
side to the right (the foot frame's x points laterally on both feet, so the left foot is mirrored for display).
"""

from __future__ import annotations

import base64
import io

import matplotlib as mpl
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from treadlab.vocabulary import FEET

COLOURS = {"left": "#0072B2", "right": "#D55E00"}
STRIKE_BANDS = (("rearfoot", 0.0, 100.0 / 3.0, "#e8e8e8"), ("midfoot", 100.0 / 3.0, 200.0 / 3.0, "#f6f6f6"),
                ("forefoot", 200.0 / 3.0, 100.0, "#e8e8e8"))
#: Most step lines drawn per foot in a gait-line figure (a random, reproducible subset beyond that).
MAX_LINES_N = 150
WIDTH_IN = 7.4  # fits an A4 or Letter page with margins
DPI = 110

_RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "axes.spines.top": False,
       "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": DPI}


def _figure(height_in: float) -> Figure:
    with mpl.rc_context(_RC):
        return Figure(figsize=(WIDTH_IN, height_in), layout="constrained")


def png_base64(fig: Figure) -> str:
    """Render ``fig`` to PNG and return it base64-encoded (ASCII) for a ``data:image/png`` URI."""
    buf = io.BytesIO()
    with mpl.rc_context(_RC):
        fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _display_x(foot: str, xy: np.ndarray) -> np.ndarray:
    """Foot-frame points as drawn: the left foot mirrored so its lateral side is on the left."""
    out = np.array(xy, dtype=float, copy=True)
    if foot == "left":
        out[..., 0] *= -1.0
    return out


def _legend(ax, **kwargs) -> None:
    """A legend only when something is labelled (matplotlib warns otherwise)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _stance_axis(n: int) -> np.ndarray:
    return np.linspace(0.0, 100.0, n)


def nan_mean(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN (without a warning) where nothing is finite."""
    a = np.asarray(a, dtype=float)
    ok = np.isfinite(a)
    n = ok.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, a, 0.0).sum(axis=axis) / n, np.nan)


def _mean_sd(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD over steps (axis 0), ignoring NaN, without warnings for all-NaN points."""
    c = np.asarray(curves, dtype=float)
    if c.ndim != 2 or c.shape[0] == 0:
        k = c.shape[-1] if c.ndim else 101
        return np.full(k, np.nan), np.full(k, np.nan)
    mean = nan_mean(c)
    ok = np.isfinite(c)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(ok, (c - mean) ** 2, 0.0).sum(axis=0) / (n - 1)
    return mean, np.where(n > 1, np.sqrt(var), 0.0)


def _has(arr) -> bool:
    return arr is not None and np.asarray(arr).size > 0 and np.isfinite(np.asarray(arr, dtype=float)).any()


# --------------------------------------------------------------------------------------------- one session


def force_curves(curves_bw: dict[str, np.ndarray]) -> Figure:
    """Vertical force per foot, mean and SD over steps, on a stance-normalised axis, left and right overlaid.

    Parameters
    ----------
    curves_bw : dict
        ``{"left": (n_steps, k), "right": ...}`` force in BW, each step resampled to k points of stance.
    """
    fig = _figure(3.0)
    ax = fig.add_subplot()
    for foot in FEET:
        c = curves_bw.get(foot)
        if not _has(c):
            continue
        mean, sd = _mean_sd(c)
        x = _stance_axis(mean.size)
        ax.fill_between(x, mean - sd, mean + sd, color=COLOURS[foot], alpha=0.2, linewidth=0)
        ax.plot(x, mean, color=COLOURS[foot], linewidth=2, label=f"{foot} (mean ± SD, {len(c)} steps)")
    ax.set_xlabel("stance (% of contact time)")
    ax.set_ylabel("vertical force (BW)")
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    _legend(ax, loc="upper right")
    return fig


def _outline(ax, foot: str, outline_mm: np.ndarray | None) -> None:
    if outline_mm is None or len(outline_mm) < 3:
        return
    o = _display_x(foot, outline_mm)
    o = np.vstack([o, o[:1]])
    ax.plot(o[:, 0], o[:, 1], color="0.35", linewidth=1.2)
    ax.fill(o[:, 0], o[:, 1], color="0.95", zorder=0)


def _foot_axes(fig: Figure, n_rows: int = 1, titles: tuple[str, ...] = FEET):
    axes = fig.subplots(n_rows, len(titles), squeeze=False)
    for ax, title in zip(axes[0], titles):
        ax.set_title(title)
    for ax in axes.ravel():
        ax.set_aspect("equal")
        ax.grid(False)
        ax.set_xlabel("medial-lateral (mm)")
        ax.set_ylabel("heel to toe (mm)")
    return axes


def _subset(paths: np.ndarray, max_n: int = MAX_LINES_N) -> np.ndarray:
    if len(paths) <= max_n:
        return paths
    idx = np.sort(np.random.default_rng(0).choice(len(paths), max_n, replace=False))
    return paths[idx]


def touchdown_point(mean_path: np.ndarray, touchdown_y_mm: float | None) -> np.ndarray:
    """Where to mark touch-down on a (display) mean gait line: at the analysis' strike position along the foot
    (``touchdown_y_mm``, from the mean strike index) and the path's x nearest to it in the first 30% of stance;
    the path's first point when no strike position is known. At the very first samples the load is tiny and the
    COP is mostly noise, so the path's first point is not where the foot lands.
    """
    p = np.asarray(mean_path, dtype=float)
    if touchdown_y_mm is None or not np.isfinite(touchdown_y_mm) or not np.isfinite(p).any():
        return p[0]
    early = p[: max(2, int(0.3 * len(p)))]
    ok = np.isfinite(early).all(axis=1)
    if not ok.any():
        return np.array([np.nan, touchdown_y_mm])
    i = np.flatnonzero(ok)[np.argmin(np.abs(early[ok, 1] - touchdown_y_mm))]
    return np.array([early[i, 0], touchdown_y_mm])


def gait_lines(cop_mm: dict[str, np.ndarray], outline_mm: dict[str, np.ndarray | None],
               touchdown_y_mm: dict[str, float] | None = None) -> Figure:
    """Centre-of-pressure path of every step (thin) and their mean (thick) on each foot's outline.

    Parameters
    ----------
    cop_mm : dict
        ``{foot: (n_steps, k, 2)}`` COP in the foot frame (x lateral, y heel to toe), NaN where undefined.
    outline_mm : dict
        ``{foot: (m, 2)}`` foot outline in the same frame, or None.
    touchdown_y_mm : dict, optional
        ``{foot: y}``: the mean strike position along the foot (strike index x foot length), marked as touch-down.
    """
    fig = _figure(4.2)
    axes = _foot_axes(fig)
    for ax, foot in zip(axes[0], FEET):
        _outline(ax, foot, outline_mm.get(foot))
        p = cop_mm.get(foot)
        if not _has(p):
            ax.text(0.5, 0.5, "no COP data", transform=ax.transAxes, ha="center")
            continue
        p = _display_x(foot, np.asarray(p, dtype=float))
        ax.add_collection(LineCollection(list(_subset(p)), colors=COLOURS[foot], linewidths=0.5, alpha=0.25))
        mean = nan_mean(p)
        ax.plot(mean[:, 0], mean[:, 1], color=COLOURS[foot], linewidth=2.5, label=f"{foot}: mean gait line")
        td = touchdown_point(mean, (touchdown_y_mm or {}).get(foot))
        ax.plot(td[:1], td[1:], "o", color="k", markersize=5, label="touch-down" if foot == "right" else "_td")
        ax.autoscale_view()
    handles = [h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    return fig


def butterfly(cop_mm: dict[str, np.ndarray]) -> Figure:
    """Centre of pressure of both feet over time in the treadmill's frame (the "butterfly").

    Parameters
    ----------
    cop_mm : dict
        ``{"left": (k, 2), "right": (k, 2)}`` per foot (insoles), or ``{"both": (k, 2)}`` for the COP of the
        whole mat; x towards the runner's right, y forward, mm, centred; NaN rows break the lines.
    """
    fig = _figure(3.8)
    ax = fig.add_subplot()
    for key, arr in cop_mm.items():
        c = np.asarray(arr, dtype=float)
        if key in COLOURS:
            ax.plot(c[:, 0], c[:, 1], color=COLOURS[key], linewidth=0.8, marker=".", markersize=2,
                    label=f"{key} foot on the ground")
            continue
        ax.plot(c[:, 0], c[:, 1], color="0.55", linewidth=0.5, zorder=1)
        left = c[:, 0] < 0
        ax.plot(c[left, 0], c[left, 1], ".", color=COLOURS["left"], markersize=2, label="left foot on the ground")
        ax.plot(c[~left, 0], c[~left, 1], ".", color=COLOURS["right"], markersize=2,
                label="right foot on the ground")
    ax.set_xlabel("left - right (mm)")
    ax.set_ylabel("back - front (mm)")
    _legend(ax, loc="upper right", markerscale=4)
    return fig


def _sensel_polys(foot: str, positions_mm: np.ndarray, areas_mm2: np.ndarray) -> np.ndarray:
    """Squares of each sensel's area around its position, (n, 4, 2), as drawn."""
    pos = _display_x(foot, positions_mm)
    half = 0.5 * np.sqrt(np.asarray(areas_mm2, dtype=float))[:, None]
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    return pos[:, None, :] + half[:, :, None] * corners[None, :, :]


def _sensel_map(ax, foot, positions_mm, areas_mm2, values, outline, norm, cmap):
    _outline(ax, foot, outline)
    coll = PolyCollection(_sensel_polys(foot, positions_mm, areas_mm2), array=np.asarray(values, dtype=float),
                          cmap=cmap, norm=norm, edgecolors="none")
    ax.add_collection(coll)
    ax.autoscale_view()
    return coll


def pressure_maps(feet: dict[str, dict]) -> Figure:
    """Peak and mean pressure per sensel, per foot (insoles), in one row: peak left/right, mean left/right.

    Parameters
    ----------
    feet : dict
        ``{foot: {"positions_mm": (n, 2), "areas_mm2": (n,), "peak_kpa": (n,), "mean_kpa": (n,),
        "outline_mm": (m, 2) or None}}``.
    """
    fig = _figure(3.9)
    axes = _foot_axes(fig, 1, ("left: peak", "right: peak", "left: mean", "right: mean"))[0]
    for pair, key, title in ((axes[:2], "peak_kpa", "peak"), (axes[2:], "mean_kpa", "mean")):
        vmax = max((np.nanmax(f[key]) for f in feet.values() if _has(f.get(key))), default=1.0)
        norm = mpl.colors.Normalize(0.0, max(vmax, 1e-9))
        coll = None
        for ax, foot in zip(pair, FEET):
            f = feet.get(foot)
            if f is None or not _has(f.get(key)):
                continue
            coll = _sensel_map(ax, foot, f["positions_mm"], f["areas_mm2"], f[key], f.get("outline_mm"), norm,
                               "magma_r")
        if coll is not None:
            fig.colorbar(coll, ax=list(pair), label=f"{title} pressure (kPa)", location="bottom", shrink=0.8)
    return fig


def footprints(images_kpa: dict[str, np.ndarray], pitch_mm: float) -> Figure:
    """The mat's mean footprint of each foot (pressure averaged over every contact frame, following the foot).

    Parameters
    ----------
    images_kpa : dict
        ``{foot: (L, W)}``, row 0 at the heel side, columns increasing to the runner's right.
    pitch_mm : float
        Sensel pitch.
    """
    fig = _figure(3.9)
    axes = _foot_axes(fig, 1, tuple(f for f in FEET if f in images_kpa) or FEET)[0]
    vmax = max((np.nanmax(v) for v in images_kpa.values() if _has(v)), default=1.0)
    im = None
    for ax, foot in zip(axes, [f for f in FEET if f in images_kpa]):
        img = np.asarray(images_kpa[foot], dtype=float)
        half = img.shape[1] * pitch_mm / 2
        im = ax.imshow(img, origin="lower", extent=(-half, half, 0, img.shape[0] * pitch_mm), cmap="magma_r",
                       vmin=0, vmax=max(float(vmax), 1e-9), interpolation="nearest")
        ax.set_xlabel("left - right (mm)")
        ax.set_ylabel("back to front (mm)")
    if im is not None:
        fig.colorbar(im, ax=list(axes), label="mean pressure (kPa)", shrink=0.9)
    return fig


def _bands(ax, vertical: bool = True) -> None:
    for name, lo, hi, colour in STRIKE_BANDS:
        if vertical:
            ax.axvspan(lo, hi, color=colour, zorder=0)
            ax.text((lo + hi) / 2, 0.98, name, transform=ax.get_xaxis_transform(), ha="center", va="top",
                    fontsize=8, color="0.35")
        else:
            ax.axhspan(lo, hi, color=colour, zorder=0)
            ax.text(0.005, (lo + hi) / 2, name, transform=ax.get_yaxis_transform(), va="center", fontsize=7,
                    color="0.35")


def strike_distribution(strike_index_pct: dict[str, np.ndarray]) -> Figure:
    """Histogram of the strike index per foot with the rearfoot, midfoot and forefoot bands."""
    fig = _figure(2.8)
    ax = fig.add_subplot()
    _bands(ax)
    bins = np.linspace(-10, 110, 49)
    for foot in FEET:
        v = np.asarray(strike_index_pct.get(foot, []), dtype=float)
        v = v[np.isfinite(v)]
        if v.size:
            ax.hist(np.clip(v, -10, 110), bins=bins, histtype="step", linewidth=2, color=COLOURS[foot],
                    label=f"{foot} ({v.size} steps)")
    ax.set_xlim(-10, 110)
    ax.set_xlabel("strike index (% of foot length from the heel)")
    ax.set_ylabel("steps")
    _legend(ax, loc="center right")
    return fig


def over_time(steps: dict[str, dict[str, np.ndarray]], markers: list[tuple[float, str]]) -> Figure:
    """Per-step AVLR and strike index over the session, with marker lines.

    Parameters
    ----------
    steps : dict
        ``{foot: {"t_s": (n,), "avlr_bw_s": (n,), "strike_index_pct": (n,)}}``.
    markers : list of (float, str)
        Marker times (s, session clock) and labels.
    """
    fig = _figure(4.4)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    t_max = max((np.nanmax(s["t_s"]) for s in steps.values() if s and len(s["t_s"])), default=0.0)
    scale, unit = (60.0, "min") if t_max > 180.0 else (1.0, "s")
    _bands(ax2, vertical=False)
    for foot in FEET:
        s = steps.get(foot)
        if not s:
            continue
        t = np.asarray(s["t_s"], dtype=float) / scale
        ms = 3 if t.size < 2000 else 1.5
        ax1.plot(t, s["avlr_bw_s"], ".", color=COLOURS[foot], markersize=ms, label=foot)
        ax2.plot(t, s["strike_index_pct"], ".", color=COLOURS[foot], markersize=ms, label=foot)
    for ax in (ax1, ax2):
        for t_s, _label in markers:
            ax.axvline(t_s / scale, color="k", linewidth=1, linestyle=":")
    for t_s, label in markers:
        ax1.text(t_s / scale, 1.0, f" {label}", transform=ax1.get_xaxis_transform(), fontsize=7, va="bottom")
    ax1.set_ylabel("AVLR (BW/s)")
    ax2.set_ylabel("strike index (%)")
    ax2.set_ylim(-5, 105)
    ax2.set_xlabel(f"time in the session ({unit})")
    _legend(ax1, loc="upper right", markerscale=4)
    return fig
