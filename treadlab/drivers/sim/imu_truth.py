"""Ground truth of the simulated IMUs: the contract's definitions (issue 14) on the model's noise-free functions.

:class:`ImuTruth` is a base of :class:`~treadlab.drivers.sim.imu_model.ImuModel`: ``truth_steps`` and
``truth_strides`` evaluate each definition on fine grids (a step: 801 points, about 0.45 ms; a stride: 1601; the
100 ms shock window: 0.2 ms; a smooth function's extreme on such a grid is within 1e-3 of its own).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from treadlab.vocabulary import FEET

__all__ = ["SHOCK_WINDOW_S", "ImuTruth"]

#: Truth window of PTA and PPA after initial contact (s).
SHOCK_WINDOW_S = 0.100
_MARGIN_S = 3.0


class ImuTruth:
    """Ground-truth tables of an :class:`~treadlab.drivers.sim.imu_model.ImuModel` (its base class)."""

    def _real_rows(self, t_lo: float | None, t_hi: float | None, ahead: int) -> np.ndarray:
        rows = np.arange(0, len(self.k) - ahead - 1)
        rows = rows[self.k[rows] >= 0] if self.standing else rows
        lo = self.ic[0] + _MARGIN_S if t_lo is None else t_lo
        hi = self.ic[-1] - _MARGIN_S if t_hi is None else t_hi
        return rows[(self.ic[rows] >= lo) & (self.ic[rows] < hi)]

    @staticmethod
    def _grid(start: np.ndarray, stop: np.ndarray, n: int) -> np.ndarray:
        return start[:, None] + (stop - start)[:, None] * np.linspace(0.0, 1.0, n)[None, :]

    def truth_steps(self, t_lo: float | None = None, t_hi: float | None = None, chunk: int = 64) -> pd.DataFrame:
        """Ground truth per step with initial contact in ``[t_lo, t_hi)`` (default: the model's window).

        Columns: ``k``, ``foot``, ``ic_s``, ``to_s``, ``gait``, ``pelvic_drop_deg`` (largest ``sigma *
        obliquity`` in stance), ``trunk_lean_deg`` (mean trunk tilt from IC to the other foot's next IC),
        ``vertical_oscillation_mm`` (peak-to-peak pelvis sensor height over the same span), ``pta_g`` and
        ``ppa_g`` (largest axial reading of the stance foot's shank, and the pelvis z reading, from IC to IC +
        100 ms), ``shock_attenuation_pct`` (``(1 - ppa / pta) * 100``).
        """
        rows = self._real_rows(t_lo, t_hi, 1)
        cols = {c: np.empty(len(rows)) for c in ("pelvic_drop_deg", "trunk_lean_deg", "vertical_oscillation_mm",
                                                 "pta_g", "ppa_g")}
        for a in range(0, len(rows), chunk):
            r = rows[a:a + chunk]
            sl = slice(a, a + len(r))
            stance = self._grid(self.ic[r], self.to[r], 801)
            obl = self._pelvis_base(stance.ravel())[1].v.reshape(stance.shape)
            cols["pelvic_drop_deg"][sl] = np.degrees((self.sigma[r][:, None] * obl).max(axis=1))
            step = self._grid(self.ic[r], self.ic[r + 1], 801)
            tilt = self._trunk(step.ravel()).theta.v.reshape(step.shape)
            cols["trunk_lean_deg"][sl] = np.degrees(np.trapezoid(tilt, dx=1.0, axis=1) / (step.shape[1] - 1))
            z = self._pelvis(step.ravel()).pos[2].v.reshape(step.shape)
            cols["vertical_oscillation_mm"][sl] = np.ptp(z, axis=1) * 1e3
            shock = self._grid(self.ic[r], self.ic[r] + SHOCK_WINDOW_S, 501)
            ppa = self._pelvis(shock.ravel()).specific_force_g()[:, 2].reshape(shock.shape)
            cols["ppa_g"][sl] = ppa.max(axis=1)
            pta = np.empty(len(r))
            for f in (0, 1):
                sel = self.foot[r] == f
                if np.any(sel):
                    acc = self._tibia(f, shock[sel].ravel()).specific_force_g()[:, 2]
                    pta[sel] = acc.reshape(int(sel.sum()), -1).max(axis=1)
            cols["pta_g"][sl] = pta
        out = pd.DataFrame({"k": self.k[rows], "foot": np.array(FEET)[self.foot[rows]], "ic_s": self.ic[rows],
                            "to_s": self.to[rows],
                            "gait": np.where(self.walking[rows], "walking", "running"), **cols})
        out["shock_attenuation_pct"] = (1.0 - out["ppa_g"] / out["pta_g"]) * 100.0
        return out

    def truth_strides(self, t_lo: float | None = None, t_hi: float | None = None, chunk: int = 64) -> pd.DataFrame:
        """Ground truth per stride (one per step: IC of a foot to its next IC) starting in ``[t_lo, t_hi)``.

        Columns: ``k``, ``foot``, ``start_s``, ``stop_s``, ``pelvic_rotation_deg`` (range of the pelvis's
        transverse angle, heading included, after the stride's least-squares line is removed),
        ``pelvic_tilt_mean_deg`` and ``pelvic_tilt_range_deg`` (mean and range of the tilt over the stride).
        """
        rows = self._real_rows(t_lo, t_hi, 2)
        n_grid = 1601
        x = np.linspace(-1.0, 1.0, n_grid)
        rot = np.empty(len(rows))
        tmean = np.empty(len(rows))
        trange = np.empty(len(rows))
        for a in range(0, len(rows), chunk):
            r = rows[a:a + chunk]
            sl = slice(a, a + len(r))
            g = self._grid(self.ic[r], self.ic[r + 2], n_grid)
            kin = self._pelvis(g.ravel(), pulses=False)
            psi = np.degrees(kin.psi.v).reshape(g.shape)
            slope = (psi * x).sum(axis=1) / (x * x).sum()
            resid = psi - psi.mean(axis=1, keepdims=True) - slope[:, None] * x[None, :]
            rot[sl] = np.ptp(resid, axis=1)
            theta = np.degrees(kin.theta.v).reshape(g.shape)
            tmean[sl] = np.trapezoid(theta, dx=1.0, axis=1) / (n_grid - 1)
            trange[sl] = np.ptp(theta, axis=1)
        return pd.DataFrame({"k": self.k[rows], "foot": np.array(FEET)[self.foot[rows]], "start_s": self.ic[rows],
                             "stop_s": self.ic[rows + 2], "pelvic_rotation_deg": rot,
                             "pelvic_tilt_mean_deg": tmean, "pelvic_tilt_range_deg": trange})
