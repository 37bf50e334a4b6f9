"""Feedback latency through the real path: the default simulated rig recorded with a feedback protocol.

Two insoles ("insole99", u16, 500 Hz) and the 48 x 112 mat at 120 Hz, each simulated in its own process on a
pseudo-terminal, recorded in this process as ``lab record --feedback`` records them, with the cues rendered to a
WAV file. Two engines listen to the same capture: one whose target is the strike index (known at contact + 15 ms)
writes ``/feedback``; a second one whose target is VILR (known after the loading phase) runs beside it. Every step
of the "on" phase is cued. Printed, against the simulator's true initial contacts on the session clock:

- latency from true initial contact to the cue (its WAV sample time): p50, p95, p99, max, per target;
- how the latency splits: the metric's own wait (newest sample used - IC), delivery (host receive time - that
  sample's time: serial, the simulator's USB frames and stalls, scheduling), and the engine (cue - receive time);
- the share of the "on" phase's true steps that got a cue (target 100 %) and cues without a true step;
- the CPU the two engines add, in % of one core (their thread's CPU time over the run).

Run: ``.venv/bin/python bench/feedback.py [--seconds 120]``
Targets (issue 13): contact metric p95 <= 30 ms and p99 <= 50 ms, loading metric p95 <= 80 ms, 100 % cued.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from treadlab.acquisition.recorder import Recorder
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.feedback.check import match_contacts, percentiles_ms
from treadlab.feedback.engine import FeedbackEngine
from treadlab.feedback.live import G_MPS2, FeedbackRun, on_file_clock
from treadlab.feedback.protocol import parse_protocol
from treadlab.feedback.sinks import NullSink, WavSink
from treadlab.lab.rig import load_rig

PROTOCOL = """
[target]
metric = "{metric}"
low = {low}
[cue]
kind = "step-tone"
[[phase]]
name = "warm-up"
duration_s = {warm}
feedback = "off"
[[phase]]
name = "feedback"
duration_s = {on}
feedback = "on"
"""


def report(name: str, cues: list, true_ic: np.ndarray, on: tuple[float, float]) -> None:
    ic = np.array([c.ic for c in cues])
    t = np.array([c.time for c in cues])
    j = match_contacts(ic, true_ic)
    ok = j >= 0
    lat = t[ok] - true_ic[j[ok]]
    p = percentiles_ms(lat, (50, 95, 99, 100))
    wait = percentiles_ms(np.array([c.data_s for c in cues])[ok] - true_ic[j[ok]], (50, 95))
    deliv = percentiles_ms(np.array([c.arrived_s - c.data_s for c in cues]), (50, 95, 99))
    eng = percentiles_ms(np.array([c.time - c.arrived_s for c in cues]), (50, 95, 99))
    inside = np.flatnonzero((true_ic >= on[0] + 0.05) & (true_ic < on[1] - 0.5))
    cued = np.isin(inside, j[ok])
    print(f"{name}: {len(cues)} cues; latency IC -> cue p50 {p['p50']:.1f}  p95 {p['p95']:.1f}  "
          f"p99 {p['p99']:.1f}  max {p['p100']:.1f} ms")
    print(f"    split: metric wait p50 {wait['p50']:.1f} ms (p95 {wait['p95']:.1f}); delivery p50 "
          f"{deliv['p50']:.1f} p95 {deliv['p95']:.1f} p99 {deliv['p99']:.1f} ms; engine p50 {eng['p50']:.2f} "
          f"p95 {eng['p95']:.2f} p99 {eng['p99']:.2f} ms")
    print(f"    steps of the on phase cued: {cued.sum()} of {len(inside)} ({100 * cued.mean():.1f} %); "
          f"cues without a true step: {(~ok).sum()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--warm-up", type=float, default=10.0)
    args = ap.parse_args()
    on_s = args.seconds - args.warm_up
    work = Path(tempfile.mkdtemp(prefix="bench-feedback-"))
    runner = RunnerParams(cadence_spm=180.0, contact_time_ms=240.0, seed=5)
    with SimulatedRig.default(work / "devices", runner=runner, seed=5) as rig:
        rig.steps_horizon_s = args.seconds + 60.0
        rig_file = load_rig(str(rig.write_rig(work / "rig.toml")))
        rec = Recorder(list(rig_file.devices), {"body_mass_kg": runner.body_mass_kg}, str(work / "s.h5"),
                       rig_file.text)
        rec.open()
        strike = parse_protocol(PROTOCOL.format(metric="strike_index_pct", low=34.0, warm=args.warm_up, on=on_s))
        vilr = parse_protocol(PROTOCOL.format(metric="vilr_bw_s", low=0.0, warm=args.warm_up, on=on_s))
        run = FeedbackRun(strike, WavSink(str(work / "cues.wav"))).attach(rec)
        second = FeedbackEngine(vilr, list(run.engine.feet.values()), runner.body_mass_kg * G_MPS2,
                                lambda: rec.elapsed_s, NullSink())
        rec.start()
        run.start()
        unsub = rec.subscribe(on_file_clock(second.put, rec.offset_s))  # batches come on the stream's clock
        second.start()
        wall0 = time.monotonic()
        while rec.elapsed_s < args.seconds:
            time.sleep(0.2)
        wall = time.monotonic() - wall0
        second.stop()
        unsub()
        run.stop()
        rec.stop()
        true_ic = np.sort((rig.steps()["ic_ns"].to_numpy() - rec.start_ns) / 1e9)
    with h5py.File(work / "s.h5", "r") as f:
        n_file = f["feedback/cues/time"].shape[0]
    print(f"feedback bench: {args.seconds:g} s of the default simulated rig (insoles 500 Hz, mat 120 Hz), "
          f"runner at {runner.cadence_spm:g} steps/min; phases: {args.warm_up:g} s off, {on_s:g} s on")
    on = (args.warm_up, args.seconds)
    report("strike index (contact metric)", run.engine.cues_, true_ic, on)
    report("VILR (loading metric)", second.cues_, true_ic, on)
    print(f"cue rows in the file: {n_file} (emitted: {len(run.engine.cues_)}); engine errors: "
          f"{run.engine.errors_ + second.errors_}")
    cpu = run.engine.cpu_s_ + second.cpu_s_
    print(f"CPU of the two engines: {100 * cpu / wall:.1f} % of one core ({100 * run.engine.cpu_s_ / wall:.1f} % "
          f"for the strike-index engine)")


if __name__ == "__main__":
    main()
