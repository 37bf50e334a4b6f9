"""``lab demo [--out DIR] [--seconds S]``: the whole product on the simulated rig, as ``make demo`` runs it.

Records a "before" session (a rearfoot striker at 160 steps/min with a 12% loading-rate asymmetry), an "after"
session (midfoot strikes at 172 steps/min, nearly symmetric) and a third, live-feedback session: the runner gets a
step-tone on the strike index (band >= 34 % of foot length) through a baseline, a feedback and a retention phase,
and moves from rearfoot to midfoot landings during the feedback phase (a simulated learning curve); its cues are
rendered to ``feedback-cues.wav`` and its report has the retraining section. Each is recorded through the real
acquisition path: simulated insoles and mat in their own processes on pseudo-terminals, the drivers, the
:class:`Recorder`, an HDF5 session file. All are then analysed, each gets its coach report and the before/after
pair the comparison report; the demo prints their paths and the headline changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from treadlab.acquisition.recorder import Recorder
from treadlab.analysis.compare import compare_steps
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.errors import ConfigError, DeviceError, StorageError
from treadlab.lab.report.collect import SegmentSpec, open_analysis, session_view
from treadlab.lab.report.html import render_compare, render_session
from treadlab.lab.report.output import analysis_warnings, write_text
from treadlab.lab.rig import load_rig

NAME = "demo"
HELP = ("record a before, an after and a live-feedback session on the simulated rig, analyse them, write the "
        "coach reports")

#: The two runners of the demo: what a coach's cue is meant to change.
BEFORE = RunnerParams(cadence_spm=160.0, strike_left="rearfoot", strike_right="rearfoot",
                      loading_rate_asym_pct=12.0, body_mass_kg=70.0, speed_mps=3.0, seed=11)
AFTER = RunnerParams(cadence_spm=172.0, strike_left="midfoot", strike_right="midfoot",
                     loading_rate_asym_pct=1.0, body_mass_kg=70.0, speed_mps=3.0, seed=12)
STATUS_EVERY_S = 5.0
#: The feedback session's runner: rearfoot, moving to midfoot from 10 % to 50 % into the feedback phase.
FEEDBACK_RUNNER = RunnerParams(cadence_spm=166.0, strike_left="rearfoot", strike_right="rearfoot",
                               body_mass_kg=70.0, speed_mps=3.0, seed=13)
FEEDBACK_PROTOCOL = """
[target]
metric = "strike_index_pct"
low = 34.0
[cue]
kind = "step-tone"
[[phase]]
name = "baseline"
duration_s = {base:g}
feedback = "off"
[[phase]]
name = "feedback"
duration_s = {fb:g}
feedback = "on"
[[phase]]
name = "retention"
duration_s = {ret:g}
feedback = "off"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lab demo``."""
    parser.add_argument("--out", metavar="DIR", default="demo-out",
                        help="folder for the sessions and reports (default demo-out; each run gets its own subfolder)")
    parser.add_argument("--seconds", type=float, default=30.0, help="recording time of each session (default 30)")
    parser.add_argument("--no-mat", action="store_true", help="simulate the two insoles only (less CPU)")


def run(args: argparse.Namespace) -> int:
    """Record, analyse, report; print the paths and the headline changes."""
    if not args.seconds >= 3.0:
        raise ConfigError(f"--seconds must be at least 3 (a few strides per session), got {args.seconds:g}")
    folder = Path(args.out) / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise StorageError(f"demo folder {folder} exists already; wait a second and run again") from None
    except OSError as exc:
        raise StorageError(f"cannot create demo folder {folder}: {exc.strerror or exc}") from None
    sessions = {}
    for label, runner, condition in (("before", BEFORE, "before: rearfoot, 160 spm"),
                                     ("after", AFTER, "after: midfoot cue, 172 spm")):
        sessions[label] = record(folder, label, runner, condition, args.seconds, mat=not args.no_mat)
    feedback = record_feedback(folder, args.seconds, mat=not args.no_mat)
    return report_all(folder, sessions["before"], sessions["after"], feedback)


def feedback_plan(seconds: float) -> tuple[str, RunnerParams]:
    """The feedback session of a demo of ``seconds`` per session: its protocol text and its changing runner."""
    base, fb, ret = max(seconds / 2, 8.0), max(seconds, 12.0), max(seconds / 2, 8.0)
    change = {"start_s": base + 0.1 * fb, "stop_s": base + 0.5 * fb,
              "after": {"strike_left": "midfoot", "strike_right": "midfoot"}}
    return FEEDBACK_PROTOCOL.format(base=base, fb=fb, ret=ret), dataclasses.replace(FEEDBACK_RUNNER, change=change)


def record_feedback(folder: Path, seconds: float, mat: bool = True) -> Path:
    """Record the live-feedback session (protocol phases, step-tone cues into a WAV) through the real path."""
    from treadlab.feedback.live import FeedbackRun
    from treadlab.feedback.protocol import parse_protocol
    from treadlab.feedback.sinks import WavSink

    text, runner = feedback_plan(seconds)
    protocol = parse_protocol(text, "demo")
    run = FeedbackRun(protocol, WavSink(str(folder / "feedback-cues.wav")))
    return record(folder, "feedback", runner, "live feedback: strike index >= 34 %", protocol.duration_s, mat,
                  companion=run)


def record(folder: Path, label: str, runner: RunnerParams, condition: str, seconds: float, mat: bool = True,
           companion=None) -> Path:
    """Record one session of ``runner`` through the simulated rig, the drivers and the Recorder (with a feedback
    run as ``companion``).
    """
    out = folder / f"{label}.h5"
    sim = SimulatedRig.default(folder / f"sim-{label}", runner=runner, seed=runner.seed, mat=mat)
    try:
        sim.start()
    except RuntimeError as exc:  # a simulator process that did not come up: one line, not a traceback
        sim.stop(check=False)
        raise DeviceError(f"the simulated rig did not start: {str(exc).splitlines()[0]}") from None
    try:
        _capture(sim, folder, label, runner, condition, seconds, out, companion)
    finally:
        sim.stop(check=False)
        if companion is not None:
            companion.sink.close()
    print(f"[{label}] session file {out}", flush=True)
    return out


def _capture(sim: SimulatedRig, folder: Path, label: str, runner: RunnerParams, condition: str, seconds: float,
             out: Path, companion=None) -> None:
    rig = load_rig(sim.write_rig(folder / f"sim-{label}" / "rig.toml"))
    meta = {"participant": "demo runner", "condition": condition, "shoe": "demo shoe",
            "body_mass_kg": runner.body_mass_kg, "treadmill_speed_mps": runner.speed_mps,
            "notes": f"lab demo, simulated {label} session"}
    print(f"[{label}] recording {seconds:g} s from {len(rig.devices)} simulated devices "
          f"({', '.join(d.name for d in rig.devices)}) ...", flush=True)
    with Recorder(list(rig.devices), meta, str(out), rig.text) as rec:
        if companion is not None:
            rec.open()
            companion.attach(rec)
        rec.start()
        if companion is not None:
            companion.start()
        rec.mark("start")
        deadline = time.monotonic() + seconds
        next_status = time.monotonic() + STATUS_EVERY_S
        while time.monotonic() < deadline and not rec.failed:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= next_status:
                next_status += STATUS_EVERY_S
                print(f"[{label}] {_status_line(rec)}", flush=True)
                if companion is not None:
                    print(f"[{label}] {companion.status_lines()[0].strip()}", flush=True)
        rec.mark("end")
        if companion is not None:
            companion.stop()
        rec.stop()


def _status_line(rec: Recorder) -> str:
    st = rec.status()
    parts = [f"{d.name} {d.rate_hz:.0f}/{d.nominal_hz:.0f} Hz lost {d.lost}" for d in st.devices]
    return f"{st.elapsed_s:5.1f} s  " + "  ".join(parts)


def report_all(folder: Path, before: Path, after: Path, feedback: Path | None = None) -> int:
    """Write both session reports and the comparison (each file analysed once), and the feedback session's report;
    print paths and headline changes.
    """
    specs = (SegmentSpec(before), SegmentSpec(after))
    with analysis_warnings("lab demo", sys.stderr), open_analysis(specs[0]) as ga_b, open_analysis(specs[1]) as ga_a:
        views = [session_view(ga, spec.label) for ga, spec in zip((ga_b, ga_a), specs)]
        comp = compare_steps(ga_b.steps, ga_a.steps)
        pages = [render_session(v) for v in views] + [render_compare(views[0], views[1], comp)]
    paths = [before.with_suffix(".html"), after.with_suffix(".html"), folder / "compare.html"]
    for path, page in zip(paths, pages):
        write_text(path, page)
    retraining = None
    if feedback is not None:
        spec = SegmentSpec(feedback)
        with analysis_warnings("lab demo", sys.stderr), open_analysis(spec) as ga:
            view = session_view(ga, spec.label)
            write_text(feedback.with_suffix(".html"), render_session(view))
        paths.append(feedback.with_suffix(".html"))
        retraining = view.retraining["numbers"] if view.retraining else None
    print("\nWhat changed, before to after:")
    for line in comp.summary:
        print(f"  - {line}")
    if retraining is not None:
        ttc = retraining["time_to_criterion_s"]
        reached = (f"reached the band after {ttc:.0f} s ({retraining['time_to_criterion_steps']} steps) of cues"
                   if ttc is not None and ttc == ttc else "did not reach the band")
        print(f"\nLive feedback (strike index >= 34 %): the runner {reached}; in band "
              f"{retraining['in_band_pct_baseline']:.0f}% of baseline steps, "
              f"{retraining['in_band_pct_retention']:.0f}% in retention; retention ratio "
              f"{retraining['retention_ratio']:.2f}")
    print("\nReports (open in any browser, print on A4 or Letter):")
    for p in paths:
        print(f"  {p.resolve()}")
    return 0
