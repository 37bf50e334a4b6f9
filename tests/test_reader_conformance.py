"""One conformance test for every reader kind (the idea of MNE's ``_test_raw_reader``).

Every device-data class the reader registers (insole, mat, LSL stream) and the generic reader of an unknown kind
must give the same verbs with the same contract: calibrated values of the documented shape and calibration, one
label and one unit a channel, blocks that tile the whole, times that match, a refresh that changes nothing, a CSV
export that reads back, and a damaged group that is one clear SessionFileError.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from sessionfactory import InsoleSpec, MatSpec, add_device_group, write_session

from treadlab import fileformat as ff
from treadlab.analysis import session as sessionmod
from treadlab.analysis.export import export_csv
from treadlab.analysis.session import READERS, DeviceData, StreamData, read_session
from treadlab.calibration import apply_calibration
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.errors import SessionFileError

#: Device name in the file -> the kind its group carries.
KINDS = {"insole_left": "insole", "mat": "mat", "emg": "lsl", "imu": "imu-not-registered", "pelvis_imu": "imu",
         "plate": "force"}


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory):
    path = tmp_path_factory.mktemp("conf") / "kinds.h5"
    write_session(path, RunnerParams(seed=8), duration_s=2.0, insoles=InsoleSpec(rate_hz=200.0),
                  mat=MatSpec(rows=40, cols=16, rate_hz=60.0))
    rng = np.random.default_rng(1)
    t = 0.5 + np.arange(400) / 200.0
    add_device_group(path, "emg", kind="lsl", raw=rng.normal(0, 100, (400, 3)).astype("f4"), time_s=t,
                     gain=np.array([0.5, 1.0, 2.0]), offset=np.array([1.0, 0.0, -1.0]), unit="uV",
                     info={"name": "EMG", "type": "EMG", "labels": ["TA", "GM", "GM"], "units": ["uV"] * 3})
    add_device_group(path, "imu", kind="imu-not-registered", raw=rng.integers(-500, 500, (400, 6)).astype("i2"),
                     time_s=t, gain=0.01, unit="g")
    add_device_group(path, "pelvis_imu", kind="imu", raw=rng.integers(-32768, 32768, (400, 6)).astype("i2"),
                     time_s=t, gain=np.array([16.0] * 3 + [2000.0] * 3) / 32768, offset=np.arange(6.0), unit="imu",
                     info={"channels": ["ax", "ay", "az", "gx", "gy", "gz"], "placement": "pelvis", "range_g": 16,
                           "range_dps": 2000, "dtype": "i16"})
    add_device_group(path, "plate", kind="force", raw=rng.normal(0, 300, (400, 4)).astype("f4"), time_s=t,
                     gain=np.array([2.0, 2.0, 1.0, 1.0]), offset=np.array([0.5, 0.0, 0.0, 3.0]), unit="force",
                     info={"dtype": "f32", "channels": ["Fx", "Fz", "COPx", "COPy"], "belts": "single",
                           "origin_mm": [0, 0, 0], "size_mm": [1800, 500], "axes": {"vertical": "z", "forward": "x"}})
    return path


def _where(s, name):
    return s.devices.get(name) or s.streams[name]


@pytest.mark.parametrize("name", list(KINDS))
def test_reader_conformance(every_kind, name, tmp_path):
    with read_session(every_kind) as s:
        dev = _where(s, name)
        kind = KINDS[name]
        assert isinstance(dev, DeviceData) and dev.kind == kind and dev.name == name
        assert type(dev) is READERS.get(kind, StreamData)
        assert (name in s.streams) == dev.stream and (name in s.devices) != dev.stream
        n, m = dev.n_samples, dev.n_values
        assert n > 10 and m >= 1
        # values: shape, calibration (the one formula), one label and one unit a channel
        whole = dev.read_calibrated()
        assert whole.shape == (n, m)
        raw = dev.read_raw().reshape(n, m)
        np.testing.assert_array_equal(whole, apply_calibration(raw, dev.gain, dev.offset, clip=dev.clip_negative,
                                                               dtype=whole.dtype))
        if dev.clip_negative:
            assert whole.min() >= 0.0
        labels, units = dev.channel_labels(), dev.channel_units()
        assert len(labels) == m and len(units) == m and all(isinstance(u, str) for u in units)
        # blocks tile the whole, and ranges read the same rows
        blocks = list(dev.iter_calibrated())
        assert [a for a, _ in blocks] == sorted(a for a, _ in blocks) and blocks[0][0] == 0
        np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), whole)
        np.testing.assert_array_equal(dev.read_calibrated(3, 9), whole[3:9])
        part = list(dev.iter_calibrated(5, n - 4))
        np.testing.assert_array_equal(np.concatenate([b for _, b in part]), whole[5:n - 4])
        # times
        t = dev.read_time()
        assert t.shape == (n,) and np.all(np.diff(t) > 0)
        np.testing.assert_array_equal(dev.time, t)
        np.testing.assert_array_equal(dev.read_time(2, 6), t[2:6])
        np.testing.assert_array_equal(dev.times_at(np.array([4, 0, 4])), t[[4, 0, 4]])
        assert dev.rate_hz == pytest.approx(1.0 / np.median(np.diff(t)), rel=1e-3)
        # a refresh re-reads the same data
        s.refresh()
        again = _where(s, name)
        np.testing.assert_array_equal(again.read_calibrated(), whole)
    # the CSV export writes every kind through the same verbs
    export_csv(every_kind, tmp_path / "csv")
    csv = pd.read_csv(tmp_path / "csv" / f"{name}.csv")
    assert len(csv) == n and csv.columns[0] == "time_s" and len(csv.columns) == m + 1
    np.testing.assert_allclose(csv["time_s"].to_numpy(), t, rtol=0, atol=1e-9)
    np.testing.assert_allclose(csv.iloc[:, 1:].to_numpy(), whole, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("name", list(KINDS))
def test_reader_conformance_damaged_group_is_one_clear_error(every_kind, name, tmp_path):
    p = tmp_path / "damaged.h5"
    p.write_bytes(every_kind.read_bytes())
    with h5py.File(p, "r+") as f:
        del f[f"{ff.DEVICES}/{name}/{ff.CALIBRATION}/{ff.CAL_GAIN}"]
    with pytest.raises(SessionFileError, match=f"{name}"):
        read_session(p)


def test_every_registered_kind_is_covered():
    assert set(READERS) <= set(KINDS.values()), "a registered reader kind has no conformance case"
    assert sessionmod.reader_for("anything-else", {}) is StreamData
