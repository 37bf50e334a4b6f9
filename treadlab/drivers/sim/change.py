"""A runner who changes over time: ``RunnerParams.change`` (a ramp from the runner to other parameters).

``change = {"start_s": 60, "stop_s": 150, "after": {"strike_left": "midfoot", "strike_right": "midfoot"}}``: before
``start_s`` every step is the runner's own; after ``stop_s`` every step follows the ``after`` parameters; in
between, the share of "after" steps rises linearly with time (each step draws once, from the seed and its number,
so the learning curve is reproducible and any time window of the model agrees). Strike, loading, peak-force and
contact-time parameters may change; the step timing (cadence, variability, walking, seed) may not: both models
share every initial contact.

:class:`ScheduledGait` has the :class:`~treadlab.drivers.sim.gait.GaitModel` interface. The insole signals of a
sample come from the model of the step it belongs to (the foot's latest initial contact); the mat's frame from the
model of the latest contact of either foot (so, during the ramp only, a mat frame can show one foot in the other
model's shape for part of a stance).
"""

from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np
import pandas as pd

from treadlab.drivers.sim import _random as rnd
from treadlab.drivers.sim.gait import GaitModel
from treadlab.drivers.sim.params import FEET, GaitParamsError, RunnerParams

TIMING_KEYS = ("cadence_spm", "variability_pct", "walking", "seed", "speed_mps", "noise_n", "swing_offset_n",
               "foot_length_mm", "body_mass_kg", "stride_cv_pct", "stumble_pct", "stand_s", "walk_s",
               "walk_cadence_spm", "walk_contact_time_ms", "walk_speed_mps")
_STREAM = 9


def check_change(change: dict) -> None:
    """Validate a ``change`` table (raises :class:`GaitParamsError` naming the key)."""
    if not isinstance(change, dict):
        raise GaitParamsError(f"runner parameter change must be a table, got {change!r}")
    extra = sorted(set(change) - {"start_s", "stop_s", "after"})
    if extra:
        raise GaitParamsError(f"runner change: unknown key(s) {', '.join(extra)}; known: after, start_s, stop_s")
    a, b = change.get("start_s"), change.get("stop_s")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b)) or not 0 <= a <= b:
        raise GaitParamsError(f"runner change needs 0 <= start_s <= stop_s, got start_s={a!r}, stop_s={b!r}")
    after = change.get("after")
    if not isinstance(after, dict) or not after:
        raise GaitParamsError("runner change needs an 'after' table of parameters")
    fixed = sorted(set(after) & set(TIMING_KEYS + ("change",)))
    if fixed:
        raise GaitParamsError(f"runner change cannot change {', '.join(fixed)} (the step timing is shared)")


