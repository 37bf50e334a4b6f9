"""Simulated IMU devices: the protocol v1 device logic with synthetic times, then real device processes on
pseudo-terminals recorded through the real recorder path (simulate -> record -> file -> imu reader).

Known answers: the device's INFO and CALIBRATION are the contract's; its DATA are the value source at the true
sampling instants of its truth file (bit-exact int16), and the calibrated file values are the model's readings.
"""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from tests.acq_truth import true_times_s, truth_after_stop
from treadlab.acquisition.recorder import Recorder
from treadlab.analysis.session import read_session
from treadlab.drivers import protocol as p
from treadlab.drivers.sim.device import make_device
from treadlab.drivers.sim.imu_source import sensor_of
from treadlab.drivers.sim.params import RunnerParams
from treadlab.drivers.sim.rig import IMU_PLACEMENTS, SimulatedRig, imu_specs
from treadlab.drivers.sim.signals import make_source
from treadlab.errors import ConfigError
from treadlab.lab.rig import load_rig

S = 1_000_000_000
EPOCH = 10 * S
RUNNER = RunnerParams(seed=4, pelvic_drop_left_deg=7.0)


def _decode(stream: bytes):
    dec = p.FrameDecoder()
    data, other = dec.feed(stream)
    return data, other


def test_imu_device_speaks_the_contract():
    spec = imu_specs(["tibia_left"], seed=1)[0]
    dev = make_device(spec, EPOCH, RUNNER)
    _, other = _decode(dev.receive(p.encode_message(p.IDENTIFY), EPOCH + S))
    info = p.parse_info(other[0][1])
    assert info["kind"] == "imu" and info["dtype"] == "i16" and info["placement"] == "tibia_left"
    assert info["channels"] == ["ax", "ay", "az", "gx", "gy", "gz"]
    assert info["range_g"] == 32.0 and info["range_dps"] == 2000.0 and info["rate_hz"] == 1000
    assert "range_ut" not in info
    _, other = _decode(dev.receive(p.encode_message(p.GET_CALIBRATION), EPOCH + S))
    unit, gain, offset = p.parse_calibration(other[0][1])
    assert unit == "imu" and np.allclose(gain, [32 / 32768] * 3 + [2000 / 32768] * 3) and not offset.any()
    dev.receive(p.encode_message(p.START), EPOCH + 2 * S)
    data, _ = _decode(dev.take(EPOCH + 4 * S))
    seq, ticks, raw = p.decode_data(data, 6, "i16")
    truth = dev.pop_truth()
    assert len(seq) == len(truth) > 1900 and np.array_equal(seq, truth["seq"])
    # The values are the board's readings of the model at the true sampling instants, in int16 counts.
    src = make_source(spec, RUNNER, EPOCH, gain, offset)
    assert np.array_equal(raw, src.raw(truth["t_ns"]))
    t_s = (truth["t_ns"] - EPOCH) / 1e9
    board = src.readings(t_s)
    assert np.abs(raw[:, :3] * gain[:3] - board["acc_g"]).max() <= gain[0] / 2 + 1e-7
    clean = src._model(0).signals("tibia_left", t_s)  # noqa: SLF001 - the noise-free segment-frame values
    assert np.abs(board["acc_g"] - clean["acc_g"] @ np.asarray(src.sensor.misalignment)).max() < 0.1
    with pytest.raises(ValueError, match="placement"):
        imu_specs(["knee"], seed=1)


def test_magnetometer_channels_and_rig_entries(tmp_path):
    spec = imu_specs(["pelvis"], seed=2)[0]
    spec.imu = {"magnetometer": True}
    spec.channels = None
    spec.__post_init__()
    dev = make_device(spec, EPOCH, RUNNER)
    _, other = _decode(dev.receive(p.encode_message(p.IDENTIFY), EPOCH + S))
    info = p.parse_info(other[0][1])
    assert info["channels"][-3:] == ["mx", "my", "mz"] and info["range_ut"] == 1300.0
    rig = SimulatedRig.stress(tmp_path)
    assert [d.placement for d in rig.devices if d.kind == "imu"] == list(IMU_PLACEMENTS)
    # Adding IMUs changes no other device's clock or serial.
    plain = SimulatedRig.default(tmp_path, seed=3)
    with_imus = SimulatedRig.default(tmp_path, seed=3, imus=("trunk",))
    assert [d.to_json() for d in plain.devices] == [d.to_json() for d in with_imus.devices[:3]]
    assert imu_specs(["pelvis"], 3)[0].to_json() == imu_specs(IMU_PLACEMENTS, 3)[0].to_json()


def test_lab_simulate_options(tmp_path):
    from treadlab.lab.commands import simulate

    class Args:
        preset, line_insoles, corrupt_rate, loss_rate, garbage, unplug = "default", False, 0.0, 0.0, 0, []
        imu, imu_only, imu_mag, imu_misalignment, imu_gyro_bias = "pelvis,tibia_right", True, True, 4.0, None
        treadmill = None

    for dest in simulate._RUNNER_OPTIONS:  # noqa: SLF001 - every runner option unset
        setattr(Args, dest, None)
    Args.pelvic_drop_left = 9.0
    rig = simulate._build_rig(Args, tmp_path)  # noqa: SLF001
    assert [d.name for d in rig.devices] == ["imu_pelvis", "imu_tibia_right"]
    assert rig.runner.pelvic_drop_left_deg == 9.0
    assert all(d.imu["max_misalignment_deg"] == 4.0 and len(d.channels) == 9 for d in rig.devices)
    Args.imu = "pelvis,hip"
    with pytest.raises(ConfigError, match="--imu 'pelvis,hip'"):
        simulate._build_rig(Args, tmp_path)  # noqa: SLF001


