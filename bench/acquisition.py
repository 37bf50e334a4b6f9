"""Acquisition under load: the stress rig recorded in real time, then more load until samples are lost.

Stress rig: two 960-sensel insoles (u8) at 750 Hz and a 48 x 112 (5,376-sensel) mat at 120 Hz, each simulated in
its own process on a pseudo-terminal (``SimulatedRig.stress``). The recorder runs in this process, exactly as
``lab record`` runs it. Printed:

- recorder CPU use, in % of one core (this process only, the simulators excluded);
- lost samples: samples the simulators sent that are not in the file (must be 0), and gaps recorded;
- latency from a sample's true sampling instant (simulator truth; the device writes it at the next 1 ms USB frame)
  to its delivery to a subscriber: p50, p99;
- clock error of the stored ``time`` against the true sampling instants: RMS and max, per device;
- headroom through the simulators: the rates of every device are multiplied by 2, 4, 8... (short runs) until a
  sample is lost or the write queue overflows; on a shared 2-core machine the simulators (Python processes that
  encode every frame) usually run out of CPU first, which is printed as such;
- headroom of the recorder itself: the same three devices replayed in this process at 2, 4, 8... times their
  rates (paced, batches of what fell due, real reader threads, clock fits, ring buffers, writer, gzip), without
  serial I/O and decoding (``bench/decode.py`` measures those), until the writer queue overflows or the
  recorder cannot keep pace (under 97 % of the offered samples stored).

Run: ``.venv/bin/python bench/acquisition.py [--seconds 60] [--step-seconds 10] [--max-multiple 32]``
Targets (issue 3): 0 lost, CPU under 25 % of one core, p99 latency under 20 ms, headroom 10x or more.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import psutil

from treadlab.acquisition.recorder import Recorder
from treadlab.drivers import DeviceConfig, DeviceDescription, DeviceStats, SampleBatch
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.lab.rig import load_rig

STRESS = [("insole_left", "insole", "left", (960,), 750.0), ("insole_right", "insole", "right", (960,), 750.0),
          ("mat", "mat", None, (48, 112), 120.0)]


class ReplayDevice:
    """A device object with the driver interface that hands out paced samples from memory (no port)."""

    protocol = "binary"
    supports_ping = False

    def __init__(self, name: str, kind: str, side: str | None, shape: tuple, rate_hz: float) -> None:
        self.name, self.kind, self.side, self.shape, self.rate_hz = name, kind, side, shape, rate_hz
        self.n_values = int(np.prod(shape))
        self.dtype = np.dtype("u1")
        self.clock_hz = 1_000_000
        self.serial = f"REPLAY-{name}"
        self.info = {"kind": kind, "side": side, "rate_hz": rate_hz}
        self.layout = None
        self.calibration = None
        self.stats = DeviceStats()
        rng = np.random.default_rng(0)
        self._values = rng.integers(0, 60, size=(4096, self.n_values), dtype=np.uint8)  # mostly low, like pressure
        self._values[rng.random((4096, self.n_values)) < 0.6] = 0
        self._t0 = 0
        self._next = 0
        self.offered = 0

    def describe(self) -> DeviceDescription:
        return DeviceDescription(name=self.name, kind=self.kind, protocol=self.protocol, shape=self.shape,
                                 dtype=self.dtype, rate_hz=self.rate_hz, clock_hz=self.clock_hz, serial=self.serial,
                                 side=self.side or "", info=self.info)

    def start(self) -> None:
        self._t0 = time.monotonic_ns()
        self._next = 0

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain_pongs(self) -> list:
        return []

    def drain_logs(self) -> list:
        return []

    def read(self, timeout_s: float = 0.05) -> SampleBatch | None:
        now = time.monotonic_ns()
        due = int((now - self._t0) * self.rate_hz / 1e9)
        k = min(due - self._next, int(self.rate_hz * 0.1) + 1)
        if k <= 0:
            time.sleep(min(timeout_s, 0.002))
            return None
        idx = np.arange(self._next, self._next + k)
        self._next += k
        self.offered += k
        ticks = (idx * (1e6 / self.rate_hz)).astype(np.uint64) + np.uint64(1000)
        return SampleBatch(seq=(idx % 2**32).astype(np.uint32), device_time=ticks,
                           values=self._values[idx % len(self._values)],
                           host_time_ns=np.full(k, now, dtype=np.int64))


def replay_once(workdir: Path, multiple: int, seconds: float) -> dict:
    """The recorder alone, fed by three paced replay devices at ``multiple`` times the stress rig's rates."""
    devs = [(DeviceConfig(name=n, port="replay"), ReplayDevice(n, kind, side, shape, rate * multiple))
            for n, kind, side, shape, rate in STRESS]
    out = workdir / f"replay{multiple}.h5"
    me = psutil.Process()
    rec = Recorder.with_devices(devs, {"participant": "bench"}, str(out))
    rec.start()
    cpu0, t0 = sum(me.cpu_times()[:2]), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = sum(me.cpu_times()[:2]), time.monotonic()
    overflow = rec.status().queue_overflow
    rec.stop()
    with h5py.File(out, "r") as f:
        stored = {n: f[f"devices/{n}/seq"].shape[0] for n, *_ in STRESS}
    offered = {cfg.name: dev.offered for cfg, dev in devs}
    kept = min(stored[n] / max(offered[n], 1) for n in stored)
    return {"multiple": multiple, "cpu_pct": 100.0 * (cpu1 - cpu0) / (t1 - t0), "overflow": overflow,
            "kept": kept, "mb_per_s": sum(offered[n] * int(np.prod(s)) for n, _, _, s, _ in STRESS) / seconds / 1e6}


