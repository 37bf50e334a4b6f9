"""C3D force platforms (``FORCE_PLATFORM`` types 1-4) -> force, moment, centre of pressure and free moment in the
file's lab frame, vectorised over the samples.

The equations and the reading of the parameters are those of the C3D user guide (c3d.org, "FORCE_PLATFORM") as
ezc3d implements them (``ezc3d::Modules::ForcePlatform``): the plate frame from ``CORNERS`` (x from corner 2 to
corner 1, y from corner 4 to corner 1, z = x x y), its centre the mean corner; ``ORIGIN`` (plate centre to the
transducer origin; z made negative, type 1 without x, y); ``CAL_MATRIX`` (6x6 per plate, type 4) applied to the
channels of ``CHANNEL``; types 2/4: ``M += F x origin``, COP ``(-My/Fz, Mx/Fz, 0)``, free moment ``M + F x COP``;
type 3 (Kistler, 8 channels) with the ``FPCOPPOLY`` COP correction; type 1 (Fx Fy Fz COPx COPy Tz). ezc3d's own
extraction converts every sample to a Python object one at a time (about 30 us per sample); this does the same
algebra on whole arrays, and the tests check it against ezc3d's output sample by sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PlatformParams", "platform_params", "platform_signals"]


class PlatformError(ValueError):
    """FORCE_PLATFORM parameters that cannot be used (the message says which)."""


@dataclass(frozen=True)
class PlatformParams:
    """One platform's parameters, as the equations use them."""

    type: int
    channels: np.ndarray  # 0-based analog channel indices (6, or 8 for type 3)
    corners: np.ndarray  # (3, 4), lab frame
    origin: np.ndarray  # (3,)
    cal: np.ndarray  # (6, 6)
    cop_poly: np.ndarray  # (12,) type 3

    @property
    def centre(self) -> np.ndarray:
        """Mean corner (lab frame)."""
        return self.corners.mean(axis=1)

    @property
    def frame(self) -> np.ndarray:
        """Rotation plate -> lab (columns: the plate's x, y, z in the lab frame)."""
        c = self.corners
        x = c[:, 0] - c[:, 1]
        y = c[:, 0] - c[:, 3]
        z = np.cross(x, y)
        y = np.cross(z, x)
        axes = [v / np.linalg.norm(v) for v in (x, y, z)]
        if not all(np.isfinite(a).all() for a in axes):
            raise PlatformError("FORCE_PLATFORM:CORNERS do not span a plate")
        return np.column_stack(axes)


def _value(params: dict, name: str):
    p = params.get("FORCE_PLATFORM", {}).get(name)
    return None if p is None else p.get("value")


def platform_params(params: dict, idx: int, type_: int) -> PlatformParams:
    """Platform ``idx``'s parameters from ezc3d's ``c3d["parameters"]``.

    Raises
    ------
    PlatformError
        CHANNEL, CORNERS, ORIGIN or (type 4) CAL_MATRIX missing or too short for this platform.
    """
    n_ch = 8 if type_ == 3 else 6
    ch = _value(params, "CHANNEL")
    ch = np.asarray(ch if ch is not None else np.zeros((0, 0)), dtype=np.int64)
    if ch.ndim == 1:
        ch = ch[:, None]
    if ch.ndim != 2 or ch.shape[0] < n_ch or ch.shape[1] <= idx:
        raise PlatformError(f"FORCE_PLATFORM:CHANNEL does not list {n_ch} channels for platform {idx + 1}")
    corners = np.asarray(_value(params, "CORNERS") if _value(params, "CORNERS") is not None else [], np.float64)
    if corners.ndim == 2:
        corners = corners[:, :, None]
    if corners.ndim != 3 or corners.shape[:2] != (3, 4) or corners.shape[2] <= idx:
        raise PlatformError(f"FORCE_PLATFORM:CORNERS has no 4 corners for platform {idx + 1}")
    origin = np.asarray(_value(params, "ORIGIN") if _value(params, "ORIGIN") is not None else [], np.float64)
    if origin.ndim == 1:
        origin = origin[:, None]
    if origin.ndim != 2 or origin.shape[0] != 3 or origin.shape[1] <= idx:
        raise PlatformError(f"FORCE_PLATFORM:ORIGIN has no origin for platform {idx + 1}")
    o = origin[:, idx].copy()
    if type_ == 1:
        o[:2] = 0.0
    if o[2] > 0:
        o = -o  # the origin points from the plate centre down to the transducer
    cal = np.eye(6)
    raw_cal = _value(params, "CAL_MATRIX")
    if type_ == 4:
        arr = np.asarray(raw_cal if raw_cal is not None else [], np.float64)
        if arr.ndim == 3 and arr.size == 0:
            cal = np.eye(6)  # Motion Analysis declares an empty (6, 6, n) matrix for calibrated channels
        elif arr.ndim == 2 and arr.shape == (6, 6) and idx == 0:
            cal = arr
        elif arr.ndim == 3 and arr.shape[:2] == (6, 6) and arr.shape[2] > idx:
            cal = arr[:, :, idx]
        else:
            raise PlatformError(f"FORCE_PLATFORM:CAL_MATRIX has no 6x6 matrix for platform {idx + 1} (type 4)")
    poly = np.zeros(12)
    if type_ == 3:
        fp = _value(params, "FPCOPPOLY")
        vals = np.asarray(fp if fp is not None else [], np.float64).ravel(order="F")
        if vals.size >= 12 * (idx + 1):
            poly = vals[12 * idx:12 * (idx + 1)]
    return PlatformParams(type=type_, channels=ch[:n_ch, idx] - 1, corners=corners[:, :, idx], origin=o, cal=cal,
                          cop_poly=poly)