def test_simulate_record_read_an_imu_rig(tmp_path):
    """IMU-only rig on ptys -> Recorder -> file: /devices/imu_* raw int16 as sent, calibrated values in g."""
    runner = RunnerParams(seed=6, stand_s=1.0)
    with SimulatedRig.default(tmp_path / "sim", runner=runner, seed=6, insoles=False, mat=False,
                              imus=("pelvis", "tibia_left")) as sim:
        rig = load_rig(sim.write_rig(tmp_path / "rig.toml"))
        assert [e.kind for e in rig.devices] == ["imu", "imu"]
        out = tmp_path / "s.h5"
        with Recorder(list(rig.devices), {"participant": "P"}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(3.0)
        with h5py.File(out, "r") as f:
            start_ns = int(f.attrs["start_monotonic_ns"])
            for spec in sim.devices:
                g = f[f"devices/{spec.name}"]
                assert g.attrs["kind"] == "imu" and g.attrs["placement"] == spec.placement
                assert g["raw"].dtype == np.dtype("<i2") and g["raw"].shape[1] == 6
                assert g["raw"].shape[0] > 2.0 * spec.rate_hz
                truth = truth_after_stop(sim, spec.name, int(g["seq"][-1]))
                t_s = true_times_s(g, truth, start_ns)
                src = make_source(spec, runner, sim.t_epoch_ns, g["calibration/gain"][:], g["calibration/offset"][:])
                t_ns = start_ns + np.round(t_s * 1e9).astype(np.int64)
                assert np.array_equal(g["raw"][:], src.raw(t_ns))
                board = src.readings(src.session_s(t_ns))
        steps, strides = sim.imu_truth(5.0)
        assert len(steps) >= 8 and {"pelvic_drop_deg", "pta_g", "ic_ns"} <= set(steps.columns)
        boards = sim.imu_boards()
        assert set(boards) == {"imu_pelvis", "imu_tibia_left"}
    acc = read_session(out).devices["imu_tibia_left"].read_acc_g()  # the last device: the tibia
    lsb = sensor_of(sim.devices[1]).gain()[0]
    assert acc.shape == board["acc_g"].shape and np.abs(acc - board["acc_g"]).max() <= lsb / 2 + 1e-6


def test_lab_simulate_imus_on_ptys_and_their_truth_files(tmp_path):
    """``lab simulate --imu`` in its own process: INFO, CALIBRATION and DATA over a real pty (pyserial, the
    protocol functions); the rig file's entries; the ground truth written when it stops."""
    import subprocess
    import sys
    import tomllib

    import pandas as pd
    import serial

    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "treadlab.lab.cli", "simulate", "--workdir", str(work),
                             "--imu", "pelvis,tibia_right", "--imu-only", "--seconds", "6",
                             "--pelvic-drop-left", "9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("simulating"):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        entries = tomllib.loads((work / "rig.toml").read_text())["device"]
        assert [(d["kind"], d["placement"], d["rate_hz"]) for d in entries] == [("imu", "pelvis", 500),
                                                                              ("imu", "tibia_right", 1000)]
        with serial.Serial(str(work / "imu_tibia_right"), timeout=0.05) as ser:
            dec = p.FrameDecoder()

            def ask(cmd: int, want: int) -> bytes:
                ser.write(p.encode_message(cmd))
                end = time.monotonic() + 5.0
                while time.monotonic() < end:
                    for t, body in dec.feed(ser.read(ser.in_waiting or 1))[1]:
                        if t == want:
                            return body
                raise AssertionError(f"no answer to {p.describe(cmd)}")

            info = p.parse_info(ask(p.IDENTIFY, p.INFO))
            assert (info["kind"], info["placement"], info["dtype"], info["range_g"]) == ("imu", "tibia_right",
                                                                                      "i16", 32.0)
            unit, gain, _ = p.parse_calibration(ask(p.GET_CALIBRATION, p.CALIBRATION))
            assert unit == "imu" and len(gain) == len(info["channels"]) == 6
            ask(p.START, p.ACK)
            data = []
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                data += dec.feed(ser.read(ser.in_waiting or 1))[0]
        seq, _, raw = p.decode_data(data, 6, "i16")
        assert len(seq) > 500 and np.all(np.diff(seq.astype(np.int64)) == 1)
        gyro = raw[:, 3:] * gain[3:]
        assert np.abs(gyro).max() > 100.0  # a running shank
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    steps = pd.read_csv(work / "imu_steps.csv")
    strides = pd.read_csv(work / "imu_strides.csv")
    assert len(steps) >= 10 and len(strides) >= 8
    left = steps[steps["foot"] == "left"]["pelvic_drop_deg"]
    assert left.mean() == pytest.approx(9.0, abs=1.0)  # --pelvic-drop-left reached the model
    assert (work / "imu_boards.json").exists() and not (work / "imu_pelvis").exists()


def test_the_noise_follows_the_rate_set():
    spec = imu_specs(["pelvis"], seed=4)[0]
    dev = make_device(spec, EPOCH, RUNNER)
    import struct

    _, other = _decode(dev.receive(p.encode_message(p.SET_RATE, struct.pack("<H", 100)), EPOCH + S))
    assert other[0][0] == p.ACK
    dev.receive(p.encode_message(p.START), EPOCH + S)
    assert dev.source.sensor.rate_hz == 100.0
    assert dev.source.sensor.noise_sd()[1] == pytest.approx(0.007 * np.sqrt(50.0))
