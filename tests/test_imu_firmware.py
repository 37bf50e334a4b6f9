"""The reference firmware's imu (``refdev --kind imu``, built with gcc) end to end: a real subprocess on a
pseudo-terminal, the binary driver, the recorder, the session file and :class:`~treadlab.analysis.imu_reader.ImuData`.
Every raw value is checked against the Python twin of the firmware's synthetic signal (``imu_values``), and the
reader's values in g and deg/s bit for bit against the firmware's own calibration (range / 32768, exact in float32).
"""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from tests.firmware_support import RefDev, host_build, imu_values, tools_missing
from treadlab.acquisition.recorder import Recorder
from treadlab.analysis.session import read_session
from treadlab.lab.rig import load_rig

pytestmark = pytest.mark.skipif(bool(tools_missing("make", "gcc")), reason="the firmware tests need make and gcc")


@pytest.fixture(scope="module")
def firmware_build(tmp_path_factory):
    """``refdev``, built with gcc once per session."""
    return host_build(tmp_path_factory)


@pytest.mark.parametrize("channels, placement", [
    (["ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz"], "tibia_left"),
    (["az", "ay", "ax"], "pelvis"),  # accelerometer only, in another wire order
])
def test_refdev_imu_to_the_reader_bit_exact(firmware_build, tmp_path, channels, placement):
    with RefDev(firmware_build / "refdev", tmp_path / "imu", "--kind", "imu", "--channels", ",".join(channels),
                "--placement", placement, "--rate", "500", "--serial", "FW-IMU") as rd:
        rig_path = tmp_path / "rig.toml"
        rig_path.write_text(f'[[device]]\nname = "imu1"\nport = "{rd.link}"\nkind = "imu"\n'
                            f'placement = "{placement}"\nserial = "FW-IMU"\n')
        rig = load_rig(rig_path)
        out = tmp_path / "fw.h5"
        with Recorder(list(rig.devices), {"participant": "FW"}, str(out), rig.text) as rec:
            rec.start()
            desc = rec.descriptions["imu1"]
            assert desc.kind == "imu" and desc.channel_labels == tuple(channels)
            time.sleep(1.0)
        assert rd.stop() == 0
    with h5py.File(out, "r") as f:
        g = f["devices/imu1"]
        assert g.attrs["placement"] == placement and list(g.attrs["channels"]) == channels
        assert g.attrs["range_g"] == 16.0 and g.attrs["range_dps"] == 2000.0
        assert (g.attrs["range_ut"] == 4900.0) if "mx" in channels else np.isnan(g.attrs["range_ut"])
        seq, ticks, raw = g["seq"][()], g["device_time"][()], g["raw"][()]
        assert g["calibration"].attrs["unit"] == "imu"
    assert len(seq) > 300 and np.all(np.diff(seq.astype(np.int64)) == 1)
    assert np.all(np.diff(ticks.astype(np.int64)) == 2000)  # 500 Hz on the 1 MHz clock
    sent = imu_values(ticks, 1_000_000, channels)
    assert raw.dtype == np.dtype("<i2") and np.array_equal(raw, sent)
    with read_session(out) as s:
        dev = s.devices["imu1"]
        acc = dev.read_acc_g()
        order = [channels.index(c) for c in ("ax", "ay", "az")]
        assert np.array_equal(acc, sent[:, order].astype(np.float32) * np.float32(16 / 32768))
        assert 0.9 < float(np.mean(acc[:, 2])) < 1.1  # about 1 g on z
        if dev.has_gyro:
            gyro = dev.read_gyro_dps()
            assert np.array_equal(gyro, sent[:, 3:6].astype(np.float32) * np.float32(2000 / 32768))
            assert np.array_equal(dev.read_mag_ut(), sent[:, 6:].astype(np.float32) * np.float32(4900 / 32768))
        else:
            assert dev.read_gyro_dps() is None
        assert dev.clipped_samples() == 0  # the synthetic signal stays inside 95 % of full scale


def test_lab_devices_names_an_imu_and_its_placement(firmware_build, tmp_path, capsys):
    from treadlab.lab.cli import main

    with RefDev(firmware_build / "refdev", tmp_path / "imu", "--kind", "imu", "--placement", "trunk",
                "--rate", "500") as rd:
        rig = tmp_path / "rig.toml"
        rig.write_text(f'[[device]]\nname = "trunk_imu"\nport = "{rd.link}"\nkind = "imu"\nplacement = "trunk"\n')
        code = main(["devices", "--rig", str(rig), "--seconds", "0.5"])
        wrong = tmp_path / "wrong.toml"
        wrong.write_text(f'[[device]]\nname = "trunk_imu"\nport = "{rd.link}"\nkind = "imu"\nplacement = "pelvis"\n')
        code_wrong = main(["devices", "--rig", str(wrong), "--seconds", "0.2"])
        assert rd.stop() == 0
    out = capsys.readouterr()
    assert code == 0 and "imu trunk 6 channels 500 Hz" in out.out
    assert code_wrong == 3 and "placement is 'trunk', the rig file says 'pelvis'" in out.out + out.err


@pytest.mark.parametrize("args, message", [
    (["--placement", "wrist"], "--placement must be pelvis, trunk, tibia_left, tibia_right"),
    (["--channels", "ax,ay,az,gx,gx"], "--channels names a channel twice"),
    (["--channels", "ax,gy,az"], "--channels must contain ax ay az"),
])
def test_refdev_refuses_an_imu_against_the_contract(firmware_build, tmp_path, args, message):
    with pytest.raises(AssertionError, match=message):
        with RefDev(firmware_build / "refdev", tmp_path / "imu", "--kind", "imu", *args):
            pass
