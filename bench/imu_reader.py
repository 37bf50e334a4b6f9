"""The imu reader on a long session: one hour of a 6-channel pelvis imu at 500 Hz and of a 9-channel tibia imu at
1000 Hz, written by the recorder's own writer (gzip 1 + shuffle, as a recording), then read back by
:class:`treadlab.analysis.imu_reader.ImuData`.

Printed, per device: samples per second of ``iter_imu`` (time, acceleration and angular rate in g and deg/s, the
analysis' input), of ``clipped_samples`` (the 95 %-of-full-scale count), and the peak memory of the read (the
arrays allocated while reading, traced by ``tracemalloc``: bounded by one ~32 MiB block, not by the session's
length).
The signal is a noisy 1.4 Hz oscillation (compresses like a real one, not like random counts).

Run: ``.venv/bin/python bench/imu_reader.py [--hours 1]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np

from treadlab import fileformat as ff
from treadlab.acquisition.writer import SessionWriter, create_session_file
from treadlab.analysis.session import read_session
from treadlab.kinds import Calibration, DeviceDescription, get_kind

DEVICES = {  # name: (placement, channels, rate_hz, ranges)
    "pelvis_imu": ("pelvis", ["ax", "ay", "az", "gx", "gy", "gz"], 500, {"range_g": 16, "range_dps": 2000}),
    "tibia_left_imu": ("tibia_left", ["ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz"], 1000,
                       {"range_g": 32, "range_dps": 2000, "range_ut": 4900}),
}


def _description(name: str) -> DeviceDescription:
    placement, channels, rate_hz, ranges = DEVICES[name]
    info = {"kind": "imu", "dtype": "i16", "adc_bits": 16, "channels": channels, "placement": placement, **ranges}
    kind = get_kind("imu")
    gain = np.array([ranges[{"a": "range_g", "g": "range_dps", "m": "range_ut"}[c[0]]] / 32768 for c in channels],
                    np.float32)
    shape = (len(channels),)
    return DeviceDescription(name=name, kind="imu", protocol="binary", shape=shape, dtype=np.dtype("<i2"),
                             rate_hz=float(rate_hz), clock_hz=1e6, serial=name, info=info,
                             calibration=Calibration("imu", gain, np.zeros(len(channels), np.float32)),
                             channel_labels=tuple(channels), channel_units=kind.channel_units(shape, info, "imu"))


def write(path: Path, hours: float) -> None:
    """The session file, generated and written a block of 10 s at a time."""
    descs = [_description(n) for n in DEVICES]
    root = {ff.A_FORMAT: ff.FORMAT, ff.A_FORMAT_VERSION: ff.FORMAT_VERSION, "start_monotonic_ns": np.int64(10**12)}
    writer = SessionWriter(create_session_file(str(path), root, descs), max_items=1 << 12, max_bytes=1 << 31)
    writer.start()
    rng = np.random.default_rng(0)
    try:
        for d in descs:
            n, block = int(hours * 3600 * d.rate_hz), int(10 * d.rate_hz)
            for a in range(0, n, block):  # one iteration per 10 s of samples
                idx = np.arange(a, min(a + block, n))
                t = idx / d.rate_hz
                wave = np.sin(2 * np.pi * 1.4 * t)[:, None] * 4000 + rng.normal(0, 40, (len(t), d.n_values))
                raw = np.clip(wave, -32768, 32767).astype("<i2")
                while not writer.put_samples(d.name, idx.astype("u4"), np.round(t * 1e6).astype("u8"), t, t, raw):
                    time.sleep(0.01)  # the queue is full: let the writer catch up
    finally:
        writer.stop()
    if writer.error is not None:
        raise writer.error
    with h5py.File(path, "r+", libver=ff.LIBVER) as f:
        f.attrs[ff.A_STATE] = ff.STATE_COMPLETE


def main() -> None:
    """Write, read, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "imu.h5"
        t0 = time.perf_counter()
        write(path, args.hours)
        print(f"wrote {args.hours:g} h of {len(DEVICES)} imus in {time.perf_counter() - t0:.1f} s "
              f"({path.stat().st_size / 2**20:.0f} MiB)")
        with read_session(path) as s:
            for name in DEVICES:
                dev = s.devices[name]
                tracemalloc.start()
                t0 = time.perf_counter()
                n = sum(len(b[1]) for b in dev.iter_imu())
                dt_read = time.perf_counter() - t0
                t0 = time.perf_counter()
                clipped = dev.clipped_samples()
                dt_clip = time.perf_counter() - t0
                grow = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                print(f"{name}: {n} samples x {dev.n_values} channels at {dev.rate_hz:g} Hz; iter_imu "
                      f"{n / dt_read / 1e6:.1f} M samples/s ({dt_read:.2f} s); clipped_samples "
                      f"{n / dt_clip / 1e6:.1f} M samples/s ({clipped} clipped); read peak memory {grow:.0f} MiB")


if __name__ == "__main__":
    main()
