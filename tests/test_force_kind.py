"""The force kind: INFO validation (one clear ProtocolError per defect), shape, labels, units per channel, the
device-group attributes the writer stores through ``Kind.device_attrs``, and the ForceData reader on a file
written by the session writer (calibration of 32-bit counts, plates of split belts, role axes).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from treadlab.acquisition.writer import append_samples, create_session_file
from treadlab.analysis import ForceData, read_session
from treadlab.errors import ConfigError, ProtocolError
from treadlab.kinds import Calibration, DeviceDescription, get_kind, shape_from_info
from treadlab.kinds.force import allowed_channels, right_axis
from treadlab.lab.rig import load_rig

SINGLE = {"kind": "force", "dtype": "i32", "channels": ["Fx", "Fy", "Fz", "COPx", "COPy", "Tz", "belt_speed"],
          "belts": "single", "origin_mm": [0, 0, 0], "size_mm": [1800, 500], "axes": {"vertical": "z", "forward": "x"}}
SPLIT = {**SINGLE, "dtype": "f32", "belts": "split",
         "channels": [f"{c}_{s}" for s in "lr" for c in ("Fx", "Fy", "Fz", "Mx", "My", "Mz")],
         "origin_mm": [[0, 150, 0], [0, -150, 0]], "size_mm": [[1800, 280], [1800, 280]]}


def test_single_and_split_info_give_shape_labels_and_units():
    kind, shape = shape_from_info(SINGLE, "tm")
    assert kind.name == "force" and shape == (7,)
    assert kind.channel_labels(shape, SINGLE) == tuple(SINGLE["channels"])
    assert kind.channel_units(shape, SINGLE, "force") == ("N", "N", "N", "mm", "mm", "N·mm", "m/s")
    assert kind.channel_units(shape, SINGLE, "raw") == ()
    _, shape = shape_from_info(SPLIT, "tm")
    assert shape == (12,)
    assert get_kind("force").channel_units(shape, SPLIT, "force")[3:6] == ("N·mm",) * 3


def test_channel_vocabulary_follows_the_axes():
    assert allowed_channels({"vertical": "z", "forward": "x"}) == (
        "Fx", "Fy", "Fz", "Mx", "My", "Mz", "COPx", "COPy", "Tz", "belt_speed")
    assert allowed_channels({"vertical": "-y", "forward": "x"})[6:9] == ("COPx", "COPz", "Ty")
    # forward x vertical: facing +x with +z up the right is -y; with +y up (a motion-capture lab) it is +z
    assert right_axis({"vertical": "z", "forward": "x"}) == ("y", -1.0)
    assert right_axis({"vertical": "y", "forward": "x"}) == ("z", 1.0)
    assert right_axis({"vertical": "-y", "forward": "-x"}) == ("z", 1.0)


@pytest.mark.parametrize("change, message", [
    ({"dtype": "u16"}, "dtype 'u16' of a force device must be 'i32' or 'f32'"),
    ({"belts": "double"}, "belts must be 'single' or 'split'"),
    ({"axes": {"vertical": "z"}}, "axes must be"),
    ({"axes": {"vertical": "w", "forward": "x"}}, "axes.vertical must be x, y or z"),
    ({"axes": {"vertical": "z", "forward": "-z"}}, "vertical and forward are both 'z'"),
    ({"channels": []}, "channels must be a non-empty list"),
    ({"channels": ["Fx", "Fz", "Fz"]}, "channels name Fz more than once"),
    ({"channels": ["Fz", "COPz"]}, "'COPz' is not a force channel; with vertical axis 'z'"),
    ({"channels": ["Fx", "COPx"]}, "lack the vertical force Fz"),
    ({"origin_mm": [0, 0]}, "origin_mm must be one list [n, n, n]"),
    ({"size_mm": [1800, -5]}, "size_mm must be positive"),
])
def test_each_bad_info_is_one_clear_protocol_error_naming_the_device(change, message):
    with pytest.raises(ProtocolError, match="^tm: .*" + message.replace("[", r"\[").replace("(", r"\(")):
        shape_from_info({**SINGLE, **change}, "tm")


@pytest.mark.parametrize("change, message", [
    ({"channels": ["Fz_l", "Fz"]}, "'Fz' of a split-belt device must end in _l or _r"),
    ({"channels": ["Fz_l", "Fx_l", "Fz_r"]}, "both belts need the same channels"),
    ({"origin_mm": [0, 0, 0]}, "origin_mm must be a list per belt"),
])
def test_split_belt_defects(change, message):
    with pytest.raises(ProtocolError, match=message):
        shape_from_info({**SPLIT, **change}, "tm")


def test_rig_entry_refuses_insole_keys(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text('[[device]]\nname = "tm"\nport = "/dev/ttyACM0"\nkind = "force"\n')
    assert load_rig(rig).devices[0].kind == "force"
    rig.write_text('[[device]]\nname = "tm"\nport = "/dev/ttyACM0"\nkind = "force"\nside = "left"\n')
    with pytest.raises(ConfigError, match="'side' do not apply to a force device"):
        load_rig(rig)


def _recorded(tmp_path, info, raw, gain, offset):
    kind = get_kind("force")
    shape = kind.shape(info)
    desc = DeviceDescription(name="tm", kind="force", protocol="binary", shape=shape, dtype=raw.dtype,
                             rate_hz=1000.0, clock_hz=1e6, info=info, calibration=Calibration("force", gain, offset),
                             channel_labels=kind.channel_labels(shape, info),
                             channel_units=kind.channel_units(shape, info, "force"))
    path = tmp_path / "tm.h5"
    f = create_session_file(str(path), {"format": "treadlab-session", "format_version": 1}, [desc])
    idx = np.arange(len(raw))
    append_samples(f, "tm", idx.astype("u4"), (idx * 1000).astype("u8"), idx / 1000.0, idx / 1000.0, raw)
    f.close()
    return path


def test_writer_stores_the_kind_attributes_and_the_reader_calibrates_32_bit_counts(tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.integers(-2**30, 2**30, (50, 7)).astype("<i4")
    gain = np.array([1e-4, 1e-4, 2e-4, 0.01, 0.01, 0.5, 1e-6], np.float32)
    offset = np.array([0, 0, 2**20, 0, 0, 0, 0], np.float32)
    path = _recorded(tmp_path, SINGLE, raw, gain, offset)
    with read_session(path) as s:
        tm = s.devices["tm"]
        assert isinstance(tm, ForceData)
        assert tm.channels == SINGLE["channels"] and tm.belts == "single" and tm.axes == SINGLE["axes"]
        assert json.loads(tm.attrs["axes"]) == SINGLE["axes"]
        np.testing.assert_array_equal(tm.origin_mm, [[0, 0, 0]])
        np.testing.assert_array_equal(tm.size_mm, [[1800, 500]])
        assert tm.channel_units() == ["N", "N", "N", "mm", "mm", "N·mm", "m/s"]
        fz = tm.read_channels(["Fz"], 10, 20)["Fz"]
        assert fz.dtype == np.float32
        want = (raw[10:20, 2].astype(np.float64) - 2**20) * np.float64(gain[2])
        np.testing.assert_allclose(fz, want, rtol=1e-6)  # float32 of counts above 2**24 would be off by up to 64
        blocks = list(tm.iter_force(names=["Fz", "belt_speed"]))
        assert blocks[0][0] == 0 and set(blocks[0][2]) == {"Fz", "belt_speed"}
        np.testing.assert_array_equal(blocks[0][1], np.arange(50) / 1000.0)
        assert tm.channel("F", "vertical") == ("Fz", 1.0) and tm.channel("COP", "right") == ("COPy", -1.0)
        assert tm.channel("M", "vertical") == (None, 1.0)
        assert not tm.imported and tm.source_file == ""
        with pytest.raises(KeyError, match="no channel Mz"):
            tm.read_channels(["Mz"])


def test_split_belts_give_one_plate_per_belt(tmp_path):
    raw = np.arange(10 * 12, dtype="<f4").reshape(10, 12)
    path = _recorded(tmp_path, SPLIT, raw, np.ones(12, np.float32), np.zeros(12, np.float32))
    with read_session(path) as s:
        tm = s.devices["tm"]
        left, right = tm.plates()
        assert (left.belt, right.belt) == ("left", "right")
        assert left.channels["Fz"] == "Fz_l" and right.channels["Mx"] == "Mx_r"
        np.testing.assert_array_equal(right.origin_mm, [0, -150, 0])
        name, sign = tm.channel("F", "vertical", right)
        np.testing.assert_array_equal(tm.read_channels([name])[name], raw[:, 8])
        assert "split belts (left, right), 12 channels" in get_kind("force").summary(
            DeviceDescription(name="tm", kind="force", protocol="binary", shape=(12,), dtype=np.dtype("f4"),
                              rate_hz=1000, clock_hz=1e6, info=SPLIT, channel_labels=tuple(SPLIT["channels"])))
