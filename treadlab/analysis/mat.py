"""Footprints on the treadmill pressure mat: detection in space and time, belt speed, left/right, per-step metrics.

Method (``docs/analysis.md``):

1. Frames are read in blocks. Sensels above ``threshold_frac`` of the typical frame maximum are active; active
   sensels connected in (time, row, col) form one footprint, which follows the foot as the belt carries it.
   Blocks overlap so that a footprint cut by a block end is redone whole in the next block.
2. Belt axis, direction and speed: during stance the front and rear edges of a footprint move with the belt.
   The axis whose edges move fastest is the belt axis and the runner faces against their motion; the median
   velocity of the front (toe) edges over all footprints is the belt speed (the rear edge creeps forward as
   the heel unloads).
3. Per footprint: initial contact and toe-off from the force of its first (last) two frames fitted as
   ``A (t - t0)^p`` with ``p`` pooled over the foot's footprints (:func:`_pooled_onset`), contact time, force
   (calibrated mats), strike index: COP of the first frame with 2 % of the peak force, in the belt frame,
   between the footprint's heel and toe edges, the heel at least one foot length behind the toe (the foot
   length from the insoles' layout, else from the footprints: :func:`foot_length_of`).
4. Left and right: footprints split into two clusters by lateral position; the runner's left is 90 degrees
   counter-clockwise from forward in the mat's (column, row) frame.
5. Step length: heel-to-heel distance in the belt frame (heel at initial contact plus belt travel between the
   contacts); step width: lateral distance between consecutive footprints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from treadlab.analysis.gaitclass import STANDING_MIN_MS
from treadlab.analysis.store import block_plan
from treadlab.analysis.strike import classify_strike
from treadlab.calibration import apply_calibration

__all__ = ["REC_DTYPE", "BlockSteps", "MatAnalysis", "block_steps", "match_steps"]

#: Frames per block of a long session (9 min at 120 Hz, some 1,500 footprints).
MAT_BLOCK_FRAMES = 1 << 16


def _step_geometry(tab: pd.DataFrame, speed_mm_s: float) -> pd.DataFrame:
    """Step length (heel to heel in the belt frame) and width (lateral distance) between consecutive footprints
    of opposite feet, in a table sorted by initial contact.
    """
    prev_ic = tab["ic_s"].shift(1).to_numpy()
    prev_heel = tab["heel_mm"].shift(1).to_numpy()
    other = tab["foot"].to_numpy() != tab["foot"].shift(1).to_numpy()
    length = (tab["heel_mm"].to_numpy() - prev_heel + speed_mm_s * (tab["ic_s"].to_numpy() - prev_ic)) * 1e-3
    tab["step_length_m"] = np.where(other, length, np.nan)
    tab["step_width_m"] = np.where(other, np.abs(tab["lateral_mm"] - tab["lateral_mm"].shift(1)) * 1e-3, np.nan)
    for c in ("impact_peak_bw", "avlr_bw_s", "vilr_bw_s", "onset_diff_ms"):
        tab[c] = np.nan
    return tab


def _group_slope(g: np.ndarray, x: np.ndarray, y: np.ndarray, n_groups: int) -> np.ndarray:
    """Least-squares slope dy/dx within each group id (NaN with fewer than 3 points)."""
    cnt = np.bincount(g, minlength=n_groups).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(g, x, n_groups) / cnt
        my = np.bincount(g, y, n_groups) / cnt
        dx = x - mx[g]
        sxy = np.bincount(g, dx * (y - my[g]), n_groups)
        sxx = np.bincount(g, dx * dx, n_groups)
        slope = sxy / sxx
    return np.where(cnt >= 3, slope, np.nan)


_X = np.linspace(0.005, 1.0, 400)
_G = np.log((_X + 1) / _X) / np.log((_X + 2) / (_X + 1))  # decreasing in x


def _pool2(active: np.ndarray) -> np.ndarray:
    """Logical OR over 2 x 2 blocks of sensels of a (frames, rows, cols) mask (odd edges padded)."""
    t, r, c = active.shape
    if r % 2 or c % 2:
        padded = np.zeros((t, r + r % 2, c + c % 2), dtype=bool)
        padded[:, :r, :c] = active
        active = padded
    pairs = active[:, 0::2, :] | active[:, 1::2, :]  # rows pooled: (frames, rows / 2, cols), contiguous
    return pairs.view(np.uint16) != 0  # two neighbouring columns read as one 16-bit word: nonzero if either is


def label_frames(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components of a (frames, rows, cols) mask, face-connected in space and time, numbered as
    ``scipy.ndimage.label(mask, generate_binary_structure(3, 1))`` numbers them (1, 2, ... in order of their
    first voxel in ``mask``'s order), and the first and last frame of each.

    A mat's footprints fill a few percent of the mask: the components are found on the graph of its true voxels
    and their neighbours (``scipy.sparse.csgraph``) rather than by a pass over every voxel, and the frame spans come
    with them (``ndimage.find_objects`` would be another pass).

    Returns
    -------
    lab : ndarray of int32, shape of ``mask``
        0 outside the components.
    first, last : ndarray of int, shape (components,)
    """
    t, r, c = mask.shape
    voxels = np.flatnonzero(mask)  # in the mask's order
    n = len(voxels)
    lab = np.zeros(mask.shape, dtype=np.int32)
    if n == 0:
        return lab, np.empty(0, np.int64), np.empty(0, np.int64)
    pos = np.full(mask.size, -1, dtype=np.int32)  # voxel number of each true cell
    pos[voxels] = np.arange(n, dtype=np.int32)
    col, row = voxels % c, (voxels // c) % r
    src, dst = [], []
    for shift, inside in ((1, col < c - 1), (c, row < r - 1), (r * c, voxels < (t - 1) * r * c)):  # 3 directions
        nb = pos[voxels[inside] + shift]
        hit = nb >= 0
        src.append(np.flatnonzero(inside)[hit])
        dst.append(nb[hit])
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    ncomp, comp = connected_components(graph, directed=False)
    first = np.full(ncomp, n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    last = np.zeros(ncomp, dtype=np.int64)
    np.maximum.at(last, comp, np.arange(n))
    order = np.argsort(first)  # components by their first voxel: ndimage's numbers
    number = np.empty(ncomp, dtype=np.int32)
    number[order] = np.arange(1, ncomp + 1, dtype=np.int32)
    lab.ravel()[voxels] = number[comp]
    frame = voxels // (r * c)
    return lab, frame[first[order]], frame[last[order]]


def _active_window(frames: np.ndarray, thr: np.ndarray) -> tuple[int, int, int, int]:
    """Rows ``r0:r1`` and columns ``c0:c1`` of the mat holding every sensel of ``frames`` above ``thr``; ``r0`` and
    ``c0`` even (the 2 x 2 pooling of :func:`_pool2` pairs the same sensels as over the whole mat), the extents even
    where the mat allows. An empty window (``r0 == r1``) when nothing is active.
    """
    any_active = np.fmax.reduce(frames, axis=0) > thr  # (rows, cols): one reduction of the raw values (NaN-proof)
    rows, cols = np.flatnonzero(any_active.any(axis=1)), np.flatnonzero(any_active.any(axis=0))
    if len(rows) == 0:
        return 0, 0, 0, 0
    n_rows, n_cols = any_active.shape
    r1, c1 = int(rows[-1]) + 1, int(cols[-1]) + 1
    # Even extents where the mat allows (no padding in _pool2): the extra row or column is inactive.
    return int(rows[0]) // 2 * 2, min(n_rows, r1 + r1 % 2), int(cols[0]) // 2 * 2, min(n_cols, c1 + c1 % 2)


def _onset_fraction(f0: np.ndarray, f1: np.ndarray, f2: np.ndarray, return_ok: bool = False):
    """Time from force onset to the first of three frames, in frames, for ``F = A (t - t0)^p``.

    With ``x`` the onset-to-first-frame distance: ``log(f1/f0) / log(f2/f1) = log((x+1)/x) / log((x+2)/(x+1))``,
    independent of ``A`` and ``p``; solved by table look-up. Half a frame when the frames do not rise.
    With ``return_ok``, also the mask of the frames that rise (where the fit holds).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.log(f1 / f0) / np.log(f2 / f1)
    ok = np.isfinite(q) & (f0 > 0) & (f1 > f0) & (f2 > f1)
    x = np.interp(np.where(ok, q, 0.0), _G[::-1], _X[::-1])
    x = np.where(ok, x, 0.5)
    return (x, ok) if return_ok else x


#: Foot breadth over foot length of adults (about 0.38-0.40; docs/analysis.md), used to estimate the foot length
#: from the loaded width when the footprints show no heel.
BREADTH_PER_LENGTH = 0.38
#: A footprint shorter than this many loaded widths shows no heel (a real foot is longer).
MIN_LENGTH_PER_WIDTH = 2.2
#: The frame of the strike index's COP carries at least this fraction of the footprint's peak force; at most
#: MAX_LEAD_SKIP frames before it are passed over.
COP_MIN_FRAC = 0.02
MAX_LEAD_SKIP = 2
#: Smallest onset exponent of the pooled two-frame fit of initial contact (see _pooled_onset).
ONSET_MIN_POWER = 1.5
#: Smallest exponent of the pooled two-frame fit of toe-off.
END_MIN_POWER = 1.0


def _pooled_onset(f0: np.ndarray, f1: np.ndarray, f2: np.ndarray, group: np.ndarray,
                  min_power: float) -> np.ndarray:
    """Onset (or end) of each footprint's force, in frames before its first (after its last) frame, from its two
    outermost frames and an exponent pooled over the footprints of its group (its foot).

    Each footprint's three outermost frames ``f0, f1, f2`` give an exponent ``p = log(f1/f0) / log((x+1)/x)`` of
    ``F = A (t - t0)^p`` (``x`` from :func:`_onset_fraction`). Alone it is noisy (three frames, three unknowns),
    and over a rise that bends within the three frames (8 to 25 ms after contact at 120 Hz) it comes out low:
    the onset lands too close to the first frame. The group's median exponent, at least ``min_power``, is
    used with the two outermost frames only, where the power law holds best:
    ``x = 1 / ((f1/f0)^(1/p) - 1)``, at most two frames (the frame before the first may be under the
    threshold). Footprints whose frames do not rise keep the three-frame value.

    Parameters
    ----------
    f0, f1, f2 : ndarray, shape (n,)
        Force of the outermost, second and third frame of each footprint (from the onset side).
    group : ndarray of int, shape (n,)
        Group (foot) of each footprint, ``>= 0``.
    min_power : float
        Smallest exponent used.

    Returns
    -------
    ndarray, shape (n,)
        Time from onset to the outermost frame, in frames.
    """
    x3, ok = _onset_fraction(f0, f1, f2, return_ok=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_step = np.log(f1 / f0) / np.log((x3 + 1.0) / x3)
    good = ok & np.isfinite(p_step) & (p_step > 0)
    if not good.any():
        return x3
    med = pd.Series(p_step[good]).groupby(group[good]).median()
    p = np.maximum(med.reindex(group).to_numpy(dtype=float), min_power)
    p = np.where(np.isfinite(p), p, np.nanmedian(p_step[good]))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x2 = 1.0 / ((f1 / f0) ** (1.0 / p) - 1.0)
    return np.where(ok & np.isfinite(x2), np.clip(x2, 0.0, 2.0), x3)


#: One record per (footprint, frame): the frame's time, footprint id, total force (N, or counts), centre of
#: pressure and the extent of its active sensels (mm, mat frame: x along the columns, y along the rows), frame.
REC_DTYPE = np.dtype([("t_s", "f8"), ("id", "i8"), ("force", "f8"), ("cop_x_mm", "f8"), ("cop_y_mm", "f8"),
                      ("x_min_mm", "f8"), ("x_max_mm", "f8"), ("y_min_mm", "f8"), ("y_max_mm", "f8"),
                      ("frame", "i8")])
#: Per mat axis (0 = columns, x; 1 = rows, y): the record fields of its extent and of its COP coordinate.
_EDGES = {0: ("x_min_mm", "x_max_mm"), 1: ("y_min_mm", "y_max_mm")}
_COP = {0: "cop_x_mm", 1: "cop_y_mm"}


def footprint_records(frames, lab, active, keep, lo, comp_base, t, mat, origin: tuple[int, int] = (0, 0),
                      lab_frames: np.ndarray | None = None) -> np.ndarray | None:
    """Per (footprint, frame) records (:data:`REC_DTYPE`) of the labelled footprints ``keep`` of a block.

    ``frames`` (raw) holds frames ``lo`` onwards, ``active`` their active sensels and ``lab`` the 2 x 2 pooled labels
    of ``active``, both cropped to the window of the mat that starts at sensel ``origin`` (row, column; even, so that
    the pooling pairs the mat's own rows and columns), ``t`` the frames' times; footprint ids start at
    ``comp_base``. ``lab_frames`` gives the frame of ``lab`` of each frame of ``active`` that has an active sensel
    (default: the same frame). None when no kept footprint has an active sensel.
    """
    r0, c0 = origin
    n_rows, n_cols = active.shape[1], active.shape[2]
    flat = np.flatnonzero(active)  # in (frame, row, column) order (np.nonzero of 3-D masks is far slower)
    if active.size < 2**31:  # 32-bit index arithmetic (faster)
        flat = flat.astype(np.int32)
    fr, row, col = flat // (n_rows * n_cols), (flat // n_cols) % n_rows, flat % n_cols
    pr, pc = lab.shape[1], lab.shape[2]
    lab_fr = fr if lab_frames is None else lab_frames[fr]
    comp = lab.ravel()[(lab_fr * pr + row // 2) * pc + col // 2] - 1
    sel = keep[comp]
    if not sel.any():
        return None
    # Sensels by footprint (label), then frame: they come in frame order, so a stable sort by label alone orders
    # them by (label, frame), as a sort by label * frames + frame would (a counting sort for up to 2^15 labels).
    comp = comp[sel]
    srt = np.argsort(comp.astype(np.int16 if len(keep) < 2**15 else np.int64), kind="stable")
    order = np.flatnonzero(sel)[srt]
    fr, row, col = fr[order], row[order] + r0, col[order] + c0
    cid = (np.cumsum(keep) - 1)[comp[srt]]  # footprint ids: the rank of each kept label (each has active sensels)
    x = col.astype(float) * mat.pitch_mm
    y = row.astype(float) * mat.pitch_mm
    sensel = row * mat.cols + col
    p = apply_calibration(frames[fr, row, col], mat.gain[sensel], mat.offset[sensel], dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, (cid[1:] != cid[:-1]) | (fr[1:] != fr[:-1])])
    fsum = np.add.reduceat(p, starts)
    out = np.empty(len(starts), REC_DTYPE)
    out["t_s"] = t[fr[starts]]
    out["id"] = cid[starts] + comp_base
    out["force"] = fsum * mat.force_factor
    out["cop_x_mm"] = np.add.reduceat(p * x, starts) / fsum
    out["cop_y_mm"] = np.add.reduceat(p * y, starts) / fsum
    out["x_min_mm"] = np.minimum.reduceat(x, starts)
    out["x_max_mm"] = np.maximum.reduceat(x, starts)
    out["y_min_mm"] = np.minimum.reduceat(y, starts)
    out["y_max_mm"] = np.maximum.reduceat(y, starts)
    out["frame"] = fr[starts] + lo
    return out


def merge_parts(rec: np.ndarray, dt: float) -> np.ndarray:
    """Join footprint parts of one foot that overlap in time (heel and forefoot seen as separate blobs)."""
    cid = rec["id"]
    n = int(cid.max()) + 1
    first = np.full(n, np.inf)
    np.minimum.at(first, cid, rec["t_s"])
    last = np.full(n, -np.inf)
    np.maximum.at(last, cid, rec["t_s"])
    w = np.bincount(cid, rec["force"], n)
    lat_x = np.bincount(cid, rec["cop_x_mm"] * rec["force"], n) / np.maximum(w, 1e-12)
    lat_y = np.bincount(cid, rec["cop_y_mm"] * rec["force"], n) / np.maximum(w, 1e-12)
    order = np.lexsort((first,))
    gid = np.arange(n)
    # Parts overlap in time and lie within a third of a foot length of each other: one footprint.
    # They overlap for at least half the shorter one: the two feet of a walker in double support overlap only at
    # the end of one stance and the start of the other (and lie ~ a step width apart, within reach).
    near_mm = 120.0
    active_end: dict[int, tuple[float, float, float, float]] = {}
    for c in order:  # one iteration per footprint part (not per sample)
        if not np.isfinite(first[c]):
            continue
        for g, (end, x, y, start) in list(active_end.items()):
            overlap = min(end, last[c]) - first[c]
            if end < first[c] - 1.5 * dt:
                del active_end[g]
            elif abs(lat_x[c] - x) < near_mm and abs(lat_y[c] - y) < 4 * near_mm and \
                    min(abs(lat_x[c] - x), abs(lat_y[c] - y)) < near_mm and \
                    overlap + 1.5 * dt >= 0.5 * min(end - start, last[c] - first[c]):
                gid[c] = g
                break
        g = int(gid[c])
        prev = active_end.get(g, (-np.inf, lat_x[c], lat_y[c], first[c]))
        active_end[g] = (max(prev[0], last[c]), prev[1], prev[2], prev[3])
    if np.all(gid == np.arange(n)):
        return rec
    _, new = np.unique(gid, return_inverse=True)
    g = new[cid]
    span = int(rec["frame"].max()) + 2
    key = g.astype(np.int64) * span + rec["frame"]
    uniq, inv = np.unique(key, return_inverse=True)
    f = np.bincount(inv, rec["force"], len(uniq))
    out = np.empty(len(uniq), REC_DTYPE)
    out["t_s"] = np.bincount(inv, rec["t_s"], len(uniq)) / np.bincount(inv, minlength=len(uniq))
    out["id"] = uniq // span
    out["frame"] = uniq % span
    out["force"] = f
    out["cop_x_mm"] = np.bincount(inv, rec["cop_x_mm"] * rec["force"], len(uniq)) / np.maximum(f, 1e-12)
    out["cop_y_mm"] = np.bincount(inv, rec["cop_y_mm"] * rec["force"], len(uniq)) / np.maximum(f, 1e-12)
    for name, red in (("x_min_mm", np.minimum), ("x_max_mm", np.maximum), ("y_min_mm", np.minimum),
                      ("y_max_mm", np.maximum)):
        v = np.full(len(uniq), np.inf if red is np.minimum else -np.inf)
        red.at(v, inv, rec[name])
        out[name] = v
    return out


def belt_motion(rec: np.ndarray, cid: np.ndarray, first: np.ndarray, last: np.ndarray,
                ncomp: int) -> tuple[int, float]:
    """Belt axis and signed velocity (m/s along the mat axis) from the motion of the footprint edges.

    Mid-stance (30-70 %), when the whole foot is down and both edges move with the belt; the axis whose edges
    move fastest is the belt axis, and the speed is that of the front (toe) edge alone when it agrees in sign:
    the toes stay down from early stance to push-off, while the rear edge creeps forward as the heel unloads
    (rearfoot strikes) and would make the belt seem slow.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        u = (rec["t_s"] - first[cid]) / (last[cid] - first[cid])
    mid = (u >= 0.3) & (u <= 0.7)
    t_mid, c_mid = rec["t_s"][mid], cid[mid]
    v = {}
    for axis, (lo_f, hi_f) in _EDGES.items():  # the two axes of the mat
        s = np.concatenate([_group_slope(c_mid, t_mid, rec[lo_f][mid], ncomp),
                            _group_slope(c_mid, t_mid, rec[hi_f][mid], ncomp)])
        v[axis] = float(np.nanmedian(s)) if np.isfinite(s).any() else 0.0
    axis = 0 if abs(v[0]) >= abs(v[1]) else 1
    lo_f, hi_f = _EDGES[axis]
    front = hi_f if v[axis] < 0 else lo_f  # the runner faces against the belt's motion
    s_front = _group_slope(c_mid, t_mid, rec[front][mid], ncomp)
    if np.isfinite(s_front).any() and np.sign(np.nanmedian(s_front)) == np.sign(v[axis]):
        v[axis] = float(np.nanmedian(s_front))
    return axis, v[axis] * 1e-3


def footprint_extent(rec: np.ndarray, cid: np.ndarray, ncomp: int, first: np.ndarray, axis: int, sgn: int,
                     speed_mm_s: float, pitch_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heel and toe (forward coordinate in the belt frame of each footprint's first frame, mm, half a sensel
    beyond the outermost active centres) and the largest lateral extent of a frame (mm).
    """
    lo_f, hi_f = _EDGES[axis]
    travel = speed_mm_s * (rec["t_s"] - first[cid])
    fwd_lo = np.where(sgn > 0, rec[lo_f], -rec[hi_f]) + travel
    fwd_hi = np.where(sgn > 0, rec[hi_f], -rec[lo_f]) + travel
    heel = np.full(ncomp, np.inf)
    np.minimum.at(heel, cid, fwd_lo)
    toe = np.full(ncomp, -np.inf)
    np.maximum.at(toe, cid, fwd_hi)
    heel -= 0.5 * pitch_mm
    toe += 0.5 * pitch_mm
    wlo, whi = _EDGES[1 - axis]
    width = np.full(ncomp, -np.inf)
    np.maximum.at(width, cid, rec[whi] - rec[wlo] + pitch_mm)
    return heel, toe, width


def frames_in_order(rec: np.ndarray, cid: np.ndarray) -> dict:
    """The records sorted by footprint, then time: ``order`` (record indices), ``head``/``tail`` (first and last
    position of each footprint in that order), ``ids`` (footprint of each head), ``force`` (sorted forces).
    """
    order = np.lexsort((rec["t_s"], cid))
    c_sorted = cid[order]
    head = np.flatnonzero(np.r_[True, c_sorted[1:] != c_sorted[:-1]])
    tail = np.r_[head[1:] - 1, len(c_sorted) - 1]
    return {"order": order, "head": head, "tail": tail, "ids": c_sorted[head], "cid": c_sorted,
            "force": rec["force"][order]}


def strike_cop(rec: np.ndarray, srt: dict, peak: np.ndarray, first: np.ndarray, ncomp: int, axis: int, sgn: int,
               speed_mm_s: float) -> np.ndarray:
    """Forward COP (belt frame of the footprint's first frame, mm) of each footprint's first loaded frame.

    The first frame that carries a real part of the load, at least :data:`COP_MIN_FRAC` of the footprint's peak
    force: before it a frame may show a sensel or two just over the threshold, and a lightly loaded region (the
    heel of a midfoot strike) may lie under it, so its COP leans to the most loaded part; at most
    :data:`MAX_LEAD_SKIP` frames (17 ms at 120 Hz) are passed over.
    """
    head, tail, ids = srt["head"], srt["tail"], srt["ids"]
    pos = np.arange(len(srt["cid"]))
    big = srt["force"] >= COP_MIN_FRAC * peak[srt["cid"]]
    lead = np.minimum(np.minimum.reduceat(np.where(big, pos, len(pos)), head) - head, MAX_LEAD_SKIP)
    lead = np.clip(lead, 0, tail - head)
    row0 = srt["order"][head + lead]
    cop_fwd_ic = np.full(ncomp, np.nan)
    cop_fwd_ic[ids] = sgn * rec[_COP[axis]][row0] + speed_mm_s * (rec["t_s"][row0] - first[ids])
    return cop_fwd_ic


def split_left_right(lateral: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """True for the right foot's footprints: two clusters of lateral position (1-D two-means over the ``ok``
    footprints); across the belt, lower lateral positions are the runner's left (docs/analysis.md).
    """
    lat = lateral[ok]
    c0, c1 = np.percentile(lat, 25) if len(lat) else 0.0, np.percentile(lat, 75) if len(lat) else 0.0
    for _ in range(20):  # 1-D two-means, converges in a few iterations
        mid = 0.5 * (c0 + c1)
        lo_m, hi_m = lat[lat <= mid], lat[lat > mid]
        if len(lo_m) == 0 or len(hi_m) == 0:
            break
        c0, c1 = lo_m.mean(), hi_m.mean()
    return lateral > 0.5 * (c0 + c1)


def contact_times(srt: dict, first: np.ndarray, last: np.ndarray, side: np.ndarray,
                  dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Initial contact and toe-off of each footprint: its first (last) two frames' force fitted as
    ``A (t - t0)^p`` with the exponent pooled over the footprints of its ``side`` (:func:`_pooled_onset`).
    """
    head, tail, ids, f = srt["head"], srt["tail"], srt["ids"], srt["force"]
    back = _pooled_onset(f[head], f[np.minimum(head + 1, tail)], f[np.minimum(head + 2, tail)], side,
                         ONSET_MIN_POWER)
    fwd = _pooled_onset(f[tail], f[np.maximum(tail - 1, head)], f[np.maximum(tail - 2, head)], side, END_MIN_POWER)
    ic = first.copy()
    to = last.copy()
    ic[ids] = first[ids] - back * dt
    to[ids] = last[ids] + fwd * dt
    return ic, to


def foot_length_of(extent_mm: np.ndarray, width_mm: np.ndarray, given_mm: float | None = None) -> float:
    """Foot length of the strike index: the given one (insoles' layout), else from the footprints.

    The 90th percentile of the footprints' heel-to-toe extents (belt frame), unless that is shorter than
    :data:`MIN_LENGTH_PER_WIDTH` times the median loaded width (largest lateral extent of a frame): then the
    heel never loaded (fore-foot strikers) and the length is estimated from the width as
    ``width / BREADTH_PER_LENGTH`` (foot breadth is about 0.38 of foot length in adults; docs/analysis.md).
    """
    if given_mm:
        return float(given_mm)
    ok = np.isfinite(extent_mm) & (extent_mm > 0)
    if not ok.any():
        return float("nan")
    length = float(np.percentile(extent_mm[ok], 90))
    w = width_mm[ok & np.isfinite(width_mm) & (width_mm > 0)]
    width = float(np.median(w)) if len(w) else float("nan")
    if np.isfinite(width) and length < MIN_LENGTH_PER_WIDTH * width:
        length = max(length, width / BREADTH_PER_LENGTH)
    return length


_STEP_COLUMNS = ("foot", "ic_s", "to_s", "contact_time_ms", "strike_index_pct", "strike_class", "strike_flag",
                 "peak_force_bw", "impulse_bw_s", "step_length_m", "step_width_m", "lateral_mm")


@dataclass
class BlockSteps:
    """The footprints of one block of frames (:func:`block_steps`)."""

    steps: pd.DataFrame
    rec: np.ndarray | None
    belt_speed_mps: float = float("nan")
    belt_axis: int = 1
    forward_sign: int = 1
    track_speed_mps: float = float("nan")
    foot_length_mm: float = float("nan")


def block_steps(rec: np.ndarray, dt: float, break_times: np.ndarray, norm_n: float, mat, *,
                min_contact_ms: float, given_speed_mps: float | None = None,
                given_foot_length_mm: float | None = None) -> BlockSteps:
    """The step table of one block's records: belt motion, footprint extent, strike index, left/right, contact
    times, geometry (see the module's method).
    """
    if len(rec) == 0:
        return BlockSteps(pd.DataFrame({c: [] for c in _STEP_COLUMNS}), rec,
                          track_speed_mps=given_speed_mps or float("nan"))
    rec = merge_parts(rec, dt)
    cid = rec["id"]
    ncomp = int(cid.max()) + 1
    cnt = np.bincount(cid, minlength=ncomp)
    first_frame = np.full(ncomp, np.iinfo(np.int64).max)
    np.minimum.at(first_frame, cid, rec["frame"])
    last_frame = np.full(ncomp, -1)
    np.maximum.at(last_frame, cid, rec["frame"])
    first = np.full(ncomp, np.inf)
    np.minimum.at(first, cid, rec["t_s"])
    last = np.full(ncomp, -np.inf)
    np.maximum.at(last, cid, rec["t_s"])
    axis, vel = belt_motion(rec, cid, first, last, ncomp)
    sgn = -1 if vel > 0 else 1
    speed_mm_s = (given_speed_mps or abs(vel)) * 1e3
    heel, toe, width = footprint_extent(rec, cid, ncomp, first, axis, sgn, speed_mm_s, mat.pitch_mm)
    force = rec["force"]
    peak = np.full(ncomp, -np.inf)
    np.maximum.at(peak, cid, force)
    srt = frames_in_order(rec, cid)
    cop_fwd_ic = strike_cop(rec, srt, peak, first, ncomp, axis, sgn, speed_mm_s)
    # A footprint may not show the heel (a fore-foot striker who never lowers it): the heel is placed one foot
    # length behind the toe, which always loads (see foot_length_of).
    foot_len = foot_length_of(toe - heel, width, given_foot_length_mm)
    heel = np.minimum(heel, toe - foot_len)
    with np.errstate(invalid="ignore", divide="ignore"):
        si = (cop_fwd_ic - heel) / (toe - heel) * 100.0
    impulse = np.bincount(cid, force * dt, ncomp)
    lat_f = _COP[1 - axis]
    lateral = np.bincount(cid, rec[lat_f] * force, ncomp) / np.maximum(np.bincount(cid, force, ncomp), 1e-12)
    ok = (cnt >= 1) & ((last - first) * 1e3 >= min_contact_ms - 2e3 * dt)  # before IC/TO are refined
    is_right = split_left_right(lateral, ok)
    foot = np.where(is_right, "right", "left")
    ids = srt["ids"]
    side = (is_right[ids] & ok[ids]).astype(np.int64) + 2 * ~ok[ids]  # left, right, not a step
    ic, to = contact_times(srt, first, last, side, dt)
    ok = (cnt >= 1) & ((to - ic) * 1e3 >= min_contact_ms)
    # A footprint under way at the first or last frame of the recording is cut: not a whole step.
    # A long one is standing, reported as such (treadlab.analysis.gaitclass).
    ok &= ((first_frame > 0) & (last_frame < mat.n_samples - 1)) | ((to - ic) * 1e3 >= STANDING_MIN_MS)
    if len(break_times):
        bt = np.asarray(break_times, dtype=float)
        ok &= np.searchsorted(bt, first - 1.5 * dt) == np.searchsorted(bt, last + 1.5 * dt)
    heel_at_ic = heel  # belt-frame heel at the footprint's own initial contact = mat position then
    tab = pd.DataFrame({
        "foot": foot[ok], "ic_s": ic[ok], "to_s": to[ok], "contact_time_ms": (to - ic)[ok] * 1e3,
        "strike_index_pct": si[ok], "strike_class": classify_strike(si[ok]),
        "strike_flag": np.where(np.isfinite(si[ok]) & ((si[ok] < 0) | (si[ok] > 100)), "outside_0_100", ""),
        "peak_force_bw": peak[ok] / norm_n if mat.calibrated else np.nan,
        "impulse_bw_s": impulse[ok] / norm_n if mat.calibrated else np.nan,
        "lateral_mm": lateral[ok], "heel_mm": heel_at_ic[ok], "footprint_id": np.flatnonzero(ok),
        "first_frame": first_frame[ok], "last_frame": last_frame[ok],
    }).sort_values("ic_s", kind="stable").reset_index(drop=True)
    return BlockSteps(_step_geometry(tab, speed_mm_s), rec, belt_speed_mps=abs(vel), belt_axis=axis,
                      forward_sign=sgn, track_speed_mps=speed_mm_s / 1e3, foot_length_mm=foot_len)


class MatAnalysis:
    """Detect footprints and compute per-step metrics on a pressure mat.

    Parameters
    ----------
    threshold_frac : float
        Active sensel: above this fraction of the 95th percentile of frame maxima (first block) ...
    min_counts : float
        ... and above this many ADC counts (the quantisation step, times the calibration gain).
    min_contact_ms : float
        Shorter footprints are dropped.
    min_sensels : int
        Smaller footprints (sensel-frames) are dropped.

    Attributes
    ----------
    steps_ : DataFrame
        Per-step table (same columns as the insole table where the mat can measure them, plus
        ``step_length_m``, ``step_width_m``, ``lateral_mm``).
    belt_speed_mps_ : float
    belt_axis_ : int
        0 = columns (x), 1 = rows (y).
    forward_sign_ : int
    break_times_ : ndarray
    blocks_ : int
        Blocks of frames the session was detected in.
    """

    def __init__(self, threshold_frac: float = 0.005, min_contact_ms: float = 80.0, min_sensels: int = 20,
                 min_counts: float = 1.5):
        self.threshold_frac = threshold_frac
        self.min_counts = min_counts
        self.min_contact_ms = min_contact_ms
        self.min_sensels = min_sensels

    def detect(self, mat, norm_n: float, belt_speed_mps: float | None = None,
               block_frames: int = MAT_BLOCK_FRAMES, foot_length_mm: float | None = None) -> MatAnalysis:
        """Detect footprints of ``mat`` (a :class:`~treadlab.analysis.session.MatData`); forces divided by norm_n.

        ``belt_speed_mps`` (the session's treadmill speed), when given, is used to follow the foot along the belt
        (strike index, step length, footprint images); the speed measured from the footprints is reported in
        ``belt_speed_mps_`` either way, and used when no speed is given.

        Long sessions are done in blocks of about ``block_frames`` frames, cut at the quietest frame (fewest
        active sensels) within 2 s after the nominal boundary (a footprint belongs to the block of its first
        frame and is followed past the block's end), each with its own belt velocity, foot length and left/right
        split (hundreds of footprints each); only the step table and one small record per footprint and frame
        (frame, footprint, force) are kept, so memory does not grow with the frames. A session of up to 1.5
        blocks is one block.

        ``foot_length_mm`` (e.g. the insoles' layout, when the session has insoles), when given, is the foot length
        of the strike index; else it comes from the footprints (see :func:`foot_length_of`).

        Returns
        -------
        MatAnalysis
            ``self``.
        """
        self.mat = mat
        self.given_speed_mps = belt_speed_mps if belt_speed_mps and np.isfinite(belt_speed_mps) else None
        self.given_foot_length_mm = foot_length_mm if foot_length_mm and np.isfinite(foot_length_mm) \
            and foot_length_mm > 0 else None
        n = mat.n_samples
        breaks = mat.break_indices()
        self.break_times_ = mat.times_at(breaks)
        head = mat.read_time(0, min(n, 4096))
        dt = float(np.median(np.diff(head))) if len(head) > 1 else 0.0
        self._norm = norm_n
        parts, frame_force, base = [], [], 0
        thr = self._threshold(mat) if n else None
        cuts = [0] + [self._quiet_frame(mat, b, thr, dt) for _, _, b, _ in block_plan(n, block_frames, 0)[:-1]] + [n]
        cuts = sorted(set(cuts))
        self.blocks_ = len(cuts) - 1
        for a, b in zip(cuts[:-1], cuts[1:]):  # one iteration per block of frames
            part = self._block(self._records(mat, a, b, thr), dt, norm_n)
            if len(part.rec):
                ncomp = int(part.rec["id"].max()) + 1
                part.steps["footprint_id"] = part.steps["footprint_id"] + base
                frame_force.append(np.column_stack([part.rec["frame"], part.rec["id"] + base, part.rec["force"]]))
                base += ncomp
            part.rec = None  # the per-frame records of a block are not kept
            parts.append(part)
        self._combine(parts, frame_force)
        return self

    def _block(self, rec: np.ndarray, dt: float, norm_n: float) -> BlockSteps:
        """:func:`block_steps` of one block's records with this analysis' parameters."""
        return block_steps(rec, dt, self.break_times_, norm_n, self.mat, min_contact_ms=self.min_contact_ms,
                           given_speed_mps=self.given_speed_mps, given_foot_length_mm=self.given_foot_length_mm)

    def _combine(self, parts: list[BlockSteps], frame_force: list) -> None:
        """The session's step table and belt figures from the blocks'."""
        tabs = [p.steps for p in parts if len(p.steps)]
        counts = np.array([len(p.steps) for p in parts], dtype=float)
        main = parts[int(np.argmax(counts))] if len(parts) else BlockSteps(pd.DataFrame(), np.empty(0, REC_DTYPE))
        speeds = np.array([p.belt_speed_mps for p in parts], dtype=float)
        ok = np.isfinite(speeds) & (counts > 0)
        self.belt_speed_mps_ = float(np.median(np.repeat(speeds[ok], counts[ok].astype(int)))) if ok.any() \
            else float("nan")
        self.belt_axis_ = main.belt_axis
        self.forward_sign_ = main.forward_sign
        self.track_speed_mps_ = self.given_speed_mps or self.belt_speed_mps_
        lengths = np.array([p.foot_length_mm for p in parts], dtype=float)
        self.foot_length_mm_ = float(np.nanmedian(lengths)) if np.isfinite(lengths).any() else float("nan")
        self._frame_force = np.concatenate(frame_force).astype(np.float32) if frame_force else np.empty((0, 3))
        self._frame_index = (np.concatenate([f[:, 0] for f in frame_force]).astype(np.int64) if frame_force
                             else np.empty(0, np.int64))  # float32 cannot hold frame numbers past 2^24
        if not tabs:
            self.steps_ = parts[0].steps if parts else pd.DataFrame()
            return
        tab = pd.concat(tabs, ignore_index=True).sort_values("ic_s", kind="stable").reset_index(drop=True)
        speed_mm_s = (self.track_speed_mps_ if np.isfinite(self.track_speed_mps_) else 0.0) * 1e3
        self.steps_ = _step_geometry(tab, speed_mm_s)

    def _threshold(self, mat) -> np.ndarray:
        """Activity threshold per sensel in raw counts, from the frame maxima of the first block."""
        frames = mat.read_raw(0, min(mat.n_samples, max(mat.block_rows(), 2)))
        cal = apply_calibration(frames.reshape(len(frames), -1), mat.gain, mat.offset)
        level = max(self.threshold_frac * float(np.percentile(cal.max(axis=1), 95)),
                    self.min_counts * float(np.median(np.abs(mat.gain))), 1e-9)
        with np.errstate(divide="ignore", invalid="ignore"):
            thr = np.where(mat.gain > 0, level / mat.gain + mat.offset, np.inf)
        thr = thr.reshape(mat.rows, mat.cols).astype(np.float32)
        if np.issubdtype(frames.dtype, np.integer):  # compare in the raw dtype: x > ceil(thr) - 1
            info = np.iinfo(frames.dtype)
            thr = np.clip(np.ceil(thr) - 1, info.min, info.max).astype(frames.dtype)
        return thr

    def _quiet_frame(self, mat, near: int, thr: np.ndarray, dt: float, window_s: float = 2.0) -> int:
        """The frame from ``near`` on (within ``window_s``) with the fewest active sensels: a block boundary
        there cuts no footprint in two (in running, a flight phase with an empty mat).
        """
        b = min(mat.n_samples, near + max(2, int(window_s / dt) if dt > 0 else 240))
        frames = mat.read_raw(near, b).reshape(b - near, mat.rows, mat.cols)
        return near + int(np.argmin((frames > thr).sum(axis=(1, 2)))) if b > near else near

    def _records(self, mat, start: int, stop: int, thr: np.ndarray) -> np.ndarray:
        """Per (footprint, frame) records (:data:`REC_DTYPE`) of the footprints whose first frame lies in
        ``[start, stop)``.
        """
        n = mat.n_samples
        rows = mat.block_rows()
        recs: list[np.ndarray] = []
        comp_base = 0
        a = start
        while a < stop:
            lo = max(0, a - 1)
            hi = min(n, max(a + rows, a + 2))
            # Threshold on the raw counts (no float copy of every frame); calibrate only the active sensels.
            frames = mat.read_raw(lo, hi).reshape(hi - lo, mat.rows, mat.cols)
            # Only the window of rows and columns with an active sensel in the block is labelled (a runner covers
            # about half of the mat): the same footprints and labels as over the whole mat, less work.
            r0, r1, c0, c1 = _active_window(frames, thr)
            if r0 == r1:  # nothing active
                a = hi
                continue
            active = frames[:, r0:r1, c0:c1] > thr[r0:r1, c0:c1]
            # Frames labelled: those with an active sensel and the first empty one after each run of them (a run of
            # empty frames parts footprints as one does): the same footprints and labels, in fewer frames.
            busy = active.any(axis=(1, 2))
            labelled = np.flatnonzero(busy | np.r_[False, busy[:-1]])
            lab_frames = np.cumsum(busy | np.r_[False, busy[:-1]]) - 1
            # Label on 2 x 2 pooled sensels (4x less work; parts closer than two sensels join, as they should).
            pooled = _pool2(active[labelled])
            lab, first_fr, last_fr = label_frames(pooled)
            if len(first_fr) == 0:
                a = hi
                continue
            f0 = labelled[first_fr] + lo
            f1 = labelled[last_fr] + lo
            incomplete = (f1 == hi - 1) & (hi < n)
            keep = ~incomplete & ~((f0 < a) & (a > 0)) & (f0 < stop)
            nxt = int(f0[incomplete].min()) if incomplete.any() else hi
            a = nxt if nxt > a else hi
            t = mat.read_time(lo, hi)
            rec = footprint_records(frames, lab, active, keep, lo, comp_base, t, mat, origin=(r0, c0),
                                    lab_frames=lab_frames)
            if rec is not None:
                recs.append(rec)
                comp_base = int(rec["id"][-1]) + 1 if len(rec) else comp_base
        return np.concatenate(recs) if recs else np.empty(0, REC_DTYPE)

    def rescale(self, norm_n: float) -> MatAnalysis:
        """Divide the force metrics by ``norm_n`` (they were computed with ``norm_n = 1``, i.e. in N)."""
        for c in ("peak_force_bw", "impulse_bw_s"):
            self.steps_[c] = self.steps_[c] / norm_n
        self._norm = self._norm * norm_n
        return self

    def summary(self, segment) -> dict:
        """Mat-only figures of a segment: belt speed, step length and width (mean, sd)."""
        part = self.steps_[segment.contains(self.steps_["ic_s"])] if len(self.steps_) else self.steps_
        out = {"belt_speed_mps": self.belt_speed_mps_, "footprints": int(len(part))}
        for c in ("step_length_m", "step_width_m"):
            v = part[c].to_numpy(dtype=float) if c in part else np.empty(0)
            v = v[np.isfinite(v)]
            out[c] = {"mean": float(v.mean()) if len(v) else float("nan"),
                      "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"), "n": int(len(v))}
        return out

    def signals(self) -> dict:
        """Per-foot force signals of the mat (force per frame of each foot's footprints)."""
        from treadlab.analysis.store import FootSignals

        out = {}
        if len(self._frame_force) == 0:
            return out
        t = self.mat.time
        fid = self.steps_.set_index("footprint_id")["foot"]
        cid = self._frame_force[:, 1].astype(np.int64)
        foot_of = fid.reindex(cid).to_numpy()
        for foot in ("left", "right"):  # two feet
            m = foot_of == foot
            force = np.zeros(len(t))
            np.add.at(force, np.clip(self._frame_index[m], 0, len(t) - 1), self._frame_force[m, 2])
            out[foot] = FootSignals.from_arrays(foot, t, force, force / self._norm, None, np.empty(0, np.int64),
                                                self.mat)
        return out

    def mean_footprint(self, foot: str, segment) -> dict:
        """The mean footprint of ``foot`` over the segment's steps: the report's one definition
        (:func:`treadlab.analysis.matviews.mean_footprints`).

        The mean pressure of every stance frame in a window that follows the foot along the belt (320 x 140 mm,
        from 30 mm behind the heel; rows heel to toe, columns the runner's left to right), and the peak; steps
        beyond ``MAX_FOOTPRINT_STEPS`` are sampled in runs.

        Returns
        -------
        dict
            ``mean`` (rows, cols; NaN where no frame covered the cell), ``peak``, ``pitch_mm``, ``steps``,
            ``sampled_steps``, ``frames``, ``unit`` (kPa, or counts).
        """
        from treadlab.analysis.matviews import mean_footprints

        st = self.steps_[(self.steps_["foot"] == foot) & segment.contains(self.steps_["ic_s"])] \
            if len(self.steps_) else self.steps_
        fps = mean_footprints(self.mat, st, self.belt_axis_, self.forward_sign_, self.belt_speed_mps_)
        fp = fps.get(foot)
        if fp is None:  # no step of this foot in the segment: an empty window
            shape = (int(round(320.0 / fps["pitch_mm"])), int(round(140.0 / fps["pitch_mm"])) | 1)
            fp = {"mean": np.full(shape, np.nan), "peak": np.zeros(shape), "steps": 0, "sampled_steps": 0,
                  "frames": 0}
        return {"mean": fp["mean"], "peak": fp["peak"], "pitch_mm": fps["pitch_mm"], "steps": fp["steps"],
                "sampled_steps": fp["sampled_steps"], "frames": fp["frames"], "unit": self.mat.unit or "counts"}


def match_steps(insole_steps: pd.DataFrame, mat_steps: pd.DataFrame, tolerance_ms: float = 40.0) -> dict:
    """Match insole and mat steps of the same foot by initial contact; report their agreement.

    Returns
    -------
    dict
        ``matched``, ``insole_steps``, ``mat_steps``, and ``{mean, sd}`` of the differences (mat minus insole)
        of ``ic_ms``, ``contact_time_ms`` and ``strike_index_pct``, plus ``strike_class_agreement`` (fraction).
    """
    out = {"matched": 0, "insole_steps": int(len(insole_steps)), "mat_steps": int(len(mat_steps))}
    rows = []
    for foot in ("left", "right"):  # two feet, each matched vectorised
        a = insole_steps[insole_steps["foot"] == foot].reset_index(drop=True)
        b = mat_steps[mat_steps["foot"] == foot].sort_values("ic_s").reset_index(drop=True)
        if a.empty or b.empty:
            continue
        bic = b["ic_s"].to_numpy()
        j = np.clip(np.searchsorted(bic, a["ic_s"].to_numpy()), 1, len(bic) - 1) if len(bic) > 1 else np.zeros(
            len(a), dtype=int)
        cand = np.stack([np.clip(j - 1, 0, len(bic) - 1), j])
        d = np.abs(bic[cand] - a["ic_s"].to_numpy()[None, :])
        best = cand[np.argmin(d, axis=0), np.arange(len(a))]
        ok = d.min(axis=0) * 1e3 <= tolerance_ms
        rows.append(pd.DataFrame({
            "ic_ms": (bic[best] - a["ic_s"].to_numpy()) * 1e3,
            "contact_time_ms": b["contact_time_ms"].to_numpy()[best] - a["contact_time_ms"].to_numpy(),
            "strike_index_pct": b["strike_index_pct"].to_numpy()[best] - a["strike_index_pct"].to_numpy(),
            "same_class": b["strike_class"].to_numpy()[best] == a["strike_class"].to_numpy(),
        })[ok])
    if rows:
        r = pd.concat(rows, ignore_index=True)
        out["matched"] = int(len(r))
        for c in ("ic_ms", "contact_time_ms", "strike_index_pct"):
            v = r[c].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            out[c] = {"mean": float(v.mean()) if len(v) else float("nan"),
                      "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan")}
        out["strike_class_agreement"] = float(r["same_class"].mean()) if len(r) else float("nan")
    return out
