"""Session files with IMUs (and optionally insoles) written by the real writer, for the IMU analysis tests."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from treadlab import fileformat as ff
from treadlab.acquisition.writer import SessionWriter, create_session_file
from treadlab.kinds import Calibration, DeviceDescription, get_kind

ACC6 = ["ax", "ay", "az", "gx", "gy", "gz"]
ACC3 = ["ax", "ay", "az"]


def imu_description(name: str, placement: str, channels: list[str], rate_hz: float, range_g: float = 16.0,
                    range_dps: float = 2000.0) -> DeviceDescription:
    info = {"protocol": 1, "kind": "imu", "model": "synthetic", "serial": name, "firmware": "1", "dtype": "i16",
            "adc_bits": 16, "rate_hz": rate_hz, "rates_hz": [rate_hz], "clock_hz": 1_000_000,
            "channels": list(channels), "placement": placement, "range_g": range_g}
    if "gx" in channels:
        info["range_dps"] = range_dps
    kind = get_kind("imu")
    shape = (len(channels),)
    gains = np.array([(range_g if c[0] == "a" else range_dps) / 32768.0 for c in channels], np.float32)
    cal = Calibration("imu", gains, np.zeros(len(channels), np.float32))
    return DeviceDescription(
        name=name, kind="imu", protocol="binary", shape=shape, dtype=np.dtype("<i2"), rate_hz=float(rate_hz),
        clock_hz=1e6, serial=name, info=info, calibration=cal, channel_labels=kind.channel_labels(shape, info),
        channel_units=kind.channel_units(shape, info, "imu"))


def to_raw(desc: DeviceDescription, acc_g: np.ndarray, gyro_dps: np.ndarray | None) -> np.ndarray:
    values = acc_g if gyro_dps is None else np.hstack([acc_g, gyro_dps])
    gain = np.asarray(desc.calibration.gain, np.float64)
    return np.clip(np.round(values / gain), -32768, 32767).astype("<i2")


def write_imu_session(path: Path, devices: list[tuple[DeviceDescription, np.ndarray]], time_s: np.ndarray,
                      markers: list[tuple[float, str]] = ()) -> None:
    """A complete session of imus (``(description, raw)`` pairs, all sampled at ``time_s``)."""
    root = {ff.A_FORMAT: ff.FORMAT, ff.A_FORMAT_VERSION: ff.FORMAT_VERSION, "start_monotonic_ns": np.int64(10**12),
            "participant": "imu", "condition": "test", ff.A_BODY_MASS_KG: 70.0, ff.A_TREADMILL_SPEED_MPS: 3.0}
    descs = [d for d, _ in devices]
    writer = SessionWriter(create_session_file(str(path), root, descs), max_items=1 << 16, max_bytes=1 << 34)
    writer.start()
    try:
        for d, raw in devices:
            for a in range(0, len(raw), 20000):  # a few large batches
                s = slice(a, a + 20000)
                seq = np.arange(len(raw))[s].astype("u4")
                t = time_s[s]
                assert writer.put_samples(d.name, seq, np.round(t * 1e6).astype("u8"), t, t + 0.002, raw[s])
        for t_m, label in markers:
            writer.put_marker(t_m, label)
    finally:
        writer.stop()
    assert writer.error is None
    with h5py.File(path, "r+", libver=ff.LIBVER) as f:
        f.attrs[ff.A_STATE] = ff.STATE_COMPLETE


def runner_session(path: Path, runner, placements=("pelvis", "trunk", "tibia_left", "tibia_right"),
                   t0: float = 0.5, markers=(), tibia_range_g: float = 16.0) -> np.ndarray:
    """A synthetic runner's imus (tests/imu_synth.Runner) in a session file; returns the sample times."""
    t = t0 + runner.t
    devs = []
    for p in placements:
        if p == "pelvis":
            gyro, acc = runner.pelvis()
            d = imu_description("pelvis_imu", "pelvis", ACC6, runner.rate_hz)
        elif p == "trunk":
            gyro, acc = runner.trunk()
            d = imu_description("trunk_imu", "trunk", ACC6, runner.rate_hz)
        else:
            gyro, acc = None, runner.tibia(p.split("_")[1])
            d = imu_description(f"{p}_imu", p, ACC3, runner.rate_hz, range_g=tibia_range_g)
        devs.append((d, to_raw(d, acc, gyro)))
    write_imu_session(path, devs, t, list(markers))
    return t


