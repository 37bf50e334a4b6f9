"""Sensor values of simulated devices: the gait model's forces turned into raw ADC counts of each sensel.

The gait model (:class:`treadlab.drivers.sim.gait.GaitModel`) works on a session clock in seconds whose zero is
the rig's common epoch, so every device of a rig sees the same steps. This module converts true times to that
clock, sensel forces (insoles: N; mats: kPa times the cell area) to counts with the device's calibration
(``force = gain * (raw - offset)``), and writes the ground-truth step table. Whole blocks at once, no per-sample
loops.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.change import gait_model
from treadlab.drivers.sim.gait import GaitModel
from treadlab.drivers.sim.params import RunnerParams

#: The gait model of a device process covers this long after the rig's epoch (building it is cheap).
MODEL_HORIZON_S = 24 * 3600.0


def make_gait(runner: RunnerParams | None) -> GaitModel:
    """The gait model of a rig (default runner when ``runner`` is None)."""
    return gait_model(runner if runner is not None else RunnerParams(), MODEL_HORIZON_S)


def steps_table(gait: GaitModel, t_epoch_ns: int, until_s: float) -> pd.DataFrame:
    """Ground-truth steps starting before ``until_s``, with true times ``ic_ns``/``to_ns`` (monotonic_ns) added."""
    model = gait_model(gait.params, until_s)
    steps = model.steps.copy()
    steps.insert(2, "ic_ns", t_epoch_ns + np.round(steps["ic_s"].to_numpy() * 1e9).astype(np.int64))
    steps.insert(4, "to_ns", t_epoch_ns + np.round(steps["to_s"].to_numpy() * 1e9).astype(np.int64))
    return steps


class SignalSource:
    """Raw ADC counts of one device at given true times.

    Parameters
    ----------
    spec : SimDeviceSpec
    gait : GaitModel
    t_epoch_ns : int
        True time of the gait model's zero.
    gain, offset : ndarray
        The device's calibration: ``force_n = gain * (raw - offset)``.
    """

    def __init__(self, spec: Any, gait: GaitModel, t_epoch_ns: int, gain: np.ndarray, offset: np.ndarray) -> None:
        self.spec = spec
        self.gait = gait
        self.t_epoch_ns = int(t_epoch_ns)
        self.gain = gain.astype(np.float64)
        self.offset = offset.astype(np.float64)
        self.full = 2 ** spec.adc_bits - 1
        self.np_dtype = np.uint8 if spec.dtype == "u8" else np.dtype("<u2")
        if spec.kind == "insole":
            self.layout = load_layout(spec.layout)
        else:
            pitch = spec.pitch_mm or [10.0, 10.0]
            self.cell_area_mm2 = float(pitch[0]) * float(pitch[-1])

    def session_s(self, t_ns: np.ndarray) -> np.ndarray:
        """True times (monotonic_ns) on the gait model's clock (s)."""
        return (np.asarray(t_ns, np.int64) - self.t_epoch_ns) / 1e9

    def forces(self, t_ns: np.ndarray) -> np.ndarray:
        """Force on each sensel in newtons, shape (k, n) (mats flattened row-major)."""
        t_s = self.session_s(t_ns)
        s = self.spec
        if s.kind == "insole":
            return self.gait.insole_forces(s.side, t_s, self.layout)
        kpa = self.gait.mat_frames(t_s, int(s.rows), int(s.cols), float((s.pitch_mm or [10.0])[0]), s.belt_axis)
        return (kpa * (self.cell_area_mm2 * 1e-3)).reshape(len(t_s), int(s.rows) * int(s.cols))  # k may be 0

    def raw(self, t_ns: np.ndarray) -> np.ndarray:
        """Raw counts, shape (k, n), the device's dtype: ``force / gain + offset``, rounded and clipped."""
        counts = self.forces(t_ns) / self.gain + self.offset
        return np.clip(np.round(counts), 0, self.full).astype(self.np_dtype)


def make_source(spec: Any, runner: RunnerParams | None, t_epoch_ns: int, gain: np.ndarray,
                offset: np.ndarray) -> SignalSource:
    """The value source of one simulated device (an IMU's is a :class:`~treadlab.drivers.sim.imu_source.ImuSource`,
    a treadmill's a :class:`~treadlab.drivers.sim.treadmill.ForceSignalSource`).
    """
    if spec.kind == "imu":
        from treadlab.drivers.sim.imu_source import ImuSource

        return ImuSource(spec, make_gait(runner), t_epoch_ns, runner)
    if spec.kind == "force":
        from treadlab.drivers.sim.treadmill import ForceSignalSource

        return ForceSignalSource(spec, make_gait(runner), t_epoch_ns, gain, offset)
    return SignalSource(spec, make_gait(runner), t_epoch_ns, gain, offset)


def load_runner(params: dict | None) -> RunnerParams | None:
    """Rebuild the runner parameters sent to a device process as JSON."""
    return None if params is None else RunnerParams.from_dict(params)
