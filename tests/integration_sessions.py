"""Session files (format v1, docs/file-format.md) with known content, for the export and batch tests.

Two insoles with a running-like load pattern: each contact rolls the load from the heel sensels to the toe sensels,
so the true total force and centre of pressure of every sample are known in closed form (``truth``).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from treadlab import fileformat as ff

N_SENSELS = 8
POSITIONS_MM = np.column_stack([np.tile([-20.0, 20.0], 4), np.repeat([30.0, 100.0, 170.0, 240.0], 2)])
AREAS_MM2 = np.full(N_SENSELS, 300.0)
GAIN = np.linspace(0.9, 1.1, N_SENSELS).astype(np.float32)
OFFSET = np.full(N_SENSELS, 20.0, dtype=np.float32)


def _sensel_forces(t_s: np.ndarray, *, phase_s: float, stride_s: float, contact_s: float, peak_n: float):
    """Per-sensel force (n, 8) of one foot: a half-sine contact whose load moves heel to toe."""
    u = np.mod(t_s - phase_s, stride_s) / contact_s  # 0..1 during contact
    on = u < 1.0
    total = np.where(on, peak_n * np.sin(np.pi * np.clip(u, 0, 1)), 0.0)
    centre_row = 3.0 * np.clip(u, 0, 1)  # row index of the load centre (0 heel .. 3 toe)
    rows = np.repeat(np.arange(4), 2)[None, :]
    w = np.exp(-0.5 * ((rows - centre_row[:, None]) / 0.6) ** 2)
    w /= w.sum(axis=1, keepdims=True)
    return total[:, None] * w


def write_session(path: Path, *, duration_s: float = 20.0, rate_hz: float = 200.0, stride_s: float = 0.72,
                  peak_n: float = 1500.0, mass_kg: float = 70.0, participant: str = "P01",
                  condition: str = "baseline", markers: tuple[tuple[float, str], ...] = ((2.0, "start"),),
                  gap: tuple[float, int] | None = None, seed: int = 0) -> dict:
    """Write a complete two-insole session; return the truth (per-side time, total force, COP, per-sensel N)."""
    rng = np.random.default_rng(seed)
    start_ns = 10_000_000_000
    truth: dict = {"markers": markers}
    with h5py.File(path, "w") as f:
        a = f.attrs
        a.update({"format": ff.FORMAT, "format_version": ff.FORMAT_VERSION, "created": "2026-11-25T08:00:00Z",
                  "software_version": "test", "start_monotonic_ns": np.int64(start_ns),
                  "start_utc": "2026-11-25T08:00:00Z", "participant": participant, "condition": condition,
                  "body_mass_kg": mass_kg, "treadmill_speed_mps": 3.0, "shoe": "A", "notes": "", "rig": "",
                  "state": ff.STATE_COMPLETE, "stop_utc": "", "duration_s": duration_s, "stop_reason": "duration",
                  "clock_model": ff.CLOCK_MODEL})
        for side, phase in (("left", 0.1), ("right", 0.1 + stride_s / 2)):
            n = int(duration_s * rate_hz)
            t = np.arange(n) / rate_hz + 0.003 + rng.normal(0, 1e-5, n)
            seq = np.arange(n, dtype=np.uint32)
            if gap is not None and side == "left":
                at, count = int(gap[0] * rate_hz), gap[1]
                keep = np.r_[0:at, at + count:n]
                t, seq = t[keep], seq[keep]
            forces = _sensel_forces(t, phase_s=phase, stride_s=stride_s, contact_s=0.26, peak_n=peak_n)
            raw = np.round(forces / GAIN + OFFSET).astype(np.uint16)
            cal = (GAIN * (raw.astype(np.float32) - OFFSET)).clip(min=0)
            total = cal.sum(axis=1, dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                cop = (cal.astype(np.float64) @ POSITIONS_MM) / total[:, None]
            truth[side] = {"time": t, "total": total, "cop": cop, "forces": cal}
            g = f.create_group(f"{ff.DEVICES}/insole_{side}")
            g.attrs.update({"kind": "insole", "side": side, "protocol": "binary", "rate_hz": rate_hz,
                            "info_json": json.dumps({"serial": f"SN-{side}"}), "serial": f"SN-{side}",
                            "clock_hz": 1e6, "shape": np.array([N_SENSELS])})
            g.create_dataset(ff.RAW, data=raw, chunks=(512, N_SENSELS), maxshape=(None, N_SENSELS))
            g.create_dataset(ff.SEQ, data=seq)
            g.create_dataset(ff.DEVICE_TIME, data=np.round(t * 1e6).astype(np.uint64))
            g.create_dataset(ff.TIME, data=t)
            g.create_dataset(ff.HOST_TIME, data=t + 0.002)
            gaps = (np.array([[t[at - 1], float(at), float(count)]]) if gap is not None and side == "left"
                    else np.empty((0, 3)))
            g.create_dataset(ff.GAPS, data=gaps, maxshape=(None, 3))
            c = g.create_group(ff.CALIBRATION)
            c.create_dataset("gain", data=GAIN)
            c.create_dataset("offset", data=OFFSET)
            c.attrs["unit"] = "N"
            lay = g.create_group(ff.LAYOUT)
            lay.create_dataset("positions_mm", data=POSITIONS_MM.astype(np.float32))
            lay.create_dataset("areas_mm2", data=AREAS_MM2.astype(np.float32))
            lay.attrs["foot_length_mm"] = 270.0
        m = f.create_group(ff.MARKERS)
        m.create_dataset("time", data=np.array([x[0] for x in markers], dtype=np.float64))
        m.create_dataset("label", data=np.array([x[1].encode() for x in markers], dtype=f"S{ff.MARKER_LABEL_BYTES}"))
        e = f.create_group(ff.EVENTS)
        e.create_dataset("time", data=np.zeros(0))
        e.create_dataset("source", data=np.zeros(0, dtype=f"S{ff.EVENT_SOURCE_BYTES}"))
        e.create_dataset("level", data=np.zeros(0, dtype=np.uint8))
        e.create_dataset("text", data=np.zeros(0, dtype=f"S{ff.EVENT_TEXT_BYTES}"))
    return truth
