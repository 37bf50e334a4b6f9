"""The runner screen: a second top-level window for the treadmill display, readable at 3 m.

One large number (the target metric of the last step), a traffic light (green in band, amber just outside, red
far outside), the last 10 steps as a trend of bars around the band, and the phase with its time left. Values
arrive from the feedback engine's thread through :meth:`RunnerScreen.push` (a lock-free deque append); a Qt timer
at ``refresh_hz`` (40 Hz) takes them and repaints, so a new value is on screen within one frame (25 ms) plus the
paint, well inside the 100 ms budget. :meth:`open_on` shows it full screen on a chosen screen.
"""

from __future__ import annotations

import math
import time
from collections import deque

from PySide6 import QtCore, QtGui, QtWidgets

COLOURS = {"green": QtGui.QColor("#1b9e3a"), "amber": QtGui.QColor("#f0a800"), "red": QtGui.QColor("#d7301f"),
           "none": QtGui.QColor("#555555")}
#: A step is amber (not red) while it misses the band by less than this fraction of the band's bound.
AMBER_FRAC = 0.05
TREND_N = 10
UNITS = {"strike_index_pct": "% foot", "cadence_spm": "steps/min", "vilr_bw_s": "BW/s", "avlr_bw_s": "BW/s",
         "impact_peak_bw": "BW", "contact_time_ms": "ms", "pelvic_drop_deg": "deg", "pta_g": "g"}
TITLES = {"strike_index_pct": "LANDING", "cadence_spm": "CADENCE", "vilr_bw_s": "LOADING RATE",
          "avlr_bw_s": "LOADING RATE", "impact_peak_bw": "IMPACT", "contact_time_ms": "CONTACT TIME",
          "pelvic_drop_deg": "PELVIC DROP", "pta_g": "TIBIAL SHOCK"}


def light(value: float, low: float | None, high: float | None) -> str:
    """Traffic light of a value against the band: "green", "amber", "red" or "none" (no value or no band)."""
    if value is None or not math.isfinite(value) or (low is None and high is None):
        return "none"
    if low is not None and value < low:
        miss = (low - value) / max(abs(low), 1e-9)
    elif high is not None and value > high:
        miss = (value - high) / max(abs(high), 1e-9)
    else:
        return "green"
    return "amber" if miss <= AMBER_FRAC else "red"