def platform_signals(p: PlatformParams, analogs: np.ndarray) -> dict[str, np.ndarray]:
    """Force, moment, COP and free moment (each (3, n) float64, lab frame, the file's units) of one platform.

    Parameters
    ----------
    p : PlatformParams
    analogs : ndarray, shape (channels, n)
        Scaled analog samples (ezc3d's ``c3d["data"]["analogs"][0]``).
    """
    if p.channels.max(initial=-1) >= analogs.shape[0] or p.channels.min(initial=0) < 0:
        raise PlatformError(f"FORCE_PLATFORM:CHANNEL names analog channel {int(p.channels.max()) + 1}; the file has "
                            f"{analogs.shape[0]}")
    ch = np.asarray(analogs[p.channels], dtype=np.float64)
    r = p.frame
    with np.errstate(divide="ignore", invalid="ignore"):
        if p.type == 1:
            f_raw = ch[0:3]
            cop_raw = np.vstack([ch[3], ch[4], np.zeros(ch.shape[1])])
            tz_raw = np.vstack([np.zeros((2, ch.shape[1])), ch[5]])
            force, cop, tz = r @ f_raw, r @ cop_raw, r @ tz_raw
            moment = np.cross(force, cop, axis=0) - tz
            return {"force": force, "moment": moment, "cop": cop + p.centre[:, None], "tz": tz}
        if p.type == 3:
            o = p.origin
            f_raw = np.vstack([ch[0] + ch[1], ch[2] + ch[3], ch[4] + ch[5] + ch[6] + ch[7]])
            m_raw = np.vstack([o[1] * (ch[4] + ch[5] - ch[6] - ch[7]), o[0] * (ch[5] + ch[6] - ch[4] - ch[7]),
                               o[1] * (ch[1] - ch[0]) + o[0] * (ch[2] - ch[3])])
            m_raw = m_raw + np.cross(f_raw, np.array([0.0, 0.0, o[2]])[:, None], axis=0)
        else:
            data = ch if p.type == 2 else p.cal @ ch
            f_raw, m_raw = data[0:3], data[3:6] + np.cross(data[0:3], p.origin[:, None], axis=0)
        cop_raw = np.vstack([-m_raw[1] / f_raw[2], m_raw[0] / f_raw[2], np.zeros(ch.shape[1])])
        if p.type == 3:
            c = p.cop_poly
            x, y = cop_raw[0].copy(), cop_raw[1].copy()
            cop_raw[0] -= (c[0] * y**4 + c[1] * y**2 + c[2]) * x**3 + (c[3] * y**4 + c[4] * y**2 + c[5]) * x
            cop_raw[1] -= (c[6] * x**4 + c[7] * x**2 + c[8]) * y**3 + (c[9] * x**4 + c[10] * x**2 + c[11]) * y
        tz = r @ (m_raw + np.cross(f_raw, cop_raw, axis=0))
        return {"force": r @ f_raw, "moment": r @ m_raw, "cop": r @ cop_raw + p.centre[:, None], "tz": tz}