def _scaled(rig: SimulatedRig, multiple: int) -> SimulatedRig:
    devs = []
    for d in rig.devices:
        rate = int(d.rate_hz * multiple)
        devs.append(dataclasses.replace(d, rate_hz=rate, rates_hz=sorted({*d.rates_hz, rate})))
    rig.devices = devs
    return rig


def run_once(workdir: Path, multiple: int, seconds: float) -> dict:
    """Record the stress rig with every rate times ``multiple`` for ``seconds``; return the figures."""
    sim = _scaled(SimulatedRig.stress(workdir / "sim"), multiple)
    out = workdir / f"x{multiple}.h5"
    arrivals: dict[str, list[tuple[np.ndarray, int]]] = {}
    lock = threading.Lock()

    def on_batch(b) -> None:
        now = time.monotonic_ns()
        with lock:
            arrivals.setdefault(b.name, []).append((b.seq, now))

    with sim:
        rig = load_rig(sim.write_rig(workdir / f"rig{multiple}.toml"))
        me = psutil.Process()
        rec = Recorder(list(rig.devices), {"participant": "bench", "condition": f"x{multiple}"}, str(out), rig.text)
        rec.open()
        rec.subscribe(on_batch)
        rec.start()
        cpu0 = sum(me.cpu_times()[:2])
        t0 = time.monotonic()
        time.sleep(seconds)
        cpu1 = sum(me.cpu_times()[:2])
        t1 = time.monotonic()
        status = rec.status()
        try:
            rec.stop()
        finally:
            stats = {n: sim.stats(n) for n in rec.names}
    time.sleep(0.3)
    res = {"multiple": multiple, "cpu_pct": 100.0 * (cpu1 - cpu0) / (t1 - t0), "overflow": status.queue_overflow,
           "devices": {}}
    with h5py.File(out, "r") as f:
        start_ns = int(f.attrs["start_monotonic_ns"])
        res["file_mb"] = out.stat().st_size / 1e6
        for name, g in f["devices"].items():
            seq = g["seq"][:]
            truth_seq, truth_ns = sim.truth(name)
            idx = np.searchsorted(truth_seq, seq)
            true_s = (truth_ns[np.minimum(idx, len(truth_ns) - 1)] - start_ns) / 1e9
            err = g["time"][:] - true_s
            # samples the simulator took while the recorder streamed, minus the ones it sent: recorder losses
            in_window = (truth_seq >= seq[0]) & (truth_seq <= seq[-1])
            taken = int(np.count_nonzero(in_window))
            sim_dropped = stats[name]["lost_n"] + stats[name]["overrun_n"]
            lost = max(0, taken - len(seq) - sim_dropped)
            lat = []
            for s, now in arrivals.get(name, []):
                k = np.searchsorted(truth_seq, s)
                ok = k < len(truth_seq)
                lat.append((now - truth_ns[k[ok]]) / 1e6)
            lat_ms = np.concatenate(lat) if lat else np.array([np.nan])
            res["devices"][name] = {
                "samples": len(seq), "lost": lost, "sim_dropped": sim_dropped, "gaps": len(g["gaps"]),
                "rate_hz": float(g.attrs["achieved_rate_hz"]), "err_rms_ms": float(np.sqrt(np.mean(err**2)) * 1e3),
                "err_max_ms": float(np.max(np.abs(err)) * 1e3), "lat_p50_ms": float(np.percentile(lat_ms, 50)),
                "lat_p99_ms": float(np.percentile(lat_ms, 99)), "drift_ppm": float(g.attrs["drift_ppm"]),
            }
    return res


