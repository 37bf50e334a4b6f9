"""SimulatedRig: a set of simulated devices, one process each, on stable pty paths in a work folder.

Example
-------
>>> with SimulatedRig.default(tmp_path) as rig:          # doctest: +SKIP
...     rig.write_rig(tmp_path / "rig.toml")
...     rig.unplug("insole_left", 1.5)
...     seq, t_ns = rig.truth("insole_left")

Every device runs ``python -m treadlab.drivers.sim.serve`` with its :class:`SimDeviceSpec`; the rig talks to it
through control lines on its stdin and event lines on its stdout (see :mod:`treadlab.drivers.sim.serve`).
:meth:`SimulatedRig.stop` asks each process to quit, waits with a timeout, kills stragglers and checks exit codes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from treadlab.drivers.sim.device import TRUTH_DTYPE, DeliveryParams, FaultParams, SimDeviceSpec

READY_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 10.0


class _Child:
    """One device process: its Popen, its control pipe and a line reader on its stdout."""

    def __init__(self, spec: SimDeviceSpec, proc: subprocess.Popen, log_path: Path) -> None:
        self.spec = spec
        self.proc = proc
        self.log_path = log_path
        self._buf = b""
        self.eof = False
        self.events: list[str] = []

    def send(self, line: str) -> None:
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def read_line(self, deadline: float) -> str | None:
        """Next stdout line, or None at the deadline or at end of output."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                self.eof = True
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode("utf-8", errors="replace").strip()

    def wait_for(self, prefix: str, timeout_s: float) -> str:
        """Read lines until one starts with ``prefix`` (events seen on the way are kept in :attr:`events`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            line = self.read_line(deadline)
            if line is None:
                if self.eof:
                    try:
                        why = f"exited with code {self.proc.wait(5.0)}"
                    except subprocess.TimeoutExpired:
                        why = "closed its output"
                else:
                    why = f"did not say it within {timeout_s:g} s"
                raise RuntimeError(f"simulated device {self.spec.name!r} waited for {prefix!r} but {why}; "
                                   f"{self.log_tail()}")
            self.events.append(line)
            if line.startswith(prefix):
                return line

    def log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return "no log"
        return "log: " + (text[-1500:] if text else "empty")


class SimulatedRig:
    """Simulated insoles and mats in their own processes, as a context manager.

    Parameters
    ----------
    devices : list of SimDeviceSpec
    workdir : path-like
        Holds each device's port symlink ``<workdir>/<name>``, spec, log, truth file and steps CSV.
    runner : RunnerParams or None
        Gait parameters, the same for every device (with the rig's common epoch, all devices see the same steps).
    seed : int
        Seeds what is random in the devices that do not set their own seed.

    Attributes
    ----------
    ports : dict of str to str
        Port path of each device (stable across unplug and replug).
    t_epoch_ns : int
        The rig's epoch in ``time.monotonic_ns`` (set by :meth:`start`).
    """

    def __init__(self, devices: list[SimDeviceSpec], workdir: str | os.PathLike, runner: Any = None,
                 seed: int = 0) -> None:
        names = [d.name for d in devices]
        if len(set(names)) != len(names):
            raise ValueError(f"device names must be unique, got {names}")
        self.devices = list(devices)
        self.workdir = Path(workdir)
        self.runner = runner
        self.seed = seed
        self.ports: dict[str, str] = {}
        self.steps_horizon_s = 300.0
        self.t_epoch_ns: int | None = None
        self._children: dict[str, _Child] = {}

    # ----------------------------------------------------------------------------------- presets

    @classmethod
    def default(cls, workdir: str | os.PathLike, runner: Any = None, seed: int = 0,
                line_insoles: bool = False, mat: bool = True, imus: tuple[str, ...] = (),
                insoles: bool = True, treadmill: str | None = None) -> SimulatedRig:
        """Two protocol-v1 insoles ("insole99", u16, 500 Hz), (``mat``) a 48 x 112 mat at 120 Hz, and an IMU
        for each placement in ``imus`` (:func:`imu_spec`).

        With ``line_insoles`` the insoles speak the line protocol instead ("insole16", 200 Hz, ms, newtons);
        ``insoles=False`` leaves them out (an IMU-only rig). Adding IMUs changes no other device's clock or serial.
        With ``treadmill`` ("single" or "split") an instrumented treadmill ``treadmill`` is added
        (:func:`treadmill_spec`).
        """
        rng = np.random.default_rng([seed, 5])
        devs = []
        for side in ("left", "right"):
            if line_insoles:
                devs.append(SimDeviceSpec(f"insole_{side}", protocol="line", side=side, layout="insole16",
                                          rate_hz=200, rates_hz=[200], time_unit="ms", decimals=2,
                                          **_clock_and_serial(rng, f"L{side[0].upper()}", seed)))
            else:
                devs.append(SimDeviceSpec(f"insole_{side}", side=side, layout="insole99", dtype="u16", adc_bits=12,
                                          rate_hz=500, model="treadlab-sim-insole99",
                                          **_clock_and_serial(rng, f"I{side[0].upper()}", seed)))
        mat_spec = _mat_spec(rng, seed)  # drawn either way: the insoles' clocks and serials do not depend on it
        if mat:
            devs.append(mat_spec)
        if not insoles:
            devs = [d for d in devs if d.kind != "insole"]
        devs += imu_specs(imus, seed)
        if treadmill is not None:
            devs.append(treadmill_spec(treadmill, seed))
        return cls(devs, workdir, runner, seed)

    @classmethod
    def stress(cls, workdir: str | os.PathLike, runner: Any = None, seed: int = 0) -> SimulatedRig:
        """Two 960-sensel insoles (u8) at 750 Hz, the 5,376-sensel mat at 120 Hz and the four IMUs (pelvis and
        trunk at 500 Hz, the shanks at 1000 Hz).
        """
        rng = np.random.default_rng([seed, 5])
        devs = [SimDeviceSpec(f"insole_{side}", side=side, layout="insole960", dtype="u8", adc_bits=8, rate_hz=750,
                              model="treadlab-sim-insole960", **_clock_and_serial(rng, f"H{side[0].upper()}", seed))
                for side in ("left", "right")]
        devs.append(_mat_spec(rng, seed))
        devs += imu_specs(IMU_PLACEMENTS, seed)
        return cls(devs, workdir, runner, seed)

    # ----------------------------------------------------------------------------------- lifecycle

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> SimulatedRig:
        """Start every device process and wait until each pty exists (``READY``)."""
        if self._children:
            raise RuntimeError("SimulatedRig already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.t_epoch_ns = time.monotonic_ns()
        runner_args: list[str] = []
        if self.runner is not None:
            runner_path = self.workdir / "runner.json"
            runner_path.write_text(json.dumps(_as_dict(self.runner)))
            runner_args = ["--runner", str(runner_path)]
        try:
            for i, spec in enumerate(self.devices):
                horizon_s = self.steps_horizon_s if i == 0 else 0.0  # the steps are the same for every device
                spec_path = self.workdir / f"{spec.name}.spec.json"
                spec_path.write_text(spec.to_json())
                log_path = self.workdir / f"{spec.name}.log"
                with open(log_path, "wb") as log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "treadlab.drivers.sim.serve", "--spec", str(spec_path),
                         "--workdir", str(self.workdir), "--t-epoch-ns", str(self.t_epoch_ns),
                         "--steps-horizon-s", str(horizon_s), *runner_args],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, close_fds=True,
                        start_new_session=True)  # Ctrl-C goes to the parent, which stops them
                self._children[spec.name] = _Child(spec, proc, log_path)
            for name, child in self._children.items():
                self.ports[name] = child.wait_for("READY", timeout_s).split(" ", 1)[1]
        except BaseException:
            self.stop(check=False)
            raise
        return self

    def stop(self, timeout_s: float = 10.0, check: bool = True) -> dict[str, int]:
        """Quit every device process, wait up to ``timeout_s``, kill stragglers; return exit codes.

        Raises
        ------
        RuntimeError
            With ``check``, when a process had to be killed or exited with a non-zero code.
        """
        for child in self._children.values():
            try:
                child.send("quit")
            except OSError:  # already gone (broken pipe): the wait below collects it
                pass
            try:
                child.proc.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + timeout_s
        codes: dict[str, int] = {}
        problems = []
        for name, child in self._children.items():
            try:
                codes[name] = child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                codes[name] = child.proc.wait(timeout_s)
                problems.append(f"{name} did not quit within {timeout_s:g} s and was killed")
            else:
                if codes[name] != 0:
                    problems.append(f"{name} exited with code {codes[name]}; {child.log_tail()}")
            child.proc.stdout.close()
        self._children.clear()
        if check and problems:
            raise RuntimeError("simulated devices: " + "; ".join(problems))
        return codes

    def poll_events(self) -> list[tuple[str, str]]:
        """Event lines the device processes printed since the last call (``READY <port>``, ``UNPLUGGED``), no wait."""
        events = []
        for name, child in self._children.items():
            while True:
                line = child.read_line(time.monotonic())  # deadline now: only what is already there
                if line is None:
                    break
                child.events.append(line)
                events.append((name, line))
        return events

    def exited(self) -> dict[str, int]:
        """Exit codes of device processes that have ended on their own (empty while all run)."""
        return {name: c.proc.returncode for name, c in self._children.items() if c.proc.poll() is not None}

    def __enter__(self) -> SimulatedRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(check=exc[0] is None)

    # ----------------------------------------------------------------------------------- control

    def command(self, name: str, line: str, timeout_s: float = ANSWER_TIMEOUT_S) -> str:
        """Send one control line to a device process and return its answer (``OK ...``, ``STATS ...``)."""
        child = self._child(name)
        child.send(line)
        deadline = time.monotonic() + timeout_s
        while True:
            answer = child.read_line(deadline)
            if answer is None:
                raise RuntimeError(f"simulated device {name!r} did not answer {line!r}; {child.log_tail()}")
            if answer.startswith(("OK", "ERR", "STATS")):
                if answer.startswith("ERR"):
                    raise ValueError(f"simulated device {name!r}: {answer}")
                return answer
            child.events.append(answer)

    def unplug(self, name: str, seconds: float | None = None) -> None:
        """Unplug a device now; replug it (same path, same serial) after ``seconds`` (None: never).

        A bus-powered device comes back power-cycled and stopped; a self-powered one (``spec.self_powered``)
        streaming on, as if nothing had happened but the samples lost while the cable was out.
        """
        self.command(name, "unplug" if seconds is None else f"unplug {seconds:g}")

    def replug(self, name: str) -> None:
        """Replug an unplugged device now."""
        self.command(name, "replug")

    def wait_ready(self, name: str, timeout_s: float = READY_TIMEOUT_S) -> str:
        """Wait for the device's next ``READY`` (after a replug); returns its port path."""
        child = self._child(name)
        return child.wait_for("READY", timeout_s).split(" ", 1)[1]

    def set_fault(self, name: str, corrupt_rate: float | None = None, loss_rate: float | None = None,
                  garbage_at_start: int | None = None, stall: tuple[float, float] | None = None) -> None:
        """Change fault switches of a running device (``stall`` is ``(rate_hz, max_ms)``)."""
        for key, value in (("corrupt", corrupt_rate), ("loss", loss_rate), ("garbage", garbage_at_start)):
            if value is not None:
                self.command(name, f"{key} {value}")
        if stall is not None:
            self.command(name, f"stall {stall[0]} {stall[1]}")

    def stats(self, name: str) -> dict:
        """Counters of a device process (samples taken, sent, lost, corrupted, overrun, stalls...)."""
        return json.loads(self.command(name, "stats").split(" ", 1)[1])

    def _child(self, name: str) -> _Child:
        if name not in self._children:
            raise KeyError(f"no running simulated device {name!r} (have {sorted(self._children)})")
        return self._children[name]

    # ----------------------------------------------------------------------------------- ground truth

    def truth(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(seq, true_time_ns)`` of every sample the device has taken (sent or not), as written so far."""
        return _records(self.workdir / f"{name}.truth")

    def offline(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(seq, true_time_ns)`` of the samples a self-powered device took while its cable was out (never sent)."""
        return _records(self.workdir / f"{name}.offline")

    def steps(self) -> Any:
        """The runner's steps (ground truth, ``GaitModel.steps``) as a pandas DataFrame.

        ``ic_s``/``to_s`` are on the rig's session clock (zero at :attr:`t_epoch_ns`), ``ic_ns``/``to_ns`` in true
        ``monotonic_ns``. Read from the first device's steps CSV, or recomputed when the rig has run longer than
        the CSV covers.
        """
        import pandas as pd

        elapsed_s = (time.monotonic_ns() - self.t_epoch_ns) / 1e9 if self.t_epoch_ns is not None else 0.0
        if elapsed_s + 10.0 < self.steps_horizon_s:
            return pd.read_csv(self.workdir / f"{self.devices[0].name}.steps.csv")
        from treadlab.drivers.sim.signals import make_gait, steps_table

        return steps_table(make_gait(self.runner), self.t_epoch_ns, elapsed_s + 10.0)

    def imu_truth(self, until_s: float | None = None) -> tuple[Any, Any]:
        """Ground truth of the simulated IMUs (``ImuModel.truth_steps`` and ``truth_strides``) up to ``until_s``
        on the session clock (default: the time elapsed since :meth:`start`), with true times ``ic_ns``/``to_ns``
        and ``start_ns``/``stop_ns`` (monotonic_ns) added. Computed here from the rig's runner: the device
        processes use the same model and steps.
        """
        from treadlab.drivers.sim.change import gait_model
        from treadlab.drivers.sim.imu_model import ImuModel
        from treadlab.drivers.sim.params import RunnerParams

        if until_s is None:
            if self.t_epoch_ns is None:
                raise RuntimeError("start the SimulatedRig before asking for its IMU truth (or give until_s)")
            until_s = (time.monotonic_ns() - self.t_epoch_ns) / 1e9
        runner = self.runner if self.runner is not None else RunnerParams()
        model = ImuModel(runner, gait_model(runner, until_s + 10.0), window_s=(0.0, until_s))
        steps, strides = model.truth_steps(0.0, until_s), model.truth_strides(0.0, until_s)
        epoch = self.t_epoch_ns or 0
        for table, cols in ((steps, ("ic_s", "to_s")), (strides, ("start_s", "stop_s"))):
            for col in cols:
                table.insert(table.columns.get_loc(col) + 1, col[:-2] + "_ns",
                             epoch + np.round(table[col].to_numpy() * 1e9).astype(np.int64))
        return steps, strides

    def imu_boards(self) -> dict[str, dict]:
        """Ground truth of each IMU board (``ImuSensor`` as a dict: misalignment, biases, noise, ranges)."""
        from treadlab.drivers.sim.imu_source import sensor_of

        return {d.name: dataclasses.asdict(sensor_of(d)) for d in self.devices if d.kind == "imu"}

    def write_imu_truth(self, until_s: float | None = None) -> list[Path]:
        """Write ``imu_steps.csv``, ``imu_strides.csv`` and ``imu_boards.json`` to the work folder (none without
        IMUs); returns the paths.
        """
        if not any(d.kind == "imu" for d in self.devices):
            return []
        steps, strides = self.imu_truth(until_s)
        paths = [self.workdir / "imu_steps.csv", self.workdir / "imu_strides.csv", self.workdir / "imu_boards.json"]
        steps.to_csv(paths[0], index=False)
        strides.to_csv(paths[1], index=False)
        paths[2].write_text(json.dumps(self.imu_boards(), indent=1))
        return paths

    # ----------------------------------------------------------------------------------- rig file

    def write_rig(self, path: str | os.PathLike, body_mass_kg: float | None = None,
                  treadmill_speed_mps: float | None = None) -> Path:
        """Write a rig TOML file for the running devices (ports are the stable symlinks)."""
        if not self.ports:
            raise RuntimeError("start the SimulatedRig before writing its rig file")
        mass = body_mass_kg if body_mass_kg is not None else _runner_value(self.runner, "body_mass_kg", 70.0)
        speed = treadmill_speed_mps if treadmill_speed_mps is not None else _runner_value(
            self.runner, "speed_mps", 3.0)
        lines = [f"# Rig file of simulated devices in {self.workdir} (written by treadlab SimulatedRig).", "",
                 "[session]", f"body_mass_kg = {_toml(float(mass))}",
                 f"treadmill_speed_mps = {_toml(float(speed))}"]
        if any(d.kind == "force" for d in self.devices):  # a force plate's strike index needs the foot length
            lines.append(f"foot_length_mm = {_toml(float(_runner_value(self.runner, 'foot_length_mm', 260.0)))}")
        for spec in self.devices:
            lines += ["", "[[device]]"]
            lines += [f"{k} = {_toml(v)}" for k, v in _device_entry(spec, self.ports[spec.name]).items()]
        path = Path(path)
        path.write_text("\n".join(lines) + "\n")
        return path


# --------------------------------------------------------------------------------------------- helpers


def _records(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = path.read_bytes()
    rec = np.frombuffer(raw[: len(raw) // TRUTH_DTYPE.itemsize * TRUTH_DTYPE.itemsize], TRUTH_DTYPE)
    return rec["seq"].copy(), rec["t_ns"].copy()


def _clock_and_serial(rng: np.random.Generator, tag: str, seed: int) -> dict:
    """Own drift (+/- 20-100 ppm), clock offset (0-10 s of ticks), serial number and seed of one device."""
    drift = float(rng.uniform(20, 100) * rng.choice([-1, 1]))
    return {"drift_ppm": round(drift, 2), "offset_ticks": int(rng.integers(0, 10_000_000)),
            "serial": f"SIM-{tag}-{seed:04d}", "seed": int(rng.integers(0, 2**31)), "clock_hz": 1_000_000}


def _mat_spec(rng: np.random.Generator, seed: int) -> SimDeviceSpec:
    # 48 x 112 cells of 8.47 mm: the 112-cell (949 mm) axis, the column index, runs along the belt.
    return SimDeviceSpec("mat", kind="mat", rows=48, cols=112, pitch_mm=[8.47, 8.47], belt_axis="cols",
                         rate_hz=120, rates_hz=[60, 100, 120], dtype="u8", adc_bits=8, model="treadlab-sim-mat5376",
                         **_clock_and_serial(rng, "MT", seed))


#: Placements of the simulated IMUs (``lab simulate --imu``), in the stress preset's order.
IMU_PLACEMENTS = ("pelvis", "trunk", "tibia_left", "tibia_right")


def imu_specs(placements, seed: int) -> list[SimDeviceSpec]:
    """Protocol-v1 IMUs ``imu_<placement>``: i16 ``ax ay az gx gy gz``, +-16 g (+-32 g on a shank), +-2000 deg/s,
    500 Hz (1000 Hz on a shank), each with its own clock drift, offset, serial and seed (drawn per placement, so a
    subset gets the same boards as the full set). Values are generated 100 ms at a time (about 1.5 % of a core per
    device; each sample still leaves when it falls due).
    """
    out = []
    for placement in placements:
        if placement not in IMU_PLACEMENTS:
            raise ValueError(f"unknown IMU placement {placement!r}; known: {', '.join(IMU_PLACEMENTS)}")
        rng = np.random.default_rng([seed, 17, IMU_PLACEMENTS.index(placement)])
        tag = {"pelvis": "PV", "trunk": "TK", "tibia_left": "SL", "tibia_right": "SR"}[placement]
        tibia = placement.startswith("tibia")
        out.append(SimDeviceSpec(f"imu_{placement}", kind="imu", placement=placement, dtype="i16", adc_bits=16,
                                 rate_hz=1000 if tibia else 500, rates_hz=[100, 200, 250, 500, 1000],
                                 model="treadlab-sim-imu", block_ms=100.0,  # generated ahead: no added latency
                                 **_clock_and_serial(rng, tag, seed)))
    return out


def treadmill_spec(belts: str = "single", seed: int = 0, name: str = "treadmill", **kw: Any) -> SimDeviceSpec:
    """A simulated instrumented treadmill (kind "force", protocol v1, i32, 1000 Hz): ``Fx Fy Fz Mx My Mz
    belt_speed`` per belt (:mod:`treadlab.drivers.sim.treadmill`); ``kw`` overrides spec fields (``treadmill``
    takes the :class:`~treadlab.drivers.sim.treadmill.TreadmillParams` as a dict).
    """
    rng = np.random.default_rng([seed, 17])  # its own stream: adding a treadmill changes no other device
    args: dict[str, Any] = {"kind": "force", "dtype": "i32", "rate_hz": 1000,
                            "rates_hz": [100, 200, 250, 300, 500, 1000, 2000],
                            "model": f"treadlab-sim-treadmill-{belts}",
                            "treadmill": {"belts": belts}, **_clock_and_serial(rng, "TM", seed)}
    args.update(kw)
    if "treadmill" in kw:
        args["treadmill"] = {"belts": belts, **kw["treadmill"]}
    return SimDeviceSpec(name, **args)


def _device_entry(spec: SimDeviceSpec, port: str) -> dict:
    entry: dict[str, Any] = {"name": spec.name, "port": port, "protocol": spec.protocol, "rate_hz": spec.rate_hz,
                             "kind": spec.kind}
    if spec.kind == "insole":
        entry.update(side=spec.side, sensels=spec.n_values)
    if spec.kind == "imu":
        entry["placement"] = spec.placement
    if spec.protocol == "binary":
        entry["serial"] = spec.serial
        return entry
    entry.update(time_unit=spec.time_unit, layout=spec.layout)
    if spec.decimals > 0:  # the device sends newtons already
        entry["calibration"] = {"unit": "N", "gain": 1.0, "offset": 0.0}
    else:
        from treadlab.drivers.sim.device import default_calibration

        gain, offset = default_calibration(spec, np.random.default_rng([spec.seed, 1]))
        entry["calibration"] = {"unit": "N", "gain": [float(g) for g in gain], "offset": [float(o) for o in offset]}
    return entry


def _toml(value: Any) -> str:
    """One TOML value (strings, numbers, booleans, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if np.isfinite(value) else ("nan" if np.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _as_dict(obj: Any) -> dict:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return dict(vars(obj))


def _runner_value(runner: Any, key: str, default: float) -> float:
    if runner is None:
        return default
    return float(getattr(runner, key, default) or default)


__all__ = ["IMU_PLACEMENTS", "DeliveryParams", "FaultParams", "SimDeviceSpec", "SimulatedRig", "imu_specs",
           "treadmill_spec"]
