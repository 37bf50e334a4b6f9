"""``lab devices --rig RIG``: probe every device of a rig, print its INFO and one second of streaming.

Each device is opened, identified (and checked against the rig file), set to the rig's rate and started; all
devices then stream together for ``--seconds`` and the samples per second, lost samples and line errors are
printed. A device that is missing or wrong is reported in one line, and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np

from treadlab.drivers import DeviceConfig, open_device
from treadlab.errors import DeviceError, LabError
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
    samples: int = 0
    seconds: float = 0.0
    first_seq: int | None = None
    last_values: np.ndarray | None = None
    peak_value: float = 0.0
    logs: list = field(default_factory=list)

    @property
    def rate_hz(self) -> float:
        """Samples per second achieved."""
        return self.samples / self.seconds if self.seconds > 0 else 0.0


def describe_info(dev) -> str:
    """One line summarising a device's INFO."""
    info = dev.info or {}
    if dev.kind == "mat":
        what = f"mat {dev.shape[0]} x {dev.shape[1]} sensels"
    else:
        what = f"insole {dev.side} {dev.n_values} sensels"
    rates = info.get("rates_hz") or []
    rate_text = f"{dev.rate_hz} Hz" + (f" (supports {', '.join(map(str, rates))})" if len(rates) > 1 else "")
    clock = f"clock {dev.clock_hz / 1e6:g} MHz" if dev.clock_hz >= 1_000_000 else f"clock {dev.clock_hz} Hz"
    bits = [what, str(info.get("dtype", "")), rate_text, clock]
    for key, label in (("model", "model"), ("serial", "serial"), ("firmware", "firmware")):
        if info.get(key):
            bits.append(f"{label} {info[key]}")
    if dev.layout is not None:
        bits.append(f"layout {dev.layout.get('name', 'inline')}")
    return ", ".join(bits)


def open_and_start(cfg: DeviceConfig, identify_timeout_s: float = 2.0) -> StreamSummary:
    """Open, identify, set the rig's rate, and start one device; problems go into ``summary.problem``."""
    summary = StreamSummary(name=cfg.name, cfg=cfg)
    dev = None
    try:
        dev = open_device(cfg)
        dev.identify(timeout_s=identify_timeout_s)
        if cfg.rate_hz is not None and cfg.rate_hz != dev.rate_hz:
            dev.set_rate(cfg.rate_hz)
        dev.start()
    except LabError as exc:
        summary.problem = str(exc)
        if dev is not None:
            dev.close()
        return summary
    summary.device = dev
    return summary


def stream_devices(summaries: list[StreamSummary], seconds: float) -> None:
    """Read every started device round-robin for ``seconds`` (one thread), then stop and close them."""
    live = [s for s in summaries if s.device is not None]
    t0 = time.monotonic()
    deadline = t0 + seconds
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
            s.last_values = batch.values[-1]
            s.peak_value = max(s.peak_value, float(batch.values.max()))
    for s in summaries:
        s.seconds = time.monotonic() - t0 if s.device is not None else 0.0
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
        return [f"{head}: MISSING{optional}: {s.problem}"]
    lines = [f"{head}: {describe_info(dev)}"]
    st = dev.stats
    nominal = dev.rate_hz
    line = (f"  streamed {s.seconds:.1f} s: {s.samples} samples, {s.rate_hz:.1f}/s of {nominal} Hz, "
            f"{st.lost_samples} lost ({st.seq_gaps} gaps), {st.errors} errors")
    if dev.protocol == "binary":
        line += f" (crc {st.crc_errors}, framing {st.framing_errors + st.short_errors + st.oversize_errors}, " \
                f"malformed {st.malformed})"
    else:
        line += f" (bad lines {st.bad_lines}, comments {st.comment_lines})"
    lines.append(line)
    for _, level, text in s.logs[-5:]:
        lines.append(f"  device log [{level}]: {text}")
    if s.problem:
        lines.append(f"  FAILED: {s.problem}")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lab devices``."""
    parser.add_argument("--rig", required=True, help="rig file (TOML), or the name of a shipped example rig")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long to stream each device (default 1)")


def run(args: argparse.Namespace) -> int:
    """Probe every device of the rig; exit code 3 if any device is missing or failed."""
    rig = load_rig(args.rig)
    summaries = [open_and_start(cfg) for cfg in rig.devices]
    try:
        stream_devices(summaries, max(0.0, args.seconds))
    finally:
        for s in summaries:
            if s.device is not None:
                s.device.close()
    failed = 0
    for s in summaries:
        for line in report_lines(s):
            print(line, flush=True)
        if s.problem is not None or s.samples == 0:
            failed += 1
    if failed:
        print(f"{failed} of {len(summaries)} devices missing or failing")
        return DeviceError.exit_code
    print(f"all {len(summaries)} devices answered and streamed")
    return 0
