"""The desktop app with an external LSL string stream in the rig (another program's markers).

A string stream has no samples to draw: the live views skip it (no device view), its row in the devices panel says
``markers`` and never turns "stalled" in the silence between markers, and a capture from the app stores its
markers. Real window offscreen (pytest-qt), a simulated insole on a pseudo-terminal, a test-owned pylsl outlet.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack

import h5py
import pytest

from tests.lsl_support import loopback_session
from treadlab import fileformat as ff
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.lab.gui import devices_panel, model
from treadlab.lab.gui.app import build_window

pylsl = pytest.importorskip("pylsl")


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """liblsl restricted to 127.0.0.1 with a session id of its own; skip if it cannot publish and resolve."""
    return loopback_session(tmp_path_factory, "gui-markers")


def _wait_consumer(outlet, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not outlet.have_consumers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert outlet.have_consumers(), "the app never opened the string stream"


def test_a_string_stream_gets_no_live_view_and_its_markers_are_recorded(loopback, qtbot, tmp_path):
    sid = f"gui-stim-{os.getpid()}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("stimulus", "Markers", 1, pylsl.IRREGULAR_RATE, "string", sid))
    sim = SimulatedRig.default(tmp_path / "sim")
    sim = SimulatedRig(sim.devices[:1], tmp_path / "sim", seed=5)  # one insole keeps the test light
    with sim, ExitStack() as stack:
        rig_path = sim.write_rig(tmp_path / "rig.toml")
        with open(rig_path, "a") as fh:
            fh.write(f'\n[[device]]\nname = "stim"\nprotocol = "lsl"\nsource_id = "{sid}"\n')
        win = build_window(stack, rig_path, tmp_path, title="markers rig")
        qtbot.addWidget(win)
        win.show()
        names = ("insole_left", "stim")
        qtbot.waitUntil(lambda: all(win.devices.state_of(n) == "streaming" for n in names), timeout=20000)
        _wait_consumer(outlet)
        outlet.push_sample(["preview marker"])
        qtbot.wait(int(1000 * (model.STALL_AFTER_S + 0.5)))  # silence longer than a stall
        source = win.source
        assert set(source.views) == {"insole_left"}, "the string stream got a live view"
        assert source.marker_streams == {"stim"}
        rows = {r.name: r for r in source.device_rows()}
        assert rows["stim"].kind == "markers" and rows["stim"].state == "streaming"
        table = win.devices.table
        stim_row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "stim")
        assert table.item(stim_row, devices_panel.COLUMNS.index("Samples/s")).text() == "markers"
        assert win.devices.state_of("stim") == "streaming"
        x, _ = win.force.curves["left"].getData()
        assert x is not None and len(x) > 500  # the insole's view fills as before

        s = win.session
        s.participant.setText("P03")
        s.record_button.click()
        assert source.recording
        qtbot.waitUntil(lambda: all(win.devices.state_of(n) == "streaming" for n in names), timeout=20000)
        _wait_consumer(outlet)
        qtbot.wait(300)
        outlet.push_sample(["go"])
        qtbot.wait(1000)
        assert set(source.views) == {"insole_left"}
        s.stop_button.click()
        path = win.last_path
        win.timer.stop()
    del outlet
    with h5py.File(path, "r") as f:
        labels = [x.decode() for x in f[ff.MARKERS]["label"][()]]
        assert labels == ["stim: go"] and "stim" not in f[ff.DEVICES]
