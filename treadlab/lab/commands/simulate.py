"""``lab simulate``: run simulated insoles and a treadmill mat on pseudo-terminals, and write their rig file.

The devices run until Ctrl-C, SIGTERM, or ``--seconds``; meanwhile any treadlab command (``lab devices``,
``lab record``, the GUI) can use the rig file as if the devices were plugged in.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from treadlab.drivers.sim.params import RunnerParams
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.errors import ConfigError, DeviceError

NAME = "simulate"
HELP = "run simulated insoles and a pressure mat on pseudo-terminals (for trying treadlab without hardware)"

_RUNNER_OPTIONS = {  # option dest -> RunnerParams field
    "speed": "speed_mps",
    "cadence": "cadence_spm",
    "body_mass": "body_mass_kg",
    "contact_time": "contact_time_ms",
    "strike_left": "strike_left",
    "strike_right": "strike_right",
    "lr_asym": "loading_rate_asym_pct",
    "ct_asym": "contact_time_asym_pct",
    "peak_asym": "peak_force_asym_pct",
    "variability": "variability_pct",
    "stride_cv": "stride_cv_pct",
    "stumbles": "stumble_pct",
    "stand_s": "stand_s",
    "walk_s": "walk_s",
    "walk_cadence": "walk_cadence_spm",
    "walk_speed": "walk_speed_mps",
    "seed": "seed",
}


def add_arguments(parser: Any) -> None:
    """Options of ``lab simulate``."""
    g = parser.add_argument_group("rig")
    g.add_argument("--preset", choices=("default", "stress"), default="default",
                   help="default: two 99-sensel insoles at 500 Hz + a 48x112 mat at 120 Hz; "
                        "stress: two 960-sensel insoles at 750 Hz + the mat")
    g.add_argument("--line-insoles", action="store_true",
                   help="insoles speak the line protocol (16 sensels, 200 Hz, CSV lines) instead of protocol v1")
    g.add_argument("--treadmill", choices=("single", "split"), default=None,
                   help="add an instrumented treadmill 'treadmill' (kind force, protocol v1, 1000 Hz): one belt "
                        "under both feet, or split belts (docs/simulator.md)")
    g.add_argument("--rig-out", type=Path, default=None, metavar="RIG",
                   help="where to write the rig file (default: rig.toml in the work folder)")
    g.add_argument("--workdir", type=Path, default=None,
                   help="folder for the port links and ground truth (default: a new temporary folder)")
    g.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    r = parser.add_argument_group("runner")
    r.add_argument("--speed", type=float, help="belt speed, m/s (3.0)")
    r.add_argument("--cadence", type=float, help="steps per minute (170)")
    r.add_argument("--body-mass", type=float, help="kg (70)")
    r.add_argument("--contact-time", type=float, help="mean contact time, ms (260)")
    r.add_argument("--strike-left", choices=("rearfoot", "midfoot", "forefoot"))
    r.add_argument("--strike-right", choices=("rearfoot", "midfoot", "forefoot"))
    r.add_argument("--lr-asym", type=float, help="loading-rate symmetry index, %% (0)")
    r.add_argument("--ct-asym", type=float, help="contact-time symmetry index, %% (0)")
    r.add_argument("--peak-asym", type=float, help="peak-force symmetry index, %% (0)")
    r.add_argument("--variability", type=float, help="step-to-step variability, %% (3)")
    r.add_argument("--stride-cv", type=float, help="stride-time coefficient of variation, %% (0; up to 20)")
    r.add_argument("--stumbles", type=float, help="share of steps that are stumbles (a short then a long step), %% (0)")
    r.add_argument("--stand-s", type=float, help="stand on the still belt this long first (0)")
    r.add_argument("--walk-s", type=float, help="then walk this long before running (0)")
    r.add_argument("--walk-cadence", type=float, help="walking steps per minute (110)")
    r.add_argument("--walk-speed", type=float, help="walking belt speed, m/s (1.3)")
    r.add_argument("--seed", type=int, help="seed of everything random (0)")
    f = parser.add_argument_group("faults (every device)")
    f.add_argument("--corrupt-rate", type=float, default=0.0, help="fraction of frames with a flipped byte")
    f.add_argument("--loss-rate", type=float, default=0.0, help="fraction of samples never sent")
    f.add_argument("--garbage", type=int, default=0, metavar="BYTES", help="random bytes before the first message")
    f.add_argument("--unplug", action="append", default=[], metavar="NAME:AT_S:FOR_S",
                   help="unplug device NAME AT_S seconds after start for FOR_S seconds (repeatable)")


def _runner(args: Any) -> RunnerParams:
    given = {field: getattr(args, dest) for dest, field in _RUNNER_OPTIONS.items() if getattr(args, dest) is not None}
    return RunnerParams(**given)  # raises GaitParamsError (a ConfigError) with the parameter's name


def _build_rig(args: Any, workdir: Path) -> SimulatedRig:
    runner = _runner(args)
    seed = args.seed or 0
    if args.preset == "stress":
        if args.line_insoles:
            raise ConfigError("--line-insoles works with --preset default only")
        rig = SimulatedRig.stress(workdir, runner, seed)
    else:
        rig = SimulatedRig.default(workdir, runner, seed, line_insoles=args.line_insoles)
    if args.treadmill is not None:
        from treadlab.drivers.sim.rig import treadmill_spec

        rig.devices.append(treadmill_spec(args.treadmill, seed))
    for name, value in (("--corrupt-rate", args.corrupt_rate), ("--loss-rate", args.loss_rate)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value:g}")
    if args.garbage < 0:
        raise ConfigError(f"--garbage must be a number of bytes >= 0, got {args.garbage}")
    names = [d.name for d in rig.devices]
    for spec in rig.devices:
        spec.faults.corrupt_rate = args.corrupt_rate
        spec.faults.loss_rate = args.loss_rate
        spec.faults.garbage_at_start = args.garbage
    for item in args.unplug:
        parts = item.split(":")
        try:
            name, at_s, for_s = parts[0], float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise ConfigError(f"--unplug {item!r}: expected NAME:AT_S:FOR_S, e.g. insole_left:5:2") from None
        if name not in names or len(parts) != 3 or at_s < 0 or for_s < 0:
            raise ConfigError(f"--unplug {item!r}: expected NAME:AT_S:FOR_S with NAME one of {', '.join(names)}")
        spec = rig.devices[names.index(name)]
        spec.faults.unplug_at_s, spec.faults.replug_after_s = at_s, for_s
    return rig


def run(args: Any) -> int:
    """Start the rig, print the ports, write the rig file, wait, stop cleanly."""
    if args.seconds is not None and not args.seconds > 0:
        raise ConfigError(f"--seconds must be positive, got {args.seconds:g}")
    workdir = args.workdir if args.workdir is not None else Path(tempfile.mkdtemp(prefix="treadlab-sim-"))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot use work folder {workdir}: {exc.strerror}") from None
    rig = _build_rig(args, workdir)
    rig_out = args.rig_out if args.rig_out is not None else workdir / "rig.toml"
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        try:
            rig.start()
        except RuntimeError as exc:
            raise DeviceError(f"simulated devices did not start: {exc}") from None
        try:
            rig.write_rig(rig_out)
        except OSError as exc:
            raise ConfigError(f"cannot write rig file {rig_out}: {exc.strerror}") from None
        for spec in rig.devices:
            what = f"{spec.kind} {spec.side or ''}".strip()
            print(f"{spec.name:<14} {rig.ports[spec.name]}  ({what}, {spec.protocol}, {spec.rate_hz} Hz, "
                  f"serial {spec.serial})", flush=True)
        print(f"rig file: {rig_out}", flush=True)
        until = f"for {args.seconds:g} s" if args.seconds else "until Ctrl-C"
        print(f"simulating {until}; try: lab devices --rig {rig_out}", flush=True)
        _wait(rig, stop, args.seconds)
    finally:
        signal.signal(signal.SIGTERM, previous)
        codes = rig.stop(check=False)
    bad = {name: code for name, code in codes.items() if code != 0}
    if bad:
        raise DeviceError(f"simulated devices ended badly (exit codes {bad}); see the logs in {workdir}")
    return 0


def _wait(rig: SimulatedRig, stop: threading.Event, seconds: float | None) -> None:
    end = time.monotonic() + seconds if seconds else None
    try:
        while not stop.is_set():
            if end is not None and time.monotonic() >= end:
                return
            for name, event in rig.poll_events():
                if event == "UNPLUGGED" or event.startswith("READY"):
                    print(f"{name}: {'unplugged' if event == 'UNPLUGGED' else 'plugged in again'}", flush=True)
            dead = rig.exited()
            if dead:
                raise DeviceError(f"simulated device(s) stopped unexpectedly: {dead}; see the logs in {rig.workdir}")
            stop.wait(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))
    except KeyboardInterrupt:
        print("stopping", flush=True)
