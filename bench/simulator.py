"""Simulated devices under load: CPU of each device process and achieved rate, for the stress rig.

Starts ``SimulatedRig.stress`` (two 960-sensel insoles at 750 Hz, the 5,376-sensel mat at 120 Hz and four IMUs at
500/1000 Hz, each in its own process on a pty), starts every device, reads all ports from this process for
``--seconds`` and prints, per device: CPU % of its process, samples received per second, the rate in true time
from the truth file, bytes per second, delivery delay (host arrival minus true sampling instant) and counters
(gaps, overruns, stalls).

    .venv/bin/python bench/simulator.py [--seconds 10] [--preset stress|default]
"""

from __future__ import annotations

import argparse
import select
import sys
import tempfile
import time

import numpy as np
import psutil
import serial

from treadlab.drivers import protocol as p
from treadlab.drivers.sim.rig import SimulatedRig


def _command(ser: serial.Serial, dec: p.FrameDecoder, msg_type: int, want: int, timeout_s: float = 5.0) -> bytes:
    ser.write(p.encode_message(msg_type))
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        _, other = dec.feed(ser.read(ser.in_waiting or 1))
        for t, body in other:
            if t == want:
                return body
    raise SystemExit(f"no {p.describe(want)} from {ser.port} within {timeout_s} s")


def _read_all(ports: dict, decs: dict, by_fd: dict, seconds: float) -> tuple[dict, dict, dict]:
    """Read every port for ``seconds``: DATA messages, their host arrival times, and byte counts per device."""
    raws = {name: [] for name in ports}
    hosts = {name: [] for name in ports}
    nbytes = dict.fromkeys(ports, 0)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        ready, _, _ = select.select(list(by_fd), [], [], 0.05)
        now = time.monotonic_ns()
        for fd in ready:
            name = by_fd[fd]
            chunk = ports[name].read(ports[name].in_waiting or 1)
            nbytes[name] += len(chunk)
            data, _ = decs[name].feed(chunk)
            raws[name] += data
            hosts[name] += [now] * len(data)
    return raws, hosts, nbytes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--preset", choices=("stress", "default"), default="stress")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as work:
        t0 = time.monotonic()
        rig = (SimulatedRig.stress if args.preset == "stress" else SimulatedRig.default)(work)
        with rig:
            print(f"rig {args.preset}: {len(rig.devices)} device processes ready in {time.monotonic() - t0:.2f} s")
            ports, decs, infos = {}, {}, {}
            for spec in rig.devices:
                ser = serial.Serial(rig.ports[spec.name], 921600, timeout=0.05)
                dec = p.FrameDecoder()
                infos[spec.name] = p.parse_info(_command(ser, dec, p.IDENTIFY, p.INFO))
                ports[spec.name], decs[spec.name] = ser, dec
            procs = {name: psutil.Process(child.proc.pid) for name, child in rig._children.items()}
            for name, ser in ports.items():
                _command(ser, decs[name], p.START, p.ACK)
            by_fd = {ser.fileno(): name for name, ser in ports.items()}
            _read_all(ports, decs, by_fd, 0.5)  # warm-up, read and dropped
            cpu0 = {name: sum(pr.cpu_times()[:2]) for name, pr in procs.items()}
            me0 = sum(psutil.Process().cpu_times()[:2])
            start = time.monotonic()
            raws, hosts, nbytes = _read_all(ports, decs, by_fd, args.seconds)
            elapsed = time.monotonic() - start
            cpu = {name: (sum(pr.cpu_times()[:2]) - cpu0[name]) / elapsed * 100 for name, pr in procs.items()}
            me = (sum(psutil.Process().cpu_times()[:2]) - me0) / elapsed * 100
            for name, ser in ports.items():
                _command(ser, decs[name], p.STOP, p.ACK)
                ser.close()
            time.sleep(0.4)
            print(f"{'device':<14}{'values':>7}{'CPU %':>7}{'rx/s':>9}{'true Hz':>9}{'nominal':>8}{'kB/s':>8}"
                  f"{'delay p50/p99/max ms':>23}{'gaps':>6}{'overrun':>8}{'stalls':>7}")
            for spec in rig.devices:
                name = spec.name
                info = infos[name]
                n = info.get("sensels") or (len(info["channels"]) if "channels" in info
                                            else info["rows"] * info["cols"])
                seq, _, _ = p.decode_data(raws[name], n, info["dtype"]) if raws[name] else (np.empty(0),) * 3
                seq_t, t_true = rig.truth(name)
                order = np.argsort(seq_t)
                idx = np.searchsorted(seq_t[order], seq)
                t_of = t_true[order][np.clip(idx, 0, len(order) - 1)]
                delay_ms = (np.asarray(hosts[name]) - t_of) / 1e6
                span_s = (t_true[-1] - t_true[0]) / 1e9
                true_hz = (len(t_true) - 1) / span_s if span_s > 0 else float("nan")
                gaps = int(np.sum(np.diff(seq.astype(np.int64)) != 1)) if len(seq) > 1 else 0
                st = rig.stats(name)
                q = np.percentile(delay_ms, [50, 99, 100]) if len(delay_ms) else [np.nan] * 3
                print(f"{name:<14}{n:>7}{cpu[name]:>7.1f}{len(seq) / elapsed:>9.1f}{true_hz:>9.2f}"
                      f"{spec.rate_hz:>8}{nbytes[name] / elapsed / 1e3:>8.0f}"
                      f"{q[0]:>9.2f}/{q[1]:>5.2f}/{q[2]:>6.1f}{gaps:>6}{st['overrun_n']:>8}{st['stalls_n']:>7}")
            print(f"reader (this process, decode only): CPU {me:.1f} %; load average {psutil.getloadavg()[0]:.2f} "
                  f"on {psutil.cpu_count()} CPUs; window {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
