"""Unplug and replug: samples lost after the port came back, and gap times against stored times.

One simulated protocol-v1 insole (500 Hz) in its own process on a pseudo-terminal, recorded by the Recorder in
this process, unplugged ``--tries`` times for ``--unplug-s`` each. Two devices: a self-powered one that keeps
streaming while its cable is out (its samples of that time are lost for real, the next ones arrive at once), a
bus-powered one that a replug power-cycles (seq and clock restart, stopped until START), and a line-protocol insole
that keeps streaming. Printed per device:

- samples lost after the port came back, per replug: samples the device sent after the replug that are not in
  the file (must be 0);
- whether the gap rows agree with what is stored: they name exactly the sequence numbers missing from the file
  (self-powered: every missing seq; power-cycled: the first seq that never came; line: the count of samples
  missing, from the device clock). With no sample lost after the port came back, that is exactly what was lost;
- max |gap time - stored time of the last sample before the gap| (must be 0: a gap's time is the stored time of
  that sample).

Then, without unplugs, a lossy recording (a 500 Hz insole and a 120 Hz mat losing 1 and 2 % of their samples,
8 s): max and median |gap time - stored time of the last sample before the gap| over its many gaps.

Run: ``.venv/bin/python bench/replug.py [--tries 6] [--unplug-s 0.4]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from treadlab.acquisition.recorder import Recorder
from treadlab.drivers.sim.device import FaultParams, SimDeviceSpec
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.lab.rig import load_rig


def run(work: Path, self_powered: bool, tries: int, unplug_s: float, line: bool = False) -> dict:
    """Record with ``tries`` replugs; return the figures."""
    if line:  # a self-powered line insole (the host numbers its samples: matched to the truth by device ticks)
        spec = SimDeviceSpec("insole_left", protocol="line", side="left", layout="insole16", rate_hz=200,
                             rates_hz=[200], time_unit="ms", decimals=2, drift_ppm=45.0, offset_ticks=777,
                             serial="SIM-BENCH-L", seed=6, self_powered=True)
    else:
        spec = SimDeviceSpec("insole_left", side="left", layout="insole16", dtype="u16", rate_hz=500,
                             drift_ppm=-60.0, offset_ticks=1234567, serial="SIM-BENCH-1", seed=5,
                             self_powered=self_powered)
    out = work / "s.h5"
    with SimulatedRig([spec], work / "devices") as sim:
        rig = load_rig(sim.write_rig(work / "rig.toml"))
        with Recorder(list(rig.devices), {"participant": "bench"}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(1.0)
            for k in range(tries):
                sim.unplug(spec.name, unplug_s)
                deadline = time.monotonic() + 15.0
                while rec.status().devices[0].reconnections < k + 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.6)
        time.sleep(0.3)
        t_seq, t_ns = sim.truth(spec.name)
        off_seq, _ = sim.offline(spec.name)
        epoch = sim.t_epoch_ns
    with h5py.File(out, "r") as f:
        g = f["devices/insole_left"]
        seq = g["seq"][:].astype(np.int64)
        t = g["time"][:]
        gaps = g["gaps"][:]
        seg_starts = g["clock/segments"][:, 0].astype(np.int64)
        ticks = g["device_time"][:].astype(np.int64)
    jump = np.flatnonzero(np.diff(seq) != 1)
    gap_err_s = np.abs(gaps[:, 0] - t[jump]) if len(gaps) == len(jump) else np.array([np.inf])
    t64 = t_seq.astype(np.int64)
    if line:  # which truth sample each stored one is, from its device tick
        true_ticks = np.round((t_ns - epoch) * 1e-6 * (1 + spec.drift_ppm * 1e-6)).astype(np.int64) + 777
        at = np.searchsorted(true_ticks, ticks)
        off_at = np.searchsorted(t64, off_seq.astype(np.int64))
        runs = np.split(off_at, np.flatnonzero(np.diff(off_at) != 1) + 1) if len(off_at) else []
        lost_after = [int(at[j + 1] - (r[-1] + 1)) for j, r in zip(jump, runs)]
        exact = bool(len(gaps) == len(jump) and np.array_equal(gaps[:, 2], at[jump + 1] - at[jump] - 1))
    elif self_powered:
        off = off_seq.astype(np.int64)
        runs = np.split(off, np.flatnonzero(np.diff(off) != 1) + 1) if len(off) else []
        lost_after = [int(seq[j + 1] - (r[-1] + 1)) for j, r in zip(jump, runs)]
        span = t64[(t64 >= seq[0]) & (t64 <= seq[-1])]
        lost = np.setdiff1d(span, seq)
        named = np.concatenate([np.arange(int(a), int(a) + int(n)) for _, a, n in gaps]) if len(gaps) else []
        exact = bool(np.array_equal(np.sort(named), lost))
    else:
        # after a power cycle the numbering starts again at seq_start: anything above it at a segment start was lost
        lost_after = [int(seq[s] - spec.seq_start) for s in seg_starts[1:]]
        exact = bool(len(gaps) == len(jump) and np.array_equal(gaps[:, 1], seq[jump] + 1))
    return {"replugs": len(jump), "lost_after": lost_after, "exact": exact,
            "gap_err_max_us": float(gap_err_s.max() * 1e6)}


def lossy(work: Path, seconds: float = 8.0) -> dict[str, tuple[int, float, float]]:
    """Per device of a lossy recording: (gaps, max and median |gap time - stored time| in us)."""
    specs = [SimDeviceSpec("insole_left", side="left", layout="insole16", rate_hz=500, drift_ppm=80.0, serial="G-1",
                           seed=3, faults=FaultParams(loss_rate=0.01)),
             SimDeviceSpec("mat", kind="mat", rows=16, cols=24, rate_hz=120, rates_hz=[120], dtype="u8", adc_bits=8,
                           drift_ppm=-50.0, serial="G-M", seed=4, faults=FaultParams(loss_rate=0.02))]
    with SimulatedRig(specs, work / "devices") as sim:
        rig = load_rig(sim.write_rig(work / "rig.toml"))
        with Recorder(list(rig.devices), {"participant": "bench"}, str(work / "lossy.h5"), rig.text) as rec:
            rec.start()
            time.sleep(seconds)
    out = {}
    with h5py.File(work / "lossy.h5", "r") as f:
        for name, g in f["devices"].items():
            seq, t, gaps = g["seq"][:].astype(np.int64), g["time"][:], g["gaps"][:]
            jump = np.flatnonzero(np.diff(seq) != 1)
            d_us = np.abs(gaps[: len(jump), 0] - t[jump]) * 1e6
            out[name] = (len(gaps), float(d_us.max()), float(np.median(d_us)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tries", type=int, default=6, help="replugs per device")
    ap.add_argument("--unplug-s", type=float, default=0.4, help="how long the cable stays out")
    args = ap.parse_args()
    for self_powered, line in ((True, False), (False, False), (True, True)):
        with tempfile.TemporaryDirectory() as tmp:
            r = run(Path(tmp), self_powered, args.tries, args.unplug_s, line)
        name = "self-powered (keeps streaming)" if self_powered else "bus-powered (power-cycles)"
        name = "line insole, 200 Hz, keeps streaming" if line else f"binary insole, 500 Hz, {name}"
        lost = r["lost_after"]
        print(f"{name}: {r['replugs']} replugs; samples lost after the port came back: {lost} "
              f"(total {sum(lost)}, {sum(1 for x in lost if x)} of {len(lost)} replugs lost some); "
              f"gap rows agree with the file: {r['exact']}; "
              f"max |gap time - stored time| = {r['gap_err_max_us']:.1f} us")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (n, max_us, med_us) in lossy(Path(tmp)).items():
            print(f"lossy recording, {name}: {n} gaps; |gap time - stored time| max {max_us:.1f} us, "
                  f"median {med_us:.1f} us")


if __name__ == "__main__":
    main()
