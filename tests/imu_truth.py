"""The IMU analysis against the simulator model's ground truth: the figures of issue 14's known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd

MATCH_S = 0.06  # an analysed IC within this of a true IC is that step


def _match(est_ic: np.ndarray, true_ic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each true IC, the index of the nearest analysed IC within MATCH_S (-1 for none), and the difference."""
    if len(est_ic) == 0:
        return np.full(len(true_ic), -1), np.full(len(true_ic), np.nan)
    order = np.argsort(est_ic)
    e = est_ic[order]
    j = np.clip(np.searchsorted(e, true_ic), 1, max(1, len(e) - 1)) if len(e) > 1 else np.zeros(len(true_ic), int)
    cand = np.stack([np.maximum(j - 1, 0), j], axis=1)
    best = cand[np.arange(len(true_ic)), np.argmin(np.abs(e[cand] - true_ic[:, None]), axis=1)]
    d = e[best] - true_ic
    ok = np.abs(d) <= MATCH_S
    return np.where(ok, order[best], -1), np.where(ok, d, np.nan)


def _err(est: np.ndarray, true: np.ndarray) -> dict:
    ok = np.isfinite(est) & np.isfinite(true)
    e = est[ok] - true[ok]
    if not ok.any():
        return {"n": 0, "bias": float("nan"), "rmse": float("nan")}
    return {"n": int(ok.sum()), "bias": float(e.mean()), "rmse": float(np.sqrt(np.mean(e * e))),
            "true_mean": float(true[ok].mean())}


def known_answers(steps: pd.DataFrame, model, t_lo: float, t_hi: float) -> dict:
    """Figures of an analysed steps table against ``model.truth_steps``/``truth_strides`` in ``[t_lo, t_hi)``."""
    truth = model.truth_steps(t_lo, t_hi)
    truth = truth[truth["gait"] == "running"].reset_index(drop=True)
    strides = model.truth_strides(t_lo, t_hi)
    st = steps[steps["gait"] != "standing"].reset_index(drop=True) if "gait" in steps else steps
    idx, d = _match(st["ic_s"].to_numpy(float), truth["ic_s"].to_numpy(float))
    found = idx >= 0
    m = st.iloc[np.where(found, idx, 0)].reset_index(drop=True)
    foot_ok = found & (m["foot"].to_numpy() == truth["foot"].to_numpy())
    out = {"steps_true": int(len(truth)), "found_pct": float(100 * found.mean()),
           "foot_right_pct": float(100 * foot_ok[found].mean()) if found.any() else float("nan"),
           "ic_median_ms": float(np.nanmedian(d) * 1e3), "ic_median_abs_ms": float(np.nanmedian(np.abs(d)) * 1e3)}
    use = foot_ok

    def col(name):
        return np.where(use, m[name].to_numpy(float) if name in m else np.nan, np.nan)

    for side in ("left", "right"):
        sel = truth["foot"].to_numpy() == side
        out[f"pelvic_drop_{side}"] = _err(col("pelvic_drop_deg")[sel], truth["pelvic_drop_deg"].to_numpy()[sel])
    out["trunk_lean"] = _err(col("trunk_lean_deg"), truth["trunk_lean_deg"].to_numpy())
    out["vertical_oscillation"] = _err(col("vertical_oscillation_mm"), truth["vertical_oscillation_mm"].to_numpy())
    pta, tp = col("pta_g"), truth["pta_g"].to_numpy()
    ok = np.isfinite(pta)
    rel = (pta[ok] - tp[ok]) / tp[ok] * 100 if ok.any() else np.full(1, np.nan)
    out["pta_median_rel_pct"] = float(np.median(rel))
    out["pta_median_abs_rel_pct"] = float(np.median(np.abs(rel)))
    out["ppa"] = _err(col("ppa_g"), truth["ppa_g"].to_numpy())
    out["shock_attenuation"] = _err(col("shock_attenuation_pct"), truth["shock_attenuation_pct"].to_numpy())
    sidx, _ = _match(st["ic_s"].to_numpy(float), strides["start_s"].to_numpy(float))
    sm = st.iloc[np.where(sidx >= 0, sidx, 0)].reset_index(drop=True)
    sok = (sidx >= 0) & (sm["foot"].to_numpy() == strides["foot"].to_numpy())
    for c in ("pelvic_rotation_deg", "pelvic_tilt_mean_deg", "pelvic_tilt_range_deg"):
        est = np.where(sok, sm[c].to_numpy(float) if c in sm else np.nan, np.nan)
        out[c.replace("_deg", "")] = _err(est, strides[c].to_numpy())
    return out


def print_figures(name: str, fig: dict) -> None:
    """One scenario's figures, one line each."""
    print(f"{name}:")
    print(f"  steps: {fig['steps_true']} true, {fig['found_pct']:.1f}% found, foot right {fig['foot_right_pct']:.1f}%,"
          f" IC median error {fig['ic_median_ms']:+.1f} ms (median |error| {fig['ic_median_abs_ms']:.1f} ms)")
    for key, unit in (("pelvic_drop_left", "deg"), ("pelvic_drop_right", "deg"), ("pelvic_rotation", "deg"),
                      ("pelvic_tilt_mean", "deg"), ("pelvic_tilt_range", "deg"), ("trunk_lean", "deg"),
                      ("vertical_oscillation", "mm"), ("ppa", "g"), ("shock_attenuation", "points")):
        e = fig[key]
        if e["n"]:
            print(f"  {key}: n {e['n']}, true mean {e['true_mean']:.2f}, bias {e['bias']:+.2f} {unit}, "
                  f"RMSE {e['rmse']:.2f} {unit}")
    if np.isfinite(fig["pta_median_rel_pct"]):
        print(f"  pta: median error {fig['pta_median_rel_pct']:+.1f}% "
              f"(median |error| {fig['pta_median_abs_rel_pct']:.1f}%)")