class ScheduledGait:
    """Ground truth and sensor values of a runner with a ``change`` (see the module docstring).

    Parameters
    ----------
    params : RunnerParams
        With ``change`` set.
    duration_s, start_s : float
        As :class:`GaitModel`.
    """

    def __init__(self, params: RunnerParams, duration_s: float, start_s: float = 0.0) -> None:
        change = params.change
        self.params = params
        self.before = GaitModel(dataclasses.replace(params, change=None), duration_s, start_s)
        self.after = GaitModel(dataclasses.replace(params, change=None, **change["after"]), duration_s, start_s)
        self.bw_n = self.before.bw_n
        self.step_time_s = self.before.step_time_s
        self.start_s_, self.stop_s_ = float(change["start_s"]), float(change["stop_s"])

    def share_after(self, t_s: np.ndarray) -> np.ndarray:
        """Share of steps following the "after" parameters at time ``t_s`` (0 before, 1 after the ramp)."""
        t = np.asarray(t_s, dtype=float)
        if self.stop_s_ <= self.start_s_:
            return (t >= self.start_s_).astype(float)
        return np.clip((t - self.start_s_) / (self.stop_s_ - self.start_s_), 0.0, 1.0)

    def _after_k(self, k: np.ndarray, ic_s: np.ndarray) -> np.ndarray:
        u = rnd.uniform(rnd.key(self.params.seed, _STREAM), np.asarray(k, np.int64))
        return u < self.share_after(ic_s)

    def uses_after(self, k: np.ndarray, ic_s: np.ndarray) -> np.ndarray:
        """Per step (number ``k``, initial contact ``ic_s``): does it follow the "after" parameters."""
        return self._after_k(k, ic_s)

    def _sample_after(self, foot: str | None, t_s: np.ndarray) -> np.ndarray:
        """Per sample: does it belong to an "after" step (the foot's latest contact; either foot's for None)."""
        m = self.before
        r = m.latest_step(foot, t_s)
        rc = np.clip(r, 0, None)
        return (r >= 0) & self._after_k(m.step_numbers[rc], m.step_ic_s[rc])

    def sample_after(self, foot: str | None, t_s: np.ndarray) -> np.ndarray:
        """Per instant: does it belong to an "after" step (the foot's latest contact; either foot's for None)."""
        return self._sample_after(foot, t_s)

    def _mix(self, foot: str | None, t_s, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        use = self._sample_after(foot, t_s)
        shape = (-1,) + (1,) * (before.ndim - 1)
        return np.where(use.reshape(shape), after, before)

    def vertical_force(self, foot: str, t_s: np.ndarray) -> np.ndarray:
        """As :meth:`GaitModel.vertical_force`."""
        return self._mix(foot, t_s, self.before.vertical_force(foot, t_s), self.after.vertical_force(foot, t_s))

    def cop(self, foot: str, t_s: np.ndarray) -> np.ndarray:
        """As :meth:`GaitModel.cop`."""
        return self._mix(foot, t_s, self.before.cop(foot, t_s), self.after.cop(foot, t_s))

    def insole_forces(self, foot: str, t_s: np.ndarray, layout) -> np.ndarray:
        """As :meth:`GaitModel.insole_forces` (the noise is the same in both models)."""
        return self._mix(foot, t_s, self.before.insole_forces(foot, t_s, layout),
                         self.after.insole_forces(foot, t_s, layout))

    def baseline_offset_n(self, foot: str, t_s: np.ndarray) -> np.ndarray:
        """As :meth:`GaitModel.baseline_offset_n`."""
        return self.before.baseline_offset_n(foot, t_s)

    def mat_frames(self, t_s: np.ndarray, rows: int, cols: int, pitch_mm: float, belt_axis: str = "rows"):
        """As :meth:`GaitModel.mat_frames`."""
        return self._mix(None, t_s, self.before.mat_frames(t_s, rows, cols, pitch_mm, belt_axis),
                         self.after.mat_frames(t_s, rows, cols, pitch_mm, belt_axis))

    def _choose(self, b: pd.DataFrame, a: pd.DataFrame) -> pd.DataFrame:
        kb = pd.Series(self.before.step_numbers)
        use = self._after_k(self.before.step_numbers, self.before.step_ic_s)
        a = a.set_index(pd.Series(self.after.step_numbers)).reindex(kb).reset_index(drop=True)
        out = b.copy()
        out.loc[use, :] = a.loc[use, :].to_numpy()
        out["model"] = np.where(use, "after", "before")
        return out.astype({c: b[c].dtype for c in b.columns})

    @cached_property
    def steps(self) -> pd.DataFrame:
        """As :attr:`GaitModel.steps`, plus ``model`` ("before" or "after") per step."""
        return self._choose(self.before.steps, self.after.steps)

    def steps_for_rate(self, rate_hz: float) -> pd.DataFrame:
        """As :meth:`GaitModel.steps_for_rate`."""
        return self._choose(self.before.steps_for_rate(rate_hz), self.after.steps_for_rate(rate_hz))


def gait_model(params: RunnerParams, duration_s: float, start_s: float = 0.0):
    """A :class:`GaitModel`, or a :class:`ScheduledGait` when the runner has a ``change``."""
    if getattr(params, "change", None):
        return ScheduledGait(params, duration_s, start_s)
    return GaitModel(params, duration_s, start_s)


__all__ = ["FEET", "ScheduledGait", "check_change", "gait_model"]
