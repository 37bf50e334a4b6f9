"""Simulated force-plate series for the force analysis tests, built from the gait model (tests only).

A single-belt plate carries both feet: vertical force ``F_L + F_R`` plus white noise, and the centre of pressure
of each foot carried back with the belt from where its heel landed (``GaitModel.steps``' ``y_mm``). Split belts
give each foot its own plate. The horizontal force is a braking-then-propulsive sine (it matters only for the
centre of pressure from moments). The channels follow the plate frame of ``docs/analysis.md``: x forward, z up,
y to the runner's left, moments about the frame's origin, the surface centre at ``ORIGIN_MM`` (45 mm above).
"""

from __future__ import annotations

import numpy as np

from treadlab.drivers.sim.gait import GaitModel, RunnerParams

__all__ = ["ORIGIN_MM", "simulate_plate"]

ORIGIN_MM = (0.0, 0.0, 45.0)  # surface centre 45 mm above the moments' origin


def _foot(model: GaitModel, foot: str, t: np.ndarray, speed_mm_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = model.vertical_force(foot, t)
    cop = model.cop(foot, t)
    steps = model.steps
    row = model.latest_step(foot, t)
    rr = np.clip(row, 0, None)
    heel_fwd = steps["y_mm"].to_numpy()[rr] - speed_mm_s * (t - steps["ic_s"].to_numpy()[rr])
    fwd = np.where(np.isfinite(cop[:, 1]), heel_fwd + np.nan_to_num(cop[:, 1]), 0.0)
    right = np.where(np.isfinite(cop[:, 0]), steps["x_mm"].to_numpy()[rr] + np.nan_to_num(cop[:, 0]), 0.0)
    return f, fwd, right


def _channels(f, fwd, right, noise, suffix, u_phase) -> dict:
    fx = -0.15 * f * np.sin(2 * np.pi * u_phase)  # braking then propulsion
    fz = f + noise
    # Plate frame: x forward, y left, z up; COP (x = fwd, y = -right) on the surface, origin below it.
    rx, ry, rz = fwd, -right, ORIGIN_MM[2]
    fy = np.zeros_like(f)
    mx = ry * fz - rz * fy
    my = rz * fx - rx * fz
    mz = np.zeros_like(f)
    return {f"Fx{suffix}": fx, f"Fy{suffix}": fy, f"Fz{suffix}": fz, f"Mx{suffix}": mx, f"My{suffix}": my,
            f"Mz{suffix}": mz, f"COPx{suffix}": np.where(fz > 20, fwd, np.nan),
            f"COPy{suffix}": np.where(fz > 20, -right, np.nan)}


def simulate_plate(params: RunnerParams, duration_s: float, rate_hz: float = 1000.0, noise_n: float = 5.0,
                   split: bool = False, seed: int = 1) -> tuple[np.ndarray, dict, GaitModel]:
    """Time, channels (``Fx Fy Fz Mx My Mz COPx COPy`` [+ ``_l``/``_r``], ``belt_speed``) and the model."""
    model = GaitModel(params, duration_s)
    t = np.arange(int(duration_s * rate_hz)) / rate_hz
    v = params.speed_mps * 1e3
    rng = np.random.default_rng(seed)
    per = {}
    for foot in ("left", "right"):
        f, fwd, right = _foot(model, foot, t, v)
        row = model.latest_step(foot, t)
        st = model.steps
        rr = np.clip(row, 0, None)
        u = np.clip((t - st["ic_s"].to_numpy()[rr]) / (st["contact_time_ms"].to_numpy()[rr] * 1e-3), 0, 1)
        per[foot] = (f, fwd, right, u)
    if split:
        ch = {}
        for foot, suffix in (("left", "_l"), ("right", "_r")):
            f, fwd, right, u = per[foot]
            ch.update(_channels(f, fwd, right, noise_n * rng.standard_normal(len(t)), suffix, u))
    else:
        f = per["left"][0] + per["right"][0]
        with np.errstate(invalid="ignore", divide="ignore"):
            fwd = np.where(f > 0, (per["left"][0] * per["left"][1] + per["right"][0] * per["right"][1]) / f, 0.0)
            right = np.where(f > 0, (per["left"][0] * per["left"][2] + per["right"][0] * per["right"][2]) / f, 0.0)
            u = np.where(per["left"][0] > 0, per["left"][3], per["right"][3])
        ch = _channels(f, fwd, right, noise_n * rng.standard_normal(len(t)), "", u)
    ch["belt_speed"] = np.full(len(t), params.speed_mps)
    return t, ch, model
