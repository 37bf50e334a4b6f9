"""Synthetic IMU recordings with known answers, for the IMU analysis tests (test-only; not the simulator).

Pelvis (and trunk) orientation is built from known Cardan angles ``R = Rz(rotation) Rx(obliquity) Ry(tilt)``
of the segment in the lab frame (x forward, y left, z up), the position from known sinusoids; the sensor's
gyroscope (body rate) and accelerometer (specific force, +1 g up at rest) follow exactly from them through a
mounting rotation, plus noise and a constant gyroscope bias. Events: left IC at ``k / stride_hz``, right IC half a
stride later, each stance ``duty`` of a stride.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

G = 9.80665


@dataclass
class Runner:
    rate_hz: float = 500.0
    stand_s: float = 5.0
    run_s: float = 30.0
    stride_hz: float = 1.4
    duty: float = 0.36          # stance / stride
    drop_deg: tuple = (6.0, 4.0)  # (left stance, right stance)
    rotation_amp_deg: float = 5.0
    tilt_mean_deg: float = 3.0
    tilt_amp_deg: float = 2.5
    lean_deg: float = 8.0        # trunk
    vo_mm: float = 80.0
    ap_amp_mps: float = 0.15     # forward velocity swing
    ml_amp_mm: float = 15.0
    pta_g: tuple = (8.0, 10.0)   # (left, right)
    ppa_g: tuple = (3.0, 3.5)
    heading_deg: float = 37.0    # runner's heading in the earth frame
    heading_drift_dps: float = 0.0
    mount_deg: tuple = (0.0, 0.0, 0.0)  # extra mounting misalignment (xyz Euler, deg) on top of a base mounting
    gyro_bias_dps: tuple = (0.0, 0.0, 0.0)
    gyro_noise_dps: float = 0.0
    acc_noise_g: float = 0.0
    seed: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def t(self) -> np.ndarray:
        return np.arange(int((self.stand_s + self.run_s) * self.rate_hz)) / self.rate_hz

    def events(self) -> dict:
        """IC and TO per foot (s), running only."""
        out = {}
        stride = 1.0 / self.stride_hz
        t_end = self.stand_s + self.run_s - stride
        for k, foot in enumerate(("left", "right")):
            ic = self.stand_s + 1.0 + k * stride / 2 + np.arange(0, t_end, stride)
            ic = ic[ic < t_end]
            out[foot] = (ic, ic + self.duty * stride)
        return out

    # --- kinematics ------------------------------------------------------------------------------------
    def _ramp(self, t):
        x = np.clip((t - self.stand_s) / 1.0, 0, 1)
        return x * x * (3 - 2 * x)  # smoothstep: running fades in over 1 s after standing

    def _phase(self, t):
        """Stride phase (0 at left IC) and the left mid-stance offset."""
        t0 = self.stand_s + 1.0
        return 2 * np.pi * self.stride_hz * (t - t0)

    def pelvis_angles_deg(self, t):
        ph = self._phase(t)
        ramp = self._ramp(t)
        st = 2 * np.pi * self.duty  # stance width in phase
        lph = np.mod(ph, 2 * np.pi)
        rph = np.mod(ph - np.pi, 2 * np.pi)
        obl = (np.where(lph < st, self.drop_deg[0] * np.sin(np.pi * lph / st) ** 2, 0.0)
               - np.where(rph < st, self.drop_deg[1] * np.sin(np.pi * rph / st) ** 2, 0.0))
        tilt = self.tilt_mean_deg + self.tilt_amp_deg * np.cos(2 * ph)
        rot = self.rotation_amp_deg * np.sin(ph)
        return np.stack([rot * ramp, obl * ramp, tilt * ramp], axis=1)

    def trunk_angles_deg(self, t):
        ph = self._phase(t)
        ramp = self._ramp(t)
        tilt = self.lean_deg + 1.0 * np.cos(2 * ph)
        return np.stack([-2.0 * np.sin(ph) * ramp, 1.5 * np.sin(ph) * ramp, tilt * ramp], axis=1)

    def pelvis_acc_lab_mps2(self, t):
        """Acceleration of the pelvis in the lab frame (m/s^2): AP braking/push-off, ML sway, vertical."""
        ph = self._phase(t)
        ramp = self._ramp(t)
        mid = np.pi * self.duty  # phase of left mid-stance
        w2 = 2 * 2 * np.pi * self.stride_hz
        w1 = 2 * np.pi * self.stride_hz
        # z = -(vo/2) cos(2(ph - mid)): lowest at mid-stance of each foot
        az = (self.vo_mm / 2000.0) * w2 ** 2 * np.cos(2 * (ph - mid))
        # v_x = -B cos(2(ph - mid)): slowest at mid-stance
        ax = self.ap_amp_mps * w2 * np.sin(2 * (ph - mid))
        # y = S cos(ph - mid): towards the left at left mid-stance
        ay = -(self.ml_amp_mm / 1000.0) * w1 ** 2 * np.cos(ph - mid)
        out = np.stack([ax, ay, az], axis=1) * ramp[:, None]
        out[:, 2] += self._hat(t, second=True) * G
        return out

    PPA_DELAY_S = 0.015
    PPA_WIDTH_S = 0.008

    def _hat(self, t, second):
        """The pelvis impact: a position dip -A s^2 exp(-u^2/2) at each IC + delay, whose second derivative is the
        acceleration pulse A (1 - u^2) exp(-u^2/2) (peak A g; no net change of velocity or position)."""
        out = np.zeros_like(t)
        s = self.PPA_WIDTH_S
        half = int(6 * s * self.rate_hz) + 1
        offs = np.arange(-half, half + 1)
        for foot, amp in zip(("left", "right"), self.ppa_g):
            centre = self.events()[foot][0] + self.PPA_DELAY_S
            rows = np.round(centre * self.rate_hz).astype(np.int64)[:, None] + offs[None, :]
            ok = (rows >= 0) & (rows < len(t))
            u = (t[np.clip(rows, 0, len(t) - 1)] - centre[:, None]) / s
            vals = amp * ((1 - u * u) if second else -(s * s)) * np.exp(-0.5 * u * u)
            np.add.at(out, rows[ok], vals[ok])
        return out

    def pelvis_z_m(self, t):
        """True vertical position of the pelvis (m): the step's oscillation plus the impact dips."""
        ph = self._phase(t)
        mid = np.pi * self.duty
        z = -(self.vo_mm / 2000.0) * np.cos(2 * (ph - mid)) * self._ramp(t)
        return z + self._hat(t, second=False) * G

    def vo_truth_mm(self):
        return self.vo_mm

    # --- sensors ---------------------------------------------------------------------------------------
    def mounting(self, base="pelvis") -> Rotation:
        """R_BS: the sensor frame in the segment frame (a board whose axes differ from the segment's)."""
        bases = {"pelvis": Rotation.from_euler("ZX", [90, 180], degrees=True),  # facing backwards, flipped
                 "trunk": Rotation.from_euler("XY", [90, -20], degrees=True),
                 "tibia": Rotation.from_euler("YZ", [90, 30], degrees=True)}
        return bases[base] * Rotation.from_euler("xyz", self.mount_deg, degrees=True)

    def imu(self, angles_deg, acc_lab_mps2, mounting: Rotation):
        """Gyroscope (deg/s) and accelerometer (g) of a sensor on a segment with these lab-frame angles."""
        t = self.t
        heading = self.heading_deg + self.heading_drift_dps * t  # earth frame of the 'truth' is arbitrary
        r_lb = Rotation.from_euler("ZXY", angles_deg, degrees=True)
        r_el = Rotation.from_euler("Z", heading[:, None], degrees=True)
        r_es = r_el * r_lb * mounting
        rel = r_es[:-1].inv() * r_es[1:]
        w = rel.as_rotvec() * self.rate_hz
        gyro = np.rad2deg(np.vstack([w[:1], w]))
        f_lab = acc_lab_mps2 / G + np.array([0.0, 0.0, 1.0])
        acc = (r_lb * mounting).inv().apply(f_lab)
        rng = np.random.default_rng(self.seed)
        gyro = gyro + np.asarray(self.gyro_bias_dps) + self.gyro_noise_dps * rng.standard_normal(gyro.shape)
        acc = acc + self.acc_noise_g * rng.standard_normal(acc.shape)
        return gyro, acc

    def pelvis(self):
        t = self.t
        return self.imu(self.pelvis_angles_deg(t), self.pelvis_acc_lab_mps2(t), self.mounting("pelvis"))

    def trunk(self):
        t = self.t
        return self.imu(self.trunk_angles_deg(t), 0.6 * self.pelvis_acc_lab_mps2(t), self.mounting("trunk"))

    def impact_pulses(self, peaks_g, delay_s=0.012, width_s=0.006, base_g=1.0):
        """Upward impact pulses after every IC of each foot (g): dict foot -> per-sample pulse of that foot
        (amplitude ``peak - base_g``)."""
        t = self.t
        out = {}
        half = int(6 * width_s * self.rate_hz) + 1
        offs = np.arange(-half, half + 1)
        for foot, peak in zip(("left", "right"), peaks_g):
            centre = self.events()[foot][0] + delay_s
            rows = np.round(centre * self.rate_hz).astype(np.int64)[:, None] + offs[None, :]
            ok = (rows >= 0) & (rows < len(t))
            p = np.zeros_like(t)
            vals = (peak - base_g) * np.exp(-0.5 * ((t[np.clip(rows, 0, len(t) - 1)] - centre[:, None]) / width_s) ** 2)
            np.add.at(p, rows[ok], vals[ok])
            out[foot] = p
        return out

    def tibia(self, foot):
        """Accelerometer-only tibia sensor (g): 1 g along the shank plus the impact pulses of that foot."""
        t = self.t
        pulse = self.impact_pulses(self.pta_g)[foot]
        f_lab = np.zeros((len(t), 3))
        f_lab[:, 2] = 1.0 + pulse
        # the swing: a forward-backward shank acceleration that does not reach the axis
        f_lab[:, 0] = 0.5 * np.sin(self._phase(t)) * self._ramp(t)
        acc = self.mounting("tibia").inv().apply(f_lab)
        rng = np.random.default_rng(self.seed + 7)
        return acc + self.acc_noise_g * rng.standard_normal(acc.shape)
