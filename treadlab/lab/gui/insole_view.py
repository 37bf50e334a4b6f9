"""The insole kind in the app: per-device live state (forces, moments, COP) and its panel (force traces, the
two pressure maps, live step metrics). Registered by :mod:`treadlab.lab.gui.kind_views`' built-ins.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from treadlab.acquisition.ring import RingBuffer
from treadlab.kinds import DeviceDescription
from treadlab.lab.gui.kind_views import KindView, register_view
from treadlab.lab.gui.live_data import InsoleGeometry, current_step_slice, step_threshold_n
from treadlab.lab.gui.live_views import ForceView, InsoleView, MetricsView
from treadlab.lab.gui.step_metrics import LiveStepMetrics, ToeOffTrigger

SIDES = ("left", "right")


class InsoleLiveView(KindView):
    """One insole: its geometry (one weight matrix) and a ring of (t, total force, moment x, moment y)."""

    recent_s = 0.5  # the map shows the peak of the last 0.5 s (the current step) under the live frame

    def __init__(self, desc: DeviceDescription, ring_s: float) -> None:
        super().__init__(desc, ring_s)
        lay = desc.layout or {}
        pos = np.asarray(lay.get("positions_mm", np.zeros((desc.n_values, 2))), dtype=np.float64)
        cal = desc.calibration
        self.geometry = InsoleGeometry(pos, lay.get("areas_mm2"), cal.unit if cal else "N",
                                       cal.gain if cal else None, cal.offset if cal else None)
        self.foot_length_mm = float(lay.get("foot_length_mm") or np.ptp(pos[:, 1]))
        self.derived = RingBuffer(int(ring_s * max(self.rate_hz, 1.0)), 4, np.dtype(np.float64))

    def take(self, t: np.ndarray, values: np.ndarray) -> None:
        """Keep the newest samples and their total force and moments (one matrix product)."""
        super().take(t, values)
        self.derived.append(t, np.column_stack([t, self.geometry.sums(values)]))

    def window(self, last_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The last seconds: time (s), total force (N), moment along the foot (N mm)."""
        if self.derived.total_n == 0:
            return None
        _, d = self.derived.snapshot(last_s=last_s)
        return d[:, 0], d[:, 1], d[:, 3]

    def frame(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray] | None:
        """Newest calibrated sensel values, the COP trace (mm) of the current step, and the recent peak."""
        if self.latest is None:
            return None
        _, d = self.derived.snapshot(last_s=1.0)
        s = current_step_slice(d[:, 1], step_threshold_n(d[:, 1]))
        cop = None if s is None else self.geometry.cop(d[s, 1:4])
        return self.geometry.calibrated(self.latest), cop, self.geometry.calibrated(self.peak())


class InsolePanel(QtWidgets.QWidget):
    """Left and right force traces, the two pressure maps, and the live step metrics."""

    stretch = 7

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.force = ForceView(window_s=5.0)
        self.maps = {side: InsoleView(side) for side in SIDES}
        self.metrics = MetricsView()
        self.step_metrics = LiveStepMetrics()
        self.toe_off = {side: ToeOffTrigger() for side in SIDES}
        self._views: dict[str, InsoleLiveView] = {}
        self._traces: dict[str, tuple] = {}
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.force, 0, 0, 1, 2)
        grid.addWidget(self.metrics, 0, 2)
        grid.addWidget(self.maps["left"], 1, 0)
        grid.addWidget(self.maps["right"], 1, 1)
        grid.setRowStretch(0, 2)
        grid.setRowStretch(1, 3)

    def window_attrs(self) -> dict:
        """Widgets the main window exposes by name (``win.force``, ``win.insoles``...)."""
        return {"force": self.force, "insoles": self.maps, "metrics": self.metrics,
                "step_metrics": self.step_metrics, "toe_off": self.toe_off}

    def set_views(self, views: list[InsoleLiveView]) -> None:
        """The insoles connected (one per side); builds each map's pixel mapping."""
        self._views = {v.side: v for v in views if v.side in SIDES}
        for side, v in self._views.items():
            self.maps[side].set_layout(v.geometry.positions_mm)

    def reset(self, body_mass_kg: float | None = None) -> None:
        """Forget steps and traces (a capture starts or stops)."""
        self.step_metrics.reset(body_mass_kg)
        self._traces.clear()
        for trigger in self.toe_off.values():
            trigger.reset()

    def set_body_mass(self, body_mass_kg: float) -> None:
        """The body mass the metrics are normalised by (the form's value while nothing is recorded)."""
        self.step_metrics.body_mass_kg = body_mass_kg

    def refresh(self, now_s: float, slow: bool) -> None:
        """One display frame; the step metrics when ``slow`` (a few times a second)."""
        for side, v in self._views.items():
            w = v.window(self.force.window_s)
            if w is not None:
                trace = (w[0], w[1])
                self.force.set_trace(side, trace[0], trace[1], now_s)
                self._traces[side] = trace
            frame = v.frame()
            if frame is not None:
                self.maps[side].set_frame(*frame)
        if slow:
            self._update_metrics()

    def _update_metrics(self) -> None:
        """After each toe-off, add that foot's finished steps (analysis functions on its last 4 s) and show them."""
        new_n = 0
        for side, v in self._views.items():
            trace = self._traces.get(side)
            if trace is None or not self.toe_off[side].due(*trace):
                continue
            window = v.window(4.0)
            if window is not None:
                new_n += self.step_metrics.update(side, window[0], window[1], window[2], v.foot_length_mm)
        if new_n or not self.step_metrics.steps_["left"] and not self.step_metrics.steps_["right"]:
            self.metrics.set_metrics(self.step_metrics.texts())


register_view("insole", InsoleLiveView, InsolePanel)
