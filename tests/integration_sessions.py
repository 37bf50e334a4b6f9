"""Session files (format v1, docs/file-format.md) of the simulated runner, written offline, for export and batch.

The insole forces come from the gait simulator (:class:`treadlab.drivers.sim.gait.GaitModel`), quantised through a
known calibration exactly as a device would send them, so the calibrated values, total force and centre of
pressure of every sample are known (``truth``), and the runner's parameters are the ground truth of the analysis.
No real-time recording is needed, so a study of many sessions is written in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from treadlab import fileformat as ff
from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.gait import GaitModel, RunnerParams

LAYOUT = "insole16"
GAIN_RANGE = (0.9, 1.1)
OFFSET_COUNTS = 20.0


def write_session(path: Path, *, params: RunnerParams | None = None, duration_s: float = 20.0,
                  rate_hz: float = 200.0, participant: str = "P01", condition: str = "baseline",
                  markers: tuple[tuple[float, str], ...] = ((2.0, "start"),), gap: tuple[float, int] | None = None,
                  seed: int = 0) -> dict:
    """Write a complete two-insole session of the simulated runner ``params``.

    Returns the truth: per side ``time``, calibrated per-sensel ``forces`` (N), ``total`` (N) and ``cop`` (mm),
    plus ``params`` and ``positions_mm``.
    """
    params = params or RunnerParams(seed=seed)
    model = GaitModel(params, duration_s + 1.0)
    layout = load_layout(LAYOUT)
    n_sensels = layout.n_sensels
    positions = np.asarray(layout.positions_mm, dtype=np.float64)
    gain = np.linspace(*GAIN_RANGE, n_sensels).astype(np.float32)
    offset = np.full(n_sensels, OFFSET_COUNTS, dtype=np.float32)
    rng = np.random.default_rng(seed)
    start_ns = 10_000_000_000
    truth: dict = {"markers": markers, "params": params, "positions_mm": positions}
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": ff.FORMAT, "format_version": ff.FORMAT_VERSION, "created": "2026-11-25T08:00:00Z",
                        "software_version": "test", "start_monotonic_ns": np.int64(start_ns),
                        "start_utc": "2026-11-25T08:00:00Z", "participant": participant, "condition": condition,
                        "body_mass_kg": params.body_mass_kg, "treadmill_speed_mps": params.speed_mps, "shoe": "A",
                        "notes": "", "rig": "", "state": ff.STATE_COMPLETE, "stop_utc": "",
                        "duration_s": duration_s, "stop_reason": "duration", "clock_model": ff.CLOCK_MODEL})
        for side in ("left", "right"):
            n = int(duration_s * rate_hz)
            t = np.arange(n) / rate_hz + 0.003 + rng.normal(0, 1e-5, n)
            seq = np.arange(n, dtype=np.uint32)
            if gap is not None and side == "left":
                at, count = int(gap[0] * rate_hz), gap[1]
                keep = np.r_[0:at, at + count:n]
                t, seq = t[keep], seq[keep]
            forces = model.insole_forces(side, t, layout)
            raw = np.clip(np.round(forces / gain + offset), 0, 65535).astype(np.uint16)
            cal = (gain * (raw.astype(np.float32) - offset)).clip(min=0)
            total = cal.sum(axis=1, dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                cop = (cal.astype(np.float64) @ positions) / total[:, None]
            truth[side] = {"time": t, "total": total, "cop": cop, "forces": cal}
            g = f.create_group(f"{ff.DEVICES}/insole_{side}")
            g.attrs.update({"kind": "insole", "side": side, "protocol": "binary", "rate_hz": rate_hz,
                            "info_json": json.dumps({"serial": f"SN-{side}"}), "serial": f"SN-{side}",
                            "clock_hz": 1e6, "shape": np.array([n_sensels])})
            g.create_dataset(ff.RAW, data=raw, chunks=(512, n_sensels), maxshape=(None, n_sensels))
            g.create_dataset(ff.SEQ, data=seq)
            g.create_dataset(ff.DEVICE_TIME, data=np.round(t * 1e6).astype(np.uint64))
            g.create_dataset(ff.TIME, data=t)
            g.create_dataset(ff.HOST_TIME, data=t + 0.002)
            gaps = (np.array([[t[at - 1], float(at), float(count)]]) if gap is not None and side == "left"
                    else np.empty((0, 3)))
            g.create_dataset(ff.GAPS, data=gaps, maxshape=(None, 3))
            c = g.create_group(ff.CALIBRATION)
            c.create_dataset("gain", data=gain)
            c.create_dataset("offset", data=offset)
            c.attrs["unit"] = "N"
            lay = g.create_group(ff.LAYOUT)
            lay.create_dataset("positions_mm", data=positions.astype(np.float32))
            lay.create_dataset("areas_mm2", data=np.asarray(layout.areas_mm2, dtype=np.float32))
            lay.attrs["foot_length_mm"] = float(layout.foot_length_mm)
        m = f.create_group(ff.MARKERS)
        m.create_dataset("time", data=np.array([x[0] for x in markers], dtype=np.float64))
        m.create_dataset("label", data=np.array([x[1].encode() for x in markers], dtype=f"S{ff.MARKER_LABEL_BYTES}"))
        e = f.create_group(ff.EVENTS)
        e.create_dataset("time", data=np.zeros(0))
        e.create_dataset("source", data=np.zeros(0, dtype=f"S{ff.EVENT_SOURCE_BYTES}"))
        e.create_dataset("level", data=np.zeros(0, dtype=np.uint8))
        e.create_dataset("text", data=np.zeros(0, dtype=f"S{ff.EVENT_TEXT_BYTES}"))
    return truth
