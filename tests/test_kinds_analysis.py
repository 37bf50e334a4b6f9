"""A new device kind on the analysis side, registered from a test module without editing treadlab.

The toy kind is a one-channel "thermometer": its reader class, its C3D channel and its analysis-free export are
registered here; the file holds a ``/devices/thermo`` group written with the schema names of
``treadlab.fileformat`` beside two simulated insoles. (Recording and preview of the toy kind: the
acquisition-side tests.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sessionfactory import add_device_group, write_session

from treadlab.analysis import export as exportmod
from treadlab.analysis import session as sessionmod
from treadlab.analysis.export import c3d_analogs, export_csv
from treadlab.analysis.session import DeviceData, StreamData, read_session
from treadlab.drivers.sim.gait import RunnerParams

RATE_HZ = 10.0
GAIN, OFFSET = 0.01, 1000.0  # degC = 0.01 * (raw - 1000)


class ThermometerData(DeviceData):
    """Skin temperature, one channel in degC; keeps its sign (a cold room is below 0)."""

    def channel_labels(self) -> list[str]:
        return ["temperature"]

    def channel_units(self) -> list[str]:
        return ["degC"]

    def csv_columns_text(self, columns: list[str]) -> str:
        return "temperature in degC"


def thermometer_c3d(dev, index: int, grid) -> list[tuple[str, str, np.ndarray]]:
    blocks = ((dev.read_time(a, a + len(v)), v) for a, v in dev.iter_calibrated())
    return [(f"Temp{index + 1}", "degC", grid.resample(blocks, dev.rate_hz, 1)[0])]


def _add_thermometer(path, kind: str = "thermometer") -> tuple[np.ndarray, np.ndarray]:
    """Append a thermometer device group to a session file; returns its times and true temperatures."""
    t = 0.5 + np.arange(int(6 * RATE_HZ)) / RATE_HZ
    temp = 31.0 + 2.0 * np.sin(t) - 0.5 * (t > 3.0)
    raw = np.round(temp / GAIN + OFFSET).astype("u2")
    add_device_group(path, "thermo", kind=kind, raw=raw[:, None], time_s=t, gain=GAIN, offset=OFFSET, unit="degC",
                     info={"serial": "T-1"}, rate_hz=RATE_HZ)
    return t, temp


@pytest.fixture()
def thermo_file(tmp_path):
    path = tmp_path / "thermo.h5"
    write_session(path, RunnerParams(seed=5), duration_s=6.0)
    t, temp = _add_thermometer(path)
    return path, t, temp


@pytest.fixture()
def registered(monkeypatch):
    monkeypatch.setitem(sessionmod.READERS, "thermometer", ThermometerData)
    monkeypatch.setitem(exportmod.C3D_CHANNELS, "thermometer", thermometer_c3d)


def test_registered_kind_is_read_and_exported(thermo_file, registered, tmp_path):
    path, t, temp = thermo_file
    with read_session(path) as s:
        dev = s.devices["thermo"]
        assert type(dev) is ThermometerData and s.of_kind("thermometer") == [dev]
        assert dev.channel_labels() == ["temperature"] and dev.unit == "degC"
        np.testing.assert_allclose(dev.read_calibrated()[:, 0], temp, atol=GAIN / 2 + 1e-6)
        np.testing.assert_array_equal(dev.read_time(), t)
        assert sorted(s.insoles) == ["left", "right"]  # the other kinds are untouched
        an = c3d_analogs(s, step_events=False)
    assert an.labels[-1] == "Temp1" and an.units[-1] == "degC"
    on_grid = np.interp(an.time_s, t, temp)
    inside = (an.time_s >= t[0]) & (an.time_s <= t[-1])
    np.testing.assert_allclose(an.data[-1][inside], on_grid[inside], atol=0.02)
    files = export_csv(path, tmp_path / "csv")
    assert tmp_path / "csv" / "thermo.csv" in files
    csv = pd.read_csv(tmp_path / "csv" / "thermo.csv")
    assert list(csv.columns) == ["time_s", "temperature"]
    np.testing.assert_allclose(csv["temperature"], temp, atol=GAIN / 2 + 1e-6)
    readme = (tmp_path / "csv" / "README.txt").read_text()
    assert "thermo.csv: device 'thermo' (kind thermometer), 60 rows; time_s, then temperature in degC" in readme


def test_unknown_kind_is_a_generic_stream(thermo_file, tmp_path):
    """Without a registered reader the same group is read one way: a generic stream, values with their sign."""
    path, t, temp = thermo_file
    with read_session(path) as s:
        assert "thermo" not in s.devices
        dev = s.streams["thermo"]
        assert type(dev) is StreamData and dev.channel_labels() == ["ch01"] and dev.channel_units() == ["degC"]
        np.testing.assert_allclose(dev.read_calibrated()[:, 0], temp, atol=GAIN / 2 + 1e-6)
        an = c3d_analogs(s, step_events=False)
    assert not any(label.startswith("Temp") for label in an.labels)
    export_csv(path, tmp_path / "csv")
    csv = pd.read_csv(tmp_path / "csv" / "thermo.csv")
    assert list(csv.columns) == ["time_s", "ch01"]
