"""``lab devices --rig RIG``: probe every device of a rig, print its INFO and one second of streaming.

``lab devices --simulate`` does the same on the default simulated rig (and compares with the simulator's truth);
``lab devices --list-ports`` lists the serial ports present, to help write a rig file.

Each device is opened, identified (and checked against the rig file), set to the rig's rate and started; all
devices then stream together for ``--seconds`` and the samples per second, lost samples and line errors are
printed. A device that is missing or wrong is reported in one line, and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from treadlab.acquisition.clockcheck import TickRateCheck
from treadlab.drivers import Device, DeviceConfig, connect
from treadlab.errors import ConfigError, DeviceError, DeviceTimeoutError, LabError, PortNotFoundError
from treadlab.kinds import get_kind
from treadlab.lab.rig import load_rig

NAME = "devices"
HELP = "probe every device of a rig: INFO, and a short stream (samples/s, errors)"


@dataclass
class StreamSummary:
    """What one device did during :func:`stream_devices`."""

    name: str
    cfg: DeviceConfig
    device: object | None = None
    problem: str | None = None
    missing: bool = False
    samples: int = 0
    seconds: float = 0.0
    started_s: float = 0.0
    first_seq: int | None = None
    last_seq: int | None = None
    last_values: np.ndarray | None = None
    peak_value: float = 0.0
    logs: list = field(default_factory=list)
    tick_check: TickRateCheck | None = None

    @property
    def rate_hz(self) -> float:
        """Samples per second achieved."""
        return self.samples / self.seconds if self.seconds > 0 else 0.0


def describe_info(dev: Device) -> str:
    """One line summarising a device's description."""
    desc = dev.describe()
    info = desc.info
    what = get_kind(desc.kind, desc.name).summary(desc)
    rates = info.get("rates_hz") or []
    rate_text = f"{desc.rate_hz:g} Hz" + (f" (supports {', '.join(map(str, rates))})" if len(rates) > 1 else "")
    if desc.host_clock:
        clock = "host clock"
    elif desc.clock_hz >= 1_000_000:
        clock = f"clock {desc.clock_hz / 1e6:g} MHz"
    else:
        clock = f"clock {desc.clock_hz:g} Hz"
    bits = [what, str(info.get("dtype", "")), rate_text, clock]
    for key, label in (("model", "model"), ("serial", "serial"), ("firmware", "firmware")):
        if info.get(key):
            bits.append(f"{label} {info[key]}")
    if desc.layout is not None:
        bits.append(f"layout {desc.layout.get('name', 'inline')}")
    return ", ".join(bits)


def open_and_start(cfg: DeviceConfig, identify_timeout_s: float = 2.0) -> StreamSummary:
    """Open, identify, set the rig's rate, and start one device; problems go into ``summary.problem``."""
    summary = StreamSummary(name=cfg.name, cfg=cfg)
    dev = None
    try:
        dev = connect(cfg, timeout_s=identify_timeout_s)
        dev.start()
        summary.started_s = time.monotonic()
    except LabError as exc:
        summary.problem = str(exc)
        summary.missing = isinstance(exc, PortNotFoundError | DeviceTimeoutError)
        if dev is not None:
            dev.close()
        return summary
    summary.device = dev
    return summary


def stream_devices(summaries: list[StreamSummary], seconds: float) -> None:
    """Read every started device round-robin for ``seconds`` (one thread), then stop and close them.

    The rate achieved is the samples received over the time since the device's START.
    """
    live = [s for s in summaries if s.device is not None]
    deadline = time.monotonic() + seconds
    while live and time.monotonic() < deadline:
        for s in list(live):
            try:
                batch = s.device.read(0.005)
            except DeviceError as exc:
                s.problem = str(exc)
                live.remove(s)
                continue
            if batch is None:
                continue
            if s.first_seq is None:
                s.first_seq = int(batch.seq[0])
            s.samples += len(batch)
            s.last_seq = int(batch.seq[-1])
            s.last_values = batch.values[-1]
            s.peak_value = max(s.peak_value, float(batch.values.max()))
            desc = s.device.describe()
            if not desc.host_clock:
                s.tick_check = s.tick_check or TickRateCheck(desc.clock_hz, desc.rate_hz, refit_every_s=np.inf)
                s.tick_check.update(batch.device_time, batch.host_time_ns / 1e9)
    for s in summaries:
        s.seconds = time.monotonic() - s.started_s if s.device is not None else 0.0  # from its START
        if s.device is None:
            continue
        try:
            if s.problem is None:
                s.device.stop()
                while s.device.read(0.0) is not None:
                    pass
        except DeviceError as exc:
            s.problem = s.problem or str(exc)
        s.logs = s.device.drain_logs()
        s.device.close()


