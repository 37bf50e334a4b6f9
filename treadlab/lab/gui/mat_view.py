"""The pressure-mat kind in the app: the newest frame over the footprints of the last 1.5 s."""

from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from treadlab.lab.gui.kind_views import KindView, register_view
from treadlab.lab.gui.live_views import MatView


class MatLiveView(KindView):
    """One mat: its newest frame and the recent peak, calibrated, shape (rows, cols)."""

    recent_s = 1.5

    def frames(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Newest calibrated frame and the footprints of the last seconds, both (rows, cols)."""
        if self.latest is None:
            return None
        shape = self.shape[-2:] if len(self.shape) >= 2 else (1, -1)
        return self.calibrated(self.latest).reshape(shape), self.calibrated(self.peak()).reshape(shape)


class MatPanel(QtWidgets.QWidget):
    """The mat heat map (the first mat connected)."""

    stretch = 3

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = MatView()
        box = QtWidgets.QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.view)
        self._views: list[MatLiveView] = []

    def window_attrs(self) -> dict:
        """``win.mat``."""
        return {"mat": self.view}

    def set_views(self, views: list[MatLiveView]) -> None:
        """The mats connected."""
        self._views = list(views)

    def reset(self, body_mass_kg: float | None = None) -> None:
        """Nothing to forget."""

    def set_body_mass(self, body_mass_kg: float) -> None:
        """Not used by the mat view."""

    def refresh(self, now_s: float, slow: bool) -> None:
        """Draw the first mat's frames."""
        frames = self._views[0].frames() if self._views else None
        if frames is not None:
            self.view.set_frames(*frames)


register_view("mat", MatLiveView, MatPanel)
