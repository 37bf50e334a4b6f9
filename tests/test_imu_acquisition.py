"""An imu through the real path: a protocol v1 fake on a pseudo-terminal (tests/fake_device.py), the binary driver,
the recorder, the session file and the imu reader; the rig's placement checked at connection; the app's live view
of an imu (offscreen, pytest-qt); CSV and C3D export of the recorded file (read back with pandas and ezc3d)."""

from __future__ import annotations

import time
from contextlib import ExitStack

import h5py
import numpy as np
import pandas as pd
import pytest

from tests.fake_device import FakeSpec, PtyFake, expected_values
from treadlab.acquisition.recorder import Recorder
from treadlab.analysis.export import export_c3d, export_csv
from treadlab.analysis.session import read_session
from treadlab.errors import DeviceMismatchError, ProtocolError
from treadlab.lab.rig import load_rig

SIX = ["ax", "ay", "az", "gx", "gy", "gz"]


def imu_spec(**info) -> FakeSpec:
    extra = {"channels": SIX, "placement": "pelvis", "range_g": 16, "range_dps": 2000, **info}
    return FakeSpec(kind="imu", rows=1, cols=len(extra["channels"]), dtype="i16", rate_hz=200, rates_hz=(200,),
                    serial="IMU-FAKE", info_extra=extra, cal_unit="imu", start_seq=4650)  # values cross 32767


def _rig(tmp_path, fake, extra='placement = "pelvis"\n'):
    path = tmp_path / "rig.toml"
    path.write_text(f'[[device]]\nname = "pelvis_imu"\nport = "{fake.path}"\nkind = "imu"\n{extra}')
    return load_rig(path)


def _record(rig, out, seconds=1.0):
    with Recorder(list(rig.devices), {"participant": "T"}, str(out), rig.text) as rec:
        rec.start()
        assert rec.descriptions["pelvis_imu"].channel_labels == tuple(SIX)
        assert rec.descriptions["pelvis_imu"].channel_units == ("g",) * 3 + ("deg/s",) * 3
        time.sleep(seconds)


@pytest.fixture
def recorded(tmp_path):
    with PtyFake(imu_spec()) as fake:
        out = tmp_path / "imu.h5"
        _record(_rig(tmp_path, fake), out)
    return out


def test_an_imu_is_recorded_value_for_value_and_read_in_its_units(recorded):
    with h5py.File(recorded, "r") as f:
        g = f["devices/pelvis_imu"]
        assert g.attrs["kind"] == "imu" and g.attrs["placement"] == "pelvis"
        assert list(g.attrs["channels"]) == SIX and g.attrs["range_dps"] == 2000.0
        seq = g["seq"][()]
        raw = g["raw"][()]
        assert raw.dtype == np.dtype("<i2") and len(seq) >= 120 and np.all(np.diff(seq.astype(np.int64)) == 1)
        assert np.array_equal(raw, expected_values(seq, 6, "i16"))  # every value as the device sent it
        assert raw.min() < -32000 and raw.max() > 32000  # the signed values survive the wrap at 32767
        assert g["calibration"].attrs["unit"] == "imu"
        assert [u.decode() for u in g["calibration/units"][()]] == ["g"] * 3 + ["deg/s"] * 3
    want = 0.5 * (expected_values(seq, 6, "i16").astype(np.float64) - np.arange(6))  # the fake's calibration
    with read_session(recorded) as s:
        dev = s.devices["pelvis_imu"]
        np.testing.assert_allclose(dev.read_acc_g(), want[:, :3], rtol=1e-6)
        np.testing.assert_allclose(dev.read_gyro_dps(), want[:, 3:], rtol=1e-6)


def test_the_placement_is_checked_at_connection(tmp_path):
    with PtyFake(imu_spec(placement="tibia_left")) as fake:
        rec = Recorder(list(_rig(tmp_path, fake).devices), {}, str(tmp_path / "x.h5"))
        with pytest.raises(DeviceMismatchError, match="pelvis_imu: .* placement is 'tibia_left', the rig file "
                                                      "says 'pelvis'"):
            rec.open()
    assert not (tmp_path / "x.h5").exists()


def test_an_info_against_the_contract_is_refused_at_connection(tmp_path):
    with PtyFake(imu_spec(channels=["ax", "ay", "gx", "gy", "gz"])) as fake:
        rec = Recorder(list(_rig(tmp_path, fake, "").devices), {}, str(tmp_path / "x.h5"))
        with pytest.raises(ProtocolError, match="pelvis_imu: INFO channels lacks az"):
            rec.open()


