"""The desktop app on the simulated rig (real device processes on pseudo-terminals, real session files)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import ExitStack

import h5py
import numpy as np
import pytest
from PySide6 import QtCore, QtGui

from treadlab import fileformat as ff
from treadlab.drivers.sim.rig import SimulatedRig
from treadlab.lab.cli import main as lab_main
from treadlab.lab.gui import model
from treadlab.lab.gui.app import build_window

NAMES = ("insole_left", "insole_right", "mat")


@pytest.fixture(scope="module")
def sim_rig(tmp_path_factory):
    """One simulated rig (two insoles and a mat) for the whole module; each test opens its own window."""
    work = tmp_path_factory.mktemp("simrig")
    sim = SimulatedRig.default(work)
    sim.start()
    try:
        yield sim, sim.write_rig(work / "rig.toml", body_mass_kg=66.0, treadmill_speed_mps=3.4)
    finally:
        sim.stop()


class Confirm:
    """Injected confirmation: answers from a list, records the questions."""

    def __init__(self) -> None:
        self.answers: list[bool] = []
        self.asked: list[str] = []

    def __call__(self, parent, title: str, text: str) -> bool:
        self.asked.append(title)
        return self.answers.pop(0) if self.answers else False


@pytest.fixture
def app(qtbot, sim_rig, tmp_path):
    sim, rig_path = sim_rig
    confirm = Confirm()
    with ExitStack() as stack:
        win = build_window(stack, rig_path, tmp_path, refresh_hz=30.0, title="test rig", confirm=confirm)
        qtbot.addWidget(win)
        win.show()
        yield win, sim, confirm
        win.timer.stop()
    assert not win.source._workers and win.source.recorder is None


def wait_streaming(qtbot, win, names=NAMES, timeout_s=20.0):
    qtbot.waitUntil(lambda: all(win.devices.state_of(n) == "streaming" for n in names), timeout=int(timeout_s * 1000))


def test_app_starts_devices_go_green_and_views_fill(app, qtbot):
    win, _sim, _ = app
    assert win.session.body_mass.value() == 66.0 and win.session.speed.value() == 3.4  # rig [session] defaults
    wait_streaming(qtbot, win)
    rows = {r.name: r for r in win.source.device_rows()}
    assert all(rows[n].colour == model.STATE_COLOURS["streaming"] for n in NAMES)
    qtbot.waitUntil(lambda: all(r.rate_hz > 0 for r in win.source.device_rows()), timeout=5000)
    qtbot.wait(1200)
    rows = {r.name: r for r in win.source.device_rows()}
    # measured over about a second of bursty arrivals on a loaded machine: a wide margin, but 0 would fail
    assert rows["insole_left"].rate_hz == pytest.approx(rows["insole_left"].nominal_hz, rel=0.3)
    assert rows["mat"].rate_hz == pytest.approx(120.0, rel=0.3)
    x, y = win.force.curves["left"].getData()
    assert len(x) > 500 and x.min() >= -5.0 and y.max() > 500.0  # a runner's foot carries well over 500 N
    assert win.insoles["right"].image.image.max() > 0 and win.mat.image.image.shape == (48, 112)
    assert win.frames_n > 10


def test_preview_stream_goes_on_across_record_and_stop(app, qtbot, tmp_path):
    """Record attaches the file to the running stream: no device is re-identified, no sample is missed by the
    live view, and the click returns within 0.2 s; Stop detaches it and the stream goes on the same way."""
    win, _sim, _ = app
    s = win.session
    wait_streaming(qtbot, win)
    s.participant.setText("P09")
    workers = win.source.stream.workers
    got: dict[str, list] = {n: [] for n in NAMES}

    def collect(b) -> None:  # reader threads: list.append is atomic
        got[b.name].append((int(b.seq[0]), int(b.seq[-1]), float(b.host_time_s[0]), float(b.host_time_s[-1])))

    unsubscribe = win.source.stream.subscribe(collect)
    qtbot.wait(700)
    frames0 = win.frames_n
    seen0 = {n: win.source.views[n].seen_n for n in NAMES}
    t0 = time.perf_counter()
    s.record_button.click()
    click_s = time.perf_counter() - t0
    assert win.source.recording and click_s < 0.2, click_s
    qtbot.wait(1500)
    assert win.frames_n > frames0  # the window kept drawing while recording, and its views kept taking samples
    for n in NAMES:
        v = win.source.views[n]
        assert v.seen_n - seen0[n] > 0.5 * 1.5 * v.rate_hz, (n, v.seen_n - seen0[n])
    s.stop_button.click()
    qtbot.wait(700)
    unsubscribe()
    path = win.last_path
    assert not win.source.recording and path is not None
    after = win.source.stream.workers
    assert all(after[n] is workers[n] for n in NAMES)  # the same reader threads: nothing re-identified
    with h5py.File(path, "r") as f:
        for name in NAMES:
            batches = np.array(got[name])
            first, last = batches[:, 0].astype(np.int64), batches[:, 1].astype(np.int64)
            assert np.all((first[1:] - last[:-1]) % 2**32 == 1), name  # every sample, across Record and Stop
            # no pause: batches keep coming (the mat sends 120 frames/s) from before Record to after Stop
            assert np.max(np.diff(batches[:, 2])) < 0.3, (name, np.max(np.diff(batches[:, 2])))
            seq = f[ff.DEVICES][name][ff.SEQ][()].astype(np.int64)
            assert len(seq) > 0.5 * f[ff.DEVICES][name].attrs["rate_hz"]
            assert np.all(np.diff(seq) == 1) and first[0] < seq[0] and seq[-1] < last[-1]  # a slice of the stream


def test_capture_from_buttons_writes_metadata_and_markers(app, qtbot, tmp_path, monkeypatch):
    win, _sim, _ = app
    s = win.session
    wait_streaming(qtbot, win)
    s.participant.setText("P07")
    s.condition.setText("tempo")
    s.body_mass.setValue(64.5)
    s.speed.setValue(3.6)
    s.shoe.setText("racer")
    s.notes.setPlainText("first trial")
    s.record_button.click()
    assert win.source.recording and not s.record_button.isEnabled() and s.stop_button.isEnabled()
    wait_streaming(qtbot, win)
    qtbot.wait(1500)
    s.marker_label.setText("start tempo")
    s.mark_button.click()
    qtbot.wait(300)
    win.activateWindow()
    qtbot.keyClick(s.marker_label, QtCore.Qt.Key.Key_M, QtCore.Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: s.markers.count() == 2, timeout=2000)
    qtbot.waitUntil(lambda: "steps/min" in win.metrics.labels["cadence"].text(), timeout=8000)
    assert s.file_size.text().endswith(("kB", "MB")) and s.elapsed.text() != "00:00"
    s.stop_button.click()
    path = win.last_path
    assert path is not None and path.parent == tmp_path and path.name.startswith("P07_tempo_")
    assert str(path) in s.result_path.text() and s.record_button.isEnabled() and not win.source.recording
    assert s.report_button.isEnabled() == (win.report_fn is not None)
    # The report button: report_fn(session file) -> report file, opened with the desktop's viewer (intercepted).
    # The coach report itself is tested with the reports; here a report of our own keeps this test independent.
    opened = []
    monkeypatch.setattr(QtGui.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))

    def report_fn(session_path):
        out = session_path.with_suffix(".html")
        with h5py.File(session_path, "r") as f:
            out.write_text(f"<p>{f.attrs['participant']}</p>")
        return out

    win.report_fn = report_fn
    s.set_finished(str(path), report_available=True)
    s.report_button.click()
    assert opened == [str(path.with_suffix(".html"))] and path.with_suffix(".html").read_text() == "<p>P07</p>"
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["state"] == ff.STATE_COMPLETE
        assert (a["participant"], a["condition"], a["shoe"], a["notes"]) == ("P07", "tempo", "racer", "first trial")
        assert a["body_mass_kg"] == 64.5 and a["treadmill_speed_mps"] == 3.6
        labels = [x.decode() for x in f[ff.MARKERS]["label"][()]]
        times = f[ff.MARKERS]["time"][()]
        assert labels == ["start tempo", ""]
        assert 1.0 < times[0] < times[1] < a["duration_s"]
        for name in NAMES:
            t = f[ff.DEVICES][name][ff.TIME][()]
            assert len(t) > 0.8 * f[ff.DEVICES][name].attrs["rate_hz"] * a["duration_s"]
    from treadlab.analysis import read_session  # the analysts' reader accepts the file

    sess = read_session(path)
    try:
        assert set(sess.insoles) == {"left", "right"} and len(sess.mats) == 1 and sess.body_mass_kg == 64.5
        assert list(sess.markers["label"]) == ["start tempo", ""]
        assert sess.marker_time("start tempo") == pytest.approx(times[0])
    finally:
        sess.close()
    # back in preview: the devices stream again
    wait_streaming(qtbot, win)


def test_unplugged_device_turns_amber_then_green_after_replug(app, qtbot):
    win, sim, _ = app
    wait_streaming(qtbot, win)
    sim.unplug("mat", 1.5)
    qtbot.waitUntil(lambda: win.devices.state_of("mat") in ("stalled", "reconnecting"), timeout=5000)
    row = win.devices.rows["mat"]
    assert row.colour == model.STATE_COLOURS["stalled"] == model.STATE_COLOURS["reconnecting"]
    item = win.devices.table.item(0 + list(win.devices.rows).index("mat"), 1)
    assert row.state in item.text()
    assert win.devices.state_of("insole_left") == "streaming"
    wait_streaming(qtbot, win, timeout_s=20.0)


def _device_process(sim, name):
    """The simulated device's process (found by its spec file on the command line)."""
    import psutil

    spec = str(sim.workdir / f"{name}.spec.json")
    return next(p for p in psutil.Process().children(recursive=True) if spec in p.cmdline())


