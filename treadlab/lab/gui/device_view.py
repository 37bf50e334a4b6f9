"""What the live view keeps per device (calibration, layout, small rings of derived data), and the preview sink.

Split from :mod:`treadlab.lab.gui.source`; no Qt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from treadlab.acquisition.ring import RingBuffer
from treadlab.lab.gui.live_data import InsoleGeometry

FOOTPRINT_S = 1.5  # the mat shows the peak of the last 1.5 s under the live frame
INSOLE_RECENT_S = 0.5  # an insole map shows the peak of the last 0.5 s (the current step) under the live frame


class PreviewSink:
    """Takes the place of the session writer while nothing is recorded: the samples only feed the live view.

    Device log lines and session events are kept (the newest 200) so the app can show them.
    """

    overflow_n = 0

    def __init__(self) -> None:
        self.events: list[tuple[float, str, int, str]] = []
        self._lock = threading.Lock()

    def put_event(self, time_s: float, source: str, level: int, text: str) -> bool:
        """Keep an event (the newest 200)."""
        with self._lock:
            self.events.append((time_s, source, level, text))
            del self.events[:-200]
        return True

    def put_samples(self, *args: object) -> bool:
        """Nothing is recorded in preview."""
        return True

    put_gaps = put_segment = put_ping = put_marker = put_samples

    def set_counters(self, name: str, values: dict[str, int]) -> None:
        """Counters are read from the workers directly."""


@dataclass
class DeviceView:
    """What the live view knows about one device (from its INFO, calibration and layout)."""

    name: str
    kind: str
    side: str | None
    shape: tuple[int, ...]
    rate_hz: float
    geometry: InsoleGeometry | None = None
    foot_length_mm: float = float("nan")
    mat_gain: np.ndarray | None = None
    mat_offset: np.ndarray | None = None
    derived: RingBuffer | None = None  # insoles: (t, total, moment x, moment y)
    derived_spec: tuple = ()  # (capacity_n, n_values, dtype) to make a fresh one
    recent: RingBuffer | None = None  # the latest raw samples, for the footprint under the live frame
    recent_spec: tuple = ()
    latest: np.ndarray | None = None  # newest raw sample
    last_t_s: float = -np.inf
    rate_marks: list = field(default_factory=list)  # (monotonic s, samples seen) for the measured rate
    seen_n: int = 0


def view_of(name: str, dev, ring_s: float) -> DeviceView:
    """The live view model of one identified device (ring buffers and geometry)."""
    shape = tuple(int(s) for s in dev.shape)
    v = DeviceView(name=name, kind=dev.kind, side=dev.side, shape=shape, rate_hz=float(dev.rate_hz))
    cal = getattr(dev, "calibration", None)
    if dev.kind == "insole":
        lay = dev.layout or {}
        pos = np.asarray(lay.get("positions_mm", np.zeros((dev.n_values, 2))), dtype=np.float64)
        v.geometry = InsoleGeometry(pos, lay.get("areas_mm2"), cal.unit if cal else "N",
                                    cal.gain if cal else None, cal.offset if cal else None)
        v.foot_length_mm = float(lay.get("foot_length_mm") or np.ptp(pos[:, 1]))
        v.derived_spec = (int(ring_s * max(v.rate_hz, 1.0)), 4, np.dtype(np.float64))
        v.derived = RingBuffer(*v.derived_spec)
        v.recent_spec = (int(INSOLE_RECENT_S * max(v.rate_hz, 1.0)) + 1, int(dev.n_values), np.dtype(dev.dtype))
    else:
        n = int(np.prod(shape))
        v.mat_gain = np.ones(n, np.float32) if cal is None else np.asarray(cal.gain, np.float32).ravel()
        v.mat_offset = np.zeros(n, np.float32) if cal is None else np.asarray(cal.offset, np.float32).ravel()
        v.recent_spec = (int(FOOTPRINT_S * max(v.rate_hz, 1.0)) + 1, n, np.dtype(dev.dtype))
    v.recent = RingBuffer(*v.recent_spec)
    return v
