"""Live views: scrolling L/R force, an insole pressure map per foot with its COP trace, the mat heat map, metrics.

Every widget is made once and then fed numpy arrays by :class:`~treadlab.lab.gui.main_window.MainWindow`'s
timer (``setData`` / ``setImage`` with fixed levels, no symbols, pen width 1, float64 x), as the pyqtgraph notes
in ``ACQUISITION-NOTES.md`` advise. No widget holds a reference to the acquisition.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from treadlab.lab.gui.model import SenselRaster

SIDE_COLOURS = {"left": "#1f77b4", "right": "#d62728"}
_CMAP = pg.colormap.get("inferno")
_LUT = _CMAP.getLookupTable(nPts=256, alpha=False)


def _peak_level(current: float, data_max: float, floor: float) -> float:
    """Colour/axis scale with hysteresis, in steps of a quarter of a power of ten (100, 125, 150, ... 1000, 1250...).

    It rises at once when the data go above it and falls only when the data stay under 40 % of it, so the scale
    changes a few times per session instead of every frame (a range change costs more than a frame).
    """
    if not np.isfinite(data_max) or data_max <= floor:
        target = floor
    else:
        step = 0.25 * 10.0 ** np.floor(np.log10(data_max))
        target = float(np.ceil(data_max * 1.05 / step) * step)
    if target > current or target < 0.4 * current:
        return target
    return current


class ForceView(pg.PlotWidget):
    """Left and right total force over the last ``window_s`` seconds, newest sample at x = 0.

    Parameters
    ----------
    window_s : float
        Width of the scrolling window.
    """

    def __init__(self, window_s: float = 5.0, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent=parent, background="w")
        self.window_s = float(window_s)
        self.setLabel("left", "total force", units="N")
        self.setLabel("bottom", "time", units="s")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.addLegend(offset=(10, 5))
        pi = self.getPlotItem()
        pi.setClipToView(True)
        pi.setDownsampling(auto=True, mode="peak")
        self.setXRange(-self.window_s, 0.0, padding=0.0)
        self.curves = {
            side: self.plot(pen=pg.mkPen(colour, width=1), name=side) for side, colour in SIDE_COLOURS.items()
        }
        self._y_max_n = 100.0
        self.setYRange(0.0, self._y_max_n, padding=0.0)

    def set_trace(self, side: str, t_s: np.ndarray, force_n: np.ndarray, now_s: float) -> None:
        """Show one foot's total force; ``t_s`` on the session clock, drawn relative to ``now_s``."""
        x = np.asarray(t_s, dtype=np.float64) - now_s
        y = np.asarray(force_n, dtype=np.float64)
        keep = x >= -self.window_s
        x, y = x[keep], y[keep]
        self.curves[side].setData(x, y, skipFiniteCheck=True)
        if len(y):
            level = _peak_level(self._y_max_n, float(np.nanmax(y)), 100.0)
            if level != self._y_max_n:
                self._y_max_n = level
                self.setYRange(0.0, level, padding=0.0)

    def clear_traces(self) -> None:
        """Empty both curves (device gone)."""
        for c in self.curves.values():
            c.setData([], [])


class _HeatMapView(pg.PlotWidget):
    """A fixed, axis-less plot holding one row-major image with the shared colour table."""

    def __init__(self, title: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent=parent, background="w")
        self.setTitle(title)
        self.setAspectLocked(True)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.hideAxis("bottom")
        self.hideAxis("left")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(_LUT)
        self.addItem(self.image)


