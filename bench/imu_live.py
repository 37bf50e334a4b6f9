"""The live IMU metrics (the app's IMU panel, the feedback engine's pelvic-drop and PTA targets): cost and accuracy.

A simulated runner (``ImuModel`` on the insoles' gait model: pelvis at 500 Hz, both tibiae at 1000 Hz, random board
mountings up to 10 deg, biases and noise, step-to-step variability) is fed block by block (10 ms) to
:class:`~treadlab.analysis.imu_online.OnlineImuMetrics` with the steps of the insoles' online detection
(:class:`~treadlab.analysis.online.OnlineSteps`), as the engine does. Printed:

- CPU per second of data of the IMU part (orientation, alignment, angles, per-step values), per sensor kind;
- pelvic drop per step against the simulator's ground truth (bias and RMSE per side; the causal filter's);
- PTA per step: median absolute error in %;
- when each value is known: pelvic drop after toe-off, PTA after initial contact (median, p95, ms; data time).

Run: ``.venv/bin/python bench/imu_live.py [--seconds 120] [--seed 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from treadlab.analysis.imu_online import ImuChannels, OnlineImuMetrics, online_sensor
from treadlab.analysis.online import OnlineSteps
from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.gait import GaitModel, RunnerParams
from treadlab.drivers.sim.imu_model import ImuModel
from treadlab.drivers.sim.imu_sensor import ImuSensor
from treadlab.vocabulary import G_MPS2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    params = RunnerParams(cadence_spm=170.0, stand_s=5.0, seed=args.seed, pelvic_drop_left_deg=7.0,
                          pelvic_drop_right_deg=4.0, pta_left_g=8.0, pta_right_g=11.0)
    gait = GaitModel(params, args.seconds + 1.0)
    model = ImuModel(params, gait=gait)
    lay = load_layout("insole16")
    boards = {}
    for i, p in enumerate(("pelvis", "tibia_left", "tibia_right")):
        s = ImuSensor.random(p, seed=args.seed + i)
        t = np.arange(int(args.seconds * s.rate_hz)) / s.rate_hz
        boards[p] = (s, t, s.raw(model.signals(p, t, s)))
    t_ins = np.arange(int(args.seconds * 200)) / 200.0
    forces = {f: gait.insole_forces(f, t_ins, lay) for f in ("left", "right")}
    pos = np.asarray(lay.positions_mm)
    sensors = {p: online_sensor(ImuChannels.from_channels(p, p, s.rate_hz, s.channels, s.gain(), 0.0))
               for p, (s, _, _) in boards.items()}
    metrics = OnlineImuMetrics(("pelvic_drop_deg", "pta_g"), sensors={p: (p, x) for p, x in sensors.items()})
    online = {f: OnlineSteps(f, lay.foot_length_mm, params.body_mass_kg * G_MPS2, stages={"toeoff"})
              for f in ("left", "right")}
    OnlineSteps.pair(online["left"], online["right"])
    cpu = dict.fromkeys(boards, 0.0)
    ends = dict.fromkeys(boards, 0)
    got = []
    for a in range(0, len(t_ins), 2):  # 10 ms blocks
        b = min(a + 2, len(t_ins))
        for f in ("left", "right"):
            total = forces[f][a:b].sum(axis=1)
            moment = forces[f][a:b] @ pos[:, 1]
            for ev in online[f].feed(t_ins[a:b], total, moment):
                got += metrics.step(ev)
        for p, (_s, t, raw) in boards.items():
            ia, ends[p] = ends[p], int(np.searchsorted(t, t_ins[b - 1], side="right"))
            c0 = time.process_time()
            sensors[p].feed(t[ia:ends[p]], raw[ia:ends[p]])
            cpu[p] += time.process_time() - c0
        got += metrics.due()
    truth = model.truth_steps(0.0, args.seconds - 0.5)
    print(f"live IMU metrics, {args.seconds:.0f} s simulated, seed {args.seed}")
    for p in boards:
        print(f"  CPU {p:12s} {1e3 * cpu[p] / args.seconds:6.2f} ms per s of data")
    for metric in ("pelvic_drop_deg", "pta_g"):
        for foot in ("left", "right"):
            ev = [e for e in got if e.foot == foot and metric in e.values]
            ic = np.array([e.ic_s for e in ev])
            v = np.array([e.values[metric] for e in ev])
            part = truth[truth.foot == foot]
            j = np.clip(np.searchsorted(part.ic_s.to_numpy(), ic), 1, len(part) - 1)
            j = np.where(np.abs(part.ic_s.to_numpy()[j - 1] - ic) < np.abs(part.ic_s.to_numpy()[j] - ic), j - 1, j)
            ok = (np.abs(part.ic_s.to_numpy()[j] - ic) < 0.03) & np.isfinite(v)
            tv = part[metric].to_numpy()[j][ok]
            err = v[ok] - tv
            known = np.array([e.data_s for e in ev])[ok]
            ref = (part.to_s.to_numpy()[j][ok] if metric == "pelvic_drop_deg" else ic[ok])
            lag = (known - ref) * 1e3
            if metric == "pelvic_drop_deg":
                acc = f"bias {err.mean():+.2f} deg, RMSE {np.sqrt(np.mean(err ** 2)):.2f} deg"
            else:
                acc = f"median |error| {100 * np.median(np.abs(err / tv)):.1f} %"
            since = "toe-off" if metric == "pelvic_drop_deg" else "IC"
            print(f"  {metric:16s} {foot:5s} {ok.sum():4d} steps  {acc};  known {np.median(lag):.0f} ms "
                  f"(p95 {np.percentile(lag, 95):.0f}) after {since}")


if __name__ == "__main__":
    main()
