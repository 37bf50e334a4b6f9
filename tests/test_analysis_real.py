"""Real data: PhysioNet insole walking (8 sensors per foot, 100 Hz) and a treadmill running force plate (300 Hz).

Sources and licences: ``tests/data/README.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from treadlab import fileformat as ff
from treadlab.analysis import G_MPS2, ContactDetection, InsoleScaleWarning, analyze

DATA = Path(__file__).parent / "data"
#: PhysioNet sensor layout (format.txt): X, Y in arbitrary units, Y forward; right foot mirrored in X.
PHYSIONET_XY = np.array([[-500, -800], [-700, -400], [-300, -400], [-700, 0], [-300, 0], [-700, 400],
                         [-300, 400], [-500, 800]], dtype=float)
FOOT_LENGTH_MM = 260.0


def _physionet_session(path: Path) -> None:
    """Write the PhysioNet insole data as a session file v1 (float32 raw as from the line protocol, unit N)."""
    data = np.loadtxt(DATA / "gaitpdb_GaCo01_01_first40s.txt")
    t = data[:, 0]
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": ff.FORMAT, "format_version": ff.FORMAT_VERSION, "body_mass_kg": 83.0,
                        "treadmill_speed_mps": float("nan"), "participant": "GaCo01", "condition": "overground walk",
                        "rig": "", "shoe": "", "notes": "PhysioNet gaitpdb"})
        for side, cols in (("left", slice(1, 9)), ("right", slice(9, 17))):
            g = f.create_group(f"{ff.DEVICES}/insole_{side}")
            g.attrs.update({"kind": "insole", "side": side, "protocol": "line", "rate_hz": 100.0,
                            "info_json": json.dumps({"sensels": 8})})
            g.create_dataset(ff.RAW, data=data[:, cols].astype("f4"), chunks=(1000, 8))
            g.create_dataset(ff.TIME, data=t)
            g.create_dataset(ff.SEQ, data=np.arange(len(t), dtype="u4"))
            g.create_dataset(ff.GAPS, data=np.empty((0, 3)))
            g.create_dataset(f"{ff.CALIBRATION}/gain", data=np.ones(8, "f4"))
            g.create_dataset(f"{ff.CALIBRATION}/offset", data=np.zeros(8, "f4"))
            g[ff.CALIBRATION].attrs["unit"] = "N"
            xy = PHYSIONET_XY * ([1, 1] if side == "right" else [-1, 1])  # x lateral in the foot frame
            pos = np.column_stack([xy[:, 0] / 1800 * FOOT_LENGTH_MM, (xy[:, 1] + 900) / 1800 * FOOT_LENGTH_MM])
            g.create_dataset(f"{ff.LAYOUT}/positions_mm", data=pos)
            g.create_dataset(f"{ff.LAYOUT}/areas_mm2", data=np.full(8, 300.0))
            g[ff.LAYOUT].attrs["foot_length_mm"] = FOOT_LENGTH_MM


@pytest.fixture(scope="module")
def physionet(tmp_path_factory):
    p = tmp_path_factory.mktemp("real") / "gaco01.h5"
    _physionet_session(p)
    return p


def test_physionet_heel_strikes_and_cadence(physionet):
    with pytest.warns(InsoleScaleWarning):  # these insoles read ~1.7 x body weight (see data README)
        ga = analyze(physionet)
    with ga:
        walk = ga.select(4.0, 40.0)  # the recording opens with ~3 s of standing
        s = walk.summary
        for foot in ("left", "right"):
            f = s["feet"][foot]
            assert f["steps"] >= 25  # 36 s of walking at ~0.75 strides/s
            assert f["strike_counts"]["rearfoot"] >= 0.85 * f["steps"]  # heel strikes
            assert (walk.steps.loc[walk.steps["foot"] == foot, "onset_class"] == "rearfoot").mean() >= 0.9
            assert 700 < f["contact_time_ms"]["median"] < 1000
        # Cadence consistent with 1.075 m/s: a step length of 0.55-0.8 m for an adult.
        step_length_m = 1.075 / (s["cadence_spm"] / 60.0)
        assert 0.55 <= step_length_m <= 0.8
        assert (walk.steps["flight_time_ms"].dropna() < 0).mean() > 0.9  # double support
        assert s["insole_scale"] == pytest.approx(1.3, abs=0.2)


def test_force_plate_body_weight_and_cadence():
    raw = np.loadtxt(DATA / "fukuchi_RBDS001runT25forces.txt", skiprows=1)
    t = (raw[:, 0] - 1) / 300.0
    fy = raw[:, 2]
    det = ContactDetection().detect(t, fy)
    c = det.contacts_
    assert len(c) >= 70  # 30 s at ~2.8 steps/s
    # One plate, both feet, no double support: the mean over whole steps (IC to IC) is body weight.
    a, b = int(c["first"].iloc[0]), int(c["first"].iloc[-1])
    mean_n = float(fy[a:b].mean())
    assert mean_n == pytest.approx(62.0 * G_MPS2, rel=0.05)
    step_s = np.diff(c["ic_s"].to_numpy())
    cadence = 60.0 / np.median(step_s)
    assert 150 <= cadence <= 190
    contact_ms = (c["to_s"] - c["ic_s"]).median() * 1e3
    assert 200 <= contact_ms <= 320