def report_lines(s: StreamSummary) -> list[str]:
    """Lines printed for one device."""
    cfg = s.cfg
    head = f"{cfg.name} ({cfg.protocol} on {cfg.port})"
    dev = s.device
    if dev is None:
        optional = "" if cfg.required else " [optional]"
        return [f"{head}: {'MISSING' if s.missing else 'FAILED'}{optional}: {s.problem}"]
    lines = [f"{head}: {describe_info(dev)}"]
    st = dev.stats
    nominal = dev.rate_hz
    line = (f"  streamed {s.seconds:.1f} s: {s.samples} samples, {s.rate_hz:.1f}/s of {nominal} Hz, "
            f"{st.lost_samples} lost ({st.seq_gaps} gaps), {st.errors} errors")
    if dev.protocol == "binary":
        line += f" (crc {st.crc_errors}, framing {st.framing_errors + st.short_errors + st.oversize_errors}, " \
                f"malformed {st.malformed})"
    elif dev.protocol == "line":
        line += f" (bad lines {st.bad_lines}, comments {st.comment_lines})"
    lines.append(line)
    rate = s.tick_check.final() if s.tick_check is not None else None
    if rate is not None:
        hint = " (a longer --seconds decides)" if "not yet known" in rate.describe() else ""
        lines.append(f"  {'WARNING: ' if rate.off else ''}{rate.describe()}{hint}")
    for _, level, text in s.logs[-5:]:
        lines.append(f"  device log [{level}]: {text}")
    if s.problem:
        lines.append(f"  FAILED: {s.problem}")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lab devices``."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--rig", help="rig file (TOML), or the name of a shipped example rig")
    which.add_argument("--simulate", action="store_true",
                       help="start the default simulated rig (two insoles and a mat) and probe it")
    which.add_argument("--list-ports", action="store_true",
                       help="list the serial ports of this computer (for writing a rig file)")
    parser.add_argument("--line-insoles", action="store_true", help="with --simulate: line-protocol insoles")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long to stream the devices (default 1)")


def run(args: argparse.Namespace) -> int:
    """Probe every device of the rig; exit code 3 if any device is missing or failed."""
    if args.seconds < 0:
        raise ConfigError(f"--seconds must not be negative, got {args.seconds:g}")
    if getattr(args, "list_ports", False):
        return list_ports()
    if args.simulate:
        with tempfile.TemporaryDirectory(prefix="treadlab-devices-") as tmp:
            return _simulated(Path(tmp), args)
    summaries = probe(load_rig(args.rig).devices, args.seconds)
    return _report(summaries)


def list_ports() -> int:
    """Print every serial port with its description, USB ids and serial number; 0 even when there is none."""
    from serial.tools import list_ports as lp

    ports = sorted(lp.comports(), key=lambda p: p.device)
    if not ports:
        print("no serial ports found (is the device plugged in? `dmesg | tail` shows what the kernel saw)")
        return 0
    for port in ports:
        usb = f" USB {port.vid:04x}:{port.pid:04x}" if port.vid is not None else ""
        serial_no = f" serial {port.serial_number}" if port.serial_number else ""
        print(f"{port.device}: {port.description or 'n/a'}{usb}{serial_no}")
    by_id = Path("/dev/serial/by-id")
    if by_id.is_dir():
        print("stable names (survive replugging, use them in rig files):")
        for link in sorted(by_id.iterdir()):
            print(f"  {link} -> {link.resolve()}")
    return 0


def probe(devices: tuple[DeviceConfig, ...] | list[DeviceConfig], seconds: float) -> list[StreamSummary]:
    """Open, identify and start every device, stream them together for ``seconds``, stop and close them."""
    summaries = [open_and_start(cfg) for cfg in devices]
    try:
        stream_devices(summaries, seconds)
    finally:
        for s in summaries:
            if s.device is not None:
                s.device.close()
    return summaries


def _simulated(workdir: Path, args: argparse.Namespace) -> int:
    from treadlab.drivers.sim.rig import SimulatedRig  # late: only this option needs the simulator

    sim = SimulatedRig.default(workdir, line_insoles=args.line_insoles)
    with sim:
        rig = load_rig(sim.write_rig(workdir / "simulated-rig.toml"))
        print(f"simulated rig: {', '.join(f'{d.name} ({d.protocol})' for d in rig.devices)}", flush=True)
        summaries = probe(rig.devices, args.seconds)
    # The simulator has stopped and flushed its ground truth: compare what was received with what was taken.
    notes = {}
    for s in summaries:
        if s.first_seq is not None:
            seq_true, _ = sim.truth(s.name)
            span = (s.last_seq - s.first_seq) % 2**32
            taken = int(np.count_nonzero((seq_true.astype(np.int64) - s.first_seq) % 2**32 <= span))
            notes[s.name] = (f"  simulator took {taken} samples from seq {s.first_seq} to {s.last_seq}; "
                             f"received {s.samples} ({taken - s.samples} missing)")
    return _report(summaries, notes)


def _report(summaries: list[StreamSummary], notes: dict | None = None) -> int:
    failed = 0
    for s in summaries:
        for line in report_lines(s):
            print(line, flush=True)
        if notes and s.name in notes:
            print(notes[s.name])
        if s.problem is not None or s.samples == 0:
            failed += 1
    if failed:
        print(f"{failed} of {len(summaries)} devices missing or failing")
        return DeviceError.exit_code
    print(f"all {len(summaries)} devices answered and streamed")
    return 0
