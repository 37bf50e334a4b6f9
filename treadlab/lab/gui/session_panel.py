"""Session panel: the metadata form, output folder, Record / Stop, markers, and the finished file."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from treadlab.errors import ConfigError
from treadlab.lab.gui import model

#: Keyboard shortcut that sets a marker (also when a text field has focus).
MARK_SHORTCUT = "Ctrl+M"


class SessionPanel(QtWidgets.QGroupBox):
    """Form and capture controls. The panel validates; the main window talks to the acquisition.

    Signals
    -------
    record_requested(dict, str)
        Validated metadata and the output folder.
    stop_requested()
    mark_requested(str)
        Optional marker label (may be empty).
    open_report_requested(str)
        Path of the finished session file.
    """

    record_requested = QtCore.Signal(dict, str)
    stop_requested = QtCore.Signal()
    mark_requested = QtCore.Signal(str)
    open_report_requested = QtCore.Signal(str)

    def __init__(self, folder: str | Path, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Session", parent)
        form = QtWidgets.QFormLayout()
        self.participant = QtWidgets.QLineEdit(objectName="participant", placeholderText="e.g. P01")
        self.condition = QtWidgets.QLineEdit(objectName="condition", placeholderText="e.g. baseline")
        self.body_mass = QtWidgets.QDoubleSpinBox(objectName="body_mass", suffix=" kg", decimals=1)
        self.body_mass.setRange(*model.BODY_MASS_RANGE_KG)
        self.body_mass.setValue(70.0)
        self.speed = QtWidgets.QDoubleSpinBox(objectName="speed", suffix=" m/s", decimals=2, singleStep=0.1)
        self.speed.setRange(*model.SPEED_RANGE_MPS)
        self.speed.setValue(3.0)
        self.shoe = QtWidgets.QLineEdit(objectName="shoe")
        self.notes = QtWidgets.QPlainTextEdit(objectName="notes")
        self.notes.setFixedHeight(48)
        form.addRow("Participant", self.participant)
        form.addRow("Condition", self.condition)
        form.addRow("Body mass", self.body_mass)
        form.addRow("Treadmill speed", self.speed)
        form.addRow("Shoe", self.shoe)
        form.addRow("Notes", self.notes)

        self.folder = QtWidgets.QLineEdit(str(folder), objectName="folder")
        browse = QtWidgets.QPushButton("…")
        browse.setFixedWidth(28)
        browse.clicked.connect(self._browse)
        folder_row = QtWidgets.QHBoxLayout()
        folder_row.addWidget(self.folder)
        folder_row.addWidget(browse)
        form.addRow("Output folder", folder_row)
        self.free_space = QtWidgets.QLabel("", objectName="free_space")
        form.addRow("", self.free_space)
        self.folder.editingFinished.connect(self.refresh_free_space)

        self.record_button = QtWidgets.QPushButton("\u25cf Record", objectName="record")
        self.record_button.setStyleSheet("QPushButton:enabled { color: #c62828; font-weight: bold; }")
        self.stop_button = QtWidgets.QPushButton("\u25a0 Stop", objectName="stop")
        self.stop_button.setEnabled(False)
        self.record_button.clicked.connect(self._on_record)
        self.stop_button.clicked.connect(self.stop_requested)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.record_button)
        buttons.addWidget(self.stop_button)
        self.elapsed = QtWidgets.QLabel("00:00", objectName="elapsed")
        self.elapsed.setStyleSheet("font-size: 15pt; font-family: monospace;")
        self.file_size = QtWidgets.QLabel("", objectName="file_size")

        self.marker_label = QtWidgets.QLineEdit(objectName="marker_label", placeholderText="marker label (optional)")
        self.mark_button = QtWidgets.QPushButton(f"Marker ({MARK_SHORTCUT})", objectName="mark")
        self.mark_button.setEnabled(False)
        self.mark_button.clicked.connect(self._on_mark)
        self.marker_label.returnPressed.connect(self._on_mark)  # type a label, press Enter
        self.shortcut = QtGui.QShortcut(QtGui.QKeySequence(MARK_SHORTCUT), self)
        self.shortcut.setContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        self.shortcut.activated.connect(self._on_mark)
        mark_row = QtWidgets.QHBoxLayout()
        mark_row.addWidget(self.marker_label)
        mark_row.addWidget(self.mark_button)
        self.markers = QtWidgets.QListWidget(objectName="markers")
        self.markers.setFixedHeight(70)

        self.message = QtWidgets.QLabel("", objectName="message", wordWrap=True)
        self.message.setStyleSheet("color: #c62828;")
        self.result_path = QtWidgets.QLabel("", objectName="result_path", wordWrap=True)
        self.result_path.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.report_button = QtWidgets.QPushButton("Open report", objectName="report")
        self.report_button.setEnabled(False)
        self.report_button.clicked.connect(lambda: self.open_report_requested.emit(self._last_path))
        self._last_path = ""
        self.recording = False

        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        status_row = QtWidgets.QHBoxLayout()
        status_row.addWidget(self.elapsed)
        status_row.addStretch(1)
        status_row.addWidget(self.file_size)
        layout.addLayout(status_row)
        layout.addLayout(mark_row)
        layout.addWidget(self.markers)
        layout.addWidget(self.message)
        layout.addWidget(self.result_path)
        layout.addWidget(self.report_button)
        layout.addStretch(1)
        self.refresh_free_space()

    # ------------------------------------------------------------------------------------------ user actions

    def _browse(self) -> None:  # pragma: no cover - needs a person
        chosen = QtWidgets.QFileDialog.getExistingDirectory(self, "Output folder", self.folder.text())
        if chosen:
            self.folder.setText(chosen)
            self.refresh_free_space()

    def _on_record(self) -> None:
        try:
            meta = model.validate_session_form(
                self.participant.text(),
                self.condition.text(),
                self.body_mass.value(),
                self.speed.value(),
                self.shoe.text(),
                self.notes.toPlainText(),
            )
        except ConfigError as exc:
            self.show_message(str(exc))
            return
        self.show_message("")
        self.record_requested.emit(meta, self.folder.text().strip())

    def _on_mark(self) -> None:
        if not self.recording:
            return
        self.mark_requested.emit(self.marker_label.text().strip())
        self.marker_label.clear()

    # ------------------------------------------------------------------------------------- state from outside

    def apply_defaults(self, session: dict) -> None:
        """Fill the form from a rig file's ``[session]`` table (values out of range are left out)."""
        for key, edit in (("participant", self.participant), ("condition", self.condition), ("shoe", self.shoe)):
            if session.get(key):
                edit.setText(str(session[key]))
        if session.get("notes"):
            self.notes.setPlainText(str(session["notes"]))
        for key, box, (lo, hi) in (("body_mass_kg", self.body_mass, model.BODY_MASS_RANGE_KG),
                                   ("treadmill_speed_mps", self.speed, model.SPEED_RANGE_MPS)):
            value = session.get(key)
            if isinstance(value, int | float) and lo <= value <= hi:
                box.setValue(float(value))

    def refresh_free_space(self) -> None:
        """Show the free space of the output folder's file system."""
        try:
            free = model.free_space_bytes(self.folder.text())
        except OSError as exc:
            self.free_space.setText(f"cannot read free space: {exc.strerror}")
            return
        self.free_space.setText(f"{model.format_bytes(free)} free")

    def show_message(self, text: str) -> None:
        """Show an error or hint under the controls (empty clears it)."""
        self.message.setText(text)

    def set_recording(self, recording: bool) -> None:
        """Switch the controls between idle and recording."""
        self.recording = recording
        self.record_button.setEnabled(not recording)
        self.stop_button.setEnabled(recording)
        self.mark_button.setEnabled(recording)
        # The metadata goes into the file when the capture starts: it cannot be edited while recording.
        for w in (self.participant, self.condition, self.body_mass, self.speed, self.shoe, self.notes, self.folder):
            w.setEnabled(not recording)
        if recording:
            self.markers.clear()
            self.result_path.setText("")
            self.report_button.setEnabled(False)

    def set_progress(self, elapsed_s: float, file_bytes: int) -> None:
        """Elapsed time and size of the file being written."""
        self.elapsed.setText(model.format_elapsed(elapsed_s))
        self.file_size.setText(model.format_bytes(file_bytes))

    def add_marker(self, t_s: float, label: str) -> None:
        """List a marker that the acquisition accepted."""
        self.markers.addItem(f"{model.format_elapsed(t_s)}  {label or '(marker)'}")
        self.markers.scrollToBottom()

    def set_finished(self, path: str, report_available: bool) -> None:
        """After Stop: the path of the file, and the report button when reports are installed."""
        self._last_path = path
        self.result_path.setText(f"Saved: {path}")
        self.report_button.setEnabled(report_available)
        self.report_button.setToolTip("" if report_available else "the report module is not installed")
        self.refresh_free_space()
