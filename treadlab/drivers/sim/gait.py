"""The simulated runner: a step-by-step gait model with ground truth, in pure numpy (no I/O, no threads).

Steps alternate left (even step number ``k``) and right (odd ``k``). Step ``k`` starts at
``ic = k * T + jitter_k`` with ``T = 60 / cadence_spm``, so a step's timing and every per-step random value is a
pure function of ``(seed, k)``: any time window of the model, and any split of the sample instants into batches,
gives the same values. Contact time, strike index and landing position vary step to step with SD
``variability_pct`` (drawn in antithetic pairs per foot, so means over a few strides are exact). Running keeps a
flight phase before every contact of the other foot; walking keeps each foot's contacts apart.

Every step's vertical impulse is ``BW * T`` times a per-foot factor (the two factors average 1), so the mean of
left plus right force over whole strides is body weight, as on a treadmill at constant speed. The force shape is
described in :mod:`treadlab.drivers.sim.force`, the plantar pressure in :mod:`treadlab.drivers.sim.pressure`.

Asymmetries use the symmetry index ``SI = (R - L) / (0.5 * (R + L)) * 100``: a positive value makes the right side
larger. Loading-rate and peak-force asymmetries are calibrated on the noise-free force of a nominal step of each
foot, by the definitions of :mod:`treadlab.drivers.sim.force`, so the ground truth shows the asked value. The
loading-rate asymmetry comes on top of the difference the two strike classes make by themselves (rearfoot loads
faster than forefoot); the peak-force asymmetry is absolute. The faster-loading foot gets its loading window
compressed; the other foot keeps its natural shape.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy.interpolate import PchipInterpolator

from treadlab.drivers.layouts import Layout, load_layout
from treadlab.drivers.sim import _random as rnd
from treadlab.drivers.sim import force as fm
from treadlab.drivers.sim import pressure as pm
from treadlab.drivers.sim import schedule
from treadlab.drivers.sim.params import FEET, RunnerParams, strike_class

__all__ = ["FEET", "GaitModel", "RunnerParams", "strike_class"]

_TOE_OFF_Y_FRAC = 0.90
_FOREFOOT_HEEL_DROP_FRAC = 0.04
#: COP progress from the strike point (0) to the toe-off point (1) against stance fraction, rearfoot and midfoot
#: strikes: it moves slowly and steadily during loading, rolls quickly through the midfoot, slows under the
#: metatarsal heads and finishes under the hallux (monotone cubic through these knots).
_ROLL_OVER = PchipInterpolator(
    [0.0, 0.05, 0.1, 0.15, 0.4, 0.65, 0.85, 1.0], [0.0, 0.04, 0.08, 0.12, 0.7, 0.82, 0.92, 1.0]
)
#: Stance fractions over which each strike's own COP path hands over to the common push-off path (smoothstep):
#: the loading response ends at ~15 % of stance and the forefoot push-off phase starts at ~45 % of stance
#: (De Cock et al. 2005, Gait Posture 21:432; docs/simulator.md).
_PUSH_OFF_BLEND = (0.15, 0.45)
_LANDING_SD_MM = (8.0, 15.0)  # across, along
_STREAMS = {"jitter": 1, "contact": 2, "strike": 3, "land_x": 4, "land_y": 5, "noise": 6, "offset": 7}
_OFFSET_PERIOD_S = 11.0


class GaitModel:
    """Ground truth and sensor values of a simulated runner over ``[start_s, start_s + duration_s]``.

    Parameters
    ----------
    params : RunnerParams
        The runner.
    duration_s : float
        Length of the modelled window.
    start_s : float
        Start of the window on the session clock (the model is defined for any window; windows agree).

    Attributes
    ----------
    params : RunnerParams
    bw_n : float
        Body weight in N.
    step_time_s : float
        Nominal step time, ``60 / cadence_spm``.
    """

    def __init__(self, params: RunnerParams, duration_s: float, start_s: float = 0.0) -> None:
        if not isinstance(params, RunnerParams):
            raise TypeError(f"params must be RunnerParams, got {type(params).__name__}")
        if not (np.isfinite(duration_s) and duration_s > 0):
            raise ValueError(f"duration_s must be positive, got {duration_s!r}")
        self.params = params
        self.duration_s = float(duration_s)
        self.start_s = float(start_s)
        self.bw_n = params.body_mass_kg * fm.GRAVITY_MPS2
        self.step_time_s = 60.0 / params.cadence_spm
        self._foot_length_mm = params.foot_length_mm
        self._build_feet()
        self._build_steps()

    # ------------------------------------------------------------------------------------------- set-up

    def _build_feet(self) -> None:
        """Per-foot shapes and impulses (running or walking as the runner; plus the walking phase's)."""
        p = self.params
        self._ct_s, self._classes, self._shapes, self._impulse = self._feet(p, self.step_time_s)
        if p.scheduled and p.walk_s > 0:
            w = p.walking_phase()
            ct_w, _, shapes_w, impulse_w = self._feet(w, 60.0 / w.cadence_spm)
            self._ct_walk_s, self._impulse = ct_w, np.concatenate([self._impulse, impulse_w])
            self._shapes = self._shapes + shapes_w
        else:
            self._ct_walk_s = self._ct_s

    def _feet(self, p: RunnerParams, step_time_s: float) -> tuple:
        """Contact times, strike classes, shapes and impulses of the two feet of ``p``, with loading-rate and
        peak-force asymmetries calibrated on a nominal step.
        """
        half = lambda pct: np.array([1.0 - pct / 200.0, 1.0 + pct / 200.0])  # noqa: E731 (left, right) factors
        ct = half(p.contact_time_asym_pct) * p.contact_time_ms / 1e3
        classes = [strike_class(p.strike_index_pct(f)) for f in FEET]
        params = [np.array(fm.SHAPES["walking" if p.walking else c]) for c in classes]
        lr_target = np.divide(*half(p.loading_rate_asym_pct)[::-1])
        pk_target = np.divide(*half(p.peak_force_asym_pct)[::-1])
        # The loading-rate ratio that comes from the strike classes alone (same contact time and impulse): the
        # asked loading-rate asymmetry is on top of it. The peak-force asymmetry is absolute.
        shapes = [fm.make_stance_shape(sp) for sp in params]
        same_impulse = np.full(2, self.bw_n * step_time_s)
        natural = self._nominal_avlr(np.full(2, p.contact_time_ms / 1e3), same_impulse, shapes)
        want = lr_target * natural[1] / natural[0]
        r = np.ones(2)
        impulse = same_impulse
        for _ in range(4):
            shapes = [fm.make_stance_shape(sp, ri) for sp, ri in zip(params, r)]
            kappa = np.array([s.g_max / (c * s.integral) for s, c in zip(shapes, ct)])  # peak force per impulse
            w_right = pk_target * kappa[0] / kappa[1]
            impulse = 2.0 * self.bw_n * step_time_s * np.array([1.0, w_right]) / (1.0 + w_right)
            avlr = self._nominal_avlr(ct, impulse, shapes)
            r *= np.array([1.0, want / (avlr[1] / avlr[0])])
            r /= r.min()  # only ever speed the loading up: the warp stays valid for any factor >= 1
        return ct, classes, shapes, impulse

    def _nominal_avlr(self, ct: np.ndarray, impulse: np.ndarray, shapes: list) -> np.ndarray:
        """AVLR (BW/s) of a nominal step of each foot (one evaluation per foot)."""
        avlr = np.empty(2)
        for i in range(2):
            n = int(ct[i] / fm.TRUTH_GRID_S) + 1
            f = impulse[i] / (ct[i] * shapes[i].integral) * shapes[i](np.arange(n) / (n - 1))
            avlr[i] = fm.loading_metrics(f, ct[i] / (n - 1), self.bw_n)[2]
        return avlr

    def _build_steps(self) -> None:
        p = self.params
        self._stand_end = np.full(2, -np.inf)
        self._first_ic = 0.0
        if p.scheduled:
            self._build_schedule()
            return
        T = self.step_time_s
        v = p.variability_pct / 100.0
        max_ct = float(self._ct_s.max()) * (1.0 + 3.0 * v)
        k0 = int(np.floor((self.start_s - max_ct) / T)) - 2
        k1 = int(np.ceil((self.start_s + self.duration_s) / T)) + 2
        k = np.arange(k0, k1 + 1, dtype=np.int64)
        foot = (k & 1).astype(np.int64)  # 0 left, 1 right
        j = k >> 1  # per-foot step number (floor division)
        seed = p.seed
        jitter = np.clip(rnd.normal(rnd.key(seed, _STREAMS["jitter"]), k), -2.5, 2.5) * (v / np.sqrt(2.0)) * T
        ic = k * T + jitter
        pair_sign = np.where(j & 1, -1.0, 1.0)
        z_ct = np.clip(rnd.normal(rnd.key(seed, _STREAMS["contact"]), 2 * (j >> 1) + foot), -2.5, 2.5) * pair_sign
        ct = self._ct_s[foot] * (1.0 + v * z_ct)
        # Running keeps a flight phase before the next contact; walking ends before the same foot lands again.
        ahead = 1 if not p.walking else 2
        next_ic = (k + ahead) * T + np.clip(rnd.normal(rnd.key(seed, _STREAMS["jitter"]), k + ahead), -2.5, 2.5) * (
            v / np.sqrt(2.0)
        ) * T
        ct = np.minimum(ct, (next_ic - ic) - 0.02 * T)
        z_si = np.clip(rnd.normal(rnd.key(seed, _STREAMS["strike"]), 2 * (j >> 1) + foot), -2.5, 2.5) * pair_sign
        si_nominal = np.array([p.strike_index_pct("left"), p.strike_index_pct("right")])[foot]
        lo, hi = _class_bounds(si_nominal)
        si = np.clip(si_nominal + (2.0 / 3.0) * p.variability_pct * z_si, lo, hi)
        to = ic + ct
        keep = (to > self.start_s) & (ic < self.start_s + self.duration_s)
        sel = np.flatnonzero(keep)
        self._k = k[sel]
        self._foot = foot[sel]
        self._ic = ic[sel]
        self._ct = ct[sel]
        self._to = to[sel]
        self._si = si[sel]
        integral = np.array([sh.integral for sh in self._shapes])
        self._amp = self._impulse[self._foot] / (self._ct * integral[self._foot])
        self._step_time = (ic - np.concatenate([[ic[0] - T], ic[:-1]]))[sel]
        self._shape_idx = self._foot
        self._gait = np.full(len(sel), "walking" if p.walking else "running", dtype=object)
        self._stumble = np.zeros(len(sel), dtype=bool)
        self._finish_steps(np.full(len(sel), p.speed_mps * 1e3))

    def _build_schedule(self) -> None:
        """Irregular timing and gait phases (:mod:`treadlab.drivers.sim.schedule`)."""
        p = self.params
        walk_T = 60.0 / p.walk_cadence_spm
        sch = schedule.build_schedule(p, (self.step_time_s, walk_T), (self._ct_s, self._ct_walk_s),
                                      self.start_s, self.start_s + self.duration_s)
        self._stand_end, self._first_ic = sch.stand_end, sch.first_ic
        self._k, self._foot, self._ic, self._ct = sch.k, sch.foot, sch.ic, sch.ct
        self._to = self._ic + self._ct
        z_si = np.clip(rnd.normal(rnd.key(p.seed, _STREAMS["strike"]), self._k), -2.5, 2.5)
        si_nominal = np.array([p.strike_index_pct("left"), p.strike_index_pct("right")])[self._foot]
        lo, hi = _class_bounds(si_nominal)
        self._si = np.clip(si_nominal + (2.0 / 3.0) * p.variability_pct * z_si, lo, hi)
        walk = sch.phase == 1
        self._shape_idx = self._foot + np.where(walk & (len(self._shapes) > 2), 2, 0)
        integral = np.array([sh.integral for sh in self._shapes])
        nominal_T = np.where(walk, walk_T, self.step_time_s)
        # The step's impulse is the body weight over the time it carries the body (momentum balance).
        self._amp = (self._impulse[self._shape_idx] * sch.support / nominal_T
                     / (self._ct * integral[self._shape_idx]))
        self._step_time = sch.step_time
        self._gait = np.where(walk, "walking", "walking" if p.walking else "running").astype(object)
        self._stumble = sch.stumble
        self._finish_steps(np.where(walk, p.walk_speed_mps, p.speed_mps) * 1e3)

    def _finish_steps(self, speed_mm_s: np.ndarray) -> None:
        """Landing positions on the belt and the per-foot look-up of the steps."""
        p = self.params
        self._speed_mm_s = speed_mm_s
        side = np.where(self._foot == 1, 1.0, -1.0)
        zx = rnd.normal(rnd.key(p.seed, _STREAMS["land_x"]), self._k)
        zy = rnd.normal(rnd.key(p.seed, _STREAMS["land_y"]), self._k)
        L = self._foot_length_mm
        self._heel_x = side * p.step_width_mm / 2.0 + _LANDING_SD_MM[0] * np.clip(zx, -2.5, 2.5)
        self._heel_y = (speed_mm_s * self._ct / 2.0 - L / 2.0) + _LANDING_SD_MM[1] * np.clip(zy, -2.5, 2.5)
        self._by_foot = {f: np.flatnonzero(self._foot == i) for i, f in enumerate(FEET)}
        self._ic_by_foot = {f: self._ic[rows] for f, rows in self._by_foot.items()}

    # ----------------------------------------------------------------------------------------- look-up

    def _locate(self, foot: str, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Step row (index into the step arrays, -1 in swing), contact mask and stance fraction per instant."""
        if foot not in self._by_foot:
            raise ValueError(f"foot must be 'left' or 'right', got {foot!r}")
        rows = self._by_foot[foot]
        t = np.asarray(t_s, dtype=np.float64)
        pos = np.searchsorted(self._ic_by_foot[foot], t, side="right") - 1
        valid = pos >= 0
        row = np.where(valid, rows[np.clip(pos, 0, None)], 0) if rows.size else np.zeros(t.shape, np.int64)
        contact = valid & (t < self._to[row]) if rows.size else np.zeros(t.shape, bool)
        u = np.where(contact, (t - self._ic[row]) / self._ct[row], np.nan)
        return np.where(contact, row, -1), contact, u

    def _force_rows(self, row: np.ndarray, u: np.ndarray) -> np.ndarray:
        out = np.empty(len(row))
        for i, sh in enumerate(self._shapes):
            sel = self._shape_idx[row] == i
            if np.any(sel):
                out[sel] = self._amp[row[sel]] * sh(u[sel])
        return out

    # --------------------------------------------------------------------------------------- public API

    def vertical_force(self, foot: str, t_s: np.ndarray) -> np.ndarray:
        """Noise-free vertical force of ``foot`` at the instants ``t_s`` (N; 0 in swing).

        Parameters
        ----------
        foot : {"left", "right"}
        t_s : array_like, shape (k,)
            Instants on the session clock.

        Returns
        -------
        ndarray of float64, shape (k,)
        """
        row, contact, u = self._locate(foot, t_s)
        out = np.zeros(np.shape(t_s))
        out[contact] = self._force_rows(row[contact], u[contact])
        stand, f_stand, _ = self._standing(foot, np.asarray(t_s, dtype=np.float64))
        out[stand] += f_stand
        return out

    def _standing(self, foot: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Instants of ``t`` where ``foot`` stands (mask), its force there (N) and its COP (mm, foot frame).

        The COP of a standing foot sways slowly around 45 % of the foot's length (``x`` on the COP line).
        """
        i = FEET.index(foot)
        end = self._stand_end[i]
        mask = t < end if np.isfinite(end) else np.zeros(t.shape, dtype=bool)
        ts = t[mask]
        f = schedule.standing_force(ts, i, self._stand_end, self._first_ic, self.bw_n, self.params.seed)
        L = self._foot_length_mm
        y = L * (0.45 + 0.03 * np.sin(2.0 * np.pi * ts / 5.3 + i))
        return mask, f, np.column_stack([pm.cop_line_x_mm(y, L), y])

    def cop(self, foot: str, t_s: np.ndarray) -> np.ndarray:
        """Centre of pressure of ``foot`` in the foot frame (mm; x lateral, y from the heel; NaN in swing).

        The COP starts at the step's strike index (``y = strike_index_pct / 100 * foot_length_mm``) and travels to
        the toes; forefoot strikes first drop back a little as the heel comes down. Between 15 % and 45 % of stance
        (:data:`_PUSH_OFF_BLEND`) every strike's path hands over to the common push-off path from the heel to the
        hallux (``0.90 L * _ROLL_OVER(u)``: 0.74 L, the first metatarsal head, at 65 % of stance), so late stance
        does not depend on the strike.

        Returns
        -------
        ndarray of float64, shape (k, 2)
        """
        row, contact, u = self._locate(foot, t_s)
        out = np.full((np.size(t_s), 2), np.nan)
        r = row[contact]
        uc = u[contact]
        L = self._foot_length_mm
        y_ic = self._si[r] / 100.0 * L
        y_to = _TOE_OFF_Y_FRAC * L
        fore = self._si[r] > 66.7
        progress = np.where(fore, uc**2, _ROLL_OVER(uc))
        early = y_ic + (y_to - y_ic) * progress - np.where(fore, _FOREFOOT_HEEL_DROP_FRAC * L * np.sin(np.pi * uc),
                                                           0.0)
        # From mid-stance on every strike pushes off along the same path (heel to hallux, _ROLL_OVER from the
        # heel): where the foot landed no longer matters once the forefoot carries the load.
        a, b = _PUSH_OFF_BLEND
        w = np.clip((uc - a) / (b - a), 0.0, 1.0)
        w = w * w * (3.0 - 2.0 * w)
        y = (1.0 - w) * early + w * y_to * _ROLL_OVER(uc)
        out[contact, 1] = y
        out[contact, 0] = pm.cop_line_x_mm(y, L)
        stand, _, cop_stand = self._standing(foot, np.asarray(t_s, dtype=np.float64).ravel())
        out[stand] = cop_stand
        return out

    def insole_forces(self, foot: str, t_s: np.ndarray, layout: Layout | str | dict) -> np.ndarray:
        """Force on each sensel of an insole (N): plantar pressure around the COP, noise and baseline offset.

        Before noise, the sensels sum to :meth:`vertical_force`. Noise (SD ``noise_n`` per sensel) and the drifting
        baseline (``swing_offset_n`` in total, spread over the sensels by area) depend only on the seed, the foot,
        the sensel and the sample instant rounded to 1 us, so batches of any size give the same values.

        Returns
        -------
        ndarray of float64, shape (k, n_sensels)
        """
        layout = load_layout(layout)
        t = np.asarray(t_s, dtype=np.float64)
        row, contact, u = self._locate(foot, t)
        foot_i = FEET.index(foot)
        if self.params.noise_n > 0:
            ticks = np.round(t * 1e6).astype(np.int64)
            out = rnd.normal_grid(rnd.key(self.params.seed, _STREAMS["noise"], foot_i), ticks, layout.n_sensels)
            out *= self.params.noise_n
        else:
            out = np.zeros((t.size, layout.n_sensels))
        if np.any(contact):
            f = self._force_rows(row[contact], u[contact])
            cop = self.cop(foot, t[contact]) * (layout.foot_length_mm / self._foot_length_mm)
            w = pm.insole_weights(cop, layout.positions_mm, layout.areas_mm2, layout.foot_length_mm)
            w *= f[:, None]
            out[contact] += w
        stand, f_stand, cop_stand = self._standing(foot, t)
        if np.any(stand):
            cop = cop_stand * (layout.foot_length_mm / self._foot_length_mm)
            w = pm.insole_weights(cop, layout.positions_mm, layout.areas_mm2, layout.foot_length_mm)
            out[stand] += w * f_stand[:, None]
        if self.params.swing_offset_n > 0:
            out += self.baseline_offset_n(foot, t)[:, None] * (layout.areas_mm2 / layout.areas_mm2.sum())[None, :]
        return out

    def baseline_offset_n(self, foot: str, t_s: np.ndarray) -> np.ndarray:
        """Total drifting baseline of an insole (N): ``swing_offset_n`` times 2/3 to 4/3, period 11 s."""
        phase = float(rnd.uniform(rnd.key(self.params.seed, _STREAMS["offset"]), np.array([FEET.index(foot)]))[0])
        t = np.asarray(t_s, dtype=np.float64)
        return self.params.swing_offset_n * (1.0 + np.sin(2.0 * np.pi * (t / _OFFSET_PERIOD_S + phase)) / 3.0)

    def mat_frames(self, t_s: np.ndarray, rows: int, cols: int, pitch_mm: float,
                   belt_axis: str = "rows") -> np.ndarray:
        """Pressure frames of a treadmill mat (kPa), noise-free.

        The mat is centred on the belt: along the belt, index 0 is the front (the runner faces it); across, index
        0 is the runner's left. A foot lands with its heel at the step's ``x_mm``/``y_mm`` (belt frame: origin at
        the centre of the mat, x to the runner's right, y forward) and travels backwards at ``speed_mps``.

        Parameters
        ----------
        t_s : array_like, shape (k,)
        rows, cols : int
            Mat size in cells.
        pitch_mm : float
            Cell pitch (cells are square).
        belt_axis : {"rows", "cols"}
            Which index runs along the belt.

        Returns
        -------
        ndarray of float64, shape (k, rows, cols)
        """
        if belt_axis not in ("rows", "cols"):
            raise ValueError(f"belt_axis must be 'rows' or 'cols', got {belt_axis!r}")
        if rows <= 0 or cols <= 0 or not pitch_mm > 0:
            raise ValueError(f"mat size must be positive, got rows={rows}, cols={cols}, pitch_mm={pitch_mm}")
        n_along, n_across = (rows, cols) if belt_axis == "rows" else (cols, rows)
        along = (n_along / 2.0 - np.arange(n_along) - 0.5) * pitch_mm
        across = (np.arange(n_across) + 0.5 - n_across / 2.0) * pitch_mm
        t = np.asarray(t_s, dtype=np.float64)
        out = np.zeros((t.size, n_along, n_across))
        L = self._foot_length_mm
        for foot, sign in (("left", -1.0), ("right", 1.0)):
            stand, f_stand, cop_stand = self._standing(foot, t)
            if np.any(stand):  # on the still belt, heel half a foot behind the mat's centre
                n = int(stand.sum())
                out[stand] += pm.mat_pressure_kpa(f_stand, cop_stand, np.full(n, -L / 2.0),
                                                  np.full(n, sign * self.params.step_width_mm / 2.0), sign, along,
                                                  across, L)
            row, contact, u = self._locate(foot, t)
            if not np.any(contact):
                continue
            r = row[contact]
            f = self._force_rows(r, u[contact])
            heel_along = self._heel_y[r] - self._speed_mm_s[r] * (t[contact] - self._ic[r])
            out[contact] += pm.mat_pressure_kpa(
                f, self.cop(foot, t[contact]), heel_along, self._heel_x[r], sign, along, across, L,
            )
        return out if belt_axis == "rows" else out.transpose(0, 2, 1)

    @property
    def step_numbers(self) -> np.ndarray:
        """Step number ``k`` of every step row (rows in order of initial contact; even k left, odd right)."""
        return self._k

    @property
    def step_ic_s(self) -> np.ndarray:
        """Initial contact of every step row (s)."""
        return self._ic

    @property
    def step_timing(self) -> dict:
        """Timing arrays of every step row, for models that move with the steps (the simulated IMUs).

        Keys: ``k``, ``foot`` (0 left, 1 right), ``ic_s``, ``to_s``, ``walking`` (bool), ``speed_mps`` (belt),
        ``stand_end_s`` (per foot; -inf without standing) and ``first_ic_s`` (initial contact of step 0).
        """
        return {"k": self._k, "foot": self._foot, "ic_s": self._ic, "to_s": self._to,
                "walking": self._gait.astype(str) == "walking", "speed_mps": self._speed_mm_s / 1e3,
                "stand_end_s": self._stand_end.copy(), "first_ic_s": float(self._first_ic)}

    def latest_step(self, foot: str | None, t_s: np.ndarray) -> np.ndarray:
        """Row of the latest initial contact at or before each instant (of ``foot``, or of either foot for None;
        -1 before the first).
        """
        t = np.asarray(t_s, dtype=np.float64)
        ic, rows = (self._ic, np.arange(len(self._ic))) if foot is None else \
            (self._ic_by_foot[foot], self._by_foot[foot])
        pos = np.searchsorted(ic, t, side="right") - 1
        return np.where(pos >= 0, rows[np.clip(pos, 0, None)], -1) if len(rows) else np.full(t.shape, -1)

    @property
    def step_contact_s(self) -> np.ndarray:
        """Contact time of every step row (s)."""
        return self._ct

    @property
    def step_speed_mps(self) -> np.ndarray:
        """Belt speed of every step row (m/s)."""
        return self._speed_mm_s / 1e3

    def heel_on_belt(self, foot: str, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step row of each instant (-1 outside stance) and the back of ``foot``'s heel on the belt frame (mm,
        shape (k, 2): along (forward), across (to the runner's right); NaN in swing), as :meth:`mat_frames` places
        it: in stance where the step landed (``x_mm``, ``y_mm``), moving backwards at the step's speed; standing,
        on the still belt half a foot behind the centre.
        """
        t = np.asarray(t_s, dtype=np.float64)
        row, contact, _ = self._locate(foot, t)
        out = np.full((t.size, 2), np.nan)
        stand, _, _ = self._standing(foot, t)
        side = 1.0 if foot == "right" else -1.0
        out[stand] = [-self._foot_length_mm / 2.0, side * self.params.step_width_mm / 2.0]
        r = row[contact]
        out[contact, 0] = self._heel_y[r] - self._speed_mm_s[r] * (t[contact] - self._ic[r])
        out[contact, 1] = self._heel_x[r]
        return row, out

    @functools.cached_property
    def steps(self) -> pd.DataFrame:
        """Ground truth, one row per foot contact overlapping the window, in order of initial contact.

        Columns: ``foot``, ``ic_s``, ``to_s``, ``contact_time_ms``, ``strike_class``, ``strike_index_pct``,
        ``impact_peak_bw`` (NaN without an impact peak), ``peak_force_bw``, ``avlr_bw_s``, ``vilr_bw_s``,
        ``step_time_ms`` (from the previous contact of the other foot), ``x_mm``, ``y_mm`` (back of the heel at
        initial contact on the belt frame, see :meth:`mat_frames`), ``gait`` ("walking" or "running"),
        ``stumble`` (the step after a short one, see :mod:`treadlab.drivers.sim.schedule`). Loading metrics follow
        the definitions in :mod:`treadlab.drivers.sim.force`, evaluated on the noise-free force on a 0.1 ms grid.
        Standing is not a step: see :attr:`standing`.
        """
        metrics = self._loading_truth(fm.VILR_WINDOW_S)
        si = self._si
        return pd.DataFrame(
            {
                "foot": np.array(FEET)[self._foot],
                "ic_s": self._ic,
                "to_s": self._to,
                "contact_time_ms": self._ct * 1e3,
                "strike_class": [strike_class(s) for s in si],
                "strike_index_pct": si,
                "impact_peak_bw": metrics[:, 0],
                "peak_force_bw": metrics[:, 1],
                "avlr_bw_s": metrics[:, 2],
                "vilr_bw_s": metrics[:, 3],
                "step_time_ms": self._step_time * 1e3,
                "x_mm": self._heel_x,
                "y_mm": self._heel_y,
                "gait": self._gait.astype(str),
                "stumble": self._stumble,
            }
        )

    @property
    def standing(self) -> pd.DataFrame:
        """Ground truth of standing: per foot, ``start_s`` (the window's start) and ``stop_s`` (the foot lifts)
        when the window begins before it lifts; empty without ``stand_s``.
        """
        rows = [(f, self.start_s, float(self._stand_end[i])) for i, f in enumerate(FEET)
                if np.isfinite(self._stand_end[i]) and self._stand_end[i] > self.start_s]
        return pd.DataFrame(rows, columns=["foot", "start_s", "stop_s"])


    def _loading_truth(self, vilr_window: float) -> np.ndarray:
        """Impact peak, peak force, AVLR, VILR of every step on the 0.1 ms truth grid, shape (steps, 4)."""
        n = len(self._ic)
        metrics = np.full((n, 4), np.nan)
        for i in range(n):  # one vectorised evaluation per step
            m = int(np.floor(self._ct[i] / fm.TRUTH_GRID_S)) + 1
            u = np.arange(m) * (fm.TRUTH_GRID_S / self._ct[i])
            f = self._force_rows(np.full(m, i), u)
            metrics[i] = fm.loading_metrics(f, fm.TRUTH_GRID_S, self.bw_n, vilr_window)
        return metrics

    def steps_for_rate(self, rate_hz: float) -> pd.DataFrame:
        """:attr:`steps` as a device sampled at ``rate_hz`` should report them.

        Only ``vilr_bw_s`` differs: its slope window is the sample interval when that is longer than 1 ms
        (:func:`treadlab.drivers.sim.force.vilr_window_s`), evaluated on the same noise-free 0.1 ms grid. At
        1 kHz and faster this is :attr:`steps` itself.
        """
        window = fm.vilr_window_s(rate_hz)
        if window <= fm.VILR_WINDOW_S:
            return self.steps
        out = self.steps.copy()
        out["vilr_bw_s"] = self._loading_truth(window)[:, 3]
        return out


def _class_bounds(si_pct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Allowed strike-index range of each step: its class, at least 8 points away from a class boundary."""
    lo = np.select([si_pct < 100 / 3, si_pct <= 200 / 3], [2.0, 100 / 3 + 8.0], 200 / 3 + 8.0)
    hi = np.select([si_pct < 100 / 3, si_pct <= 200 / 3], [100 / 3 - 8.0, 200 / 3 - 8.0], 95.0)
    return lo, hi
