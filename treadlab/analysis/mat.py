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
   length from the insoles' layout, else from the footprints: :meth:`MatAnalysis._foot_length`).
4. Left and right: footprints split into two clusters by lateral position; the runner's left is 90 degrees
   counter-clockwise from forward in the mat's (column, row) frame.
5. Step length: heel-to-heel distance in the belt frame (heel at initial contact plus belt travel between the
   contacts); step width: lateral distance between consecutive footprints.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from scipy import ndimage

from treadlab.analysis.gaitclass import STANDING_MIN_MS
from treadlab.analysis.store import block_plan
from treadlab.analysis.strike import classify_strike

__all__ = ["MatAnalysis", "match_steps"]

_CROSS = ndimage.generate_binary_structure(3, 1)
#: Frames per block of a long session (9 min at 120 Hz, some 1,500 footprints).
MAT_BLOCK_FRAMES = 1 << 16


def _step_geometry(tab: pd.DataFrame, speed_mm_s: float) -> pd.DataFrame:
    """Step length (heel to heel in the belt frame) and width (lateral distance) between consecutive footprints
    of opposite feet, in a table sorted by initial contact."""
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
        t, r, c = active.shape
    out = active[:, 0::2, 0::2] | active[:, 1::2, 0::2]
    out |= active[:, 0::2, 1::2]
    out |= active[:, 1::2, 1::2]
    return out


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
        of the strike index; else it comes from the footprints (see :meth:`_foot_length`).

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
        head = mat._read(mat._time_ds, 0, min(n, 4096)).astype(np.float64)
        dt = float(np.median(np.diff(head))) if len(head) > 1 else 0.0
        self._norm = norm_n
        parts, frame_force, base = [], [], 0
        thr = self._threshold(mat) if n else None
        cuts = [0] + [self._quiet_frame(mat, b, thr, dt) for _, _, b, _ in block_plan(n, block_frames, 0)[:-1]] + [n]
        cuts = sorted(set(cuts))
        self.blocks_ = len(cuts) - 1
        for a, b in zip(cuts[:-1], cuts[1:]):  # one iteration per block of frames
            rec = self._records(mat, a, b, thr)
            part = copy.copy(self)
            part._finish(rec, dt, self.break_times_, norm_n)
            tab = part.steps_
            if len(part._rec):
                ncomp = int(part._rec[:, 1].max()) + 1
                tab["footprint_id"] = tab["footprint_id"] + base
                frame_force.append(np.column_stack([part._rec[:, 9], part._rec[:, 1] + base, part._rec[:, 2]]))
                base += ncomp
            part._rec = None  # the per-frame records of a block are not kept
            parts.append(part)
        self._combine(parts, frame_force, norm_n)
        return self

    def _combine(self, parts: list, frame_force: list, norm_n: float) -> None:
        """The session's step table and belt figures from the blocks'."""
        tabs = [p.steps_ for p in parts if len(p.steps_)]
        counts = np.array([len(p.steps_) for p in parts], dtype=float)
        main = parts[int(np.argmax(counts))] if len(parts) else self
        speeds = np.array([p.belt_speed_mps_ for p in parts], dtype=float)
        ok = np.isfinite(speeds) & (counts > 0)
        self.belt_speed_mps_ = float(np.median(np.repeat(speeds[ok], counts[ok].astype(int)))) if ok.any() \
            else float("nan")
        self.belt_axis_ = getattr(main, "belt_axis_", 1)
        self.forward_sign_ = getattr(main, "forward_sign_", 1)
        self.track_speed_mps_ = self.given_speed_mps or self.belt_speed_mps_
        lengths = np.array([getattr(p, "foot_length_mm_", np.nan) for p in parts], dtype=float)
        self.foot_length_mm_ = float(np.nanmedian(lengths)) if np.isfinite(lengths).any() else float("nan")
        self._frame_force = np.concatenate(frame_force).astype(np.float32) if frame_force else np.empty((0, 3))
        self._frame_index = (np.concatenate([f[:, 0] for f in frame_force]).astype(np.int64) if frame_force
                             else np.empty(0, np.int64))  # float32 cannot hold frame numbers past 2^24
        if not tabs:
            self.steps_ = parts[0].steps_ if parts else pd.DataFrame()
            return
        tab = pd.concat(tabs, ignore_index=True).sort_values("ic_s", kind="stable").reset_index(drop=True)
        speed_mm_s = (self.track_speed_mps_ if np.isfinite(self.track_speed_mps_) else 0.0) * 1e3
        self.steps_ = _step_geometry(tab, speed_mm_s)

    def _threshold(self, mat) -> np.ndarray:
        """Activity threshold per sensel in raw counts, from the frame maxima of the first block."""
        frames = mat._read(mat._raw, 0, min(mat.n_samples, max(mat.block_rows(), 2)))
        cal = (frames.reshape(len(frames), -1).astype(np.float32) - mat.offset) * mat.gain
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
        there cuts no footprint in two (in running, a flight phase with an empty mat)."""
        b = min(mat.n_samples, near + max(2, int(window_s / dt) if dt > 0 else 240))
        frames = mat._read(mat._raw, near, b).reshape(b - near, mat.rows, mat.cols)
        return near + int(np.argmin((frames > thr).sum(axis=(1, 2)))) if b > near else near

    def _records(self, mat, start: int, stop: int, thr: np.ndarray) -> np.ndarray:
        """Per (footprint, frame) records of the footprints whose first frame lies in ``[start, stop)``."""
        n = mat.n_samples
        rows = mat.block_rows()
        recs: list[np.ndarray] = []
        comp_base = 0
        a = start
        while a < stop:
            lo = max(0, a - 1)
            hi = min(n, max(a + rows, a + 2))
            # Threshold on the raw counts (no float copy of every frame); calibrate only the active sensels.
            frames = mat._read(mat._raw, lo, hi).reshape(hi - lo, mat.rows, mat.cols)
            active = frames > thr
            # Label on 2 x 2 pooled sensels (4x less work; parts closer than two sensels join, as they should).
            pooled = _pool2(active)
            lab, nlab = ndimage.label(pooled, structure=_CROSS)
            if nlab == 0:
                a = hi
                continue
            spans = ndimage.find_objects(lab)
            f0 = np.array([s[0].start for s in spans]) + lo
            f1 = np.array([s[0].stop - 1 for s in spans]) + lo
            incomplete = (f1 == hi - 1) & (hi < n)
            keep = ~incomplete & ~((f0 < a) & (a > 0)) & (f0 < stop)
            nxt = int(f0[incomplete].min()) if incomplete.any() else hi
            a = nxt if nxt > a else hi
            t = mat._read(mat._time_ds, lo, hi).astype(np.float64)
            rec = self._cells(frames, lab, active, keep, lo, comp_base, t, mat)
            if rec is not None:
                recs.append(rec)
                comp_base = int(rec[-1, 1]) + 1 if len(rec) else comp_base
        return np.concatenate(recs) if recs else np.empty((0, 10))

    @staticmethod
    def _cells(frames, lab, active, keep, lo, comp_base, t, mat) -> np.ndarray | None:
        """Per (footprint, frame) rows: time, id, force, cop x, cop y, min x, max x, min y, max y (mm), frame.

        ``t`` holds the times of frames ``lo`` onwards."""
        flat = np.flatnonzero(active)
        rc = mat.rows * mat.cols
        pr, pc = lab.shape[1], lab.shape[2]
        fr0 = flat // rc
        comp = lab.ravel()[(fr0 * pr + (flat % rc) // mat.cols // 2) * pc + (flat % mat.cols) // 2] - 1
        sel = keep[comp]
        flat, comp = flat[sel], comp[sel]
        if len(flat) == 0:
            return None
        rc = mat.rows * mat.cols
        fr = flat // rc
        x = (flat % mat.cols).astype(float) * mat.pitch_mm
        y = ((flat % rc) // mat.cols).astype(float) * mat.pitch_mm
        sensel = flat % rc
        p = (frames.ravel()[flat].astype(float) - mat.offset[sensel]) * mat.gain[sensel]
        uniq_comp, cid = np.unique(comp, return_inverse=True)
        key = cid.astype(np.int64) * len(frames) + fr
        order = np.argsort(key, kind="stable")
        key, fr, x, y, p, cid = key[order], fr[order], x[order], y[order], p[order], cid[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        fsum = np.add.reduceat(p, starts)
        out = np.column_stack([
            t[fr[starts]], cid[starts] + comp_base, fsum * mat.force_factor,
            np.add.reduceat(p * x, starts) / fsum, np.add.reduceat(p * y, starts) / fsum,
            np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts),
            np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts),
            fr[starts] + lo,
        ])
        return out

    def _finish(self, rec: np.ndarray, dt: float, break_times: np.ndarray, norm_n: float) -> None:
        mat = self.mat
        cols = ["foot", "ic_s", "to_s", "contact_time_ms", "strike_index_pct", "strike_class", "strike_flag",
                "peak_force_bw", "impulse_bw_s", "step_length_m", "step_width_m", "lateral_mm"]
        self.belt_speed_mps_, self.belt_axis_, self.forward_sign_ = float("nan"), 1, 1
        self.track_speed_mps_ = self.given_speed_mps or float("nan")
        self._rec = rec
        self._norm = norm_n
        if len(rec) == 0:
            self.steps_ = pd.DataFrame({c: [] for c in cols})
            return
        rec = self._merge(rec, dt)
        self._rec = rec
        cid = rec[:, 1].astype(np.int64)
        ncomp = int(cid.max()) + 1
        cnt = np.bincount(cid, minlength=ncomp)
        frame = rec[:, 9].astype(np.int64)
        first_frame = np.full(ncomp, np.iinfo(np.int64).max)
        np.minimum.at(first_frame, cid, frame)
        last_frame = np.full(ncomp, -1)
        np.maximum.at(last_frame, cid, frame)
        first = np.full(ncomp, np.inf)
        np.minimum.at(first, cid, rec[:, 0])
        last = np.full(ncomp, -np.inf)
        np.maximum.at(last, cid, rec[:, 0])
        # Belt axis and velocity from the motion of the footprint edges in mid-stance (30-70 %), when the whole
        # foot is down and both edges move with the belt.
        with np.errstate(invalid="ignore", divide="ignore"):
            u = (rec[:, 0] - first[cid]) / (last[cid] - first[cid])
        mid = (u >= 0.3) & (u <= 0.7)
        v = {}
        for axis, (lo_c, hi_c) in enumerate(((5, 6), (7, 8))):  # the two axes of the mat
            s = np.concatenate([_group_slope(cid[mid], rec[mid, 0], rec[mid, lo_c], ncomp),
                                _group_slope(cid[mid], rec[mid, 0], rec[mid, hi_c], ncomp)])
            v[axis] = float(np.nanmedian(s)) if np.isfinite(s).any() else 0.0
        axis = 0 if abs(v[0]) >= abs(v[1]) else 1
        # The speed from the front (toe) edge alone: the toes stay down from early stance to push-off, while the
        # rear edge creeps forward as the heel unloads (rearfoot strikes) and would make the belt seem slow.
        lo_c, hi_c = (5, 6) if axis == 0 else (7, 8)
        front = hi_c if v[axis] < 0 else lo_c  # the runner faces against the belt's motion
        s_front = _group_slope(cid[mid], rec[mid, 0], rec[mid, front], ncomp)
        if np.isfinite(s_front).any() and np.sign(np.nanmedian(s_front)) == np.sign(v[axis]):
            v[axis] = float(np.nanmedian(s_front))
        vel = v[axis] * 1e-3  # m/s, signed, along the mat axis
        self.belt_axis_ = axis
        self.forward_sign_ = -1 if vel > 0 else 1
        self.belt_speed_mps_ = abs(vel)
        sgn = self.forward_sign_
        speed_mm_s = (self.given_speed_mps or abs(vel)) * 1e3
        self.track_speed_mps_ = speed_mm_s / 1e3
        lo_c, hi_c = (5, 6) if axis == 0 else (7, 8)
        lat_c = 4 if axis == 0 else 3
        # Forward coordinate in the belt frame, referred to the footprint's own first frame.
        ic_frame = first[cid]
        fwd_lo = np.where(sgn > 0, rec[:, lo_c], -rec[:, hi_c]) + speed_mm_s * (rec[:, 0] - ic_frame)
        fwd_hi = np.where(sgn > 0, rec[:, hi_c], -rec[:, lo_c]) + speed_mm_s * (rec[:, 0] - ic_frame)
        heel = np.full(ncomp, np.inf)
        np.minimum.at(heel, cid, fwd_lo)
        toe = np.full(ncomp, -np.inf)
        np.maximum.at(toe, cid, fwd_hi)
        heel -= 0.5 * mat.pitch_mm
        toe += 0.5 * mat.pitch_mm
        # Frames in time order per footprint; the first frame that carries a real part of the load, at least
        # COP_MIN_FRAC of the footprint's peak force: before it a frame may show a sensel or two just over the
        # threshold, and a lightly loaded region (the heel of a midfoot strike) may lie under it, so its COP leans
        # to the most loaded part; at most MAX_LEAD_SKIP frames (17 ms at 120 Hz) are passed over.
        force = rec[:, 2]
        peak = np.full(ncomp, -np.inf)
        np.maximum.at(peak, cid, force)
        order = np.lexsort((rec[:, 0], cid))
        c_sorted, f_sorted = cid[order], force[order]
        head = np.flatnonzero(np.r_[True, c_sorted[1:] != c_sorted[:-1]])
        tail = np.r_[head[1:] - 1, len(c_sorted) - 1]
        ids = c_sorted[head]
        pos = np.arange(len(c_sorted))
        big = f_sorted >= COP_MIN_FRAC * peak[c_sorted]
        lead = np.minimum(np.minimum.reduceat(np.where(big, pos, len(pos)), head) - head, MAX_LEAD_SKIP)
        lead = np.clip(lead, 0, tail - head)
        # Strike index: COP of the first loaded frame, in the belt frame of the footprint's first frame.
        cop_col = 3 if axis == 0 else 4
        row0 = order[head + lead]
        cop_fwd_ic = np.full(ncomp, np.nan)
        cop_fwd_ic[ids] = sgn * rec[row0, cop_col] + speed_mm_s * (rec[row0, 0] - first[ids])
        # A footprint may not show the heel (a fore-foot striker who never lowers it): the heel is placed one foot
        # length behind the toe, which always loads (see _foot_length).
        wlo, whi = (7, 8) if axis == 0 else (5, 6)
        width = np.full(ncomp, -np.inf)
        np.maximum.at(width, cid, rec[:, whi] - rec[:, wlo] + mat.pitch_mm)
        foot_len = self._foot_length(toe - heel, width)
        heel = np.minimum(heel, toe - foot_len)
        self.foot_length_mm_ = foot_len
        with np.errstate(invalid="ignore", divide="ignore"):
            si = (cop_fwd_ic - heel) / (toe - heel) * 100.0
        impulse = np.bincount(cid, force * dt, ncomp)
        lateral = np.bincount(cid, rec[:, lat_c] * force, ncomp) / np.maximum(np.bincount(cid, force, ncomp), 1e-12)
        # Left/right: two clusters of lateral position; left is 90 deg counter-clockwise from forward.
        ok = (cnt >= 1) & ((last - first) * 1e3 >= self.min_contact_ms - 2e3 * dt)  # before IC/TO are refined
        lat = lateral[ok]
        c0, c1 = np.percentile(lat, 25) if len(lat) else 0.0, np.percentile(lat, 75) if len(lat) else 0.0
        for _ in range(20):  # 1-D two-means, converges in a few iterations
            mid = 0.5 * (c0 + c1)
            lo_m, hi_m = lat[lat <= mid], lat[lat > mid]
            if len(lo_m) == 0 or len(hi_m) == 0:
                break
            c0, c1 = lo_m.mean(), hi_m.mean()
        mid = 0.5 * (c0 + c1)
        # Across the belt, index 0 is the runner's left (the mat convention of docs/analysis.md).
        is_right = lateral > mid
        foot = np.where(is_right, "right", "left")
        # Onset and end: the footprint force of its first (last) two frames fitted as A (t - t0)^p with the
        # exponent pooled over the foot's footprints (see _pooled_onset).
        side = (is_right[ids] & ok[ids]).astype(np.int64) + 2 * ~ok[ids]  # left, right, not a step
        back = _pooled_onset(f_sorted[head], f_sorted[np.minimum(head + 1, tail)],
                             f_sorted[np.minimum(head + 2, tail)], side, ONSET_MIN_POWER)
        fwd = _pooled_onset(f_sorted[tail], f_sorted[np.maximum(tail - 1, head)],
                            f_sorted[np.maximum(tail - 2, head)], side, END_MIN_POWER)
        ic = first.copy()
        to = last.copy()
        ic[ids] = first[ids] - back * dt
        to[ids] = last[ids] + fwd * dt
        ok = (cnt >= 1) & ((to - ic) * 1e3 >= self.min_contact_ms)
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
        self.steps_ = _step_geometry(tab, speed_mm_s)

    def _foot_length(self, extent_mm: np.ndarray, width_mm: np.ndarray) -> float:
        """Foot length of the strike index: the given one (insoles' layout), else from the footprints.

        The 90th percentile of the footprints' heel-to-toe extents (belt frame), unless that is shorter than
        :data:`MIN_LENGTH_PER_WIDTH` times the median loaded width (largest lateral extent of a frame): then the
        heel never loaded (fore-foot strikers) and the length is estimated from the width as
        ``width / BREADTH_PER_LENGTH`` (foot breadth is about 0.38 of foot length in adults; docs/analysis.md).
        """
        if self.given_foot_length_mm:
            return float(self.given_foot_length_mm)
        ok = np.isfinite(extent_mm) & (extent_mm > 0)
        if not ok.any():
            return float("nan")
        length = float(np.percentile(extent_mm[ok], 90))
        w = width_mm[ok & np.isfinite(width_mm) & (width_mm > 0)]
        width = float(np.median(w)) if len(w) else float("nan")
        if np.isfinite(width) and length < MIN_LENGTH_PER_WIDTH * width:
            length = max(length, width / BREADTH_PER_LENGTH)
        return length

    @staticmethod
    def _merge(rec: np.ndarray, dt: float) -> np.ndarray:
        """Join footprint parts of one foot that overlap in time (heel and forefoot seen as separate blobs)."""
        cid = rec[:, 1].astype(np.int64)
        n = int(cid.max()) + 1
        first = np.full(n, np.inf)
        np.minimum.at(first, cid, rec[:, 0])
        last = np.full(n, -np.inf)
        np.maximum.at(last, cid, rec[:, 0])
        w = np.bincount(cid, rec[:, 2], n)
        lat_x = np.bincount(cid, rec[:, 3] * rec[:, 2], n) / np.maximum(w, 1e-12)
        lat_y = np.bincount(cid, rec[:, 4] * rec[:, 2], n) / np.maximum(w, 1e-12)
        order = np.lexsort((first,))
        gid = np.arange(n)
        # Parts overlap in time and lie within a third of a foot length of each other: one footprint.
        near_mm = 120.0
        # They overlap for at least half the shorter one: the two feet of a walker in double support overlap
        # only at the end of one stance and the start of the other (and lie ~ a step width apart, within reach).
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
        span = int(rec[:, 9].max()) + 2
        key = g.astype(np.int64) * span + rec[:, 9].astype(np.int64)
        uniq, inv = np.unique(key, return_inverse=True)
        f = np.bincount(inv, rec[:, 2], len(uniq))
        out = np.empty((len(uniq), rec.shape[1]))
        out[:, 0] = np.bincount(inv, rec[:, 0], len(uniq)) / np.bincount(inv, minlength=len(uniq))
        out[:, 1] = uniq // span
        out[:, 9] = uniq % span
        out[:, 2] = f
        out[:, 3] = np.bincount(inv, rec[:, 3] * rec[:, 2], len(uniq)) / np.maximum(f, 1e-12)
        out[:, 4] = np.bincount(inv, rec[:, 4] * rec[:, 2], len(uniq)) / np.maximum(f, 1e-12)
        for col, red in ((5, np.minimum), (6, np.maximum), (7, np.minimum), (8, np.maximum)):
            v = np.full(len(uniq), np.inf if red is np.minimum else -np.inf)
            red.at(v, inv, rec[:, col])
            out[:, col] = v
        return out

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

    def mean_footprint(self, foot: str, segment, length_mm: float = 320.0, width_mm: float = 160.0) -> dict:
        """Mean over the segment's steps of each footprint's peak-pressure image, in the belt frame.

        Each step's frames are shifted back by the belt travel since initial contact (whole cells), so the foot
        stays in place; the image runs from 2 cells behind the heel forwards (rows: heel to toe) and is centred
        on the footprint's mean lateral position (columns: the runner's left to right).

        Returns
        -------
        dict
            ``mean`` (rows, cols) of per-step peaks (kPa, or counts), ``peak`` (maximum over the steps),
            ``pitch_mm``, ``steps``, ``unit``.
        """
        mat = self.mat
        st = self.steps_[(self.steps_["foot"] == foot) & segment.contains(self.steps_["ic_s"])]
        h = int(np.ceil(length_mm / mat.pitch_mm)) + 2
        w = int(np.ceil(width_mm / mat.pitch_mm)) | 1
        acc = np.zeros((h, w))
        peak = np.zeros((h, w))
        n = 0
        speed_mm_s = self.track_speed_mps_ * 1e3 if np.isfinite(self.track_speed_mps_) else 0.0
        sgn, axis = self.forward_sign_, self.belt_axis_
        n_along = mat.cols if axis == 0 else mat.rows
        n_across = mat.rows if axis == 0 else mat.cols
        for row in st.itertuples():  # one iteration per step (a few frames each), vectorised inside
            a, b = int(row.first_frame), int(row.last_frame) + 1
            if b <= a:
                continue
            fr = mat.frames(a, b)
            t_ab = mat._read(mat._time_ds, a, b).astype(np.float64)
            if axis == 0:
                fr = fr.transpose(0, 2, 1)  # (frames, along, across)
            travel = speed_mm_s * (t_ab - row.ic_s)
            heel_p = row.heel_mm - travel  # forward coordinate of the heel in each frame
            start_idx = np.round(sgn * heel_p / mat.pitch_mm).astype(int)
            along = start_idx[:, None] - 2 * sgn + sgn * np.arange(h)[None, :]  # heel to toe
            lat0 = int(round(row.lateral_mm / mat.pitch_mm)) - w // 2
            across = lat0 + np.arange(w)
            ok_along = (along >= 0) & (along < n_along)
            ok_across = (across >= 0) & (across < n_across)
            img = fr[np.arange(b - a)[:, None, None], np.clip(along, 0, n_along - 1)[:, :, None],
                     np.clip(across, 0, n_across - 1)[None, None, :]]
            img = np.where(ok_along[:, :, None] & ok_across[None, None, :], img, 0.0).max(axis=0)
            acc += img
            np.maximum(peak, img, out=peak)
            n += 1
        return {"mean": acc / max(n, 1), "peak": peak, "pitch_mm": mat.pitch_mm, "steps": n,
                "unit": mat.unit or "counts"}


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
