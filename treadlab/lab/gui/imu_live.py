"""The IMUs' live state in the app (Qt-free): pelvis obliquity and rotation, the last steps' pelvic drop per side,
PTA per step.

Each imu's view (:class:`~treadlab.lab.gui.imu_view.ImuLiveView`) owns an :class:`ImuOnline`: the analysis' online
state of its sensor (:func:`treadlab.analysis.imu_online.online_sensor`: the causal VQF and the standing and
running alignment for the pelvis and trunk, the shank axis for a tibia), fed with every block the view takes.
The panel's :class:`LiveImuSteps` finds the steps with the feedback engine's online detection
(:class:`~treadlab.analysis.online.OnlineSteps`) on the insoles' total force and moment, and asks the IMUs for
each step's pelvic drop (at toe-off) and PTA (at IC + 100 ms), exactly as the feedback engine does
(:class:`~treadlab.analysis.imu_online.OnlineImuMetrics`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from treadlab.analysis.imu_online import ImuChannels, OnlineImuMetrics, OnlineSegment, OnlineTibia, online_sensor
from treadlab.analysis.online import OnlineSteps
from treadlab.kinds import DeviceDescription
from treadlab.kinds import imu as k
from treadlab.vocabulary import FEET, G_MPS2

#: Steps per side the panel shows.
LAST_STEPS_N = 5
#: The metrics the panel shows per step.
STEP_METRICS = ("pelvic_drop_deg", "pta_g")
STATE_TEXT = {"standing": "stand still for 3 s", "forward": "finding the running direction", "ready": "ready"}


class ImuOnline:
    """The online state of one imu, from its description.

    Attributes
    ----------
    channels : ImuChannels
    sensor : OnlineSegment, OnlineTibia or None
        None for a placement with no live metric (the feet) or a pelvis without gyroscope.
    """

    def __init__(self, desc: DeviceDescription) -> None:
        labels = list(desc.channel_labels) or [str(c) for c in desc.info.get("channels", [])]
        gain, offset = k.physical_scale(labels, desc.info, desc.calibration)
        self.placement = str(desc.info.get("placement", ""))
        self.channels = ImuChannels.from_channels(desc.name, self.placement, float(desc.rate_hz), labels, gain,
                                                  offset)
        self.sensor = online_sensor(self.channels)

    def feed(self, t: np.ndarray, raw: np.ndarray) -> None:
        """A new block of raw samples."""
        if self.sensor is not None and len(t):
            self.sensor.feed(t, raw)

    @property
    def state(self) -> str:
        """What the sensor waits for: "standing", "forward" (pelvis, trunk) or "ready"; "" without a sensor."""
        if isinstance(self.sensor, OnlineSegment):
            return self.sensor.state_
        if isinstance(self.sensor, OnlineTibia):
            return "ready" if self.sensor.up_sensor_ is not None else "standing"
        return ""

    def angles(self, last_s: float) -> np.ndarray | None:
        """Rows ``(t, rotation_deg, obliquity_deg, tilt_deg)`` of the last seconds (None for a tibia)."""
        if not isinstance(self.sensor, OnlineSegment):
            return None
        return self.sensor.angles(last_s)


class LiveImuSteps:
    """The last steps' pelvic drop per stance side and PTA per step.

    Parameters
    ----------
    keep_n : int
        Steps kept per metric and side.

    Attributes
    ----------
    values_ : dict
        ``{(metric, foot): deque of (ic_s, value)}``, newest last.
    steps_n_ : int
        Contacts seen.
    """

    def __init__(self, keep_n: int = 50) -> None:
        self.keep_n = keep_n
        self.body_mass_kg = 70.0
        self.values_: dict[tuple[str, str], deque] = {(m, f): deque(maxlen=keep_n) for m in STEP_METRICS
                                                      for f in FEET}
        self.steps_n_ = 0
        self._insoles: dict[str, object] = {}  # foot -> insole view
        self._online: dict[str, OnlineSteps] = {}
        self._last_t: dict[str, float] = {}
        self._metrics: OnlineImuMetrics | None = None
        self._imus: tuple = ()

    def set_views(self, imu_views: list, insole_views: list) -> None:
        """The imus and insoles connected (views with ``online`` / ``derived``); detection restarts when they
        change.
        """
        insoles = {v.side: v for v in insole_views if getattr(v, "side", None) in FEET}
        imus = tuple(v for v in imu_views if getattr(v, "online", None) is not None)
        if insoles != self._insoles:
            self._insoles = insoles
            self._online = {}
            for foot, v in insoles.items():
                self._online[foot] = OnlineSteps(foot, v.foot_length_mm, self.body_mass_kg * G_MPS2,
                                                 stages={"toeoff"})
                self._last_t[foot] = -np.inf
            if "left" in self._online and "right" in self._online:
                OnlineSteps.pair(self._online["left"], self._online["right"])
        if imus != self._imus:
            self._imus = imus
            self._metrics = OnlineImuMetrics(STEP_METRICS, sensors={v.name: (v.online.placement, v.online.sensor)
                                                                    for v in imus})

    @property
    def has_steps(self) -> bool:
        """True when insoles give the steps (and an imu the values)."""
        return bool(self._insoles) and bool(self._imus)

    def reset(self) -> None:
        """Forget the steps (a capture starts or stops); the detection goes on."""
        for d in self.values_.values():
            d.clear()
        self.steps_n_ = 0

    def update(self) -> int:
        """Feed the insoles' new samples to the step detection; returns how many step values are new."""
        if self._metrics is None:
            return 0
        new = 0
        for foot, v in self._insoles.items():
            if v.derived.total_n == 0:
                continue
            _, d = v.derived.snapshot(last_s=2.0)
            d = d[d[:, 0] > self._last_t[foot]]
            if not len(d):
                continue
            self._last_t[foot] = float(d[-1, 0])
            for ev in self._online[foot].feed(d[:, 0], d[:, 1], d[:, 3]):  # a few per second
                if ev.stage == "contact":
                    self.steps_n_ += 1
                new += self._keep(self._metrics.step(ev))
        new += self._keep(self._metrics.due())
        return new

    def _keep(self, events) -> int:
        n = 0
        for ev in events:
            for m, value in ev.values.items():
                if np.isfinite(value):
                    self.values_[(m, ev.foot)].append((ev.ic_s, float(value)))
                    n += 1
        return n

    def last(self, metric: str, foot: str, n: int = LAST_STEPS_N) -> list[float]:
        """The newest ``n`` values of ``metric`` for ``foot`` (oldest first)."""
        return [v for _, v in list(self.values_[(metric, foot)])[-n:]]

    def texts(self, n: int = LAST_STEPS_N) -> dict[str, str]:
        """Per metric and side: ``"6.1 5.8 6.4 6.0 5.9 (mean 6.0)"``; a dash without steps."""
        out = {}
        for m in STEP_METRICS:
            for f in FEET:
                vals = self.last(m, f, n)
                out[f"{m}_{f}"] = (" ".join(f"{v:.1f}" for v in vals) + f"  (mean {np.mean(vals):.1f})") if vals \
                    else "–"
        return out
