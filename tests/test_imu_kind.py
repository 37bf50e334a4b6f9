"""The imu kind (issue 14): INFO and rig validation, the session-file layout written by the real writer, and the
reader's units and clipping counts, against values known by construction."""

from __future__ import annotations

import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from treadlab import fileformat as ff
from treadlab.acquisition.writer import SessionWriter, create_session_file
from treadlab.analysis.imu_reader import ImuData
from treadlab.analysis.session import read_session
from treadlab.drivers.common import check_info
from treadlab.errors import ConfigError, DeviceMismatchError, ProtocolError
from treadlab.kinds import Calibration, DeviceDescription, get_kind, shape_from_info
from treadlab.kinds import imu as k
from treadlab.lab.rig import load_rig

SIX = ["ax", "ay", "az", "gx", "gy", "gz"]


def imu_info(**over) -> dict:
    """A valid imu INFO (6 channels on the pelvis), with keys replaced or removed (value None)."""
    info = {"protocol": 1, "kind": "imu", "model": "test", "serial": "IMU-1", "firmware": "1", "dtype": "i16",
            "adc_bits": 16, "rate_hz": 500, "rates_hz": [500], "clock_hz": 1_000_000, "channels": list(SIX),
            "placement": "pelvis", "range_g": 16, "range_dps": 2000}
    for key, v in over.items():
        if v is None:
            info.pop(key, None)
        else:
            info[key] = v
    return info


# ------------------------------------------------------------------------------------------------ INFO


def test_a_valid_info_gives_the_shape_labels_units_and_attributes():
    kind, shape = shape_from_info(imu_info(), "pelvis_imu")
    assert kind.name == "imu" and shape == (6,)
    assert kind.channel_labels(shape, imu_info()) == tuple(SIX)
    assert kind.channel_units(shape, imu_info(), "imu") == ("g",) * 3 + ("deg/s",) * 3
    assert kind.channel_units(shape, imu_info(), "raw") == ()  # raw counts: one unit, "raw"
    attrs = kind.device_attrs(imu_info())
    assert attrs["placement"] == "pelvis" and attrs["channels"] == SIX
    assert attrs["range_g"] == 16.0 and attrs["range_dps"] == 2000.0 and math.isnan(attrs["range_ut"])
    nine = imu_info(channels=SIX + ["mx", "my", "mz"], range_ut=4900)
    assert get_kind("imu").channel_units((9,), nine, "imu")[-1] == "uT"
    acc_only = imu_info(channels=["az", "ax", "ay"], range_dps=None)  # any order; no gyro needs no range_dps
    assert shape_from_info(acc_only, "tibia")[1] == (3,)


@pytest.mark.parametrize("over, message", [
    ({"dtype": "u16"}, "pelvis_imu: an imu sends dtype 'i16', INFO says 'u16'"),
    ({"channels": "ax,ay,az"}, "INFO channels must be a list of channel names"),
    ({"channels": []}, "INFO channels must be a list of channel names"),
    ({"channels": ["ax", "ay", "az", "qx"]}, "INFO channels has unknown name 'qx'"),
    ({"channels": ["ax", "ay", "az", "gx", "gx"]}, "INFO channels names 'gx' more than once"),
    ({"channels": ["ax", "ay", "gx", "gy", "gz"]}, "INFO channels lacks az"),
    ({"placement": "wrist"}, "INFO placement must be one of pelvis, trunk, tibia_left, tibia_right"),
    ({"placement": None}, "INFO lacks placement"),
    ({"range_g": 0}, "INFO range_g must be a positive number"),
    ({"range_g": "16"}, "INFO range_g must be a positive number"),
    ({"range_dps": None}, "INFO lacks range_dps (an imu with g* channels sends it)"),
    ({"range_dps": -250}, "INFO range_dps must be a positive number"),
    ({"channels": SIX + ["mx", "my", "mz"]}, "INFO lacks range_ut"),
])
def test_each_bad_info_is_one_clear_protocol_error(over, message):
    with pytest.raises(ProtocolError, match=re.escape(message)) as exc:
        shape_from_info(imu_info(**over), "pelvis_imu")
    assert str(exc.value).startswith("pelvis_imu: ")


def test_the_summary_line():
    desc = DeviceDescription(name="p", kind="imu", protocol="binary", shape=(6,), dtype=np.dtype("<i2"),
                             rate_hz=500.0, clock_hz=1e6, info=imu_info())
    assert get_kind("imu").summary(desc) == "imu pelvis 6 channels 500 Hz"


# ------------------------------------------------------------------------------------------------ rig


def _rig(tmp_path: Path, body: str):
    path = tmp_path / "rig.toml"
    path.write_text('[[device]]\nname = "pelvis_imu"\nport = "/dev/null"\n' + body)
    return load_rig(path)


