"""Known answers of the IMU analysis against the simulator's kinematic model, per scenario.

Each scenario is a session of ``treadlab.drivers.sim.imu_model.ImuModel`` (random boards: mounting up to 10 deg,
gyroscope bias up to 1 deg/s, datasheet noise, int16 counts; 500 Hz pelvis and trunk, 1000 Hz tibiae), written by
the real session writer (``tests/imu_files.sim_session``), analysed by ``treadlab.analysis.analyze`` and compared
with the model's ground truth of every definition (``tests/imu_truth.known_answers``). Usage:
``python bench/imu_known_answers.py [--duration 120]``. The issue's targets: pelvic drop RMSE <= 1.5 deg and
|bias| <= 0.5 deg per side, rotation range within 2 deg, tilt range within 1.5 deg, trunk lean within 1.5 deg,
PTA within 10% (median), shock attenuation within 5 points, VO within 10 mm; pelvis alone: >= 98% of steps,
foot right in >= 98%, IC median error within 15 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SCENARIOS = {
    "insoles + 4 IMUs, drop 8/3 deg": {"insoles": True, "source": "insoles",
                                          "params": {"pelvic_drop_left_deg": 8.0, "pelvic_drop_right_deg": 3.0}},
    "4 IMUs alone, drop 2/10 deg, lean 12": {"insoles": False, "source": "imu",
                                                "params": {"pelvic_drop_left_deg": 2.0, "pelvic_drop_right_deg": 10.0,
                                                            "trunk_lean_deg": 12.0, "pta_left_g": 12.0}},
    "pelvis alone, drop 6/4 deg": {"insoles": False, "source": "imu", "placements": ("pelvis",),
                                      "params": {"pelvic_drop_left_deg": 6.0, "pelvic_drop_right_deg": 4.0}},
    "4 IMUs alone, every board 10 deg misaligned, drop 7/3": {
        "insoles": False, "source": "imu", "misalignment_deg": 10.0,
        "params": {"pelvic_drop_left_deg": 7.0, "pelvic_drop_right_deg": 3.0, "heading_wander_deg": 8.0}},
    "pelvis alone, slow cadence, drop 5/5 deg": {"insoles": False, "source": "imu", "placements": ("pelvis",),
                                                    "params": {"cadence_spm": 150.0, "speed_mps": 2.6}},
}


def run(name: str, sc: dict, duration_s: float, folder: Path, seed: int) -> dict:
    import numpy as np
    from imu_files import sim_session
    from imu_truth import known_answers, print_figures
    from scipy.spatial.transform import Rotation

    from treadlab.analysis import analyze
    from treadlab.drivers.sim.gait import RunnerParams

    params = RunnerParams(stand_s=8.0, seed=seed, **sc["params"])
    path = folder / f"s{seed}.h5"
    t0 = time.perf_counter()
    model, _, sensors = sim_session(path, params, duration_s,
                              placements=sc.get("placements", ("pelvis", "trunk", "tibia_left", "tibia_right")),
                              insoles=sc["insoles"], seed=seed, misalignment_deg=sc.get("misalignment_deg"))
    t1 = time.perf_counter()
    with analyze(path, source=sc["source"]) as ga:
        t2 = time.perf_counter()
        fig = known_answers(ga.steps, model, 0.5 + params.stand_s + 4.0, 0.5 + duration_s - 2.0)
        ic = ga.summary.get("imu", {}).get("ic_diff_ms")
    print_figures(f"{name} ({duration_s:g} s; written in {t1 - t0:.1f} s, analysed in {t2 - t1:.1f} s)", fig)
    boards = ", ".join(
        f"{p} {np.degrees(Rotation.from_matrix(np.asarray(b.misalignment)).magnitude()):.1f} deg / "
        f"{np.linalg.norm(b.gyro_bias_dps):.2f} deg/s" for p, b in sensors.items())
    print(f"  boards (mounting misalignment / gyro bias): {boards}")
    if ic:
        print("  IMU - insole IC (rig self-check): " + ", ".join(f"{k} {v['median_ms']:+.1f} ms (n {v['n']})"
                                                                  for k, v in ic.items()))
    return fig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=120.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="treadlab-imu-ka-") as tmp:
        for i, (name, sc) in enumerate(SCENARIOS.items()):  # one session per scenario
            run(name, sc, args.duration, Path(tmp), seed=11 + i)
    return 0


if __name__ == "__main__":
    sys.exit(main())
