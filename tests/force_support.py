"""Force-plate test files: synthetic C3D files (written with ezc3d) and text exports with known content, and the
real Fukuchi files of tests/data imported.

The synthetic runner lands alternately left and right on one belt moving at ``speed_mps`` toward -forward: each
stance is a half sine of ``peak_bw`` body weights lasting ``contact_s``, its centre of pressure starts at the heel
and rolls ``roll_mm`` forward along the foot while the belt carries the foot back, left feet ``step_width_mm / 2``
to the left of the belt centre and right feet as far to the right.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from treadlab.vocabulary import G_MPS2

DATA = Path(__file__).parent / "data"
RBDS001_TEXT = DATA / "fukuchi_RBDS001runT25forces.txt"
RBDS017_C3D = DATA / "fukuchi_RBDS017runT35_first10s.c3d"
RBDS_INFO = DATA / "fukuchi_RBDSinfo_excerpt.tsv"
INT, FLOAT, CHAR = 2, 4, -1  # ezc3d parameter types


def rbds_mass_kg(runner: str) -> float:
    """Body mass of a Fukuchi runner ("RBDS017") from the RBDSinfo excerpt."""
    import pandas as pd

    info = pd.read_csv(RBDS_INFO, sep="\t")
    return float(info.loc[info["Runner"] == runner, "Mass"].iloc[0])


@dataclass
class Gait:
    """The synthetic runner and belt."""

    mass_kg: float = 70.0
    rate_hz: float = 1000.0
    seconds: float = 6.0
    step_s: float = 0.36
    contact_s: float = 0.24
    peak_bw: float = 2.5
    speed_mps: float = 3.0
    roll_mm: float = 150.0
    step_width_mm: float = 160.0
    first_ic_s: float = 0.1

    def ics(self) -> np.ndarray:
        """Initial contacts (s); even index = left."""
        return np.arange(self.first_ic_s, self.seconds - self.contact_s, self.step_s)

    def signals(self) -> dict:
        """Forces (N), COP (mm, belt-centre frame: +x forward, +y left, +z up) and which foot, per sample."""
        n = int(round(self.seconds * self.rate_hz))
        t = np.arange(n) / self.rate_hz
        ics = self.ics()
        k = np.searchsorted(ics, t, side="right") - 1  # the last contact that began at or before each sample
        since = t - ics[np.maximum(k, 0)]
        m = (k >= 0) & (since < self.contact_s)
        ph = np.where(m, since / self.contact_s, 0.0)
        fz = np.where(m, self.peak_bw * self.mass_kg * G_MPS2 * np.sin(np.pi * ph), 0.0)
        fx = np.where(m, -0.15 * self.mass_kg * G_MPS2 * np.sin(2 * np.pi * ph), 0.0)
        copx = np.where(m, 300.0 - self.speed_mps * 1000.0 * since + self.roll_mm * ph, 0.0)
        copy = np.where(m, np.where(k % 2 == 0, 1.0, -1.0) * self.step_width_mm / 2, 0.0)
        return {"t": t, "Fx": fx, "Fy": np.zeros(n), "Fz": fz, "COPx": copx, "COPy": copy}


def _p(value, kind: int) -> dict:
    return {"type": kind, "description": "", "is_locked": False, "value": value}


def write_c3d(path: Path, gait: Gait | None = None, *, plate_type: int = 2, volts: bool = False,
              events: list | None = None, extra_analog: bool = False, plates: int = 1, used: int | None = None,
              point_rate_hz: float = 100.0) -> Path:
    """A C3D file of the synthetic runner on ``plates`` plates (the second, if any, 600 mm to the right and
    unloaded) of FORCE_PLATFORM ``plate_type`` 2 (analog channels in N and N·mm) or 4 (volts and a diagonal
    CAL_MATRIX); ``volts`` writes type 2 channels in volts (1 V = 500 N) while ANALOG:UNITS still says N.
    Lab frame: z up, x along the belt (the runner faces +x), y to the left; plate surface at z = 0.
    """
    import ezc3d

    gait = gait or Gait()
    s = gait.signals()
    n = len(s["t"])
    ratio = int(round(gait.rate_hz / point_rate_hz))
    n_frames = n // ratio
    n = n_frames * ratio
    length, width = 1800.0, 500.0
    centres = [np.array([1000.0, 0.0, 0.0]), np.array([1000.0, -600.0, 0.0])][:plates]
    channels = []
    labels = []
    for i in range(plates):  # one iteration per plate; only the first is loaded
        load = 1.0 if i == 0 else 0.0
        fz, fx = s["Fz"][:n] * load, s["Fx"][:n] * load
        dx = (s["COPx"][:n] - 0.0) * load
        dy = (s["COPy"][:n] - 0.0) * load
        mx, my = dy * fz, -dx * fz  # moments about the plate centre (origin on the surface)
        chans = np.vstack([fx, np.zeros(n), fz, mx, my, np.zeros(n)])
        if plate_type == 4 or volts:
            chans = chans / np.array([500, 500, 1000, 8e5, 2.5e5, 4e5])[:, None]
        channels.append(chans)
        labels += [f"F{i + 1}X", f"F{i + 1}Y", f"F{i + 1}Z", f"M{i + 1}X", f"M{i + 1}Y", f"M{i + 1}Z"]
    if extra_analog:
        channels.append(np.sin(2 * np.pi * 5 * s["t"][:n])[None, :])
        labels.append("EMG1")
    analogs = np.vstack(channels)[None, :, :]
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = np.array([point_rate_hz])
    c["parameters"]["POINT"]["LABELS"]["value"] = ["L.Heel", "R.Heel"]
    c["parameters"]["POINT"]["UNITS"] = _p(["mm"], CHAR)
    c["data"]["points"] = np.ones((4, 2, n_frames))
    c["parameters"]["ANALOG"]["RATE"]["value"] = np.array([gait.rate_hz])
    c["parameters"]["ANALOG"]["LABELS"]["value"] = labels
    c["parameters"]["ANALOG"]["UNITS"] = _p((["N"] * 3 + ["Nmm"] * 3) * plates + (["V"] if extra_analog else []),
                                           CHAR)
    c["data"]["analogs"] = analogs
    corners = np.zeros((3, 4, plates))
    half = np.array([[1, 1, 0], [-1, 1, 0], [-1, -1, 0], [1, -1, 0]]) * [length / 2, width / 2, 0]
    for i, ce in enumerate(centres):
        corners[:, :, i] = (ce + half).T
    fp = {"__METADATA__": {"DESCRIPTION": "", "IS_LOCKED": False},
          "USED": _p(np.array([plates if used is None else used]), INT),
          "TYPE": _p(np.array([plate_type] * plates), INT),
          "ZERO": _p(np.array([0, 0]), INT),
          "CHANNEL": _p(np.arange(1, 6 * plates + 1).reshape(plates, 6).T, INT),
          "CORNERS": _p(corners, FLOAT),
          "ORIGIN": _p(np.zeros((3, plates)), FLOAT)}
    if plate_type == 4:
        cal = np.zeros((6, 6, plates))
        for i in range(plates):
            cal[:, :, i] = np.diag([500, 500, 1000, 8e5, 2.5e5, 4e5])
        fp["CAL_MATRIX"] = _p(cal, FLOAT)
    c["parameters"]["FORCE_PLATFORM"] = fp
    for t_s, context, label in events or []:
        c.add_event([int(t_s // 60), float(t_s % 60)], context=context, label=label)
    c.write(str(path))
    return Path(path)


def write_text(path: Path, gait: Gait | None = None, *, sep: str = "\t", time: str = "index",
               columns: tuple = ("Time", "Fx", "Fy", "Fz", "COPx", "COPy", "COPz", "Tz")) -> Path:
    """A text export of the synthetic runner (frame: z up, x forward); ``time`` "index" (1, 2, ...) or "s"."""
    gait = gait or Gait()
    s = gait.signals()
    n = len(s["t"])
    values = {"Time": np.arange(1, n + 1) if time == "index" else s["t"], "Fx": s["Fx"], "Fy": s["Fy"],
              "Fz": s["Fz"], "COPx": s["COPx"], "COPy": s["COPy"], "COPz": np.zeros(n), "Tz": np.zeros(n),
              "Mx": np.zeros(n), "My": np.zeros(n), "Mz": np.zeros(n)}
    cols = [values[c] for c in columns]
    fmt = ["%d" if (c == "Time" and time == "index") else "%.6f" for c in columns]
    np.savetxt(path, np.column_stack(cols), delimiter=sep, header=sep.join(columns), comments="", fmt=fmt)
    return Path(path)


def write_platform_c3d(path: Path, plate_type: int, analogs: np.ndarray, *, rate_hz: float = 1000.0,
                       origin=(10.0, 20.0, -30.0), corners=None, cal=None, cop_poly=None) -> Path:
    """A C3D file of one platform of any type 1-4 with the given analog channels (channels, n): for checking the
    platform equations against ezc3d's own extraction.
    """
    import ezc3d

    n_ch, n = analogs.shape
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = np.array([rate_hz / 10])
    c["parameters"]["POINT"]["LABELS"]["value"] = ["m"]
    c["parameters"]["POINT"]["UNITS"] = _p(["mm"], CHAR)
    c["data"]["points"] = np.ones((4, 1, n // 10))
    c["parameters"]["ANALOG"]["RATE"]["value"] = np.array([rate_hz])
    c["parameters"]["ANALOG"]["LABELS"]["value"] = [f"A{i + 1}" for i in range(n_ch)]
    c["data"]["analogs"] = analogs[None, :, : n // 10 * 10]
    if corners is None:  # a plate turned 30 degrees about the vertical, off the lab origin
        a = np.deg2rad(30)
        rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        corners = (rot @ (np.array([[1, 1, 0], [-1, 1, 0], [-1, -1, 0], [1, -1, 0]]) * [300, 200, 0]).T
                   + np.array([[500.0], [-100.0], [5.0]]))
    fp = {"__METADATA__": {"DESCRIPTION": "", "IS_LOCKED": False},
          "USED": _p(np.array([1]), INT), "TYPE": _p(np.array([plate_type]), INT), "ZERO": _p(np.array([0, 0]), INT),
          "CHANNEL": _p(np.arange(1, n_ch + 1).reshape(n_ch, 1), INT),
          "CORNERS": _p(np.asarray(corners, float).reshape(3, 4, 1), FLOAT),
          "ORIGIN": _p(np.asarray(origin, float).reshape(3, 1), FLOAT)}
    if cal is not None:
        fp["CAL_MATRIX"] = _p(np.asarray(cal, float).reshape(6, 6, 1), FLOAT)
    if cop_poly is not None:
        fp["FPCOPPOLY"] = _p(np.asarray(cop_poly, float).reshape(12, 1), FLOAT)
    c["parameters"]["FORCE_PLATFORM"] = fp
    c.write(str(path))
    return Path(path)
