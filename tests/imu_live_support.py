"""IMU streams whose steps are a gait model's steps (test-only): the insoles and the IMUs of one simulated runner.

:class:`GaitImu` is ``imu_synth.Runner`` (known Cardan angles of the pelvis, exact gyroscope and accelerometer
through a mounting rotation, noise, bias) with its stride phase, stances and tibial impacts taken from a
:class:`~treadlab.drivers.sim.gait.GaitModel`'s ground-truth steps instead of a fixed stride, so the pelvic drop of
every stance and the impact after every initial contact line up with the insole forces of the same model.
"""

from __future__ import annotations

import numpy as np
from imu_synth import Runner

from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.gait import GaitModel, RunnerParams


class GaitImu(Runner):
    """IMU signals of a :class:`GaitModel` runner (standing for ``params.stand_s``, then running)."""

    def __init__(self, params: RunnerParams, seconds: float, **kw) -> None:
        super().__init__(stand_s=params.stand_s, run_s=seconds - params.stand_s, **kw)
        self.model = GaitModel(params, seconds + 1.0)
        steps = self.model.steps
        self.truth = steps[steps["gait"] == "running"].reset_index(drop=True)
        left = self.truth[self.truth["foot"] == "left"]
        self._left_ic = left["ic_s"].to_numpy()
        self._stride_s = float(np.median(np.diff(self._left_ic)))
        self.stride_hz = 1.0 / self._stride_s
        self.duty = float(np.median(left["contact_time_ms"])) * 1e-3 / self._stride_s

    def events(self) -> dict:
        return {f: (self.truth.loc[self.truth.foot == f, "ic_s"].to_numpy(),
                    self.truth.loc[self.truth.foot == f, "to_s"].to_numpy()) for f in ("left", "right")}

    def _ramp(self, t):
        x = np.clip((t - self._left_ic[0] + 1.0) / 1.0, 0, 1)
        return x * x * (3 - 2 * x)

    def _phase(self, t):
        """Stride phase: 2 pi k at the k-th left initial contact, linear between them (and beyond, at the stride)."""
        ic = self._left_ic
        k = np.interp(t, ic, np.arange(len(ic), dtype=float))
        k = np.where(t < ic[0], (t - ic[0]) / self._stride_s, k)
        k = np.where(t > ic[-1], len(ic) - 1 + (t - ic[-1]) / self._stride_s, k)
        return 2 * np.pi * k

    def pelvis_angles_deg(self, t):
        ang = super().pelvis_angles_deg(t)
        obl = np.zeros_like(t)
        for foot, sign, drop in (("left", 1.0, self.drop_deg[0]), ("right", -1.0, self.drop_deg[1])):
            ic, to = self.events()[foot]
            i = np.searchsorted(ic, t, side="right") - 1
            ok = i >= 0
            u = np.zeros_like(t)
            u[ok] = (t[ok] - ic[i[ok]]) / (to[i[ok]] - ic[i[ok]])
            inside = ok & (u >= 0) & (u <= 1)
            obl[inside] += sign * drop * np.sin(np.pi * u[inside]) ** 2
        ang[:, 1] = obl
        return ang

    def insole_forces(self, foot: str, t: np.ndarray, layout: str = "insole16") -> np.ndarray:
        return self.model.insole_forces(foot, t, load_layout(layout))


PELVIS_CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz")
TIBIA_CHANNELS = ("ax", "ay", "az")