def test_stalled_device_turns_amber_and_says_so(app, qtbot):
    win, sim, _ = app
    wait_streaming(qtbot, win)
    proc = _device_process(sim, "insole_left")
    proc.suspend()  # the device stops sending, its port stays open: a stall, not an unplug
    try:
        qtbot.waitUntil(lambda: win.devices.state_of("insole_left") == "stalled", timeout=5000)
        qtbot.waitUntil(lambda: win.devices.rows["insole_left"].stalled_s >= 1.2, timeout=5000)
        row = list(win.devices.rows).index("insole_left")
        assert win.devices.table.item(row, 1).text().startswith("\u25cf stalled 1.")
        assert win.devices.rows["insole_left"].colour == model.STATE_COLOURS["stalled"]
        assert win.devices.rows["insole_left"].rate_hz == 0.0
        assert win.devices.state_of("insole_right") == "streaming"
    finally:
        proc.resume()
    wait_streaming(qtbot, win)


def test_missing_device_is_red_with_its_error_and_retried(qtbot, sim_rig, tmp_path):
    _sim, rig_path = sim_rig
    text = rig_path.read_text() + ('\n[[device]]\nname = "spare"\nport = "%s"\nrequired = false\n'
                                   % (tmp_path / "ttyNOPE"))
    rig2 = tmp_path / "rig2.toml"
    rig2.write_text(text)
    with ExitStack() as stack:
        win = build_window(stack, rig2, tmp_path, confirm=Confirm())
        qtbot.addWidget(win)
        win.source.retry_s = 0.2
        win.show()
        wait_streaming(qtbot, win)
        qtbot.waitUntil(lambda: win.devices.state_of("spare") == "lost", timeout=5000)
        assert "ttyNOPE" in win.devices.error_of("spare") and "ttyNOPE" in win.statusBar().currentMessage()
        assert win.devices.button("spare").text() == "Connect"
        win.timer.stop()


