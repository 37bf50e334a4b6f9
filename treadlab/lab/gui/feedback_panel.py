"""The feedback panel: protocol, target, band and cue for the next capture; start, pause, mute; the runner screen.

The panel only edits a :class:`~treadlab.feedback.protocol.Protocol` and emits signals; the main window builds
the feedback run when a capture starts and routes pause and mute to its engine.

Signals
-------
start_requested()
    Record with feedback now (the main window starts a capture from the session form).
pause_toggled(bool), mute_toggled(bool)
runner_screen_requested(int)
    Open the runner screen full screen on that screen index.
"""

from __future__ import annotations

import math

from PySide6 import QtCore, QtGui, QtWidgets

from treadlab.errors import ConfigError
from treadlab.feedback.protocol import CUE_KINDS, METRICS, Protocol, load_protocol, preset_names

MUTE_SHORTCUT = "Ctrl+Shift+M"


class FeedbackPanel(QtWidgets.QGroupBox):
    """Runner feedback settings and controls."""

    start_requested = QtCore.Signal()
    pause_toggled = QtCore.Signal(bool)
    mute_toggled = QtCore.Signal(bool)
    runner_screen_requested = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Runner feedback", parent)
        grid = QtWidgets.QGridLayout(self)
        grid.setVerticalSpacing(2)
        self.enabled_box = QtWidgets.QCheckBox("on the next capture", objectName="feedback_on")
        self.protocol_box = QtWidgets.QComboBox(objectName="protocol")
        self.protocol_box.addItems(preset_names())
        self.metric_box = QtWidgets.QComboBox(objectName="metric")
        self.metric_box.addItems(METRICS)
        self.low_edit = QtWidgets.QLineEdit(objectName="low")
        self.high_edit = QtWidgets.QLineEdit(objectName="high")
        for e, tip in ((self.low_edit, "lowest value in band (empty: none)"),
                       (self.high_edit, "highest value in band (empty: none)")):
            e.setValidator(QtGui.QDoubleValidator())
            e.setPlaceholderText("none")
            e.setToolTip(tip)
        self.cue_box = QtWidgets.QComboBox(objectName="cue")
        self.cue_box.addItems(CUE_KINDS)
        self.start_button = QtWidgets.QPushButton("Start with feedback", objectName="feedback_start")
        self.pause_button = QtWidgets.QPushButton("Pause", objectName="feedback_pause", checkable=True)
        self.mute_button = QtWidgets.QPushButton(f"Mute ({MUTE_SHORTCUT})", objectName="feedback_mute",
                                                 checkable=True)
        self.screen_box = QtWidgets.QComboBox(objectName="screen")
        for i, s in enumerate(QtGui.QGuiApplication.screens()):
            self.screen_box.addItem(f"{i + 1}: {s.name()} {s.size().width()}x{s.size().height()}")
        self.screen_button = QtWidgets.QPushButton("Runner screen", objectName="runner_screen")
        self.status_label = QtWidgets.QLabel("", objectName="feedback_status", wordWrap=True)
        rows = [
            [QtWidgets.QLabel("Protocol"), self.protocol_box, self.enabled_box],
            [QtWidgets.QLabel("Target"), self.metric_box, self.low_edit, QtWidgets.QLabel("to"), self.high_edit],
            [QtWidgets.QLabel("Cue"), self.cue_box, self.screen_box, self.screen_button],
            [self.start_button, self.pause_button, self.mute_button],
        ]
        for r, widgets in enumerate(rows):  # four rows: the panel stays short
            box = QtWidgets.QHBoxLayout()
            for w in widgets:
                box.addWidget(w)
            grid.addLayout(box, r, 0)
        grid.addWidget(self.status_label, len(rows), 0)
        self.protocol_box.currentTextChanged.connect(self._load_preset)
        self.start_button.clicked.connect(self._on_start)
        self.pause_button.toggled.connect(self.pause_toggled)
        self.mute_button.toggled.connect(self.mute_toggled)
        self.screen_button.clicked.connect(lambda: self.runner_screen_requested.emit(self.screen_box.currentIndex()))
        self.set_running(False)
        idx = self.protocol_box.findText("five-minute")
        self.protocol_box.setCurrentIndex(max(idx, 0))
        self._load_preset(self.protocol_box.currentText())

    def _load_preset(self, name: str) -> None:
        if not name:
            return
        self._base = load_protocol(name)
        p = self._base
        self.metric_box.setCurrentText(p.metric)
        self.low_edit.setText("" if p.low is None else f"{p.low:g}")
        self.high_edit.setText("" if p.high is None else f"{p.high:g}")
        relative = p.relative
        for e in (self.low_edit, self.high_edit):
            e.setPlaceholderText("from baseline" if relative else "none")
        self.cue_box.setCurrentText(p.cue_kind)

    def _on_start(self) -> None:
        self.enabled_box.setChecked(True)
        self.start_requested.emit()

    @staticmethod
    def _value(edit: QtWidgets.QLineEdit) -> float | None:
        text = edit.text().strip().replace(",", ".")
        if not text:
            return None
        v = float(text)
        return v if math.isfinite(v) else None

    def protocol(self) -> Protocol:
        """The protocol of the next capture: the preset with the target, band and cue chosen here.

        Raises
        ------
        ConfigError
            The band is empty or inverted.
        """
        base = load_protocol(self.protocol_box.currentText())
        metric = self.metric_box.currentText()
        low, high = self._value(self.low_edit), self._value(self.high_edit)
        if metric != base.metric or low is not None or high is not None or not base.relative:
            base.metric = metric
            base.low_pct = base.high_pct = None
            base.baseline_phase = None
            base.low, base.high = low, high
            if low is None and high is None:
                raise ConfigError("feedback: give the band a low or a high value")
            if low is not None and high is not None and low > high:
                raise ConfigError(f"feedback: the band's low ({low:g}) is above its high ({high:g})")
        base.cue_kind = self.cue_box.currentText()
        if base.cue_kind == "metronome" and base.metronome_spm is None and base.metronome_pct_of_baseline is None \
                and not any(p.metronome_spm or p.metronome_pct_of_baseline for p in base.phases):
            raise ConfigError("feedback: a metronome needs a protocol with a beat rate (e.g. cadence-ramp)")
        from treadlab.feedback.protocol import parse_protocol

        return parse_protocol(base.to_toml(), base.name)

    def armed(self) -> bool:
        """True when the next capture runs with feedback."""
        return self.enabled_box.isChecked()

    def set_running(self, running: bool) -> None:
        """Enable the controls that make sense while a feedback capture runs (or not)."""
        for w in (self.protocol_box, self.metric_box, self.low_edit, self.high_edit, self.cue_box,
                  self.start_button, self.enabled_box):
            w.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.mute_button.setEnabled(running)
        if not running:
            self.pause_button.setChecked(False)
            self.mute_button.setChecked(False)

    def set_status(self, text: str) -> None:
        """The engine's status line."""
        self.status_label.setText(text.strip())
