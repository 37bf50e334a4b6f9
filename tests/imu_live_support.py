"""A simulated runner's insoles and IMUs on one gait model (the simulator's :class:`ImuModel`, test-only helper):
the IMU boards' int16 readings with their calibration, the insole forces of the same steps, the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from treadlab.analysis.imu_online import ImuChannels
from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.gait import GaitModel, RunnerParams
from treadlab.drivers.sim.imu_model import ImuModel
from treadlab.drivers.sim.imu_sensor import ImuSensor


@dataclass
class Board:
    """One simulated IMU: its sensor (mounting, errors), sample times, int16 readings and calibration."""

    name: str
    sensor: ImuSensor
    t: np.ndarray
    raw: np.ndarray

    @property
    def placement(self) -> str:
        return self.sensor.placement

    @property
    def gain(self) -> np.ndarray:
        return np.asarray(self.sensor.gain(), np.float64)

    def channels(self) -> ImuChannels:
        return ImuChannels.from_channels(self.name, self.placement, self.sensor.rate_hz, self.sensor.channels,
                                         self.gain, 0.0)


class SimRunner:
    """The insoles and IMUs of ``params`` over ``seconds`` (the IMUs' boards from ``ImuSensor.random``)."""

    def __init__(self, params: RunnerParams, seconds: float, placements=("pelvis",), seed: int = 5) -> None:
        self.params = params
        self.seconds = float(seconds)
        self.gait = GaitModel(params, seconds + 1.0)
        self.model = ImuModel(params, gait=self.gait)
        self.boards: dict[str, Board] = {}
        for i, p in enumerate(placements):
            sensor = ImuSensor.random(p, seed=seed + i)
            t = np.arange(int(seconds * sensor.rate_hz)) / sensor.rate_hz
            self.boards[f"{p}_imu"] = Board(f"{p}_imu", sensor, t, sensor.raw(self.model.signals(p, t, sensor)))
        self.truth = self.model.truth_steps(0.0, seconds - 0.5)
        self.truth = self.truth[self.truth["gait"] == "running"].reset_index(drop=True)

    def insole_forces(self, foot: str, t: np.ndarray, layout: str = "insole16") -> np.ndarray:
        return self.gait.insole_forces(foot, t, load_layout(layout))

    def truth_at(self, foot: str, ic_s: np.ndarray, column: str, tol_s: float = 0.03) -> np.ndarray:
        """The true ``column`` of the steps of ``foot`` nearest to each ``ic_s`` (NaN beyond ``tol_s``)."""
        part = self.truth[self.truth["foot"] == foot]
        ic = part["ic_s"].to_numpy()
        j = np.clip(np.searchsorted(ic, ic_s), 1, len(ic) - 1)
        j = np.where(np.abs(ic[j - 1] - ic_s) < np.abs(ic[j] - ic_s), j - 1, j)
        v = part[column].to_numpy()[j]
        return np.where(np.abs(ic[j] - ic_s) <= tol_s, v, np.nan)