def test_disconnect_and_connect_buttons(app, qtbot):
    win, _sim, _ = app
    wait_streaming(qtbot, win)
    win.devices.button("insole_right").click()
    qtbot.waitUntil(lambda: win.devices.state_of("insole_right") == "disconnected", timeout=5000)
    assert win.devices.button("insole_right").text() == "Connect"
    win.devices.button("insole_right").click()
    wait_streaming(qtbot, win)


def test_close_while_recording_asks_first_then_stops_cleanly(app, qtbot, tmp_path):
    win, _sim, confirm = app
    wait_streaming(qtbot, win)
    win.session.participant.setText("P08")
    win.session.record_button.click()
    assert win.source.recording
    qtbot.wait(500)
    confirm.answers = [False]
    win.close()
    assert confirm.asked == ["Stop the capture?"] and win.isVisible() and win.source.recording
    confirm.answers = [True]
    win.close()
    assert len(confirm.asked) == 2 and not win.isVisible() and not win.source.recording
    with h5py.File(win.last_path, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE and f.attrs["participant"] == "P08"


def test_full_disk_stops_the_capture_and_says_so(app, qtbot):
    win, _sim, _ = app
    wait_streaming(qtbot, win)
    win.source.recorder_options = {"min_free_bytes": 2**62}  # every disk is "almost full"
    win.session.participant.setText("P10")
    win.session.record_button.click()
    assert win.source.recording
    qtbot.waitUntil(lambda: not win.source.recording, timeout=10000)
    assert "almost full" in win.session.message.text() and win.session.record_button.isEnabled()
    assert str(win.last_path) in win.session.result_path.text()
    with h5py.File(win.last_path, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE and f.attrs["stop_reason"] == "disk-full"
    wait_streaming(qtbot, win)  # back in preview


def test_frozen_display_does_not_lose_samples(app, qtbot):
    win, _sim, _ = app
    wait_streaming(qtbot, win)
    win.session.participant.setText("P09")
    win.session.record_button.click()
    qtbot.wait(300)
    time.sleep(2.0)  # the GUI thread is blocked: no timer, no events; the capture runs on in its own threads
    qtbot.wait(300)
    win.session.stop_button.click()
    with h5py.File(win.last_path, "r") as f:
        dur = f.attrs["duration_s"]
        for name in NAMES:
            g = f[ff.DEVICES][name]
            t = g[ff.TIME][()]
            assert g.attrs["lost_samples"] == 0
            assert np.diff(t).max() < 0.1, f"{name}: a hole in the data while the display was frozen"
            assert len(t) == pytest.approx(g.attrs["rate_hz"] * (t[-1] - t[0]), rel=0.02)
            assert t[-1] - t[0] > dur - 0.5


def test_lab_gui_errors_are_one_line(capsys, tmp_path, monkeypatch):
    assert lab_main(["gui"]) == 2
    assert capsys.readouterr().err.strip() == ("lab gui: error: give a rig file (--rig RIG.toml) or --sim for the "
                                               "simulated rig")
    assert lab_main(["gui", "--rig", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.toml" in err[0]
    assert lab_main(["gui", "--sim", "--out", str(tmp_path / "nowhere")]) == 5
    assert "nowhere" in capsys.readouterr().err
    assert lab_main(["gui", "--screenshot", str(tmp_path / "x.gif")]) == 2
    capsys.readouterr()
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert lab_main(["gui", "--sim", "--out", str(tmp_path)]) == 2  # refused before any device process starts
    assert "no display" in capsys.readouterr().err


def test_screenshot_runs_offscreen_without_stdin(sim_rig, tmp_path):
    _sim, rig_path = sim_rig
    out = tmp_path / "gui.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "gui", "--rig", str(rig_path), "--screenshot",
                           str(out), "--seconds", "1", "--out", str(tmp_path)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out) and proc.stderr == ""
    from PySide6 import QtGui

    img = QtGui.QImage(str(out))
    assert (img.width(), img.height()) == (1600, 900)


CRASH_SCRIPT = r"""
import sys, time
from contextlib import ExitStack
from pathlib import Path
from PySide6 import QtCore, QtWidgets
from treadlab.lab.gui.app import build_window
app = QtWidgets.QApplication(["crash"])
stack = ExitStack()
win = build_window(stack, Path(sys.argv[1]), Path(sys.argv[2]))
win.show()
def go():
    if all(win.devices.state_of(n) == "streaming" for n in win.source.configs):
        win.session.participant.setText("P99")
        win.session.record_button.click()
        print("RECORDING", win.source.recorder.path, flush=True)
    else:
        QtCore.QTimer.singleShot(100, go)
QtCore.QTimer.singleShot(100, go)
app.exec()
"""


@pytest.mark.slow
def test_gui_crash_loses_at_most_the_last_second(sim_rig, tmp_path):
    """Kill the app (SIGKILL) while it records: the file holds the data up to at most 1 s before the kill."""
    _sim, rig_path = sim_rig
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, str(rig_path), str(tmp_path)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line[:1] == ["RECORDING"], line
        time.sleep(3.0)
        proc.kill()
        killed_ns = time.monotonic_ns()
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
    path = line[1]
    with h5py.File(path, "r", swmr=True) as f:
        kill_s = (killed_ns - int(f.attrs["start_monotonic_ns"])) / 1e9
        assert f.attrs["participant"] == "P99" and kill_s > 2.5
        for name in NAMES:
            t = f[ff.DEVICES][name][ff.TIME][()]
            t = t[np.isfinite(t)]
            assert t[-1] >= kill_s - 1.0, f"{name}: data end {t[-1]:.2f} s, killed at {kill_s:.2f} s"
