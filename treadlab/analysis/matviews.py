"""Views of the treadmill pressure mat for reports: the centre of pressure of both feet over time (the "butterfly")
and the mean footprint of each foot.

Both are computed in chunked passes over the mat's frames (bounded memory, no per-frame Python loop) and need
the footprints that :class:`treadlab.analysis.mat.MatAnalysis` found (its ``steps_`` table with ``ic_s``,
``to_s``, ``heel_mm``, ``lateral_mm``, and its ``belt_axis_``, ``forward_sign_``, ``belt_speed_mps_``).

Coordinates (documented in ``docs/reports.md``): *forward* is the runner's direction (against the belt), *right*
the runner's right. In the mat's (x = column, y = row) frame with the belt along x (``belt_axis_ = 0``), forward
is ``sign * x`` and right is ``-sign * y``; with the belt along y, forward is ``sign * y`` and right ``sign * x``.

Mean footprint: every frame inside a footprint's contact is cut out in a window that follows the foot along the
belt (heel at initial contact minus the belt travel since then), the window starts ``behind_mm`` behind the heel
and spans ``length_mm`` forward and ``width_mm`` across, centred on the footprint's mean lateral position; the
mean over all those frames of all steps of a foot is its mean footprint, the maximum its peak footprint.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from treadlab.analysis.ragged import sampled_runs

#: Frames whose summed pressure is below this fraction of the 95th percentile are flight (no COP).
FLIGHT_FRACTION = 0.05
#: Mean footprints of feet with more steps than this use a sample of them (bounded time for long sessions).
MAX_FOOTPRINT_STEPS = 300
#: Samples of long sessions are this many runs of consecutive steps (or frames), spread evenly.
RUNS_N = 12
#: Frames read, calibrated and copied to float64 at a time by :func:`cop_trace` (2.8 MB at 112 x 48: in cache).
_SUB_FRAMES = 64


def _orientation(belt_axis: int, forward_sign: int) -> tuple[int, int]:
    """(sign of forward along the belt axis, sign of runner's right along the other axis)."""
    right = -forward_sign if belt_axis == 0 else forward_sign
    return forward_sign, right


def cop_trace(mat, belt_axis: int, forward_sign: int, start_s: float = -np.inf, stop_s: float = np.inf,
              max_points: int = 20000) -> pd.DataFrame:
    """Centre of pressure of everything on the mat, frame by frame (the butterfly of both feet).

    Parameters
    ----------
    mat : MatData
    belt_axis, forward_sign : int
        From :class:`~treadlab.analysis.mat.MatAnalysis`.
    start_s, stop_s : float
        Time window (session clock).
    max_points : int
        At most about this many frames are read and returned, enough for a figure: all of them in a short
        window, else ``RUNS_N`` runs of consecutive frames spread evenly over it (bounded time for an hour).

    Returns
    -------
    DataFrame
        ``time_s``, ``right_mm`` and ``forward_mm`` (both centred on the middle of their 5-95% range), ``load``
        (summed value);
        NaN positions in flight.
    """
    t = mat.time
    i0, i1 = int(np.searchsorted(t, start_s)), int(np.searchsorted(t, stop_s, side="right"))
    xs = np.arange(mat.cols) * mat.pitch_mm
    ys = np.arange(mat.rows) * mat.pitch_mm
    parts = []
    for r0, r1 in sampled_runs(i1 - i0, max_points, RUNS_N):  # contiguous runs of frames spread over the window
        for a in range(i0 + r0, i0 + r1, _SUB_FRAMES):  # a cache-sized piece of frames at a time
            f = mat.frames(a, min(a + _SUB_FRAMES, i0 + r1)).astype(np.float64)
            w = f.sum(axis=(1, 2))
            with np.errstate(invalid="ignore", divide="ignore"):
                x = f.sum(axis=1) @ xs / w
                y = f.sum(axis=2) @ ys / w
            parts.append(np.column_stack([t[a:a + len(f)], x, y, w]))
    arr = np.concatenate(parts) if parts else np.empty((0, 4))
    fwd_sign, right_sign = _orientation(belt_axis, forward_sign)
    along, across = (arr[:, 1], arr[:, 2]) if belt_axis == 0 else (arr[:, 2], arr[:, 1])
    forward, right = fwd_sign * along, right_sign * across
    load = arr[:, 3]
    flight = load < FLIGHT_FRACTION * (np.percentile(load, 95) if len(load) else 0.0)
    forward = np.where(flight, np.nan, forward)
    right = np.where(flight, np.nan, right)
    if np.isfinite(forward).any():  # centre on the middle of the range (the two feet's lanes are either side)
        forward = forward - np.nanmean(np.nanpercentile(forward, [5, 95]))
        right = right - np.nanmean(np.nanpercentile(right, [5, 95]))
    return pd.DataFrame({"time_s": arr[:, 0], "right_mm": right, "forward_mm": forward, "load": load})


def _run_frames(mat, t: np.ndarray, ic: np.ndarray, to: np.ndarray, runs: list):
    """Yield ``(tt, j, frames, r0, r1)`` per block of frames covering the steps of each run ``[r0, r1)``: the
    times of the block's frames inside a contact of the run, the step ``j`` (within the run) each is in, and
    those frames (calibrated; the other frames are not).
    """
    for r0, r1 in runs:  # one iteration per run of consecutive steps (all of them for a short segment)
        i0 = int(np.searchsorted(t, ic[r0]))
        i1 = int(np.searchsorted(t, to[r1 - 1], side="right"))
        rows = mat.block_rows()
        for a in range(i0, i1, rows):  # one iteration per block of frames
            tt = t[a:min(a + rows, i1)]
            j = np.searchsorted(ic[r0:r1], tt, side="right") - 1
            on = (j >= 0) & (tt <= to[r0:r1][np.clip(j, 0, None)])
            if on.any():
                k = np.flatnonzero(on)
                yield tt[k], j[k], mat.frames(a, a + len(tt), rows=k), r0, r1


def mean_footprints(mat, steps: pd.DataFrame, belt_axis: int, forward_sign: int, belt_speed_mps: float, *,
                    length_mm: float = 320.0, width_mm: float = 140.0, behind_mm: float = 30.0,
                    max_steps: int = MAX_FOOTPRINT_STEPS) -> dict:
    """Mean and peak footprint of each foot, in a window that follows the foot along the belt.

    Parameters
    ----------
    mat : MatData
    steps : DataFrame
        The mat's footprints to use (``foot``, ``ic_s``, ``to_s``, ``heel_mm``, ``lateral_mm``).
    belt_axis, forward_sign : int
    belt_speed_mps : float
    length_mm, width_mm, behind_mm : float
        Window size, and how far it starts behind the heel.
    max_steps : int
        Feet with more steps use ``RUNS_N`` runs of consecutive steps spread evenly, ``max_steps`` in all
        (``sampled_steps``; the mean is then a sample mean, the peak the maximum over the sampled steps).

    Returns
    -------
    dict
        ``{foot: {"mean": (L, W), "peak": (L, W), "frames": int, "steps": int, "sampled_steps": int,
        "window_sum": float}}`` in the
        mat's unit, row 0 at the back of the window (heel side), column index increasing to the runner's right
        (``window_sum``: everything the windows caught, to check against the frames' total); plus ``"pitch_mm"``.
    """
    pitch = float(mat.pitch_mm)
    n_len, n_wid = int(round(length_mm / pitch)), int(round(width_mm / pitch)) | 1
    fwd_sign, right_sign = _orientation(belt_axis, forward_sign)
    speed = float(belt_speed_mps) * 1e3 if np.isfinite(belt_speed_mps) else 0.0
    out: dict = {"pitch_mm": pitch}
    t = mat.time
    for foot in ("left", "right"):
        part = steps[steps["foot"] == foot].sort_values("ic_s")
        acc = {"sum": np.zeros((n_len, n_wid)), "peak": np.zeros((n_len, n_wid)), "n": np.zeros((n_len, n_wid))}
        if len(part) == 0:
            continue
        ic_all, to_all = part["ic_s"].to_numpy(float), part["to_s"].to_numpy(float)
        heel_all, lateral_all = part["heel_mm"].to_numpy(float), part["lateral_mm"].to_numpy(float)
        runs = sampled_runs(len(part), max_steps, RUNS_N)
        for tt, j, frames, r0, r1 in _run_frames(mat, t, ic_all, to_all, runs):  # one per block of frames
            ic, heel, lateral = ic_all[r0:r1], heel_all[r0:r1], lateral_all[r0:r1]
            arr = frames if belt_axis == 1 else frames.transpose(0, 2, 1)  # (k, along, across)
            # Heel along the belt now: its forward coordinate at contact minus the belt travel since.
            heel_fwd = heel[j] - behind_mm - speed * (tt - ic[j])
            start = np.rint(fwd_sign * heel_fwd / pitch).astype(np.int64)
            along = start[:, None] + fwd_sign * np.arange(n_len)[None, :]
            centre = np.rint(lateral[j] / pitch).astype(np.int64)
            across = centre[:, None] + right_sign * np.arange(-(n_wid // 2), n_wid // 2 + 1)[None, :]
            ok = ((along >= 0) & (along < arr.shape[1]))[:, :, None] & ((across >= 0) & (across < arr.shape[2]))[
                :, None, :]
            win = arr[np.arange(len(arr))[:, None, None], np.clip(along, 0, arr.shape[1] - 1)[:, :, None],
                      np.clip(across, 0, arr.shape[2] - 1)[:, None, :]].astype(np.float64)
            win = np.where(ok, win, 0.0)
            acc["sum"] += win.sum(axis=0)
            acc["n"] += ok.sum(axis=0)
            np.maximum(acc["peak"], win.max(axis=0), out=acc["peak"])
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(acc["n"] > 0, acc["sum"] / acc["n"], np.nan)
        out[foot] = {"mean": mean, "peak": acc["peak"], "frames": int(acc["n"].max()), "steps": int(len(part)),
                     "sampled_steps": int(sum(r1 - r0 for r0, r1 in runs)), "window_sum": float(acc["sum"].sum())}
    return out
