"""Desktop app pieces without the acquisition: model functions and widgets fed with generated data."""

from __future__ import annotations

import numpy as np
import pytest

from treadlab.errors import ConfigError
from treadlab.fileformat import ROOT_ATTRS
from treadlab.lab.gui import model

# ---------------------------------------------------------------------------------------------- Qt-free model


@pytest.mark.parametrize(
    ("reported", "age_s", "expected"),
    [
        ("streaming", 0.05, "streaming"),
        ("streaming", 1.0, "stalled"),
        ("streaming", float("inf"), "stalled"),
        ("stalled", 0.2, "streaming"),
        ("reconnecting", 5.0, "reconnecting"),
        ("lost", 0.0, "lost"),
        ("disconnected", 9.0, "disconnected"),
        ("something-new", 0.0, "lost"),
    ],
)
def test_classify_state_turns_a_silent_streaming_device_stalled(reported, age_s, expected):
    assert model.classify_state(reported, age_s) == expected


def test_device_row_colour_and_message():
    row = model.DeviceRow("mat", "mat", None, "stalled", 0.0, 120.0, 3, 1, None, 1.34)
    assert row.colour == model.STATE_COLOURS["stalled"] != model.STATE_COLOURS["streaming"]
    assert row.message == "stalled 1.3 s"


def test_validate_session_form_accepts_and_names_the_bad_field():
    meta = model.validate_session_form(" P07 ", "baseline", 68.5, 3.2, "racer", "note ")
    assert meta == {"participant": "P07", "condition": "baseline", "body_mass_kg": 68.5,
                    "treadmill_speed_mps": 3.2, "shoe": "racer", "notes": "note"}
    assert set(meta) <= set(ROOT_ATTRS)
    with pytest.raises(ConfigError, match="participant"):
        model.validate_session_form("  ", "", 70, 3, "", "")
    with pytest.raises(ConfigError, match=r"body mass: 19.9 kg is outside 20-300 kg"):
        model.validate_session_form("P1", "", 19.9, 3, "", "")
    with pytest.raises(ConfigError, match="body mass"):
        model.validate_session_form("P1", "", float("nan"), 3, "", "")
    with pytest.raises(ConfigError, match=r"treadmill speed: 12.5 m/s"):
        model.validate_session_form("P1", "", 70, 12.5, "", "")
    assert model.validate_session_form("P1", "", 300, 0, "", "")["treadmill_speed_mps"] == 0.0


def test_formatting_and_file_names(tmp_path):
    assert model.format_bytes(999) == "999 B"
    assert model.format_bytes(1536) == "1.5 kB"
    assert model.format_bytes(2_500_000_000) == "2.5 GB"
    assert model.format_elapsed(125.9) == "02:05"
    assert model.format_elapsed(3725) == "1:02:05"
    assert model.session_filename("P 01", "base/line", "20260101-101500") == "P-01_base-line_20260101-101500.h5"
    assert model.free_space_bytes(tmp_path / "not" / "yet") > 0


def test_sensel_raster_puts_each_value_at_its_sensel():
    xs, ys = np.meshgrid(np.arange(-30, 31, 10.0), np.arange(0, 251, 10.0))
    pos = np.column_stack([xs.ravel(), ys.ravel()])
    r = model.SenselRaster(pos, pixel_mm=2.0)
    values = np.arange(len(pos), dtype=np.float32) + 1.0
    img = r.image(values)
    x0, y0, w, h = r.rect_mm_
    assert img.shape == r.index_.shape and img.dtype == np.float32
    rows = ((pos[:, 1] - y0) / 2.0).astype(int)
    cols = ((pos[:, 0] - x0) / 2.0).astype(int)
    np.testing.assert_array_equal(img[rows, cols], values)
    assert img[0, 0] == 0.0  # corner is outside every sensel's reach
    assert set(np.unique(img)) <= set(values) | {0.0}
    with pytest.raises(ConfigError):
        model.SenselRaster(np.zeros((0, 2)))


# ---------------------------------------------------------------------------------------------------- widgets


def _row(name, state, **kw):
    base = {"kind": "insole", "side": "left", "rate_hz": 748.0, "nominal_hz": 750.0, "lost_n": 0,
            "crc_errors_n": 0, "drift_ppm": 12.34, "stalled_s": 0.0}
    base.update(kw)
    return model.DeviceRow(name=name, state=state, **base)


def test_devices_panel_rows_lights_and_buttons(qtbot):
    from treadlab.lab.gui.devices_panel import DevicesPanel

    panel = DevicesPanel()
    qtbot.addWidget(panel)
    panel.set_rows([_row("insole_left", "streaming"), _row("mat", "stalled", kind="mat", stalled_s=1.2)])
    t = panel.table
    assert t.rowCount() == 2
    assert t.item(0, 0).text() == "insole_left" and t.item(0, 2).text() == "748 / 750"
    assert t.item(0, 5).text() == "+12.3"
    assert t.item(1, 1).text() == "\u25cf stalled 1.2 s"
    assert t.item(1, 1).foreground().color().name() == model.STATE_COLOURS["stalled"]
    assert t.item(0, 1).foreground().color().name() == model.STATE_COLOURS["streaming"]
    panel.set_rows([_row("mat", "disconnected", kind="mat")])
    assert t.rowCount() == 2 and panel.state_of("mat") == "disconnected"
    with qtbot.waitSignal(panel.connect_requested) as sig:
        panel.button("mat").click()
    assert sig.args == ["mat"]
    with qtbot.waitSignal(panel.disconnect_requested) as sig:
        panel.button("insole_left").click()
    assert sig.args == ["insole_left"]