def test_csv_and_c3d_export_the_imu_channels_with_units(recorded, tmp_path):
    import ezc3d

    files = export_csv(recorded, tmp_path / "csv")
    assert tmp_path / "csv" / "pelvis_imu.csv" in files
    csv = pd.read_csv(tmp_path / "csv" / "pelvis_imu.csv")
    assert list(csv.columns) == ["time_s", *SIX]
    readme = (tmp_path / "csv" / "README.txt").read_text()
    assert "pelvis_imu.csv: imu 'pelvis_imu' (placement pelvis)" in readme and "gx [deg/s]" in readme
    with read_session(recorded) as s:
        dev = s.devices["pelvis_imu"]
        acc, t = dev.read_acc_g(), dev.read_time()
    np.testing.assert_allclose(csv[["ax", "ay", "az"]].to_numpy(), acc, rtol=1e-6)
    np.testing.assert_allclose(csv["time_s"], t, atol=1e-6)

    path = export_c3d(recorded, tmp_path / "imu.c3d", step_events=False)  # an imu-only session has a time base
    c = ezc3d.c3d(str(path))
    labels = c["parameters"]["ANALOG"]["LABELS"]["value"]
    units = c["parameters"]["ANALOG"]["UNITS"]["value"]
    assert labels == [f"pelvis_imu_{ch}" for ch in SIX]
    assert units == ["g"] * 3 + ["deg/s"] * 3
    assert c["parameters"]["ANALOG"]["RATE"]["value"][0] == pytest.approx(200.0)
    analogs = c["data"]["analogs"][0]
    t0 = c["parameters"]["TREADLAB"]["TIME0_S"]["value"][0]
    grid = t0 + np.arange(analogs.shape[1]) / 200.0
    inside = (grid >= t[0]) & (grid <= t[-1])
    for j in range(3):  # the same numbers on the export's grid (linear interpolation at the imu's own rate)
        np.testing.assert_allclose(analogs[j][inside], np.interp(grid[inside], t, acc[:, j]), rtol=1e-4, atol=1e-3)


def test_the_app_shows_an_imu_and_records_it(tmp_path, qtbot):
    from treadlab.lab.gui.imu_view import ImuLiveView
    from treadlab.lab.gui.main_window import MainWindow
    from treadlab.lab.gui.source import LiveSource

    with PtyFake(imu_spec()) as fake, ExitStack() as stack:
        source = LiveSource(_rig(tmp_path, fake), title="imu rig")
        stack.callback(source.close)
        win = MainWindow(source, tmp_path, refresh_hz=30.0)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: win.devices.state_of("pelvis_imu") == "streaming", timeout=10000)
        qtbot.waitUntil(lambda: "pelvis_imu" in win.imu.rows and win.imu.rows["pelvis_imu"].acc.shown_n > 50,
                        timeout=5000)
        assert win.imu.isVisible()
        row = win.imu.rows["pelvis_imu"]
        view = row.view
        assert isinstance(view, ImuLiveView) and view.placement == "pelvis" and row.gyro is not None
        win.timer.stop()  # the view stands still while it is checked
        # what the view keeps is the device's values in g and deg/s, with their sign, and what the rows draw
        _, recent = view.recent.snapshot()
        t, acc, gyro = view.window(1.0)
        want = 0.5 * (recent[-1].astype(np.float64) - np.arange(6))
        np.testing.assert_allclose(np.r_[acc[-1], gyro[-1]], want)
        row.refresh(float(t[-1]))
        x, y = row.gyro.curves[2].xData, row.gyro.curves[2].yData  # as set (getData is clipped to the view)
        at = np.flatnonzero(np.abs(x) < 1e-9)  # the sample checked above is drawn at x = 0 (newer ones may follow)
        assert len(y) > 50 and len(at) == 1 and y[at[0]] == pytest.approx(want[5])
        win.timer.start()
        win.session.participant.setText("T1")
        win.session.record_button.click()
        qtbot.wait(700)
        win.session.stop_button.click()
        assert win.last_path is not None
        win.timer.stop()
    with read_session(win.last_path) as s:
        assert s.devices["pelvis_imu"].n_samples > 50