def test_a_rig_entry_names_kind_and_placement_and_both_are_checked_against_info(tmp_path):
    cfg = _rig(tmp_path, 'kind = "imu"\nplacement = "tibia_left"\n').devices[0]
    assert cfg.kind == "imu" and cfg.expect == {"placement": "tibia_left"}
    check_info(imu_info(placement="tibia_left"), cfg, cfg.name, "/dev/pts/9")
    with pytest.raises(DeviceMismatchError, match="placement is 'pelvis', the rig file says 'tibia_left'"):
        check_info(imu_info(), cfg, cfg.name, "/dev/pts/9")
    with pytest.raises(DeviceMismatchError, match="kind is 'insole', the rig file says 'imu'"):
        check_info({"kind": "insole", "side": "left", "sensels": 16}, cfg, cfg.name, "/dev/pts/9")
    assert _rig(tmp_path, 'kind = "imu"\n').devices[0].expect == {}  # placement is optional


@pytest.mark.parametrize("body, message", [
    ('kind = "imu"\nplacement = "wrist"\n', "'placement' must be one of 'pelvis', 'trunk', 'tibia_left'"),
    ('placement = "pelvis"\n', "'placement' only applies to kind = 'imu' entries"),
    ('kind = "insole"\nplacement = "pelvis"\n', "'placement' only applies to kind = 'imu' entries"),
    ('kind = "imu"\nside = "left"\n', "an imu has no 'side'; say where it is worn with 'placement'"),
    ('kind = "imu"\nplacement = 3\n', "'placement' must be one of"),
])
def test_bad_rig_entries_are_one_config_error(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        _rig(tmp_path, body)


# ------------------------------------------------------------------------------------------------ file


def _description(name="pelvis_imu", info=None, calibration="imu", shape=None):
    info = info or imu_info()
    shape = shape or (len(info["channels"]),)
    kind = get_kind("imu")
    cal = None
    if calibration == "imu":
        gains = np.array([info[k.RANGE_KEYS[c[0]]] / 32768.0 for c in info["channels"]], np.float32)
        cal = Calibration("imu", gains, np.arange(len(gains), dtype=np.float32))
    unit = cal.unit if cal else "raw"
    return DeviceDescription(
        name=name, kind="imu", protocol="binary", shape=shape, dtype=np.dtype("<i2"), rate_hz=500.0, clock_hz=1e6,
        serial="IMU-1", info=info, calibration=cal, channel_labels=kind.channel_labels(shape, info),
        channel_units=kind.channel_units(shape, info, unit))


def write_imu_session(path: Path, descs: list[DeviceDescription], raws: dict[str, np.ndarray],
                      rate_hz: float = 500.0) -> dict[str, np.ndarray]:
    """A complete session file of imus written by the real writer; returns each device's times."""
    root = {ff.A_FORMAT: ff.FORMAT, ff.A_FORMAT_VERSION: ff.FORMAT_VERSION, "start_monotonic_ns": np.int64(10**12),
            "participant": "imu", "condition": "test", ff.A_BODY_MASS_KG: 70.0, ff.A_TREADMILL_SPEED_MPS: 3.0}
    writer = SessionWriter(create_session_file(str(path), root, descs), max_items=1 << 16, max_bytes=1 << 34)
    writer.start()
    times = {}
    try:
        for d in descs:
            raw = raws[d.name]
            t = 0.5 + np.arange(len(raw)) / rate_hz
            times[d.name] = t
            for a in range(0, len(raw), 5000):  # the recorder's batches are small; a few here
                s = slice(a, a + 5000)
                seq = np.arange(len(raw))[s].astype("u4")
                assert writer.put_samples(d.name, seq, np.round(t[s] * 1e6).astype("u8"), t[s], t[s] + 0.002, raw[s])
    finally:
        writer.stop()
    assert writer.error is None
    with h5py.File(path, "r+", libver=ff.LIBVER) as f:
        f.attrs[ff.A_STATE] = ff.STATE_COMPLETE
    return times


def test_the_writer_lays_out_an_imu_group_per_the_contract(tmp_path):
    nine = imu_info(channels=SIX + ["mx", "my", "mz"], range_ut=4900, placement="trunk")
    raw = (np.arange(900, dtype=np.int64).reshape(100, 9) * 97 % 65536 - 32768).astype("<i2")
    write_imu_session(tmp_path / "s.h5", [_description("trunk_imu", nine)], {"trunk_imu": raw})
    with h5py.File(tmp_path / "s.h5", "r") as f:
        g = f["devices/trunk_imu"]
        assert g.attrs["kind"] == "imu" and g.attrs["placement"] == "trunk"
        assert [c.decode() if isinstance(c, bytes) else c for c in g.attrs["channels"]] == nine["channels"]
        assert tuple(g.attrs["shape"]) == (9,)
        assert (g.attrs["range_g"], g.attrs["range_dps"], g.attrs["range_ut"]) == (16.0, 2000.0, 4900.0)
        assert g["raw"].dtype == np.dtype("<i2") and g["raw"].shape == (100, 9)
        assert np.array_equal(g["raw"][()], raw)
        cal = g["calibration"]
        assert cal.attrs["unit"] == "imu" and cal["gain"].dtype == np.float32 and cal["gain"].shape == (9,)
        assert cal["offset"].dtype == np.float32 and cal["offset"].shape == (9,)
        assert cal["units"].dtype.kind == "S"  # fixed-length str
        assert [u.decode() for u in cal["units"][()]] == ["g"] * 3 + ["deg/s"] * 3 + ["uT"] * 3
        for name in ("seq", "device_time", "time", "host_time", "gaps", "clock/segments", "clock/pings"):
            assert name in g


def test_the_reader_gives_physical_units_from_the_calibration(tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.integers(-32768, 32768, (12345, 6)).astype("<i2")
    d = _description()
    write_imu_session(tmp_path / "s.h5", [d], {"pelvis_imu": raw})
    gain, offset = d.calibration.gain.astype(np.float64), d.calibration.offset.astype(np.float64)
    want = (raw - offset) * gain
    with read_session(tmp_path / "s.h5") as s:
        dev = s.devices["pelvis_imu"]
        assert type(dev) is ImuData and s.of_kind("imu") == [dev]
        assert dev.placement == "pelvis" and dev.channels == SIX and dev.has_gyro and not dev.has_mag
        assert (dev.range_g, dev.range_dps) == (16.0, 2000.0) and math.isnan(dev.range_ut)
        assert dev.channel_units() == ["g"] * 3 + ["deg/s"] * 3 and dev.calibrated
        acc, gyro = dev.read_acc_g(), dev.read_gyro_dps()
        assert acc.dtype == np.float32 and acc.shape == (12345, 3)
        np.testing.assert_allclose(acc, want[:, :3], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(gyro, want[:, 3:], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(dev.read_acc_g(100, 200), want[100:200, :3], rtol=1e-5, atol=1e-5)
        assert dev.read_mag_ut() is None
        assert dev.read_time().shape == (12345,)
        # blocks: every row once, in order, the same numbers
        dev.block_rows = lambda: 4096
        blocks = list(dev.iter_imu(10, 12000))
        assert [b[0] for b in blocks] == list(range(10, 12000, 4096))
        np.testing.assert_array_equal(np.concatenate([b[2] for b in blocks]), acc[10:12000])
        np.testing.assert_array_equal(np.concatenate([b[3] for b in blocks]), gyro[10:12000])
        np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), dev.read_time(10, 12000))


def test_without_calibration_the_reader_converts_counts_through_the_ranges(tmp_path):
    info = imu_info(channels=["ax", "ay", "az"], range_dps=None, range_g=8, placement="tibia_right")
    raw = np.array([[32767, -32768, 4096], [0, 16384, -4096]], "<i2")
    write_imu_session(tmp_path / "s.h5", [_description("tib", info, calibration=None)], {"tib": raw})
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert f["devices/tib/calibration"].attrs["unit"] == "raw" and "units" not in f["devices/tib/calibration"]
    with read_session(tmp_path / "s.h5") as s:
        dev = s.devices["tib"]
        assert dev.unit == "raw" and dev.calibrated and not dev.has_gyro and dev.read_gyro_dps() is None
        np.testing.assert_allclose(dev.read_acc_g(), raw / 32768.0 * 8.0, rtol=1e-6)
        assert dev.channel_units() == ["g", "g", "g"]
        assert list(dev.iter_imu())[0][3] is None


def test_clipping_is_a_sample_at_95_percent_of_full_scale_on_any_axis(tmp_path):
    n = 10000
    raw = np.zeros((n, 6), "<i2")
    limit = int(np.ceil(0.95 * 32768))  # 31130 counts = 95.0006 % of 16 g with gain 16/32768
    acc_rows = np.array([5, 17, 400, 9000])
    raw[acc_rows, [0, 1, 2, 0]] = [limit, -limit, 32767, -32768]
    raw[6, 0] = limit - 1  # just under: not clipping
    gyro_rows = np.array([50, 51, 52])
    raw[gyro_rows, 4] = [limit, -limit, 32000]
    d = _description(calibration=None)  # counts, gain = range / 32768 exactly
    write_imu_session(tmp_path / "s.h5", [d], {"pelvis_imu": raw})
    with read_session(tmp_path / "s.h5") as s:
        dev = s.devices["pelvis_imu"]
        dev.block_rows = lambda: 1024  # counted across blocks
        mask = dev.clipped_mask(sensor="acc")
        assert np.array_equal(np.flatnonzero(mask), acc_rows)
        assert np.array_equal(np.flatnonzero(dev.clipped_mask(sensor="gyro")), gyro_rows)
        assert np.array_equal(np.flatnonzero(dev.clipped_mask()), np.sort(np.r_[acc_rows, gyro_rows]))
        assert np.array_equal(np.flatnonzero(dev.clipped_mask(0, 20, "acc")), [5, 17])
        assert dev.clipped_samples("acc") == 4 and dev.clipped_samples() == 7
        assert dev.clipping_fraction("acc") == pytest.approx(4 / n)
        assert dev.clipping_fraction() == pytest.approx(7 / n)
        assert math.isnan(dev.clipping_fraction("mag"))  # no magnetometer: unknown, not zero
        with pytest.raises(ValueError, match="sensor must be"):
            dev.clipped_mask(sensor="baro")


def test_clipping_uses_the_calibrated_value_and_the_stated_range(tmp_path):
    """With an offset the clip level moves with it: 95 % of full scale in g, not in counts."""
    info = imu_info(channels=["ax", "ay", "az"], range_dps=None, range_g=4)
    gain = np.full(3, 4 / 32768, np.float32)
    offset = np.array([1000, 0, 0], np.float32)
    raw = np.array([[31130, 0, 0], [31130 + 1000, 0, 0], [-31130 + 1000, 0, 0]], "<i2")
    d = _description("a", info)
    d = DeviceDescription(**{**d.__dict__, "calibration": Calibration("imu", gain, offset)})
    write_imu_session(tmp_path / "s.h5", [d], {"a": raw})
    with read_session(tmp_path / "s.h5") as s:
        assert s.devices["a"].clipped_mask(sensor="acc").tolist() == [False, True, True]


def test_a_raw_file_whose_range_is_unknown_keeps_counts_for_that_sensor(tmp_path):
    """A file written without CALIBRATION and without a gyroscope range (not a protocol v1 device): the
    accelerometer in g from its range, the gyroscope left in counts and said so."""
    info = imu_info(range_dps=None)
    raw = np.array([[16384, 0, -16384, 100, -200, 300]], "<i2")
    write_imu_session(tmp_path / "s.h5", [_description(info=info, calibration=None)], {"pelvis_imu": raw})
    with read_session(tmp_path / "s.h5") as s:
        dev = s.devices["pelvis_imu"]
        assert dev.channel_units() == ["g"] * 3 + ["counts"] * 3 and not dev.calibrated
        np.testing.assert_allclose(dev.read_calibrated()[0], [8.0, 0.0, -8.0, 100, -200, 300])
        assert dev.clipped_samples("gyro") == 0 and math.isnan(dev.clipping_fraction("gyro"))


def test_the_fast_clip_mask_is_the_definition_for_any_calibration(tmp_path):
    """The mask compares counts with per-channel limits; it must equal |gain * (raw - offset)| >= 95 % of range
    (float64) for every count, at any gain and offset: checked on every count near the limits."""
    rng = np.random.default_rng(11)
    info = imu_info(range_g=8, range_dps=500)
    gain = (np.array([8.0] * 3 + [500.0] * 3) / 32768 * rng.uniform(0.97, 1.03, 6)).astype(np.float32)
    offset = rng.uniform(-300, 300, 6).astype(np.float32)
    g64, o64 = gain.astype(np.float64), offset.astype(np.float64)
    full = np.array([8.0] * 3 + [500.0] * 3)
    edge = np.ceil(o64 + 0.95 * full / g64).astype(np.int64), np.floor(o64 - 0.95 * full / g64).astype(np.int64)
    rows = []
    for j in range(6):
        for e in (edge[0][j], edge[1][j]):
            for x in range(e - 3, e + 4):
                r = np.zeros(6, np.int64)
                r[j] = np.clip(x, -32768, 32767)
                rows.append(r)
    raw = np.array(rows, "<i2")
    d = _description(info=info)
    d = DeviceDescription(**{**d.__dict__, "calibration": Calibration("imu", gain, offset)})
    write_imu_session(tmp_path / "s.h5", [d], {"pelvis_imu": raw})
    want = np.any(np.abs(g64 * (raw.astype(np.float64) - o64)) >= 0.95 * full, axis=1)
    with read_session(tmp_path / "s.h5") as s:
        got = s.devices["pelvis_imu"].clipped_mask()
    assert want.any() and not want.all()
    np.testing.assert_array_equal(got, want)
