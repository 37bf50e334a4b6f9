"""The value source of a simulated IMU device: the rig's runner seen through one board, as int16 counts.

A device serves for hours, so it keeps an :class:`~treadlab.drivers.sim.imu_model.ImuModel` of the current
30-second window (with the steps of the rig's 24-hour gait model) and builds the next when the samples reach it;
windows agree exactly, so the values do not depend on the windows or on the blocks the device generates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from treadlab.drivers.sim.imu_model import ImuModel
from treadlab.drivers.sim.imu_sensor import ImuSensor
from treadlab.drivers.sim.params import RunnerParams

__all__ = ["WINDOW_S", "ImuSource", "sensor_of"]

WINDOW_S = 30.0


def sensor_of(spec: Any) -> ImuSensor:
    """The board of a simulated IMU device: mounting, biases and noise drawn from its seed, its channels,
    full scales and power-up rate.
    """
    sensor = ImuSensor.random(spec.placement, seed=spec.seed, rate_hz=spec.rate_hz, **(spec.imu or {}))
    sensor.channels = list(spec.channels)
    sensor.range_g, sensor.range_dps, sensor.range_ut = spec.range_g, spec.range_dps, spec.range_ut
    return sensor


class ImuSource:
    """Raw int16 counts of one simulated IMU at given true times (the interface of ``SignalSource``).

    Parameters
    ----------
    spec : SimDeviceSpec
        Kind "imu".
    gait : GaitModel or ScheduledGait
        The rig's gait model (same steps as the insoles and the mat).
    t_epoch_ns : int
        True time of the gait model's zero.
    runner : RunnerParams or None
    """

    def __init__(self, spec: Any, gait: Any, t_epoch_ns: int, runner: RunnerParams | None) -> None:
        self.spec = spec
        self.gait = gait
        self.t_epoch_ns = int(t_epoch_ns)
        self.runner = runner if runner is not None else RunnerParams()
        self.sensor = sensor_of(spec)
        self._models: dict[int, ImuModel] = {}

    def set_rate(self, rate_hz: float) -> None:
        """The device samples at ``rate_hz`` now (the noise SD follows: density x sqrt(rate / 2))."""
        self.sensor.rate_hz = float(rate_hz)

    def session_s(self, t_ns: np.ndarray) -> np.ndarray:
        """True times (monotonic_ns) on the gait model's clock (s)."""
        return (np.asarray(t_ns, np.int64) - self.t_epoch_ns) / 1e9

    def _model(self, key: int) -> ImuModel:
        if key not in self._models:
            for old in [k for k in self._models if k < key - 1]:
                del self._models[old]
            self._models[key] = ImuModel(self.runner, self.gait, window_s=(key * WINDOW_S, (key + 1) * WINDOW_S))
        return self._models[key]

    def readings(self, t_s: np.ndarray) -> dict[str, np.ndarray]:
        """The board's readings (g, deg/s, uT; board frame, errors, clipping) at session times ``t_s``."""
        t = np.asarray(t_s, dtype=np.float64)
        out = {key: np.empty((len(t), 3)) for key in ("acc_g", "gyro_dps", "mag_ut")}
        keys = np.floor(t / WINDOW_S).astype(np.int64)
        for key in np.unique(keys):
            sel = keys == key
            part = self._model(int(key)).signals(self.spec.placement, t[sel], self.sensor)
            for name in out:
                out[name][sel] = part[name]
        return out

    def raw(self, t_ns: np.ndarray) -> np.ndarray:
        """int16 counts, shape (k, channels), in the device's wire order."""
        t_s = self.session_s(t_ns)
        if len(t_s) == 0:
            return np.empty((0, len(self.sensor.channels)), "<i2")
        return self.sensor.raw(self.readings(t_s))
