"""Devices panel: one row per rig device with a status light, rate against nominal, losses, CRC errors, drift."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from treadlab.lab.gui.model import DeviceRow

COLUMNS = ("Device", "State", "Samples/s", "Lost", "CRC err", "Drift ppm", "")
_NAME, _STATE, _RATE, _LOST, _CRC, _DRIFT, _BUTTON = range(len(COLUMNS))
LIGHT = "\u25cf"  # the status light, coloured, in front of the state


class DevicesPanel(QtWidgets.QGroupBox):
    """Table of devices; emits :attr:`connect_requested` / :attr:`disconnect_requested` with the device name.

    The rows are created on the first :meth:`set_rows` and updated in place afterwards (no widget churn at
    30 Hz).
    """

    connect_requested = QtCore.Signal(str)
    disconnect_requested = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Devices", parent)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_NAME, QtWidgets.QHeaderView.ResizeMode.Stretch)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.table)
        self._row_of: dict[str, int] = {}
        self._buttons: dict[str, QtWidgets.QPushButton] = {}
        self.rows: dict[str, DeviceRow] = {}

    def _add_row(self, name: str) -> int:
        r = self.table.rowCount()
        self.table.insertRow(r)
        for c in range(len(COLUMNS) - 1):
            item = QtWidgets.QTableWidgetItem("")
            if c >= _RATE:
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(r, c, item)
        self.table.item(r, _NAME).setText(name)
        button = QtWidgets.QPushButton("Disconnect")
        button.setObjectName(f"connect_{name}")
        button.clicked.connect(lambda _checked=False, n=name: self._toggle(n))
        self.table.setCellWidget(r, _BUTTON, button)
        self._buttons[name] = button
        self._row_of[name] = r
        return r

    def _toggle(self, name: str) -> None:
        row = self.rows.get(name)
        if row is not None and row.state in ("disconnected", "lost"):
            self.connect_requested.emit(name)
        else:
            self.disconnect_requested.emit(name)

    def button(self, name: str) -> QtWidgets.QPushButton:
        """The connect/disconnect button of a device (for tests and shortcuts)."""
        return self._buttons[name]

    def set_rows(self, rows: list[DeviceRow]) -> None:
        """Show the current state of every device."""
        for row in rows:
            r = self._row_of.get(row.name)
            if r is None:
                r = self._add_row(row.name)
            self.rows[row.name] = row
            state = self.table.item(r, _STATE)
            state.setText(f"{LIGHT} {row.message}")
            state.setForeground(QtGui.QBrush(QtGui.QColor(row.colour)))
            self.table.item(r, _RATE).setText(row.rate_text)
            self.table.item(r, _LOST).setText(str(row.lost_n))
            self.table.item(r, _CRC).setText(str(row.crc_errors_n))
            self.table.item(r, _DRIFT).setText("–" if row.drift_ppm is None else f"{row.drift_ppm:+.1f}")
            self._buttons[row.name].setText("Connect" if row.state in ("disconnected", "lost") else "Disconnect")

    def set_error(self, name: str, text: str | None) -> None:
        """Why a device is not streaming (tooltip of its state), or None to clear it."""
        r = self._row_of.get(name)
        if r is not None:
            self.table.item(r, _STATE).setToolTip(text or "")

    def error_of(self, name: str) -> str:
        """The error shown for a device (``""`` when none)."""
        r = self._row_of.get(name)
        return self.table.item(r, _STATE).toolTip() if r is not None else ""

    def state_of(self, name: str) -> str:
        """The state shown for a device (``""`` if unknown)."""
        row = self.rows.get(name)
        return row.state if row else ""
