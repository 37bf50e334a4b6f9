"""The force kind in the app: force plates and instrumented treadmills (one belt or split belts).

Per device a :class:`ForceLiveView` keeps a ring of (time, vertical force, centre of pressure) per plate, derived
from the calibrated channels in one vectorised step per poll; the :class:`ForcePanel` draws the vertical force of
every belt over the last seconds and the centre of pressure of the last two seconds on the belt, seen from above
(the "butterfly" of running: x to the runner's right, y forward). The panel hides itself while no force device is
connected. Axes follow the device's INFO ``axes`` (vertical and forward axis, each with a sign); the COP comes
from the ``COP`` channels, or from the moments about each plate's surface centre (``origin_mm``).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from treadlab.acquisition.ring import RingBuffer
from treadlab.analysis.forceviews import PlateAxes, plate_load_and_cop
from treadlab.calibration import apply_calibration
from treadlab.kinds import DeviceDescription
from treadlab.lab.gui.kind_views import KindView, register_view
from treadlab.lab.gui.live_views import _peak_level

#: Below this vertical force (N) a plate's COP is not drawn.
COP_MIN_N = 50.0
BELT_COLOURS = {"": "#2ca02c", "_l": "#1f77b4", "_r": "#d62728"}
BELT_NAMES = {"": "belt", "_l": "left belt", "_r": "right belt"}


class PlateMap:
    """Where one device's vertical force and COP are, per plate (the Qt-free part of the live view).

    Parameters
    ----------
    labels : sequence of str
        Channel names in column order.
    info : dict
        The device's INFO (``belts``, ``axes``, ``origin_mm``).

    Attributes
    ----------
    suffixes : list of str
        ``[""]`` (one belt) or ``["_l", "_r"]``.
    """

    def __init__(self, labels, info: dict) -> None:
        self.labels = [str(c) for c in labels]
        self.suffixes = ["_l", "_r"] if info.get("belts") == "split" else [""]
        self.axes = PlateAxes(info.get("axes"))
        origin = np.asarray(info.get("origin_mm", [0.0, 0.0, 0.0]), dtype=np.float64).reshape(-1, 3)
        self.plates = []
        for i, s in enumerate(self.suffixes):
            chans = {c[: len(c) - len(s)]: c for c in self.labels if not s or c.endswith(s)}
            self.plates.append((chans, origin[min(i, len(origin) - 1)]))

    def derive(self, values: np.ndarray) -> np.ndarray:
        """Vertical load (N, positive under load), COP right and forward (mm) per plate: shape (k, plates * 3);
        COP NaN below :data:`COP_MIN_N` or without COP or moment channels.
        """
        cols = {c: values[:, i] for i, c in enumerate(self.labels)}
        out = np.empty((len(values), 3 * len(self.plates)))
        for i, (chans, origin) in enumerate(self.plates):
            out[:, 3 * i: 3 * i + 3] = np.column_stack(plate_load_and_cop(cols, chans, self.axes, origin, COP_MIN_N))
        return out


class ForceLiveView(KindView):
    """One force device: a ring of (t, then per plate: load N, COP right mm, COP forward mm)."""

    recent_s = 0.5

    def __init__(self, desc: DeviceDescription, ring_s: float) -> None:
        super().__init__(desc, ring_s)
        self.map = PlateMap(desc.channel_labels or [], desc.info or {})
        self.derived = RingBuffer(int(ring_s * max(self.rate_hz, 1.0)) + 1, 1 + 3 * len(self.map.plates),
                                  np.dtype(np.float64))

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated values (N, N·mm, mm, m/s), signs kept (forces and moments are signed)."""
        return apply_calibration(raw, self.gain, self.offset, clip=False, dtype=np.float64)

    def take(self, t: np.ndarray, values: np.ndarray) -> None:
        """Keep the newest samples and their per-plate load and COP (one vectorised step)."""
        super().take(t, values)
        self.derived.append(t, np.column_stack([t, self.map.derive(self.calibrated(values))]))

    def window(self, last_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The last seconds: time (s), vertical load per plate (k, plates) in N, COP (k, plates, 2) right and
        forward in mm (NaN unloaded).
        """
        if self.derived.total_n == 0:
            return None
        _, d = self.derived.snapshot(last_s=last_s)
        per = d[:, 1:].reshape(len(d), -1, 3)
        return d[:, 0], per[:, :, 0], per[:, :, 1:]


class ForcePanel(QtWidgets.QWidget):
    """Vertical force per belt (scrolling, 5 s) and the COP butterfly of the last 2 s (the first force device)."""

    stretch = 5
    window_s = 5.0
    butterfly_s = 2.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.trace = pg.PlotWidget(background="w")
        self.trace.setLabel("left", "vertical force", units="N")
        self.trace.setLabel("bottom", "time", units="s")
        self.trace.showGrid(x=True, y=True, alpha=0.2)
        self.trace.setMouseEnabled(x=False, y=False)
        self.trace.hideButtons()
        self.trace.addLegend(offset=(10, 5))
        self.trace.setXRange(-self.window_s, 0.0, padding=0.0)
        self.cop = pg.PlotWidget(background="w")
        self.cop.setLabel("left", "forward", units="mm")
        self.cop.setLabel("bottom", "to the right", units="mm")
        self.cop.setAspectLocked(True)
        self.cop.setMouseEnabled(x=False, y=False)
        self.cop.hideButtons()
        self.cop.setXRange(-250.0, 250.0, padding=0.0)
        self.cop.setYRange(-600.0, 600.0, padding=0.0)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.paths: dict[str, pg.PlotDataItem] = {}
        box = QtWidgets.QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.trace, 3)
        box.addWidget(self.cop, 2)
        self._views: list[ForceLiveView] = []
        self._y_max_n = 500.0
        self.trace.setYRange(0.0, self._y_max_n, padding=0.0)
        self.setVisible(False)

    def window_attrs(self) -> dict:
        """``win.force_plates`` (this panel)."""
        return {"force_plates": self}

    def set_views(self, views: list[ForceLiveView]) -> None:
        """The force devices connected (the first is drawn); the panel shows only while there is one."""
        self._views = list(views)
        suffixes = self._views[0].map.suffixes if self._views else []
        for s in list(self.curves):
            if s not in suffixes:
                self.trace.removeItem(self.curves.pop(s))
                self.cop.removeItem(self.paths.pop(s))
        for s in suffixes:
            if s not in self.curves:
                pen = pg.mkPen(BELT_COLOURS[s], width=1)
                self.curves[s] = self.trace.plot(pen=pen, name=BELT_NAMES[s])
                self.paths[s] = self.cop.plot(pen=pen, connect="finite")
        self.setVisible(bool(self._views))

    def reset(self, body_mass_kg: float | None = None) -> None:
        """Nothing to forget (the traces follow the live data)."""

    def set_body_mass(self, body_mass_kg: float) -> None:
        """Not used by the force view."""

    def refresh(self, now_s: float, slow: bool) -> None:
        """Draw the first force device's vertical force per belt and its recent COP."""
        if not self._views:
            return
        w = self._views[0].window(self.window_s)
        if w is None:
            return
        t, load, cop = w
        x = t - now_s
        for i, s in enumerate(self._views[0].map.suffixes):
            self.curves[s].setData(x, load[:, i], skipFiniteCheck=True)
            recent = x >= -self.butterfly_s
            self.paths[s].setData(cop[recent, i, 0], cop[recent, i, 1])
        if len(load):
            level = _peak_level(self._y_max_n, float(np.nanmax(load)) if np.isfinite(load).any() else 0.0, 500.0)
            if level != self._y_max_n:
                self._y_max_n = level
                self.trace.setYRange(0.0, level, padding=0.0)


register_view("force", ForceLiveView, ForcePanel)