def sim_session(path: Path, params, duration_s: float, placements=("pelvis", "trunk", "tibia_left", "tibia_right"),
                insoles: bool = False, seed: int = 0, start_s: float = 0.5, block_s: float = 20.0,
                markers: list[tuple[float, str]] = (), misalignment_deg: float | None = None):
    """A session of the simulator's kinematic IMU model (``treadlab.drivers.sim.imu_model``) with random boards
    (mounting up to 10 deg, gyroscope bias up to 1 deg/s, noise), and optionally insoles from the same gait model,
    written by the real writer in blocks (``misalignment_deg``: every board turned by exactly that angle, about a
    random axis). Returns ``(imu_model, gait_model, sensors)``.
    """
    import dataclasses

    from scipy.spatial.transform import Rotation
    from sessionfactory import InsoleSpec, _setup

    from treadlab.drivers.layouts import load_layout
    from treadlab.drivers.sim.gait import GaitModel
    from treadlab.drivers.sim.imu_model import ImuModel, ImuSensor

    gait = GaitModel(params, duration_s=duration_s + 2.0, start_s=start_s - 1.0)
    model = ImuModel(params, gait=gait)
    root = {ff.A_FORMAT: ff.FORMAT, ff.A_FORMAT_VERSION: ff.FORMAT_VERSION, "start_monotonic_ns": np.int64(10**12),
            "participant": "sim", "condition": "imu", ff.A_BODY_MASS_KG: float(params.body_mass_kg),
            ff.A_TREADMILL_SPEED_MPS: float(params.speed_mps)}
    descs, sources = [], []
    if insoles:
        spec = InsoleSpec()
        lay = load_layout(spec.layout)
        layout = {"positions_mm": lay.positions_mm, "areas_mm2": lay.areas_mm2,
                  "foot_length_mm": float(lay.foot_length_mm)}
        for side in ("left", "right"):
            d = _setup(f"insole_{side}", kind="insole", side=side, rate_hz=spec.rate_hz, shape=(lay.n_sensels,),
                       dtype=spec.dtype, gain=spec.gain, offset=spec.offset, unit=spec.unit, layout=layout,
                       info={"kind": "insole", "side": side, "sensels": lay.n_sensels, "serial": f"T-{side}"})
            descs.append(d)

            def values(t, side=side, lay=lay, spec=spec):
                f = gait.insole_forces(side, t, lay)
                return np.clip(np.round(f / spec.gain + spec.offset), 0, 65535).astype(spec.dtype)
            sources.append((d, spec.rate_hz, values))
    sensors = {}
    for i, p in enumerate(placements):
        sensor = ImuSensor.random(p, seed=seed * 10 + i)
        if misalignment_deg is not None:
            axis = np.random.default_rng([seed, i, 7]).normal(size=3)
            turn = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.radians(misalignment_deg)).as_matrix()
            sensor = dataclasses.replace(sensor, misalignment=turn.tolist())
        sensors[p] = sensor
        d = imu_description(f"{p}_imu", p, list(sensor.channels), sensor.rate_hz, range_g=sensor.range_g,
                            range_dps=sensor.range_dps)
        descs.append(d)
        sources.append((d, sensor.rate_hz,
                        lambda t, p=p, sensor=sensor: sensor.raw(model.signals(p, t, sensor))))
    writer = SessionWriter(create_session_file(str(path), root, descs), max_items=1 << 20, max_bytes=1 << 40)
    writer.start()
    try:
        for d, rate, values in sources:
            n_total = int(duration_s * rate)
            block = int(block_s * rate)
            for a in range(0, n_total, block):  # one iteration per block of samples
                idx = np.arange(a, min(a + block, n_total))
                t = start_s + idx / rate
                assert writer.put_samples(d.name, idx.astype("u4"), np.round(t * 1e6).astype("u8"), t, t + 0.002,
                                          values(t))
        for t_m, label in markers:
            writer.put_marker(t_m, label)
    finally:
        writer.stop()
    assert writer.error is None
    with h5py.File(path, "r+", libver=ff.LIBVER) as f:
        f.attrs[ff.A_STATE] = ff.STATE_COMPLETE
    return model, gait, sensors
