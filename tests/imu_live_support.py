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


def write_sim_session(path, sim: SimRunner, t0: float = 0.5) -> None:
    """A complete session file of ``sim``'s IMU boards (each at its own rate) through the real writer."""
    import h5py
    from imu_files import imu_description

    from treadlab import fileformat as ff
    from treadlab.acquisition.writer import SessionWriter, create_session_file

    descs = {n: imu_description(n, b.placement, list(b.sensor.channels), b.sensor.rate_hz, b.sensor.range_g,
                                b.sensor.range_dps) for n, b in sim.boards.items()}
    root = {ff.A_FORMAT: ff.FORMAT, ff.A_FORMAT_VERSION: ff.FORMAT_VERSION, "start_monotonic_ns": np.int64(10**12),
            "participant": "sim", "condition": "test", ff.A_BODY_MASS_KG: sim.params.body_mass_kg,
            ff.A_TREADMILL_SPEED_MPS: 3.0}
    writer = SessionWriter(create_session_file(str(path), root, list(descs.values())), max_items=1 << 16,
                           max_bytes=1 << 34)
    writer.start()
    try:
        for n, b in sim.boards.items():
            for a in range(0, len(b.raw), 20000):  # a few large batches
                s = slice(a, a + 20000)
                t = t0 + b.t[s]
                seq = np.arange(len(b.raw))[s].astype("u4")
                assert writer.put_samples(n, seq, np.round(t * 1e6).astype("u8"), t, t + 0.002, b.raw[s])
    finally:
        writer.stop()
    assert writer.error is None
    with h5py.File(path, "r+", libver=ff.LIBVER) as f:
        f.attrs[ff.A_STATE] = ff.STATE_COMPLETE
