"""Test helper: write a valid session file v1 straight from the gait model (no serial, no recorder).

The layout is exactly that of ``docs/file-format.md`` (root attributes, ``/devices/<name>`` with ``raw``, ``seq``,
``device_time``, ``time``, ``host_time``, ``gaps``, ``calibration``, ``layout``, ``clock``; ``/markers``,
``/events``), written in blocks so long sessions stay in bounded memory. Raw values are ADC counts:
``raw = round(value / gain + offset)``, so the file's calibration gives back the model's forces (N) or
pressures (kPa) to within one count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from treadlab import fileformat as ff
from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.gait import GaitModel, RunnerParams


@dataclass
class InsoleSpec:
    """One simulated insole of the file."""

    layout: str = "insole16"
    rate_hz: float = 500.0
    dtype: str = "u2"
    gain: float = 0.05  # N per count
    offset: float = 100.0  # counts at zero force
    unit: str = "N"
    drop: list[tuple[float, float]] = field(default_factory=list)  # (start_s, stop_s) windows of lost samples


@dataclass
class MatSpec:
    """The simulated treadmill mat of the file.

    ``belt_axis`` says which index runs along the belt: ``"rows"`` (default: ``rows`` cells along the belt,
    ``cols`` across) or ``"cols"`` (as the default simulated rig's mat: ``cols`` cells along the belt, e.g.
    ``MatSpec(rows=48, cols=176, belt_axis="cols")``).
    """

    rows: int = 176
    cols: int = 48
    pitch_mm: float = 8.47
    rate_hz: float = 120.0
    gain: float = 2.0  # kPa per count
    offset: float = 0.0
    dtype: str = "u1"
    unit: str = "kPa"
    belt_axis: str = "rows"


def _create(group: h5py.Group, name: str, shape_tail: tuple, dtype, chunk_rows: int, compress: bool):
    kw = {"compression": "gzip", "compression_opts": 1, "shuffle": True} if compress else {}
    return group.create_dataset(name, shape=(0, *shape_tail), maxshape=(None, *shape_tail), dtype=dtype,
                                chunks=(chunk_rows, *shape_tail), **kw)


def _append(ds: h5py.Dataset, values: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    ds[n:] = values


def _device(f: h5py.File, name: str, *, kind: str, side: str, rate_hz: float, shape_tail: tuple, dtype: str,
            gain: np.ndarray, offset: np.ndarray, unit: str, info: dict, compress: bool) -> h5py.Group:
    g = f.require_group(ff.DEVICES).create_group(name)
    g.attrs.update({"kind": kind, "side": side, "protocol": "binary", "rate_hz": float(rate_hz),
                    "info_json": json.dumps(info), "serial": info.get("serial", ""), "clock_hz": 1e6,
                    "shape": np.array(shape_tail)})
    values = int(np.prod(shape_tail))
    chunk_rows = max(16, min(4096, (256 * 1024) // max(1, values * np.dtype(dtype).itemsize)))
    _create(g, ff.RAW, shape_tail, dtype, chunk_rows, compress)
    for nm, dt in ((ff.SEQ, "u4"), (ff.DEVICE_TIME, "u8"), (ff.TIME, "f8"), (ff.HOST_TIME, "f8")):
        _create(g, nm, (), dt, 4096, compress)
    cal = g.create_group(ff.CALIBRATION)
    cal.create_dataset("gain", data=np.broadcast_to(gain, (values,)).astype("f4"))
    cal.create_dataset("offset", data=np.broadcast_to(offset, (values,)).astype("f4"))
    cal.attrs["unit"] = unit
    return g


def write_session(path: str | Path, runner: RunnerParams, *, duration_s: float = 10.0, start_s: float = 0.5,
                  insoles: InsoleSpec | dict[str, InsoleSpec] | None | str = "default", mat: MatSpec | None = None,
                  markers: list[tuple[float, str]] = (), body_mass_kg: float | None = None,
                  block_s: float = 5.0, compress: bool = True) -> GaitModel:
    """Write a session file of ``runner`` and return the :class:`GaitModel` (its ``steps`` are the truth).

    Parameters
    ----------
    path : str or Path
    runner : RunnerParams
    duration_s : float
        Recorded time; samples run from ``start_s`` to ``start_s + duration_s`` on the session clock.
    insoles : InsoleSpec, dict of side to InsoleSpec, or None
    mat : MatSpec or None
    markers : list of (time_s, label)
    body_mass_kg : float, optional
        Stored body mass (default: the runner's).
    """
    path = Path(path)
    model = GaitModel(runner, duration_s=duration_s + 2.0, start_s=start_s - 1.0)
    if isinstance(insoles, str):
        insoles = InsoleSpec()
    if isinstance(insoles, InsoleSpec):
        insoles = {"left": insoles, "right": insoles}
    insoles = insoles or {}
    with h5py.File(path, "w", libver=ff.LIBVER) as f:
        f.attrs.update({
            "format": ff.FORMAT, "format_version": ff.FORMAT_VERSION, "created": "2026-01-01T00:00:00Z",
            "software_version": "test", "start_monotonic_ns": np.int64(10**12), "start_utc": "2026-01-01T00:00:00Z",
            "participant": "sim", "condition": "test", "shoe": "", "notes": "",
            "body_mass_kg": float(runner.body_mass_kg if body_mass_kg is None else body_mass_kg),
            "treadmill_speed_mps": float(runner.speed_mps), "rig": "", "state": ff.STATE_COMPLETE,
        })
        f.require_group(ff.DEVICES)
        devs = []
        for side, spec in insoles.items():
            lay = load_layout(spec.layout)
            g = _device(f, f"insole_{side}", kind="insole", side=side, rate_hz=spec.rate_hz,
                        shape_tail=(lay.n_sensels,), dtype=spec.dtype, gain=np.float32(spec.gain),
                        offset=np.float32(spec.offset), unit=spec.unit,
                        info={"kind": "insole", "side": side, "sensels": lay.n_sensels, "serial": f"T-{side}"},
                        compress=compress)
            lg = g.create_group(ff.LAYOUT)
            lg.create_dataset("positions_mm", data=lay.positions_mm.astype("f4"))
            lg.create_dataset("areas_mm2", data=lay.areas_mm2.astype("f4"))
            lg.attrs["foot_length_mm"] = float(lay.foot_length_mm)
            devs.append((g, spec, lambda t, side=side, lay=lay: model.insole_forces(side, t, lay)))
        if mat is not None:
            g = _device(f, "mat", kind="mat", side="", rate_hz=mat.rate_hz, shape_tail=(mat.rows, mat.cols),
                        dtype=mat.dtype, gain=np.float32(mat.gain), offset=np.float32(mat.offset), unit=mat.unit,
                        info={"kind": "mat", "rows": mat.rows, "cols": mat.cols, "serial": "T-mat"},
                        compress=compress)
            lg = g.create_group(ff.LAYOUT)
            rr, cc = np.meshgrid(np.arange(mat.rows), np.arange(mat.cols), indexing="ij")
            lg.create_dataset("positions_mm", data=np.column_stack([cc.ravel(), rr.ravel()]) * mat.pitch_mm)
            lg.create_dataset("areas_mm2", data=np.full(mat.rows * mat.cols, mat.pitch_mm**2, "f4"))
            lg.attrs.update({"pitch_mm": mat.pitch_mm, "rows": mat.rows, "cols": mat.cols})
            devs.append((g, mat, lambda t: model.mat_frames(t, mat.rows, mat.cols, mat.pitch_mm, mat.belt_axis)))
        for g, spec, values_at in devs:
            n_total = int(duration_s * spec.rate_hz)
            block = max(1, int(block_s * spec.rate_hz))
            gaps = []
            dtype_max = np.iinfo(np.dtype(spec.dtype)).max
            for a in range(0, n_total, block):  # one iteration per block of samples
                idx = np.arange(a, min(a + block, n_total))
                t = start_s + idx / spec.rate_hz
                keep = np.ones(len(idx), dtype=bool)
                for lo, hi in getattr(spec, "drop", []):
                    keep &= ~((t >= lo) & (t < hi))
                idx, t = idx[keep], t[keep]
                if len(idx) == 0:
                    continue
                v = values_at(t)
                raw = np.clip(np.round(v / spec.gain + spec.offset), 0, dtype_max).astype(spec.dtype)
                _append(g[ff.RAW], raw)
                _append(g[ff.SEQ], idx.astype("u4"))
                _append(g[ff.DEVICE_TIME], np.round(t * 1e6).astype("u8"))
                _append(g[ff.TIME], t)
                _append(g[ff.HOST_TIME], t + 0.002)
            seq = g[ff.SEQ][()].astype(np.int64)
            tt = g[ff.TIME][()]
            jump = np.flatnonzero(np.diff(seq) > 1)
            gaps = np.column_stack([tt[jump], seq[jump] + 1, seq[jump + 1] - seq[jump] - 1]) if len(jump) else \
                np.empty((0, 3))
            g.create_dataset(ff.GAPS, data=np.asarray(gaps, dtype="f8").reshape(-1, 3), maxshape=(None, 3))
        m = f.create_group(ff.MARKERS)
        m.create_dataset("time", data=np.array([x[0] for x in markers], dtype="f8"))
        m.create_dataset("label", data=np.array([x[1].encode() for x in markers], dtype=f"S{ff.MARKER_LABEL_BYTES}"))
        e = f.create_group(ff.EVENTS)
        e.create_dataset("time", data=np.array([0.0]))
        e.create_dataset("source", data=np.array([b"session"], dtype=f"S{ff.EVENT_SOURCE_BYTES}"))
        e.create_dataset("level", data=np.array([20], dtype="u1"))
        e.create_dataset("text", data=np.array([b"start"], dtype=f"S{ff.EVENT_TEXT_BYTES}"))
    return model


def truth_in(model: GaitModel, start_s: float, stop_s: float, rate_hz: float | None = None):
    """Ground-truth steps whose whole stance lies inside ``[start_s, stop_s]``.

    With ``rate_hz``, the truth a device sampled at that rate should report (``GaitModel.steps_for_rate``: VILR
    over the sample interval when it is longer than 1 ms).
    """
    s = model.steps if rate_hz is None else model.steps_for_rate(rate_hz)
    return s[(s["ic_s"] >= start_s) & (s["to_s"] <= stop_s)].reset_index(drop=True)