def _clean(res: dict) -> bool:
    return res["overflow"] == 0 and all(d["lost"] == 0 and d["sim_dropped"] == 0 for d in res["devices"].values())


def _print(res: dict) -> None:
    print(f"  x{res['multiple']}: recorder CPU {res['cpu_pct']:.1f} % of one core, file {res['file_mb']:.0f} MB, "
          f"write-queue overflow {res['overflow']}")
    for name, d in res["devices"].items():
        print(f"    {name:<13} {d['samples']:>7} samples {d['rate_hz']:8.1f} Hz  lost {d['lost']}  "
              f"(simulator dropped {d['sim_dropped']}, gaps {d['gaps']})  latency p50 {d['lat_p50_ms']:.2f} ms "
              f"p99 {d['lat_p99_ms']:.2f} ms  clock error rms {d['err_rms_ms']:.3f} ms max {d['err_max_ms']:.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the stress-rig capture")
    ap.add_argument("--step-seconds", type=float, default=10.0, help="length of each headroom step")
    ap.add_argument("--max-multiple", type=int, default=32)
    args = ap.parse_args()
    print(f"treadlab acquisition bench: stress rig (2 x 960-sensel insoles @ 750 Hz, 5,376-sensel mat @ 120 Hz), "
          f"{psutil.cpu_count()} CPUs, load average {psutil.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        base = run_once(Path(tmp) / "x1", 1, args.seconds)
        print(f"stress rig, {args.seconds:g} s in real time:")
        _print(base)
        lost = sum(d["lost"] for d in base["devices"].values())
        p99 = max(d["lat_p99_ms"] for d in base["devices"].values())
        rms = max(d["err_rms_ms"] for d in base["devices"].values())
        mx = max(d["err_max_ms"] for d in base["devices"].values())
        print(f"SUMMARY stress rig: CPU {base['cpu_pct']:.1f} % of one core (target < 25), lost {lost} (target 0), "
              f"latency p99 {p99:.2f} ms (target < 20), clock error rms {rms:.3f} ms max {mx:.3f} ms "
              f"(targets 0.2 / 0.5)")
        headroom, limit = 1, "not reached"
        multiple = 2
        while multiple <= args.max_multiple:
            res = run_once(Path(tmp) / f"x{multiple}", multiple, args.step_seconds)
            _print(res)
            if not _clean(res):
                sim_limited = any(d["sim_dropped"] for d in res["devices"].values()) and not any(
                    d["lost"] for d in res["devices"].values()) and res["overflow"] == 0
                limit = (f"the simulators could not produce x{multiple}" if sim_limited
                         else f"the recorder lost samples at x{multiple}")
                break
            headroom = multiple
            multiple *= 2
        print(f"SUMMARY headroom through the simulators: {headroom}x the stress rig without loss ({limit})")
        headroom, limit = 1, "not reached"
        multiple = 1
        while multiple <= args.max_multiple:
            res = replay_once(Path(tmp), multiple, args.step_seconds)
            print(f"  replay x{multiple}: {res['mb_per_s']:.1f} MB/s of samples, recorder CPU {res['cpu_pct']:.1f} % "
                  f"of one core, stored {100 * res['kept']:.1f} % of offered, write-queue overflow {res['overflow']}")
            if res["overflow"] or res["kept"] < 0.97:
                limit = f"limit at x{multiple}"
                break
            headroom = multiple
            multiple *= 2
        print(f"SUMMARY headroom of the recorder: {headroom}x the stress rig ({limit}; target 10x)")


if __name__ == "__main__":
    main()
