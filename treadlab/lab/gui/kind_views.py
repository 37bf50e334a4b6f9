"""Live views per device kind: the registry the app picks a device's view from (no Qt in this module).

Each kind that the app can show registers, in its own module, a :class:`KindView` subclass (what the live view
keeps of one device: small rings of derived data, Qt-free, fed by :meth:`LiveSource.poll`) and optionally a
panel factory (the Qt widget that draws every device of the kind, placed by the main window)::

    register_view("thermometer", ThermometerView, ThermometerPanel)

A kind with no registered view gets a plain :class:`KindView` (state, rate and counters in the devices panel,
no picture).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from treadlab.acquisition.ring import RingBuffer
from treadlab.calibration import apply_calibration
from treadlab.kinds import DeviceDescription

#: How many seconds of raw samples a view keeps for the picture under the live frame (its subclass may change it).
RECENT_S = 0.5


class KindView:
    """What the live view knows about one device (from its description) and its newest samples.

    Parameters
    ----------
    desc : DeviceDescription
        The device (kind, shape, calibration, layout...).
    ring_s : float
        Seconds of derived data the view may keep.
    """

    recent_s = RECENT_S

    def __init__(self, desc: DeviceDescription, ring_s: float) -> None:
        self.desc = desc
        self.name = desc.name
        self.kind = desc.kind
        self.side = desc.side or None
        self.shape = tuple(int(s) for s in desc.shape)
        self.rate_hz = float(desc.rate_hz)
        self.ring_s = ring_s
        cal = desc.calibration
        n = desc.n_values
        self.gain = np.ones(n, np.float32) if cal is None else np.asarray(cal.gain, np.float32).ravel()
        self.offset = np.zeros(n, np.float32) if cal is None else np.asarray(cal.offset, np.float32).ravel()
        self.recent_spec = (int(self.recent_s * max(self.rate_hz, 1.0)) + 1, n,
                            np.dtype(np.float32) if desc.markers else np.dtype(desc.dtype))
        self.recent = RingBuffer(*self.recent_spec)
        self.latest: np.ndarray | None = None
        self.last_t_s = -np.inf
        self.rate_marks: list = []  # (monotonic s, samples seen) for the measured rate
        self.seen_n = 0

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated values (float32, negative readings clipped to zero), shape of ``raw``."""
        return apply_calibration(raw, self.gain, self.offset, clip=True)

    def take(self, t: np.ndarray, values: np.ndarray) -> None:
        """New samples (stream times, raw values (k, n)) since the last poll; subclasses derive more from them."""
        self.latest = values[-1]
        self.recent.append(t[-self.recent.capacity_n:], values[-self.recent.capacity_n:])

    def peak(self) -> np.ndarray | None:
        """Per-value peak of the recent raw samples (None before the first sample)."""
        if self.latest is None:
            return None
        _, recent = self.recent.snapshot()
        return recent.max(axis=0) if len(recent) else self.latest


@dataclass(frozen=True)
class ViewEntry:
    """One kind's entry: its :class:`KindView` factory and its panel factory (or None)."""

    view: Callable[[DeviceDescription, float], KindView]
    panel: Callable[[], object] | None = None


_VIEWS: dict[str, ViewEntry] = {}


def register_view(kind: str, view: Callable[[DeviceDescription, float], KindView],
                  panel: Callable[[], object] | None = None) -> None:
    """Show devices of ``kind`` with ``view(desc, ring_s)`` and draw them with one ``panel()`` per window.

    A panel is a Qt widget with ``refresh(now_s, slow)`` (each display frame) and ``set_views(views)`` (when
    devices of its kind come or go), optionally ``set_all_views(views)`` (every device's view, after
    ``set_views``: a panel whose values need another kind's data, e.g. the imus' per-step values take their steps
    from the insoles); the main window makes one per registered kind when it is built.
    """
    _VIEWS[kind] = ViewEntry(view, panel)


def unregister_view(kind: str) -> None:
    """Forget a kind's view (tests)."""
    _VIEWS.pop(kind, None)


def view_for(desc: DeviceDescription, ring_s: float) -> KindView:
    """The live view of a device: its kind's registered view, else a plain :class:`KindView`."""
    entry = _VIEWS.get(desc.kind)
    return entry.view(desc, ring_s) if entry is not None else KindView(desc, ring_s)


def panel_factories() -> dict[str, Callable[[], object]]:
    """Registered panel factories by kind, in registration order."""
    return {k: e.panel for k, e in _VIEWS.items() if e.panel is not None}
