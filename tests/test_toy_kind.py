"""A new device kind added from outside treadlab: a one-channel "thermometer", registered in this module only.

It is described once (:class:`ThermometerKind`: INFO ``channels`` -> shape, its label, its LSL type), served by
a protocol v1 fake on a real pseudo-terminal (tests/fake_device.py), shown by a live view of its own, and then
recorded by ``Recorder``, previewed and recorded by the app, and read and exported through its reader class
(tests/test_kinds_analysis.py), with no edit to treadlab's modules: each layer takes it from the registry
(``docs/design.md``, "Adding a device kind").
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack

import h5py
import numpy as np
import pytest
from PySide6 import QtWidgets

from tests.fake_device import FakeSpec, PtyFake, expected_values
from treadlab import fileformat as ff
from treadlab.acquisition.recorder import Recorder
from treadlab.errors import ConfigError, UnknownKindError
from treadlab.kinds import Kind, get_kind, register_kind, unregister_kind
from treadlab.lab.gui.kind_views import KindView, register_view, unregister_view
from treadlab.lab.rig import load_rig


class ThermometerKind(Kind):
    """One temperature channel (INFO ``channels`` = 1)."""

    name = "thermometer"
    info_keys = ("channels",)
    lsl_type = "Temperature"

    def shape(self, info: dict) -> tuple[int, ...]:
        return (int(info["channels"]),)

    def channel_labels(self, shape, info) -> tuple[str, ...]:
        return ("temperature",)

    def check_rig(self, entry: dict, where: str) -> None:
        if "side" in entry:
            raise ConfigError(f"{where}: a thermometer has no side")


class ThermometerView(KindView):
    """The newest calibrated temperature."""

    def temperature(self) -> float | None:
        return None if self.latest is None else float(self.calibrated(self.latest)[0])


class ThermometerPanel(QtWidgets.QLabel):
    """A label with the newest temperature of each thermometer."""

    stretch = 1

    def __init__(self) -> None:
        super().__init__("no thermometer")
        self.views: list[ThermometerView] = []
        self.shown: list[float] = []

    def window_attrs(self) -> dict:
        return {"thermometer": self}

    def set_views(self, views) -> None:
        self.views = list(views)

    def reset(self, body_mass_kg=None) -> None:
        pass

    def set_body_mass(self, body_mass_kg) -> None:
        pass

    def refresh(self, now_s: float, slow: bool) -> None:
        for v in self.views:
            t = v.temperature()
            if t is not None:
                self.shown.append(t)
                self.setText(f"{v.name}: {t:.1f} {v.desc.unit}")


@pytest.fixture
def thermometer(tmp_path):
    """The kind and its view registered for one test, a fake thermometer on a pty, and a rig naming it."""
    register_kind(ThermometerKind())
    register_view("thermometer", ThermometerView, ThermometerPanel)
    spec = FakeSpec(kind="thermometer", rows=1, cols=1, dtype="u16", rate_hz=100, rates_hz=(100,),
                    serial="THERMO-1", info_extra={"channels": 1})
    try:
        with PtyFake(spec) as fake:
            rig = tmp_path / "rig.toml"
            rig.write_text(f'[[device]]\nname = "thermo"\nport = "{fake.path}"\nkind = "thermometer"\n')
            yield load_rig(rig), spec
    finally:
        unregister_view("thermometer")
        unregister_kind("thermometer")


def _check_file(path, spec, min_n):
    with h5py.File(path, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE
        g = f[ff.DEVICES]["thermo"]
        assert g.attrs["kind"] == "thermometer" and tuple(g.attrs["shape"]) == (1,)
        assert json.loads(g.attrs["info_json"])["channels"] == 1
        seq = g[ff.SEQ][()]
        assert len(seq) >= min_n and np.all(np.diff(seq.astype(np.int64)) == 1)
        assert np.array_equal(g[ff.RAW][()], expected_values(seq, 1, "u16"))  # every value as the device sent it
        assert g[ff.CALIBRATION].attrs["unit"] == "N" and g[ff.CALIBRATION]["gain"][0] == 0.5
        assert g.attrs["n_samples"] == len(seq) and g.attrs["lost_samples"] == 0


def test_a_toy_kind_is_recorded_by_the_recorder(thermometer, tmp_path):
    rig, spec = thermometer
    assert get_kind("thermometer").lsl_type == "Temperature"
    out = tmp_path / "thermo.h5"
    with Recorder(list(rig.devices), {"participant": "T"}, str(out), rig.text) as rec:
        rec.start()
        assert rec.descriptions["thermo"].channel_labels == ("temperature",)
        time.sleep(1.0)
    _check_file(out, spec, 60)


def test_a_toy_kind_is_previewed_and_recorded_by_the_app(thermometer, qtbot, tmp_path):
    from treadlab.lab.gui.main_window import MainWindow
    from treadlab.lab.gui.source import LiveSource

    rig, spec = thermometer
    with ExitStack() as stack:
        source = LiveSource(rig, title="thermometer rig")
        stack.callback(source.close)
        win = MainWindow(source, tmp_path, refresh_hz=30.0)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: win.devices.state_of("thermo") == "streaming", timeout=10000)
        qtbot.waitUntil(lambda: len(win.thermometer.shown) > 5, timeout=5000)  # its own live view draws it
        assert win.thermometer.text().startswith("thermo: ") and win.thermometer.text().endswith(" N")
        win.session.participant.setText("T1")
        win.session.record_button.click()
        assert source.recording
        qtbot.wait(1000)
        win.session.stop_button.click()
        assert not source.recording and win.last_path is not None
        win.timer.stop()
    _check_file(win.last_path, spec, 50)


def test_an_unknown_kind_is_one_error_at_connection(tmp_path):
    spec = FakeSpec(kind="barometer", rows=1, cols=1, info_extra={"channels": 1})
    with PtyFake(spec) as fake:
        rig = tmp_path / "rig.toml"
        rig.write_text(f'[[device]]\nname = "baro"\nport = "{fake.path}"\n')
        rec = Recorder(list(load_rig(rig).devices), {}, str(tmp_path / "x.h5"))
        with pytest.raises(UnknownKindError, match="baro: unknown device kind 'barometer'"):
            rec.open()
    rig.write_text('[[device]]\nname = "baro"\nport = "/dev/null"\nkind = "barometer"\n')
    with pytest.raises(ConfigError, match="'kind' must be"):
        load_rig(rig)


def test_a_recorded_toy_kind_is_read_and_exported(thermometer, monkeypatch, tmp_path):
    """The whole walk of a new kind: recorded through the real path, then read and exported by its reader class
    (registered from a test module, as in tests/test_kinds_analysis.py)."""
    import pandas as pd
    from test_kinds_analysis import ThermometerData

    from treadlab.analysis import session as sessionmod
    from treadlab.analysis.export import export_csv
    from treadlab.analysis.session import read_session

    rig, spec = thermometer
    out = tmp_path / "thermo.h5"
    with Recorder(list(rig.devices), {"participant": "T"}, str(out), rig.text) as rec:
        rec.start()
        time.sleep(1.0)
    _check_file(out, spec, 60)
    monkeypatch.setitem(sessionmod.READERS, "thermometer", ThermometerData)
    with h5py.File(out, "r") as f:
        g = f[ff.DEVICES]["thermo"]
        seq, t_file = g[ff.SEQ][()], g[ff.TIME][()]
    # the fake's calibration: gain 0.5, offset = the channel's index (0 for the one channel)
    want = 0.5 * expected_values(seq, 1, "u16")[:, 0].astype(np.float64)
    with read_session(out) as s:
        dev = s.devices["thermo"]
        assert type(dev) is ThermometerData and s.of_kind("thermometer") == [dev]
        cal = dev.read_calibrated()[:, 0]
        np.testing.assert_allclose(cal, want)
        np.testing.assert_array_equal(dev.read_time(), t_file)
    files = export_csv(out, tmp_path / "csv")
    assert tmp_path / "csv" / "thermo.csv" in files
    csv = pd.read_csv(tmp_path / "csv" / "thermo.csv")
    assert list(csv.columns) == ["time_s", "temperature"] and len(csv) == len(seq)
    np.testing.assert_allclose(csv["temperature"], cal, rtol=1e-6)
    np.testing.assert_allclose(csv["time_s"], t_file, atol=1e-6)
