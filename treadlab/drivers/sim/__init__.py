"""Simulated devices: the gait model (:mod:`.gait`) and the device processes that stream its values.

The model is pure numpy: :class:`RunnerParams` describes the runner, :class:`GaitModel` gives per-step ground
truth (``steps``), the vertical force, the centre of pressure, insole sensel forces and treadmill-mat frames.
"""

from __future__ import annotations

from treadlab.drivers.sim.gait import GaitModel
from treadlab.drivers.sim.params import GaitParamsError, RunnerParams, strike_class

__all__ = ["GaitModel", "GaitParamsError", "RunnerParams", "strike_class"]
