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
from treadlab.drivers.sim.rig import IMU_PLACEMENTS, SimulatedRig
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
    # simulated IMUs (--imu)
    "pelvic_drop_left": "pelvic_drop_left_deg",
    "pelvic_drop_right": "pelvic_drop_right_deg",
    "pelvic_rotation": "pelvic_rotation_deg",
    "pelvic_tilt": "pelvic_tilt_deg",
    "pelvic_tilt_range": "pelvic_tilt_range_deg",
    "trunk_lean": "trunk_lean_deg",
    "vertical_oscillation": "vertical_oscillation_mm",
    "pta_left": "pta_left_g",
    "pta_right": "pta_right_g",
    "shock_attenuation_left": "shock_attenuation_left_pct",
    "shock_attenuation_right": "shock_attenuation_right_pct",
    "heading_wander": "heading_wander_deg",
}


def add_arguments(parser: Any) -> None:
    """Options of ``lab simulate``."""
    g = parser.add_argument_group("rig")
    g.add_argument("--preset", choices=("default", "stress"), default="default",
                   help="default: two 99-sensel insoles at 500 Hz + a 48x112 mat at 120 Hz; "
                        "stress: two 960-sensel insoles at 750 Hz + the mat + the four IMUs")
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
    i = parser.add_argument_group("inertial sensors (IMUs)")
    i.add_argument("--imu", default=None, metavar="PLACEMENTS",
                   help="add IMUs, comma-separated: pelvis,trunk,tibia_left,tibia_right (or 'all'); 500 Hz "
                        "(shanks 1000 Hz), i16 ax ay az gx gy gz; ground truth in imu_steps.csv and imu_strides.csv")
    i.add_argument("--imu-only", action="store_true", help="no insoles and no mat: only the --imu devices")
    i.add_argument("--imu-mag", action="store_true", help="the IMUs also send a magnetometer (mx my mz)")
    i.add_argument("--imu-misalignment", type=float, default=None, metavar="DEG",
                   help="largest random mounting misalignment of each board (10)")
    i.add_argument("--imu-gyro-bias", type=float, default=None, metavar="DPS",
                   help="largest constant gyroscope bias of each board (1.0)")
    i.add_argument("--pelvic-drop-left", type=float, help="pelvic drop in left stance, deg (5)")
    i.add_argument("--pelvic-drop-right", type=float, help="pelvic drop in right stance, deg (5)")
    i.add_argument("--pelvic-rotation", type=float, help="pelvic rotation range per stride, deg (10)")
    i.add_argument("--pelvic-tilt", type=float, help="mean anterior pelvic tilt relative to standing, deg (4)")
    i.add_argument("--pelvic-tilt-range", type=float, help="pelvic tilt range per stride, deg (5)")
    i.add_argument("--trunk-lean", type=float, help="forward trunk lean relative to standing, deg (8)")
    i.add_argument("--vertical-oscillation", type=float, help="vertical oscillation of the pelvis, mm (80)")
    i.add_argument("--pta-left", type=float, help="peak tibial acceleration, left, g (8)")
    i.add_argument("--pta-right", type=float, help="peak tibial acceleration, right, g (8)")
    i.add_argument("--shock-attenuation-left", type=float, help="tibia-to-pelvis shock attenuation, left, %% (65)")
    i.add_argument("--shock-attenuation-right", type=float, help="... right, %% (65)")
    i.add_argument("--heading-wander", type=float, help="slow wander of the runner's heading, deg (3)")
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


def _imu_placements(args: Any) -> tuple[str, ...]:
    if args.imu is None:
        if args.imu_only:
            raise ConfigError("--imu-only needs --imu PLACEMENTS")
        return ()
    names = IMU_PLACEMENTS if args.imu.strip() == "all" else tuple(x.strip() for x in args.imu.split(",") if x.strip())
    bad = [x for x in names if x not in IMU_PLACEMENTS]
    if bad or not names or len(set(names)) != len(names):
        raise ConfigError(f"--imu {args.imu!r}: expected distinct placements of {', '.join(IMU_PLACEMENTS)} "
                          "(comma-separated) or 'all'")
    return names


def _build_rig(args: Any, workdir: Path) -> SimulatedRig:
    runner = _runner(args)
    seed = args.seed or 0
    imus = _imu_placements(args)
    if args.preset == "stress":
        if args.line_insoles:
            raise ConfigError("--line-insoles works with --preset default only")
        if imus or args.imu_only:
            raise ConfigError("--preset stress has the four IMUs already; --imu and --imu-only are for the default")
        rig = SimulatedRig.stress(workdir, runner, seed)
    else:
        rig = SimulatedRig.default(workdir, runner, seed, line_insoles=args.line_insoles, mat=not args.imu_only,
                                   imus=imus, insoles=not args.imu_only)
    board = {}
    for key, flag, value in (("max_misalignment_deg", "--imu-misalignment", args.imu_misalignment),
                             ("max_gyro_bias_dps", "--imu-gyro-bias", args.imu_gyro_bias)):
        if value is not None:
            if not 0.0 <= value <= 90.0:
                raise ConfigError(f"{flag} must be in 0..90, got {value:g}")
            board[key] = value
    if args.imu_mag:
        board["magnetometer"] = True
    for spec in rig.devices:
        if spec.kind == "imu" and board:
            spec.imu = {**(spec.imu or {}), **board}
            if args.imu_mag:
                spec.channels = None
                spec.__post_init__()
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
            what = f"{spec.kind} {spec.side or spec.placement or ''}".strip()
            print(f"{spec.name:<14} {rig.ports[spec.name]}  ({what}, {spec.protocol}, {spec.rate_hz} Hz, "
                  f"serial {spec.serial})", flush=True)
        print(f"rig file: {rig_out}", flush=True)
        until = f"for {args.seconds:g} s" if args.seconds else "until Ctrl-C"
        print(f"simulating {until}; try: lab devices --rig {rig_out}", flush=True)
        _wait(rig, stop, args.seconds)
    finally:
        signal.signal(signal.SIGTERM, previous)
        elapsed_s = (time.monotonic_ns() - rig.t_epoch_ns) / 1e9 if rig.t_epoch_ns is not None else 0.0
        codes = rig.stop(check=False)
        if elapsed_s > 0 and any(d.kind == "imu" for d in rig.devices):
            for path in rig.write_imu_truth(elapsed_s):
                print(f"imu ground truth: {path}", flush=True)
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