class RunnerScreen(QtWidgets.QWidget):
    """The treadmill display.

    Parameters
    ----------
    metric : str
        The target metric (title and unit).
    low, high : float or None
        The band.
    refresh_hz : float

    Attributes
    ----------
    value_ : float
        The value shown.
    light_ : str
    phase_text_ : str
    paints_ : deque of float
        ``time.perf_counter()`` of the last paints (frame rate).
    shown_latency_s_ : deque of float
        Push-to-paint delay of the last values shown.
    """

    def __init__(self, metric: str, low: float | None, high: float | None, refresh_hz: float = 40.0,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent, QtCore.Qt.WindowType.Window)
        self.setWindowTitle("treadlab — runner screen")
        self.metric_name = metric
        self.low, self.high = low, high
        self.value_ = math.nan
        self.light_ = "none"
        self.phase_text_ = ""
        self.trend = deque(maxlen=TREND_N)
        self.paints_: deque = deque(maxlen=200)
        self.shown_latency_s_: deque = deque(maxlen=200)
        self._inbox: deque = deque()
        self._pending_t: float | None = None
        self._phase_end_s = math.nan
        self._phase_name = ""
        self._clock = None
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(QtGui.QPalette.ColorRole.Window, QtGui.QColor("black"))
        self.setPalette(pal)
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(max(1, int(round(1000.0 / refresh_hz))))
        self.timer.timeout.connect(self._frame)
        self.timer.start()
        self.resize(1280, 720)

    # ------------------------------------------------------------------ inputs (any thread)

    def push(self, value: float, in_band: int | None = None) -> None:
        """A new step value (thread-safe; from the engine's thread)."""
        self._inbox.append((time.perf_counter(), float(value)))

    def set_band(self, low: float | None, high: float | None) -> None:
        """A new band (e.g. set from the baseline)."""
        self.low, self.high = low, high

    def set_phase(self, name: str, end_s: float, clock) -> None:
        """The phase shown and when it ends on ``clock()`` (session seconds)."""
        self._phase_name, self._phase_end_s, self._clock = name, end_s, clock

    # ------------------------------------------------------------------ display

    def _frame(self) -> None:
        while self._inbox:  # every value since the last frame; the newest is shown
            t, v = self._inbox.popleft()
            self.trend.append(v)
            self.value_ = v
            self._pending_t = t
        self.light_ = light(self.value_, self.low, self.high)
        if self._clock is not None and math.isfinite(self._phase_end_s):
            left = max(0.0, self._phase_end_s - self._clock())
            self.phase_text_ = f"{self._phase_name}   {int(left // 60)}:{int(left % 60):02d}"
        else:
            self.phase_text_ = self._phase_name
        self.update()

    def value_text(self) -> str:
        """The big number as shown."""
        if not math.isfinite(self.value_):
            return "–"
        return f"{self.value_:.0f}"

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        """Title, big number, traffic light, trend, phase."""
        now = time.perf_counter()
        self.paints_.append(now)
        if self._pending_t is not None:
            self.shown_latency_s_.append(now - self._pending_t)
            self._pending_t = None
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QtGui.QColor("black"))
        white = QtGui.QColor("white")
        font = QtGui.QFont("DejaVu Sans")
        # title and phase
        font.setPixelSize(max(12, int(h * 0.06)))
        font.setBold(True)
        p.setFont(font)
        p.setPen(QtGui.QColor("#bbbbbb"))
        p.drawText(QtCore.QRectF(0.03 * w, 0.02 * h, 0.6 * w, 0.1 * h), QtCore.Qt.AlignmentFlag.AlignLeft,
                   TITLES.get(self.metric_name, self.metric_name.upper()))
        p.drawText(QtCore.QRectF(0.4 * w, 0.02 * h, 0.57 * w, 0.1 * h), QtCore.Qt.AlignmentFlag.AlignRight,
                   self.phase_text_)
        # traffic light
        colour = COLOURS[self.light_]
        r = 0.17 * min(w, h)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawEllipse(QtCore.QPointF(0.8 * w, 0.42 * h), r, r)
        # big number (about a third of the height: 25 cm on a 75 cm high display, readable at 3 m)
        font.setPixelSize(max(24, int(h * 0.36)))
        p.setFont(font)
        p.setPen(white)
        p.drawText(QtCore.QRectF(0.02 * w, 0.12 * h, 0.6 * w, 0.5 * h), QtCore.Qt.AlignmentFlag.AlignCenter,
                   self.value_text())
        font.setPixelSize(max(10, int(h * 0.05)))
        font.setBold(False)
        p.setFont(font)
        p.drawText(QtCore.QRectF(0.02 * w, 0.6 * h, 0.6 * w, 0.07 * h), QtCore.Qt.AlignmentFlag.AlignCenter,
                   UNITS.get(self.metric_name, ""))
        self._paint_trend(p, QtCore.QRectF(0.05 * w, 0.72 * h, 0.9 * w, 0.24 * h))
        p.end()

    def _paint_trend(self, p: QtGui.QPainter, box: QtCore.QRectF) -> None:
        vals = [v for v in self.trend if math.isfinite(v)]
        bounds = [b for b in (self.low, self.high) if b is not None and math.isfinite(b)]
        if not vals:
            return
        lo = min(vals + bounds)
        hi = max(vals + bounds)
        span = max(hi - lo, 1e-9)
        lo, hi = lo - 0.1 * span, hi + 0.1 * span

        def y(v: float) -> float:
            return box.bottom() - (v - lo) / (hi - lo) * box.height()

        if bounds:
            top = y(self.high) if self.high is not None else box.top()
            bottom = y(self.low) if self.low is not None else box.bottom()
            p.fillRect(QtCore.QRectF(box.left(), top, box.width(), bottom - top), QtGui.QColor(27, 158, 58, 60))
        n = TREND_N
        bw = box.width() / n
        for i, v in enumerate(list(self.trend)):  # ten bars
            if not math.isfinite(v):
                continue
            p.setBrush(COLOURS[light(v, self.low, self.high)])
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            cy = y(v)
            p.drawEllipse(QtCore.QPointF(box.left() + (i + 0.5) * bw, cy), 0.18 * bw, 0.18 * bw)

    def open_on(self, screen_index: int) -> None:
        """Full screen on screen ``screen_index`` (the first one when there is no such screen)."""
        screens = QtGui.QGuiApplication.screens()
        screen = screens[screen_index] if 0 <= screen_index < len(screens) else screens[0]
        self.setScreen(screen)
        self.setGeometry(screen.geometry())
        self.showFullScreen()

    def frame_rate_hz(self) -> float:
        """Paints per second over the last second or so."""
        t = list(self.paints_)
        if len(t) < 3:
            return 0.0
        t = [x for x in t if x >= t[-1] - 1.0]
        return (len(t) - 1) / max(t[-1] - t[0], 1e-9)
