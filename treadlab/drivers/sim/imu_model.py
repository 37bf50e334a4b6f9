"""Simulated inertial sensors: a kinematic model of pelvis, trunk and shins driven by the insoles' step schedule.

API (pure numpy, no I/O; h17imuana and the tests use it directly)
-----------------------------------------------------------------
>>> model = ImuModel(RunnerParams(stand_s=5, pelvic_drop_left_deg=8), duration_s=120)   # doctest: +SKIP
>>> sig = model.signals("pelvis", t_s)            # noise-free, segment frame: acc_g, gyro_dps, mag_ut (n, 3)
>>> sensor = ImuSensor.random("pelvis", seed=3)   # misalignment, biases, noise, ranges of one board
>>> noisy = model.signals("pelvis", t_s, sensor)  # the board's readings (sensor frame, errors, clipping)
>>> raw = sensor.raw(noisy)                       # int16 counts in the order of sensor.channels
>>> model.angles_deg("pelvis", t_s)               # Cardan angles (rotation, obliquity, tilt), deg
>>> model.truth_steps(); model.truth_strides()    # ground truth of the contract's definitions

``ImuModel(params, gait=None, duration_s=None, start_s=0.0)``: ``params`` is the :class:`RunnerParams` of the rig
(its IMU fields: pelvic drop per side, rotation, tilt, trunk lean, vertical oscillation, PTA and shock attenuation
per side, heading wander); ``gait`` the rig's gait model (:func:`treadlab.drivers.sim.change.gait_model`), or one
built for ``[start_s - 3, start_s + duration_s + 3]``. Initial contacts and toe-offs are the gait model's own, so
IMU events line up exactly with the insoles' and the mat's; a runner with a ``change`` changes its IMU parameters
step by step with the same per-step draw as the insoles.

Frames and angles (the contract of issue 14)
--------------------------------------------
World: x forward (running direction), y to the runner's left, z up. Each segment's frame is the world frame while
the runner stands upright; its orientation is ``R = Rz(rotation) Rx(obliquity) Ry(tilt)`` (Cardan, Baker 2001),
so the three angles are the Cardan angles relative to standing. Rotation includes the heading, which wanders
slowly (sum of three sines, periods 23, 41 and 67 s, total amplitude ``heading_wander_deg``, faded in over 5 s
after standing): a host must remove it per stride. Positive obliquity lowers the right side, positive tilt moves
the top of the segment forward (anterior pelvic tilt, forward trunk lean).

Kinematics (smooth per step; every piece twice continuously differentiable)
---------------------------------------------------------------------------
Step ``j`` runs from its initial contact to the next one (of the other foot), ``u`` its phase in [0, 1], warped
by a quintic per step that matches the phase rate at both contacts (so shapes of ``u`` stay twice continuously
differentiable across steps of any duration); stride shapes of a shank run from a foot's contact to its next.

- Pelvis obliquity: ``sigma * D_j * P(u; p)``, ``sigma`` +1 in left stance and -1 in right stance, ``P`` a pulse
  of peak 1 at 40 % of stance (:func:`~treadlab.drivers.sim.imu_shapes.beta_pulse`): the swing side drops by the
  step's drop ``D_j`` and is level again at each initial contact (so a hip hike, a negative drop, is not
  modelled: the drop parameters are 0-20 deg). Rotation moves between ``-sigma R_j / 2`` at
  each initial contact (the side of the landing foot forward) with the quintic smoothstep. Tilt: the step's
  mean minus half the range at initial contact, peaking near toe-off (two cycles per stride). Vertical position:
  a cosine per step, lowest at mid-stance (walking: at contact), peak-to-peak ``vertical_oscillation_mm``; a
  15 mm lateral sway over the stance foot; a 6 mm fore-aft braking wave.
- Trunk: forward lean ``trunk_lean_deg`` plus a 3 deg oscillation per step, a 2 deg lateral bend towards the
  stance side and a counter-rotation of 12 deg range; the sensor sits 0.45 m up the trunk's z axis from the
  pelvis sensor.
- Shank (tibia): tilt moves between -8 deg just before initial contact and +75 deg at mid-swing (walking -15 and
  +50) with the smoothstep (monotone between these extremes), plus small frontal and transverse motion in
  stance. The ankle moves back with the belt in stance and forward in swing along a quintic that matches the
  belt velocity at toe-off and at the next contact, lifting 0.30 m (walking 0.12 m); the sensor sits 0.12 m up
  the shank from the ankle.
- Shocks: the foot lands at a speed solved per stride so that the shank's axial reading (gravity included)
  peaks at the step's PTA 8 ms after contact (a gamma-shaped stop on the ground,
  :func:`~treadlab.drivers.sim.imu_shapes.landing`); the pelvis gets a transmitted transient along its z axis
  (:func:`~treadlab.drivers.sim.imu_shapes.impact_pulse`, a Ricker wavelet peaking 30 ms after contact, sigma
  6 ms) sized so that its z reading is ``PTA * (1 - shock_attenuation / 100)`` at the peak (never less than 0.2 g
  above the reading without it), and the trunk half of it along the world vertical (sigma 9 ms).
- Standing (``stand_s``): every angle is zero and every position still (gyroscope exactly 0, accelerometer
  exactly (0, 0, 1) g in the segment frame); the motion fades in with the smoothstep from the left foot's lift
  to the second step's contact (each shank from its foot's lift to its first contact).
- Walking steps use 0.6 x drop, 0.8 x rotation, 0.6 x tilt range, 0.5 x tilt mean and lean, 0.4 x vertical
  oscillation and 0.35 x PTA (at least 1.5 g).
- Step-to-step variation: drop, rotation and tilt range, vertical oscillation and PTA vary with SD
  ``2 * variability_pct`` % (clipped at 2.5 SD), tilt mean and lean with SD ``0.1 * variability_pct`` deg; each
  a pure function of the seed and the step number.

Sensor outputs (:meth:`ImuModel.signals`): accelerometer = ``R^T (a_world + g e_z) / g`` (specific force in g),
gyroscope = angular velocity in the segment frame (deg/s) from the Cardan angle rates, magnetometer = ``R^T B``
with the earth's field B (19.5 uT horizontal at 40 deg from the running direction, 44 uT down). Sensor errors are
:class:`~treadlab.drivers.sim.imu_sensor.ImuSensor`'s.

Ground truth (:meth:`ImuModel.truth_steps`, :meth:`ImuModel.truth_strides`; :mod:`~treadlab.drivers.sim.imu_truth`)
evaluates the contract's definitions on the noise-free functions on fine grids. Frames, orientation and sensor
readings of a segment: :mod:`~treadlab.drivers.sim.imu_frames`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from treadlab.drivers.sim import _random as rnd
from treadlab.drivers.sim import imu_shapes as sh
from treadlab.drivers.sim.imu_frames import Kinematics, axis_z, earth_field_ut
from treadlab.drivers.sim.imu_sensor import PLACEMENTS, ImuSensor
from treadlab.drivers.sim.imu_shapes import Jet
from treadlab.drivers.sim.imu_truth import SHOCK_WINDOW_S, ImuTruth
from treadlab.drivers.sim.params import RunnerParams
from treadlab.vocabulary import G_MPS2

__all__ = ["PLACEMENTS", "SHOCK_WINDOW_S", "ImuModel", "ImuSensor", "Kinematics", "earth_field_ut"]

_MARGIN_S = 3.0
_STREAMS = {"drop": 41, "rot": 42, "tilt_m": 43, "tilt_r": 44, "vo": 45, "pta": 46, "lean": 47}
_HEADING_PERIODS_S = (23.0, 41.0, 67.0)
_HEADING_WEIGHTS = (0.5, 1.0 / 3.0, 1.0 / 6.0)
_HEADING_FADE_S = 5.0
_PELVIS_HEIGHT_M = 1.0
_TRUNK_LEVER_M = 0.45
_SHANK_LEVER_M = 0.12
_ANKLE_HEIGHT_M = 0.10
#: Width (sigma, s) of the transmitted impact transient on the pelvis and the trunk, and the time constant of the
#: foot's stop on the ground (the tibial shock peaks at twice it).
_IMPACT_SIGMA_S = {"pelvis": 0.006, "trunk": 0.009}
_LANDING_THETA_S = 0.004
_MIN_PULSE_G = 0.2
_TRUNK_PULSE_SHARE = 0.5
#: Per-gait (running, walking) shank extremes (deg) and ankle lift (m).
_SHANK_MIN_DEG = (-8.0, -15.0)
_SHANK_MAX_DEG = (75.0, 50.0)
_ANKLE_LIFT_M = (0.30, 0.12)
_WALK_SCALE = {"drop": 0.6, "rot": 0.8, "tilt_r": 0.6, "tilt_m": 0.5, "lean": 0.5, "vo": 0.4, "pta": 0.35}
_TRUNK = {"tilt_range_deg": 3.0, "bend_deg": 2.0, "rotation_deg": 12.0}


class ImuModel(ImuTruth):
    """Kinematics, sensor signals and ground truth of pelvis, trunk and shank IMUs (see the module docstring).

    Parameters
    ----------
    params : RunnerParams or None
        The runner (default runner when None).
    gait : GaitModel or ScheduledGait or None
        The rig's gait model; None builds one around ``[start_s, start_s + duration_s]``.
    duration_s, start_s : float
        Window of the model when ``gait`` is None (default 60 s).
    window_s : (float, float) or None
        Keep only the steps within 3 s of this window (a long-running device builds one model per window; every
        value is a function of the steps around it, so windows agree).
    """

    def __init__(self, params: RunnerParams | None = None, gait=None, duration_s: float | None = None,
                 start_s: float = 0.0, window_s: tuple[float, float] | None = None) -> None:
        from treadlab.drivers.sim.change import gait_model

        self.params = params if params is not None else RunnerParams()
        if gait is None:
            dur = 60.0 if duration_s is None else float(duration_s)
            gait = gait_model(self.params, dur + 2 * _MARGIN_S, start_s - _MARGIN_S)
        self.gait = gait
        base = getattr(gait, "before", gait)
        tm = base.step_timing
        self._stand_end = tm["stand_end_s"]
        self.standing = bool(np.isfinite(self._stand_end[0]))
        self._build_rows(tm, base.step_time_s, window_s)
        self._build_values(gait)
        self._build_strides()
        self._pulse_pelvis = self._pelvis_pulse_amplitudes()
        self._vland = {f: np.zeros(len(self._strides[f]["ic"])) for f in (0, 1)}
        self._vland = {f: self._landing_speeds(f) for f in (0, 1)}

    # ------------------------------------------------------------------------------------------ set-up

    def _build_rows(self, tm: dict, step_time_s: float, window_s: tuple[float, float] | None) -> None:
        k, foot, ic, to = tm["k"], tm["foot"], tm["ic_s"], tm["to_s"]
        walking, speed = tm["walking"], tm["speed_mps"]
        self._n_virtual = 0
        if self.standing:  # two steps before the first contact: each foot's stance ends where it lifts
            first = tm["first_ic_s"]
            T = float(ic[1] - ic[0]) if len(ic) > 1 else step_time_s
            k = np.concatenate([[-2, -1], k])
            foot = np.concatenate([[0, 1], foot])
            ic = np.concatenate([[first - 2 * T, first - T], ic])
            to = np.concatenate([[self._stand_end[0], self._stand_end[1]], to])
            walking = np.concatenate([walking[:1], walking[:1], walking])
            speed = np.concatenate([[0.0, 0.0], speed])
            self._n_virtual = 2
        if len(ic) < 4:
            raise ValueError("the IMU model needs at least four steps in its window")
        if self.standing:
            self._body_fade = (self._stand_end[0], float(ic[self._n_virtual + 1]))
            self._foot_fade = [(self._stand_end[f], float(ic[self._n_virtual + f])) for f in (0, 1)]
        nxt = np.append(ic[1:], ic[-1] + (ic[-1] - ic[-2]))
        if window_s is not None:
            a = max(int(np.searchsorted(ic, window_s[0] - _MARGIN_S)) - 2, 0)
            b = min(int(np.searchsorted(ic, window_s[1] + _MARGIN_S)) + 2, len(ic))
            if self.standing and a > 0:
                self._n_virtual = 0
            k, foot, ic, to, walking, speed, nxt = (x[a:b] for x in (k, foot, ic, to, walking, speed, nxt))
        self.k, self.foot, self.ic, self.to = k, foot.astype(np.int64), ic, to
        self.s = nxt - ic  # step duration (to the next contact of the other foot)
        self.walking = np.asarray(walking, dtype=bool)
        self.speed = np.asarray(speed, dtype=np.float64)
        self.sigma = np.where(self.foot == 0, 1.0, -1.0)
        cf = (to - ic) / self.s
        self._cf = cf
        # Phase rate at each contact: one step per mean of the two steps around it (the warped phase is C2).
        prev = np.concatenate([self.s[:1], self.s[:-1]])
        self._rate = 2.0 / (prev + self.s)

    def _values_of(self, p: RunnerParams) -> dict[str, np.ndarray]:
        """Per-row amplitudes of the runner ``p`` (deg, mm, g)."""
        k, f, w = self.k, self.foot, self.walking
        v = 2.0 * p.variability_pct / 100.0

        def z(name: str) -> np.ndarray:
            return np.clip(rnd.normal(rnd.key(p.seed, _STREAMS[name]), k), -2.5, 2.5)

        def walk(name: str) -> np.ndarray:
            return np.where(w, _WALK_SCALE[name], 1.0)

        drop = np.array([p.pelvic_drop_left_deg, p.pelvic_drop_right_deg])[f]
        pta = np.array([p.pta_left_g, p.pta_right_g])[f] * (1.0 + v * z("pta"))
        pta = np.where(w, np.maximum(1.5, pta * _WALK_SCALE["pta"]), pta)
        sa = np.array([p.shock_attenuation_left_pct, p.shock_attenuation_right_pct])[f]
        return {
            "drop": drop * (1.0 + v * z("drop")) * walk("drop"),
            "rot": p.pelvic_rotation_deg * (1.0 + v * z("rot")) * walk("rot"),
            "tilt_m": (p.pelvic_tilt_deg + 0.1 * p.variability_pct * z("tilt_m")) * walk("tilt_m"),
            "tilt_r": p.pelvic_tilt_range_deg * (1.0 + v * z("tilt_r")) * walk("tilt_r"),
            "vo": p.vertical_oscillation_mm * (1.0 + v * z("vo")) * walk("vo"),
            "lean": (p.trunk_lean_deg + 0.1 * p.variability_pct * z("lean")) * walk("lean"),
            "pta": pta,
            "ppa": pta * (1.0 - sa / 100.0),
        }

    def _build_values(self, gait) -> None:
        vals = self._values_of(self.params)
        change = getattr(self.params, "change", None)
        if change and hasattr(gait, "uses_after"):
            after = self._values_of(dataclasses.replace(self.params, change=None, **change["after"]))
            use = gait.uses_after(self.k, self.ic) & (self.k >= 0)
            vals = {key: np.where(use, after[key], vals[key]) for key in vals}
        self.vals = vals
        cf, w = self._cf, self.walking
        self.p_obl = np.clip(0.4 * cf, 0.12, 0.45)
        self.p_tilt = np.clip(0.95 * cf, 0.3, 0.7)
        self.u_low = np.where(w, 0.08, np.clip(0.5 * cf, 0.25, 0.5))  # lowest pelvis: mid-stance (walking: IC)
        self.p_mid = np.clip(0.5 * cf, 0.15, 0.5)
        self.tilt_mean_shift = np.interp(self.p_tilt, np.linspace(0.3, 0.7, 41),
                                         [sh.beta_mean(x) for x in np.linspace(0.3, 0.7, 41)])
        self.trunk_shift = np.interp(self.p_mid, np.linspace(0.15, 0.5, 36),
                                     [sh.beta_mean(x) for x in np.linspace(0.15, 0.5, 36)])

    def _build_strides(self) -> None:
        """Per foot: its rows in order, the next contact of the same foot and the shank's extreme knots."""
        self._strides = {}
        for f in (0, 1):
            rows = np.flatnonzero(self.foot == f)
            ic = self.ic[rows]
            nxt = np.append(ic[1:], ic[-1] + (ic[-1] - ic[-2]))
            to = self.to[rows]
            swing = nxt - to
            wk = self.walking[rows].astype(np.int64)
            t_max = to + 0.45 * swing
            t_min = nxt - 0.08 * swing
            knots_t = np.column_stack([t_max, t_min]).ravel()
            knots_v = np.column_stack([np.array(_SHANK_MAX_DEG)[wk], np.array(_SHANK_MIN_DEG)[wk]]).ravel()
            self._strides[f] = {"rows": rows, "ic": ic, "next": nxt, "to": to, "knots_t": knots_t,
                                "knots_v": np.radians(knots_v)}

    # ------------------------------------------------------------------------------------------ pieces

    def _row(self, t: np.ndarray) -> tuple[np.ndarray, Jet]:
        """Step row of each instant and the warped step phase ``u`` in [0, 1] (a quintic in time per step that
        matches the phase rate at both contacts, so shapes of ``u`` are C2 across steps of any duration).
        """
        j = np.clip(np.searchsorted(self.ic, t, side="right") - 1, 0, len(self.ic) - 2)
        D = self.s[j]
        return j, sh.hermite5((t - self.ic[j]) / D, D, 0.0, self._rate[j], 1.0, self._rate[j + 1])

    def _fade(self, t: np.ndarray, window: tuple[float, float] | None) -> Jet | float:
        if not self.standing or window is None:
            return 1.0
        a, b = window
        return sh.local(sh.smooth5((t - a) / (b - a)), b - a)

    def _heading(self, t: np.ndarray) -> Jet:
        amp = np.radians(self.params.heading_wander_deg)
        seed = self.params.seed
        phases = 2.0 * np.pi * rnd.uniform(rnd.key(seed, 48), np.arange(3))
        tj = Jet(t, 1.0, 0.0)
        out = Jet(np.zeros_like(t))
        for period, weight, ph in zip(_HEADING_PERIODS_S, _HEADING_WEIGHTS, phases):
            out = out + (tj * (2.0 * np.pi / period) + ph).sin() * (amp * weight)
            out = out - np.sin(ph) * amp * weight  # zero heading while standing
        if self.standing:
            start = self._stand_end[0]
            out = out * sh.local(sh.smooth5((t - start) / _HEADING_FADE_S), _HEADING_FADE_S)
        return out

    def _step_shape(self, j: np.ndarray, u: Jet, v_at_ic: np.ndarray | None,
                    pulses: list[tuple[np.ndarray, np.ndarray]]) -> Jet:
        """``v_j + (v_{j+1} - v_j) S(u) + sum A_j P(u; p_j)`` as a jet in time (``u`` the phase jet)."""
        out = Jet(np.zeros_like(u.v))
        if v_at_ic is not None:
            out = out + v_at_ic[j] + sh.compose(sh.smooth5(u.v), u) * (v_at_ic[j + 1] - v_at_ic[j])
        for amp, p in pulses:
            out = out + sh.compose(sh.beta_pulse(u.v, p[j]), u) * amp[j]
        return out

    def _pelvis_base(self, t: np.ndarray) -> tuple[Jet, Jet, Jet, list[Jet]]:
        """Pelvis angles (rad; rotation without heading) and position (m) without transients."""
        j, u = self._row(t)
        fade = self._fade(t, self._body_fade if self.standing else None)
        vals = self.vals
        rad = np.pi / 180.0
        phi = self._step_shape(j, u, None, [(self.sigma * vals["drop"] * rad, self.p_obl)]) * fade
        psi = self._step_shape(j, u, -self.sigma * vals["rot"] / 2.0 * rad, []) * fade
        tilt_ic = (vals["tilt_m"] - vals["tilt_r"] * self.tilt_mean_shift) * rad
        theta = self._step_shape(j, u, tilt_ic, [(vals["tilt_r"] * rad, self.p_tilt)]) * fade
        # Vertical: a cosine per step, lowest at u_low (mid-stance), amplitude and u_low moving smoothly.
        s5 = sh.compose(sh.smooth5(u.v), u)
        half = (s5 * (vals["vo"][j + 1] - vals["vo"][j]) + vals["vo"][j]) * 0.5e-3
        u_low = s5 * (self.u_low[j + 1] - self.u_low[j]) + self.u_low[j]
        arg = (u - u_low) * (2.0 * np.pi)
        z = -(half * arg.cos()) * fade + _PELVIS_HEIGHT_M
        x = arg.sin() * (-0.006) * fade  # slowest at mid-stance (braking, then push-off)
        y = (u * np.pi).sin() * (self.sigma[j] * 0.015) * fade  # over the stance foot, stride-periodic
        return psi, phi, theta, [x, y, z]

    def _pulses(self, t: np.ndarray, ic: np.ndarray, amp: np.ndarray, direction: np.ndarray,
                segment: str) -> list[Jet]:
        """Sum of the impact transients of the contacts ``ic`` (amplitudes m/s^2) along ``direction``."""
        sigma = _IMPACT_SIGMA_S[segment]
        i = np.searchsorted(ic, t + (sh.IMPACT_HALF_SPAN_SIGMAS - sh.IMPACT_CENTRE_SIGMAS) * sigma, side="right") - 1
        out = [Jet(np.zeros_like(t)) for _ in range(3)]
        for back in range(2):  # a transient lasts 20 sigma (< 0.2 s): two contacts at most
            r = i - back
            ok = r >= 0
            rr = np.clip(r, 0, None)
            b = sh.impact_pulse(np.where(ok, t - ic[rr], -1.0), sigma) * (amp[rr] * ok)
            for c in range(3):
                out[c] = out[c] + b * direction[rr, c]
        return out

    def _pelvis(self, t: np.ndarray, pulses: bool = True) -> Kinematics:
        psi, phi, theta, pos = self._pelvis_base(t)
        psi = psi + self._heading(t)
        if pulses:
            amp, direction = self._pulse_pelvis
            pos = [a + b for a, b in zip(pos, self._pulses(t, self.ic, amp, direction, "pelvis"))]
        return Kinematics(psi, phi, theta, tuple(pos))

    def _trunk(self, t: np.ndarray) -> Kinematics:
        j, u = self._row(t)
        fade = self._fade(t, self._body_fade if self.standing else None)
        rad = np.pi / 180.0
        n = len(self.k)
        walk = np.where(self.walking, 0.6, 1.0)
        r = _TRUNK["tilt_range_deg"] * walk * rad
        tilt_ic = self.vals["lean"] * rad - r * self.trunk_shift
        theta = self._step_shape(j, u, tilt_ic, [(r, self.p_mid)]) * fade
        phi = self._step_shape(j, u, None, [(-self.sigma * _TRUNK["bend_deg"] * walk * rad, self.p_mid)]) * fade
        psi = self._step_shape(j, u, self.sigma * _TRUNK["rotation_deg"] * walk / 2.0 * rad, []) * fade
        psi = psi + self._heading(t)
        pelvis = self._pelvis(t, pulses=False)
        ax = axis_z(psi, phi, theta)
        pos = [p + a * _TRUNK_LEVER_M for p, a in zip(pelvis.pos, ax)]
        amp, direction = self._pulse_pelvis
        trunk_dir = np.tile([0.0, 0.0, 1.0], (n, 1))
        pos = [a + b for a, b in zip(pos, self._pulses(t, self.ic, amp * _TRUNK_PULSE_SHARE, trunk_dir, "trunk"))]
        return Kinematics(psi, phi, theta, tuple(pos))

    def _tibia(self, f: int, t: np.ndarray, vland: np.ndarray | None = None) -> Kinematics:
        st = self._strides[f]
        rows, ic, nxt, to = st["rows"], st["ic"], st["next"], st["to"]
        i = np.clip(np.searchsorted(ic, t, side="right") - 1, 0, len(ic) - 2)
        D = nxt[i] - ic[i]
        u = (t - ic[i]) / D
        r = rows[i]
        fade = self._fade(t, self._foot_fade[f] if self.standing else None)
        rad = np.pi / 180.0
        sig = 1.0 if f == 0 else -1.0
        # Sagittal: smoothstep between the extreme knots.
        kt, kv = st["knots_t"], st["knots_v"]
        q = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 2)
        span = kt[q + 1] - kt[q]
        s5 = sh.local(sh.smooth5((t - kt[q]) / span), span)
        theta = (s5 * (kv[q + 1] - kv[q]) + kv[q]) * fade
        cf = (to[i] - ic[i]) / D
        p_st = np.clip(0.4 * cf, 0.08, 0.4)
        phi = sh.local(sh.beta_pulse(u, p_st), D) * (sig * 3.0 * rad) * fade
        psi = sh.local(sh.beta_pulse(u, np.clip(0.5 * cf, 0.1, 0.45)), D) * (-sig * 6.0 * rad) * fade
        psi = psi + self._heading(t)
        # Ankle: with the belt in stance, a quintic in swing.
        v = self.speed[r]
        v_next = self.speed[rows[np.clip(i + 1, 0, len(rows) - 1)]]
        ct = to[i] - ic[i]
        x_ic = np.where(v > 0, v * ct / 2.0 + 0.02, 0.0)
        x_to = x_ic - v * ct
        ct_next = to[np.clip(i + 1, 0, len(ic) - 1)] - nxt[i]
        x_ic_next = np.where(v_next > 0, v_next * ct_next / 2.0 + 0.02, 0.0)
        in_stance = t < to[i]
        sw = nxt[i] - to[i]
        tau = (t - to[i]) / sw
        swing_x = sh.hermite5(tau, sw, x_to, -v, x_ic_next, -v_next)
        stance_x = Jet(x_ic - v * (t - ic[i]), -v, 0.0)
        x = Jet(np.where(in_stance, stance_x.v, swing_x.v), np.where(in_stance, stance_x.d, swing_x.d),
                np.where(in_stance, stance_x.dd, swing_x.dd))
        lift = np.array(_ANKLE_LIFT_M)[self.walking[r].astype(np.int64)]
        # Height: the landing (down at the stride's landing speed, stopped by the ground: the tibial shock) in
        # stance; in swing a lift and a quintic that arrives at the next landing's height and speed.
        vl = self._vland[f] if vland is None else vland
        v_now = vl[i]
        v_next = vl[np.clip(i + 1, 0, len(vl) - 1)]
        z_st = sh.landing(t - ic[i], _LANDING_THETA_S) * v_now
        z_sw = sh.local(sh.beta_pulse(tau, np.full_like(tau, 0.45)), sw) * lift + sh.hermite5(
            tau, sw, 0.0, 0.0, 3.0 * _LANDING_THETA_S * v_next, -v_next)
        z = Jet(np.where(in_stance, z_st.v, z_sw.v), np.where(in_stance, z_st.d, z_sw.d),
                np.where(in_stance, z_st.dd, z_sw.dd)) + _ANKLE_HEIGHT_M
        y = Jet(np.full_like(t, sig * self.params.step_width_mm / 2e3))
        axis = axis_z(psi, phi, theta)
        pos = [x + axis[0] * _SHANK_LEVER_M, y + axis[1] * _SHANK_LEVER_M, z + axis[2] * _SHANK_LEVER_M]
        return Kinematics(psi, phi, theta, tuple(pos))

    def _pelvis_pulse_amplitudes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per row: transient amplitude (m/s^2) and direction (the pelvis z axis at the transient's peak)."""
        t_pk = self.ic + sh.IMPACT_CENTRE_SIGMAS * _IMPACT_SIGMA_S["pelvis"]
        kin = self._pelvis(t_pk, pulses=False)
        base = kin.specific_force_g()[:, 2]
        amp = np.maximum(self.vals["ppa"] - base, _MIN_PULSE_G) * G_MPS2
        return self._no_virtual(amp), kin.rotation()[:, :, 2]

    def _landing_speeds(self, f: int) -> np.ndarray:
        """Per stride of foot ``f``: the landing speed (m/s) that puts the shank's axial reading at the step's PTA
        at the shock's peak (the reading is linear in it); 0 for the standing foot's first lift.
        """
        st = self._strides[f]
        t_pk = st["ic"] + 2.0 * _LANDING_THETA_S
        zero = np.zeros(len(st["ic"]))
        r0 = self._tibia(f, t_pk, zero).specific_force_g()[:, 2]
        r1 = self._tibia(f, t_pk, zero + 1.0).specific_force_g()[:, 2]
        target = np.maximum(self.vals["pta"][st["rows"]], r0 + _MIN_PULSE_G)
        gain = r1 - r0
        v = (target - r0) / np.where(np.abs(gain) > 1e-9, gain, 1.0)
        return np.where((self.k[st["rows"]] < 0) | (np.abs(gain) <= 1e-9), 0.0, v)

    def _no_virtual(self, amp: np.ndarray) -> np.ndarray:
        return np.where(self.k < 0, 0.0, amp) if self.standing else amp

    # --------------------------------------------------------------------------------------- public API

    def kinematics(self, placement: str, t_s: np.ndarray) -> Kinematics:
        """Orientation and sensor position of a segment at the instants ``t_s`` (session clock, s)."""
        t = np.asarray(t_s, dtype=np.float64).ravel()
        if placement == "pelvis":
            return self._pelvis(t)
        if placement == "trunk":
            return self._trunk(t)
        if placement in ("tibia_left", "tibia_right"):
            return self._tibia(0 if placement == "tibia_left" else 1, t)
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")

    def angles_deg(self, placement: str, t_s: np.ndarray) -> np.ndarray:
        """Cardan angles of the segment relative to standing: columns rotation, obliquity, tilt (deg)."""
        kin = self.kinematics(placement, t_s)
        return np.degrees(np.column_stack([kin.psi.v, kin.phi.v, kin.theta.v]))

    def signals(self, placement: str, t_s: np.ndarray, sensor: ImuSensor | None = None) -> dict[str, np.ndarray]:
        """Sensor readings at ``t_s``: ``acc_g``, ``gyro_dps``, ``mag_ut``, each (n, 3).

        Without ``sensor``: exact and noise-free, in the segment frame. With one: what that board reads (its
        frame, biases, noise, range clipping; :meth:`ImuSensor.read`).
        """
        t = np.asarray(t_s, dtype=np.float64).ravel()
        kin = self.kinematics(placement, t)
        clean = {"acc_g": kin.specific_force_g(), "gyro_dps": kin.gyro_dps(), "mag_ut": kin.mag_ut()}
        return clean if sensor is None else sensor.read(clean, t)