def test_session_panel_validates_records_and_marks(qtbot, tmp_path):
    from PySide6 import QtCore

    from treadlab.lab.gui.session_panel import SessionPanel

    panel = SessionPanel(tmp_path)
    qtbot.addWidget(panel)
    panel.show()
    assert "free" in panel.free_space.text()
    with qtbot.assertNotEmitted(panel.record_requested):
        panel.record_button.click()
    assert "participant" in panel.message.text()
    qtbot.keyClicks(panel.participant, "P02")
    qtbot.keyClicks(panel.condition, "fatigue")
    panel.body_mass.setValue(500.0)  # the spin box clamps to the allowed range
    assert panel.body_mass.value() == model.BODY_MASS_RANGE_KG[1]
    panel.body_mass.setValue(61.5)
    with qtbot.waitSignal(panel.record_requested) as sig:
        panel.record_button.click()
    meta, folder = sig.args
    assert meta["participant"] == "P02" and meta["condition"] == "fatigue" and meta["body_mass_kg"] == 61.5
    assert folder == str(tmp_path) and panel.message.text() == ""

    with qtbot.assertNotEmitted(panel.mark_requested):  # not recording yet
        qtbot.keyClick(panel, QtCore.Qt.Key.Key_M, QtCore.Qt.KeyboardModifier.ControlModifier)
    panel.set_recording(True)
    assert not panel.record_button.isEnabled() and panel.stop_button.isEnabled() and not panel.participant.isEnabled()
    panel.marker_label.setText("warm-up done")
    with qtbot.waitSignal(panel.mark_requested) as sig:
        panel.mark_button.click()
    assert sig.args == ["warm-up done"] and panel.marker_label.text() == ""
    panel.marker_label.setFocus()
    with qtbot.waitSignal(panel.mark_requested) as sig:
        panel.shortcut.activated.emit()
    assert sig.args == [""]
    panel.add_marker(12.0, "")
    assert panel.markers.item(0).text() == "00:12  (marker)"
    panel.set_progress(65.0, 2_400_000)
    assert panel.elapsed.text() == "01:05" and panel.file_size.text() == "2.4 MB"
    with qtbot.waitSignal(panel.stop_requested):
        panel.stop_button.click()
    panel.set_recording(False)
    panel.set_finished(str(tmp_path / "x.h5"), report_available=True)
    assert str(tmp_path / "x.h5") in panel.result_path.text()
    with qtbot.waitSignal(panel.open_report_requested) as sig:
        panel.report_button.click()
    assert sig.args == [str(tmp_path / "x.h5")]


def test_live_views_draw_generated_data(qtbot):
    from treadlab.lab.gui.live_views import ForceView, InsoleView, MatView, MetricsView

    fv = ForceView(window_s=5.0)
    qtbot.addWidget(fv)
    t = np.arange(0, 8.0, 1 / 750.0)
    f = 900.0 * np.clip(np.sin(2 * np.pi * 1.4 * t), 0, None)
    fv.set_trace("left", t, f, now_s=t[-1])
    x, y = fv.curves["left"].getData()
    assert x.min() >= -5.0 and x.max() == 0.0 and y.max() == pytest.approx(f[t >= t[-1] - 5].max())
    assert fv.getPlotItem().viewRange()[1][1] >= y.max()

    iv = InsoleView("right")
    qtbot.addWidget(iv)
    xs, ys = np.meshgrid(np.arange(-40, 41, 8.0), np.arange(0, 261, 8.0))
    pos = np.column_stack([xs.ravel(), ys.ravel()])
    iv.set_layout(pos)
    vals = np.zeros(len(pos), dtype=np.float32)
    vals[5] = 42.0
    cop = np.column_stack([np.zeros(20), np.linspace(20, 220, 20)])
    iv.set_frame(vals, cop)
    assert iv.image.image.max() == 42.0 and iv.image.levels[1] >= 42.0
    assert len(iv.cop.getData()[0]) == 20
    iv.set_frame(vals, None)
    assert iv.cop.getData()[0] is None or len(iv.cop.getData()[0]) == 0

    mv = MatView()
    qtbot.addWidget(mv)
    cur = np.zeros((64, 84), dtype=np.float32)
    cur[10, 10] = 200.0
    prints = np.zeros_like(cur)
    prints[40, 60] = 300.0
    mv.set_frames(cur, prints)
    img = mv.image.image
    assert img.shape == (64, 84) and img[10, 10] == 200.0 and img[40, 60] == pytest.approx(120.0)

    mt = MetricsView()
    qtbot.addWidget(mt)
    mt.set_metrics({"cadence": "172 steps/min"})
    assert mt.labels["cadence"].text() == "172 steps/min" and mt.labels["asymmetry"].text() == "–"


def test_left_insole_is_drawn_mirrored_like_the_reports(qtbot):
    from treadlab.lab.gui.live_views import InsoleView

    xs, ys = np.meshgrid(np.arange(-40, 41, 10.0), np.arange(0, 261, 10.0))
    pos = np.column_stack([xs.ravel(), ys.ravel()])
    lateral = int(np.argmax(pos[:, 0] + 1e-3 * pos[:, 1]))  # the most lateral sensel (x = +40)
    vals = np.zeros(len(pos), np.float32)
    vals[lateral] = 50.0
    cols = {}
    for side in ("left", "right"):
        view = InsoleView(side)
        qtbot.addWidget(view)
        view.set_layout(pos)
        view.set_frame(vals, np.array([[30.0, 100.0]]))
        img = view.image.image
        cols[side] = np.unravel_index(np.argmax(img), img.shape)[1] / (img.shape[1] - 1)
        assert view.cop.getData()[0][0] == (-30.0 if side == "left" else 30.0)
    assert cols["left"] < 0.2 and cols["right"] > 0.8  # lateral edge: left on the left, right on the right
