"""The main window: devices and session panels on the left, live views on the right, one refresh timer.

The window never touches a serial port or a file: it calls a :class:`~treadlab.lab.gui.source.LiveSource`
(the acquisition behind a small adapter). All acquisition work runs in the recorder's own threads; the window's
:class:`QtCore.QTimer` polls the ring buffers at ``refresh_hz`` (30-60 Hz) and draws. A frozen display therefore
never stalls a capture, and closing the window while recording asks first and then stops the capture cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from treadlab.errors import LabError
from treadlab.lab.gui import (  # noqa: F401 - the built-in kinds register their views
    force_view,
    imu_view,
    insole_view,
    mat_view,
    model,
)
from treadlab.lab.gui.devices_panel import DevicesPanel
from treadlab.lab.gui.feedback_panel import MUTE_SHORTCUT, FeedbackPanel
from treadlab.lab.gui.kind_views import panel_factories
from treadlab.lab.gui.runner_screen import RunnerScreen
from treadlab.lab.gui.session_panel import SessionPanel
from treadlab.lab.gui.source import LiveSource

#: Asks the technician a yes/no question; returns True for yes. Tests inject their own.
#: Delay between the window's first show and opening the devices (the first paint is the costliest).
OPEN_DELAY_MS = 300

ConfirmFn = Callable[[QtWidgets.QWidget, str, str], bool]


def ask_yes_no(parent: QtWidgets.QWidget, title: str, text: str) -> bool:
    """The default confirmation: a modal question box, *No* being the default button."""
    answer = QtWidgets.QMessageBox.question(
        parent, title, text,
        QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
        QtWidgets.QMessageBox.StandardButton.No,
    )
    return answer == QtWidgets.QMessageBox.StandardButton.Yes


class MainWindow(QtWidgets.QMainWindow):
    """The technician's window.

    Parameters
    ----------
    source : LiveSource
        Devices, ring buffers and capture control. The caller owns it (and closes it after the window).
    folder : str or Path
        Default output folder for captures.
    refresh_hz : float
        Rate of the display timer (30-60 Hz).
    confirm : callable, optional
        ``confirm(parent, title, text) -> bool``; defaults to :func:`ask_yes_no`.
    report_fn : callable, optional
        ``report_fn(session_path) -> path of a report file``; when None the report button stays disabled.

    Attributes
    ----------
    frames_n : int
        Display refreshes done so far (the benchmark's frame counter).
    refresh_s_total : float
        Seconds spent inside :meth:`refresh`.
    last_path : Path or None
        The file of the last finished capture.
    """

    def __init__(
        self,
        source: LiveSource,
        folder: str | Path,
        refresh_hz: float = 30.0,
        confirm: ConfirmFn | None = None,
        report_fn: Callable[[Path], Path] | None = None,
        metrics_hz: float = 10.0,
        panels_hz: float = 5.0,
    ) -> None:
        super().__init__()
        self.source = source
        self.confirm = confirm or ask_yes_no
        self.report_fn = report_fn
        self.frames_n = 0
        self.refresh_s_total = 0.0
        self.last_path: Path | None = None
        self._metrics_every_s = 1.0 / metrics_hz
        self._metrics_due_s = 0.0
        self._panels_every_s = 1.0 / panels_hz
        self._panels_due_s = 0.0
        self._layouts_version = -1
        self._source_opened = False
        self._last_error = ""
        self.setWindowTitle(f"treadlab — {source.title}")

        self.devices = DevicesPanel()
        self.session = SessionPanel(folder)
        self.feedback = FeedbackPanel()
        self.feedback_run = None
        self.runner_screen: RunnerScreen | None = None
        left = QtWidgets.QWidget()
        lv = QtWidgets.QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.devices, 2)
        lv.addWidget(self.session, 5)
        lv.addWidget(self.feedback, 3)
        left.setMinimumWidth(500)
        left.setMaximumWidth(620)

        # One panel per registered device kind (its module registers it with kind_views.register_view).
        self.panels = {kind: factory() for kind, factory in panel_factories().items()}
        right = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(right)
        row.setContentsMargins(0, 0, 0, 0)
        for panel in self.panels.values():
            row.addWidget(panel, int(panel.stretch))
            for attr, widget in panel.window_attrs().items():  # win.force, win.insoles, win.mat...
                setattr(self, attr, widget)

        splitter = QtWidgets.QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)
        self.status = self.statusBar()

        quit_action = QtGui.QAction("Quit", self)
        quit_action.setShortcut(QtGui.QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.addAction(quit_action)

        self.session.record_requested.connect(self.start_capture)
        self.session.stop_requested.connect(self.stop_capture)
        self.session.mark_requested.connect(self.set_marker)
        self.session.open_report_requested.connect(self.open_report)
        self.feedback.start_requested.connect(self.session.record_button.click)
        self.feedback.mute_toggled.connect(lambda on: self.feedback_run and self.feedback_run.engine.mute(on))
        self.feedback.pause_toggled.connect(lambda on: self.feedback_run and self.feedback_run.engine.pause(on))
        self.feedback.runner_screen_requested.connect(self.open_runner_screen)
        mute_action = QtGui.QAction("Mute feedback", self)
        mute_action.setShortcut(QtGui.QKeySequence(MUTE_SHORTCUT))
        mute_action.triggered.connect(self.feedback.mute_button.click)
        self.addAction(mute_action)
        self.devices.connect_requested.connect(lambda name: self._device_action(source.connect, name))
        self.devices.disconnect_requested.connect(lambda name: self._device_action(source.disconnect, name))

        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(max(1, int(round(1000.0 / refresh_hz))))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.resize(1600, 900)

    # ------------------------------------------------------------------------------------------ capture control

    def start_capture(self, metadata: dict, folder: str) -> None:
        """Start writing a session file in ``folder`` with the form's metadata."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(folder).expanduser() / model.session_filename(metadata["participant"], metadata["condition"],
                                                                   stamp)
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        run = None
        try:
            if self.feedback.armed():
                run = self._feedback_run()
            self.source.start_recording(path, metadata, companion=run)
        except LabError as exc:
            if run is not None:
                run.sink.close()
            self.session.show_message(str(exc))
            return
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        if run is not None:
            self.feedback_run = run
            self.feedback.set_running(True)
            screen = self.runner_screen
            if screen is not None:
                screen.metric_name = run.protocol.metric
                screen.set_band(run.protocol.low, run.protocol.high)
            run.engine.listeners.append(self._on_cue)
        self._reset_metrics(metadata["body_mass_kg"])
        self.session.set_recording(True)
        self.status.showMessage(f"recording to {path}")

    def _feedback_run(self):
        """The feedback run of the next capture (the panel's protocol; the sound device, or screen cues only)."""
        from treadlab.feedback.device_sink import open_sink
        from treadlab.feedback.live import FeedbackRun

        protocol = self.feedback.protocol()
        sink = open_sink(None, self.status.showMessage)
        return FeedbackRun(protocol, sink)

    def _on_cue(self, cue) -> None:
        """From the engine's thread: hand the step's value to the runner screen (a deque append)."""
        screen = self.runner_screen
        if screen is not None and cue.foot != 255:
            screen.push(cue.value, cue.in_band)

    def open_runner_screen(self, screen_index: int = 0, full_screen: bool = True) -> RunnerScreen:
        """Open (or raise) the runner screen, full screen on screen ``screen_index``."""
        if self.runner_screen is None:
            p = self.feedback_run.protocol if self.feedback_run is not None else self.feedback.protocol()
            self.runner_screen = RunnerScreen(p.metric, p.low, p.high)
        if full_screen:
            self.runner_screen.open_on(screen_index)
        else:
            self.runner_screen.show()
        return self.runner_screen

    def stop_capture(self) -> Path | None:
        """Stop the capture; show the file and enable its report."""
        if not self.source.recording:
            return None
        if self.feedback_run is not None:
            self.feedback.set_running(False)
            self.feedback_run = None
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            path = self.source.stop_recording()
        except LabError as exc:  # e.g. the disk filled up: the message names the file and what is in it
            self.session.show_message(str(exc))
            self.session.set_recording(self.source.recording)
            if not self.source.recording and self.source.last_path is not None:
                self.last_path = self.source.last_path
                self.session.set_finished(str(self.last_path), report_available=False)
            return None
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self._reset_metrics()
        self.last_path = path
        self.session.set_recording(False)
        self.session.set_finished(str(path), report_available=self.report_fn is not None)
        self.status.showMessage(f"saved {path}")
        return path

    def set_marker(self, label: str) -> None:
        """Put a marker into the capture at the current session time."""
        try:
            t_s = self.source.mark(label)
        except LabError as exc:
            self.session.show_message(str(exc))
            return
        self.session.add_marker(t_s - self.source.recording_started_s, label)

    def open_report(self, path: str) -> None:
        """Make the report of a finished capture and open it with the desktop's viewer."""
        if self.report_fn is None:
            return
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            report = self.report_fn(Path(path))
        except LabError as exc:
            self.session.show_message(str(exc))
            return
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self.status.showMessage(f"report: {report}")
        QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(report)))

    def _device_action(self, fn: Callable[[str], None], name: str) -> None:
        try:
            fn(name)
        except LabError as exc:
            self.status.showMessage(str(exc))

    # ------------------------------------------------------------------------------------------------- display

    def refresh(self) -> None:
        """One display frame: device table, force traces, pressure maps, progress, and metrics when due."""
        t0 = time.perf_counter()
        src = self.source
        src.poll()
        if src.layouts_version != self._layouts_version:
            self._layouts_version = src.layouts_version
            for kind, panel in self.panels.items():
                panel.set_views(src.views_of_kind(kind))
            for panel in self.panels.values():  # a panel that also reads other kinds' views (the imus: steps)
                if hasattr(panel, "set_all_views"):
                    panel.set_all_views(list(src.views.values()))
        if t0 >= self._panels_due_s:  # tables and labels change slowly: a few updates per second are enough
            self._panels_due_s = t0 + self._panels_every_s
            self.update_panels()
        now_s = src.now_s()
        slow = t0 >= self._metrics_due_s
        if slow:
            self._metrics_due_s = t0 + self._metrics_every_s
            if not src.recording:
                for panel in self.panels.values():
                    panel.set_body_mass(self.session.body_mass.value())
        for panel in self.panels.values():
            panel.refresh(now_s, slow)
        self.frames_n += 1
        self.refresh_s_total += time.perf_counter() - t0

    def _reset_metrics(self, body_mass_kg: float | None = None) -> None:
        """A capture starts or stops: the panels forget their steps (the live view itself goes on)."""
        for panel in self.panels.values():
            panel.reset(body_mass_kg)

    def update_panels(self) -> None:
        """Device table, elapsed time, file size and write errors."""
        src = self.source
        rows = src.device_rows()
        self.devices.set_rows(rows)
        for row in rows:
            error = src.device_error(row.name) if row.state == "lost" else None
            self.devices.set_error(row.name, error)
            if error and error != self._last_error:
                self._last_error = error
                self.status.showMessage(error)
        run = self.feedback_run
        if run is not None and run.engine is not None:
            self.feedback.set_status(run.engine.status_line())
            i = run.engine.phase_index()
            if self.runner_screen is not None and i >= 0:
                ph = run.protocol.phases[i]
                self.runner_screen.set_phase(ph.name, ph.stop_s, src.elapsed_s)
                self.runner_screen.set_band(run.protocol.low, run.protocol.high)
        if src.recording:
            self.session.set_progress(src.elapsed_s(), src.file_bytes())
            if src.capture_failed():  # e.g. the disk is full: stop now; stop_capture shows the recorder's error
                self.stop_capture()

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt's name)
        """The first time the window shows, open the devices once the first frame is painted."""
        super().showEvent(event)
        if not self._source_opened:
            self._source_opened = True
            QtCore.QTimer.singleShot(OPEN_DELAY_MS, self, self._open_source)  # cancelled if the window goes

    def _open_source(self) -> None:
        if self.isVisible():
            self.source.open()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Closing while recording asks first, then stops the capture cleanly; refusing keeps the window."""
        if self.source.recording:
            if not self.confirm(self, "Stop the capture?",
                                "A capture is being recorded. Stop it, save the file and close treadlab?"):
                event.ignore()
                return
            if self.stop_capture() is None and self.source.recording:
                event.ignore()
                return
        self.timer.stop()
        if self.runner_screen is not None:
            self.runner_screen.close()
        event.accept()