class InsoleView(_HeatMapView):
    """Pressure map of one insole (sensels drawn as nearest-sensel cells) and the COP trace of the current step.

    Parameters
    ----------
    side : str
        ``"left"`` or ``"right"``; used for the title and the COP colour.
    """

    def __init__(self, side: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(f"{side} insole", parent=parent)
        self.side = side
        self.cop = self.plot(pen=pg.mkPen("#00e5ff", width=1))
        self.raster: SenselRaster | None = None
        self._x_sign = -1.0 if side == "left" else 1.0
        self._level = 10.0

    def set_layout(self, positions_mm: np.ndarray) -> None:
        """Build the pixel mapping for this insole's sensel positions (once per device).

        Positions are in the foot frame (x lateral); the left foot is drawn mirrored, so both feet appear as seen
        from above (lateral side of the left foot on the left), as in the coach reports.
        """
        pos = np.array(positions_mm, dtype=np.float64)
        pos[:, 0] *= self._x_sign
        self.raster = SenselRaster(pos)
        rows, cols = self.raster.index_.shape
        self.image.setImage(np.zeros((rows, cols), dtype=np.float32), levels=(0.0, self._level), autoLevels=False)
        self.image.setRect(QtCore.QRectF(*self.raster.rect_mm_))
        self.autoRange(padding=0.02)

    def set_frame(self, values: np.ndarray, cop_mm: np.ndarray | None, recent: np.ndarray | None = None) -> None:
        """Show the newest frame (per-sensel values) over the dimmed peak of the recent ones (``recent``), and
        the COP points of the current step, shape (k, 2).
        """
        if self.raster is None:
            return
        img = self.raster.image(values)
        if recent is not None:
            img = np.maximum(img, 0.4 * self.raster.image(recent))
        self._level = _peak_level(self._level, float(img.max(initial=0.0)), 1.0)
        self.image.setImage(img, levels=(0.0, self._level), autoLevels=False)
        if cop_mm is None or len(cop_mm) == 0:
            self.cop.setData([], [])
            return
        cop = np.asarray(cop_mm, dtype=np.float64)
        self.cop.setData(self._x_sign * cop[:, 0], cop[:, 1], connect="finite")


class MatView(_HeatMapView):
    """The treadmill mat as a heat map: the newest frame over the footprints of the last seconds."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("mat", parent=parent)
        self._level = 10.0
        self._shape: tuple[int, int] | None = None

    def set_frames(self, current: np.ndarray, footprints: np.ndarray | None) -> None:
        """Show ``current`` (rows, cols) with ``footprints`` (rows, cols; peak of recent frames) dimmed under it."""
        img = np.asarray(current, dtype=np.float32)
        if footprints is not None:
            img = np.maximum(img, 0.4 * np.asarray(footprints, dtype=np.float32))
        self._level = _peak_level(self._level, float(img.max(initial=0.0)), 1.0)
        self.image.setImage(img, levels=(0.0, self._level), autoLevels=False)
        if self._shape != img.shape:
            self._shape = img.shape
            self.autoRange(padding=0.01)


class MetricsView(QtWidgets.QGroupBox):
    """Live step metrics: cadence, strike class of the last steps and VILR per foot, running asymmetry."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Step metrics", parent)
        grid = QtWidgets.QGridLayout(self)
        self.labels: dict[str, QtWidgets.QLabel] = {}
        big = "font-size: 15pt; font-weight: bold;"
        rows = [
            ("cadence", "Cadence"),
            ("steps", "Steps"),
            ("strike_left", "Strike, left"),
            ("strike_right", "Strike, right"),
            ("vilr_left", "VILR left"),
            ("vilr_right", "VILR right"),
            ("asymmetry", "Asymmetry"),
        ]
        for i, (key, text) in enumerate(rows):
            grid.addWidget(QtWidgets.QLabel(text), i, 0)
            lab = QtWidgets.QLabel("–")
            lab.setStyleSheet(big if key in ("cadence", "asymmetry") else "font-weight: bold;")
            lab.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(lab, i, 1)
            self.labels[key] = lab

    def set_metrics(self, texts: dict[str, str]) -> None:
        """Show formatted metrics (keys as in :attr:`labels`; missing keys show a dash)."""
        for key, lab in self.labels.items():
            lab.setText(texts.get(key, "–"))
