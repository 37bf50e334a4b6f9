"""The imu kind in the app: each inertial sensor's acceleration and angular rate over the last seconds, the pelvis's
obliquity and rotation, the last steps' pelvic drop per side and PTA per step.

:class:`ImuLiveView` (Qt-free) keeps a ring of the newest samples in g and deg/s; :class:`ImuPanel` draws one
row per sensor (its placement, an acceleration plot and, with a gyroscope, an angular-rate plot). Both are meant
to be extended (pelvis obliquity and rotation, per-step panels): a subclass adds rings in ``take`` and widgets
in ``_add_row``. The pelvis and step parts (:class:`PelvisRow`, :class:`StepValuesView`) draw the Qt-free state of
:mod:`treadlab.lab.gui.imu_live` (the analysis' online IMU metrics on the insoles' step events).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from treadlab.acquisition.ring import RingBuffer
from treadlab.calibration import apply_calibration
from treadlab.kinds import DeviceDescription
from treadlab.kinds import imu as k
from treadlab.lab.gui.imu_live import STATE_TEXT, STEP_METRICS, ImuOnline, LiveImuSteps
from treadlab.lab.gui.kind_views import KindView, register_view
from treadlab.vocabulary import FEET, IMU_METRIC_LABELS

AXIS_COLOURS = ("#1f77b4", "#2ca02c", "#d62728")  # x, y, z
WINDOW_S = 5.0


class ImuLiveView(KindView):
    """One imu: the newest acceleration (g) and angular rate (deg/s) in a ring of ``ring_s`` seconds.

    Attributes
    ----------
    placement : str
    acc_cols, gyro_cols : list of int or None
        Columns of ``ax ay az`` and ``gx gy gz`` in the device's values (None without that sensor).
    """

    def __init__(self, desc: DeviceDescription, ring_s: float) -> None:
        super().__init__(desc, ring_s)
        self.placement = str(desc.info.get("placement", ""))
        self.channels = list(desc.channel_labels) or [str(c) for c in desc.info.get("channels", [])]
        self.scale, self.zero = k.physical_scale(self.channels, desc.info, desc.calibration)
        self.acc_cols = self._cols(k.ACC)
        self.gyro_cols = self._cols(k.GYRO)
        cols = (self.acc_cols or []) + (self.gyro_cols or [])
        self._cols_shown = cols
        self.ring = RingBuffer(int(ring_s * max(self.rate_hz, 1.0)) + 1, 1 + len(cols), np.dtype(np.float64))
        self.online = ImuOnline(desc)  # orientation, alignment, per-step values (imu_live)

    def _cols(self, names: tuple[str, ...]) -> list[int] | None:
        return [self.channels.index(c) for c in names] if all(c in self.channels for c in names) else None

    def physical(self, raw: np.ndarray) -> np.ndarray:
        """Raw values (k, n) in g, deg/s, uT, with their sign (float64)."""
        return apply_calibration(raw, self.scale, self.zero, dtype=np.float64)

    def take(self, t: np.ndarray, values: np.ndarray) -> None:
        """Keep the newest samples' acceleration and angular rate."""
        super().take(t, values)
        phys = apply_calibration(values[:, self._cols_shown], self.scale[self._cols_shown],
                                 self.zero[self._cols_shown], dtype=np.float64)
        self.ring.append(t, np.column_stack([t, phys]))
        self.online.feed(t, values)

    def window(self, last_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """The last seconds: time (s), acceleration (rows, 3) in g, angular rate (rows, 3) in deg/s or None."""
        if self.ring.total_n == 0:
            return None
        _, d = self.ring.snapshot(last_s=last_s)
        acc = d[:, 1:4] if self.acc_cols is not None else np.zeros((len(d), 0))
        gyro = d[:, 4:7] if self.gyro_cols is not None else None
        return d[:, 0], acc, gyro


class TracePlot(pg.PlotWidget):
    """Three axes of one sensor over the last ``window_s`` seconds, newest sample at x = 0."""

    def __init__(self, label: str, units: str, window_s: float = WINDOW_S) -> None:
        super().__init__(background="w")
        self.window_s = float(window_s)
        self.setLabel("left", label, units=units)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.addLegend(offset=(10, 5))
        pi = self.getPlotItem()
        pi.setClipToView(True)
        pi.setDownsampling(auto=True, mode="peak")
        self.setXRange(-self.window_s, 0.0, padding=0.0)
        self.curves = [self.plot(pen=pg.mkPen(c, width=1), name=a) for c, a in zip(AXIS_COLOURS, "xyz")]
        self.shown_n = 0

    def set_traces(self, t_s: np.ndarray, values: np.ndarray, now_s: float) -> None:
        """Draw the three columns of ``values`` against ``t_s`` (session clock) relative to ``now_s``."""
        x = np.asarray(t_s, np.float64) - now_s
        keep = x >= -self.window_s
        for j, curve in enumerate(self.curves):
            curve.setData(x[keep], np.asarray(values[keep, j], np.float64), skipFiniteCheck=True)
        self.shown_n = int(np.count_nonzero(keep))


class ImuRow(QtWidgets.QWidget):
    """One sensor's row: its name and placement, acceleration, and angular rate when it has a gyroscope."""

    def __init__(self, view: ImuLiveView) -> None:
        super().__init__()
        self.view = view
        box = QtWidgets.QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.title = QtWidgets.QLabel(f"{view.name}\n{view.placement}")
        box.addWidget(self.title)
        self.acc = TracePlot("acceleration", "g")
        box.addWidget(self.acc, 1)
        self.gyro = TracePlot("angular rate", "deg/s") if view.gyro_cols is not None else None
        if self.gyro is not None:
            box.addWidget(self.gyro, 1)

    def refresh(self, now_s: float) -> None:
        """Draw the last seconds."""
        w = self.view.window(self.acc.window_s)
        if w is None:
            return
        t, acc, gyro = w
        self.acc.set_traces(t, acc, now_s)
        if self.gyro is not None and gyro is not None:
            self.gyro.set_traces(t, gyro, now_s)


class PelvisRow(QtWidgets.QWidget):
    """The pelvis sensor's obliquity and rotation (deg, relative to standing) over the last seconds."""

    def __init__(self, view: ImuLiveView) -> None:
        super().__init__()
        self.view = view
        box = QtWidgets.QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.title = QtWidgets.QLabel(f"{view.name}\npelvis angles")
        box.addWidget(self.title)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("left", "pelvis", units="deg")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.addLegend(offset=(10, 5))
        self.plot.setXRange(-WINDOW_S, 0.0, padding=0.0)
        self.curves = {"obliquity": self.plot.plot(pen=pg.mkPen("#9467bd", width=1), name="obliquity"),
                       "rotation": self.plot.plot(pen=pg.mkPen("#8c564b", width=1), name="rotation")}
        box.addWidget(self.plot, 2)
        self.shown_n = 0

    def refresh(self, now_s: float) -> None:
        """Draw the last seconds of obliquity and rotation (nothing until the sensor is aligned)."""
        self.title.setText(f"{self.view.name}\npelvis: {STATE_TEXT.get(self.view.online.state, '')}")
        ang = self.view.online.angles(WINDOW_S)
        if ang is None or not len(ang):
            return
        x = ang[:, 0] - now_s
        self.curves["rotation"].setData(x, ang[:, 1], skipFiniteCheck=True)
        self.curves["obliquity"].setData(x, ang[:, 2], skipFiniteCheck=True)
        self.shown_n = len(ang)


class StepValuesView(QtWidgets.QGroupBox):
    """The last steps' pelvic drop per stance side and PTA per step, left and right."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Pelvis and shock, last steps", parent)
        grid = QtWidgets.QGridLayout(self)
        self.labels: dict[str, QtWidgets.QLabel] = {}
        for i, m in enumerate(STEP_METRICS):
            label, unit, _ = IMU_METRIC_LABELS[m]
            for j, foot in enumerate(FEET):
                grid.addWidget(QtWidgets.QLabel(f"{label[:1].upper() + label[1:]}, {foot} ({unit})"), 2 * i + j, 0)
                lab = QtWidgets.QLabel("–")
                lab.setStyleSheet("font-weight: bold;")
                grid.addWidget(lab, 2 * i + j, 1)
                self.labels[f"{m}_{foot}"] = lab

    def set_texts(self, texts: dict[str, str]) -> None:
        """Show :meth:`LiveImuSteps.texts`."""
        for key, lab in self.labels.items():
            lab.setText(texts.get(key, "–"))


class ImuPanel(QtWidgets.QWidget):
    """Every imu connected, one :class:`ImuRow` each, ordered by placement."""

    stretch = 4

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.box = QtWidgets.QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.rows: dict[str, ImuRow] = {}
        self.pelvis: PelvisRow | None = None
        self.steps = LiveImuSteps()
        self.step_values = StepValuesView()
        self.step_values.setVisible(False)
        self.box.addWidget(self.step_values)
        self._views: list[ImuLiveView] = []
        self.setVisible(False)  # shown once an imu is connected

    def window_attrs(self) -> dict:
        """``win.imu`` (this panel)."""
        return {"imu": self}

    def set_all_views(self, views: list) -> None:
        """Every device's view: the insoles give the steps of the per-step values."""
        self.steps.set_views(self._views, [v for v in views if v.kind == "insole"])
        self.step_values.setVisible(bool(self._views) and self.steps.has_steps)

    def _set_pelvis(self, views: list[ImuLiveView]) -> None:
        pelvis = next((v for v in views if v.online.placement == "pelvis" and v.online.angles(0.0) is not None),
                      None)
        if self.pelvis is not None and (pelvis is None or self.pelvis.view is not pelvis):
            self.box.removeWidget(self.pelvis)
            self.pelvis.deleteLater()
            self.pelvis = None
        if pelvis is not None and self.pelvis is None:
            self.pelvis = PelvisRow(pelvis)
            self.box.insertWidget(0, self.pelvis, 1)

    def set_views(self, views: list[ImuLiveView]) -> None:
        """The imus connected: one row each (rows of sensors gone are removed)."""
        views = sorted(views, key=lambda v: (k.PLACEMENTS.index(v.placement) if v.placement in k.PLACEMENTS
                                             else len(k.PLACEMENTS), v.name))
        for name in [n for n, r in self.rows.items() if r.view not in views]:
            row = self.rows.pop(name)
            self.box.removeWidget(row)
            row.deleteLater()
        for v in views:
            if v.name not in self.rows or self.rows[v.name].view is not v:
                self._add_row(v)
        self._views = list(views)
        self._set_pelvis(self._views)
        self.setVisible(bool(self.rows))

    def _add_row(self, view: ImuLiveView) -> None:
        old = self.rows.pop(view.name, None)
        if old is not None:
            self.box.removeWidget(old)
            old.deleteLater()
        self.rows[view.name] = row = ImuRow(view)
        self.box.addWidget(row, 1)

    def reset(self, body_mass_kg: float | None = None) -> None:
        """Forget the steps' values (a capture starts or stops; the traces scroll)."""
        self.steps.reset()
        if body_mass_kg:
            self.steps.body_mass_kg = float(body_mass_kg)

    def set_body_mass(self, body_mass_kg: float) -> None:
        """The body mass of the step detection's loading normalisation."""
        self.steps.body_mass_kg = float(body_mass_kg)

    def refresh(self, now_s: float, slow: bool) -> None:
        """One display frame: every row's traces, the pelvis angles; the step values (a few times a second)."""
        for row in self.rows.values():
            row.refresh(now_s)
        if self.pelvis is not None:
            self.pelvis.refresh(now_s)
        if self.steps.update() or slow:
            self.step_values.set_texts(self.steps.texts())


register_view("imu", ImuLiveView, ImuPanel)
