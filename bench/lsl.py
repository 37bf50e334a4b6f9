"""LSL figures on this machine's loopback: publisher throughput and latency, and ``lab record --lsl`` timing.

(a) throughput: an :class:`~treadlab.acquisition.lsl.LslPublisher` with the stress rig's streams (two 960-sensel
insoles at 750 Hz, a 112 x 48 mat at 120 Hz) fed in real time from raw counts every 20 ms (calibrated in the push
thread), read by one pylsl inlet per stream polled every 20 ms: samples delivered, dropped, sample age at receipt
(inlet receipt minus sample timestamp: includes the 20 ms batching on both sides), process CPU.

(b) timing: ``lab record --lsl`` on the default simulated rig (two insoles at 500 Hz and the mat at 120 Hz, each
in its own process on a pseudo-terminal) for ``--seconds``; every outlet is read by an inlet and each received
sample is matched to the same sample in the session file: |LSL timestamp - (start + file time)| per stream.

Run: ``.venv/bin/python bench/lsl.py [--seconds 10]``. LSL is restricted to 127.0.0.1 (own session id).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from treadlab.acquisition import lsl

STREAMS = [("insole_left", "insole", "left", 960, 750.0), ("insole_right", "insole", "right", 960, 750.0),
           ("mat", "mat", None, 112 * 48, 120.0)]


def _pull_all(inlets: dict, into: dict) -> None:
    import pylsl

    for name, inlet in inlets.items():
        try:
            v, t = inlet.pull_chunk(timeout=0.0, max_samples=65536, as_numpy=True)
        except pylsl.util.LostError:
            continue
        if len(t):
            into[name].append((np.asarray(v), np.asarray(t), pylsl.local_clock()))


def throughput(seconds: float) -> None:
    import pylsl

    specs = [lsl.StreamSpec(device=n, kind=k, side=s, serial=f"bench-{n}", rate_hz=r, unit="N", n_values=c,
                            gain=np.full(c, 0.05, np.float32), offset=np.full(c, 10.0, np.float32),
                            shape=(112, 48) if k == "mat" else None) for n, k, s, c, r in STREAMS]
    rng = np.random.default_rng(0)
    got: dict = {s.device: [] for s in specs}
    cpu0, t_wall0 = time.process_time(), time.perf_counter()
    with lsl.LslPublisher(specs, clock_origin_s=0.0, markers=False) as pub:
        inlets = {}
        for s in specs:
            info = pylsl.resolve_byprop("source_id", s.source_id, timeout=5.0)[0]
            inlets[s.device] = pylsl.StreamInlet(info, max_buflen=30, recover=False)
            inlets[s.device].open_stream(timeout=5.0)
        sent = dict.fromkeys(got, 0)
        t0 = pylsl.local_clock()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now = pylsl.local_clock()
            for s in specs:
                k = int((now - t0) * s.rate_hz) - sent[s.device]
                if k > 0:
                    raw = rng.integers(0, 4096, size=(k, s.n_values), dtype=np.uint16)
                    stamps = t0 + (sent[s.device] + np.arange(k)) / s.rate_hz
                    pub.publish(s.device, raw, stamps)
                    sent[s.device] += k
            _pull_all(inlets, got)
            time.sleep(0.02)
        drain_end = time.monotonic() + 2.0
        while time.monotonic() < drain_end:
            _pull_all(inlets, got)
            time.sleep(0.02)
        for inlet in inlets.values():
            inlet.close_stream()
        inlets.clear()
        dropped = pub.stats.dropped_samples_n
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - t_wall0)
    print(f"(a) publisher, stress-rig streams for {seconds:g} s (process CPU {cpu * 100:.0f}% of one core, "
          f"incl. the reading inlets; dropped in the queue: {dropped} samples)")
    for s in specs:
        n = sum(len(c[1]) for c in got[s.device])
        lat = np.concatenate([rx - c[1] for c in got[s.device] for rx in [c[2]]]) * 1e3 if n else np.zeros(1)
        mb_s = n * s.n_values * 4 / seconds / 1e6
        print(f"    {s.device:<13} {s.n_values:5d} ch @ {s.rate_hz:5g} Hz: delivered {n}/{sent[s.device]} "
              f"({mb_s:.1f} MB/s), age at receipt median {np.median(lat):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms")


def record_timing(seconds: float, tmp: Path) -> None:
    import pylsl

    from treadlab.analysis import read_session
    from treadlab.drivers.sim.rig import SimulatedRig

    out = tmp / "bench.h5"
    with SimulatedRig.default(tmp / "sim") as sim:
        rig = sim.write_rig(tmp / "rig.toml")
        proc = subprocess.Popen([sys.executable, "-m", "treadlab.lab.cli", "record", "--rig", str(rig), "--duration",
                                 str(seconds), "--out", str(out), "--lsl", "--quiet"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            found = pylsl.resolve_bypred("starts-with(name,'treadlab-') and type!='Markers'", minimum=3,
                                         timeout=min(20.0, seconds))
            inlets = {f.source_id(): pylsl.StreamInlet(f, max_buflen=60, recover=False) for f in found}
            for inlet in inlets.values():
                inlet.open_stream(timeout=5.0)
            got: dict = {k: [] for k in inlets}
            while proc.poll() is None:
                _pull_all(inlets, got)
                time.sleep(0.05)
            _, err = proc.communicate(timeout=60)
            inlets.clear()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"lab record failed: {err.strip()}")
    print(f"(b) lab record --lsl, default simulated rig, {seconds:g} s: LSL timestamp vs session file time")
    with read_session(out) as s:
        start_s = int(s.attrs["start_monotonic_ns"]) / 1e9
        for name, dev in s.devices.items():
            serial = str(dev.info.get("serial", ""))
            chunks = got.get(f"treadlab-{serial}", [])
            if not chunks:
                print(f"    {name}: no samples received")
                continue
            t = np.concatenate([c[1] for c in chunks]) - start_s
            ft = dev.time
            i = np.clip(np.searchsorted(ft, t), 1, len(ft) - 1)
            i -= (t - ft[i - 1]) < (ft[i] - t)
            dt = np.abs(t - ft[i]) * 1e3
            print(f"    {name:<13} {len(t):6d} samples: median {np.median(dt):.3f} ms, p99 "
                  f"{np.percentile(dt, 99):.3f} ms, max {dt.max():.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lsl.configure_loopback(tmp, f"treadlab-bench-{os.getpid()}")
        throughput(args.seconds)
        record_timing(args.seconds, Path(tmp))


if __name__ == "__main__":
    main()
