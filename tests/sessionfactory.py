"""Test helper: write a valid session file v1 straight from the gait model (no serial, no recorder threads).

The file is laid out and filled by the recorder's own writer (:mod:`treadlab.acquisition.writer`), so the test
files cannot drift from what a recording writes; samples are generated and queued in blocks so long sessions stay
in bounded memory. Raw values are ADC counts:
``raw = round(value / gain + offset)``, so the file's calibration gives back the model's forces (N) or
pressures (kPa) to within one count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np

from treadlab import fileformat as ff
from treadlab.acquisition.writer import SessionWriter, create_session_file
from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.gait import GaitModel, RunnerParams
from treadlab.kinds import DeviceDescription


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


def _setup(name: str, *, kind: str, side: str, rate_hz: float, shape: tuple, dtype: str, gain: float,
           offset: float, unit: str, info: dict, layout: dict | None = None) -> DeviceDescription:
    n = int(np.prod(shape))
    cal = SimpleNamespace(unit=unit, gain=np.full(n, gain, np.float32), offset=np.full(n, offset, np.float32))
    return DeviceDescription(name=name, kind=kind, side=side, protocol="binary", rate_hz=float(rate_hz), info=info,
                       serial=str(info.get("serial", "")), clock_hz=1e6, shape=tuple(shape), dtype=np.dtype(dtype),
                       calibration=cal, layout=layout)


def write_session(path: str | Path, runner: RunnerParams, *, duration_s: float = 10.0, start_s: float = 0.5,
                  insoles: InsoleSpec | dict[str, InsoleSpec] | None | str = "default", mat: MatSpec | None = None,
                  markers: list[tuple[float, str]] = (), body_mass_kg: float | None = None,
                  block_s: float = 5.0) -> GaitModel:
    """Write a session file of ``runner`` through the recorder's own writer and return the :class:`GaitModel`.

    The file is made by :func:`treadlab.acquisition.writer.create_session_file` and filled by a
    :class:`~treadlab.acquisition.writer.SessionWriter` (its public ``put_*`` methods), like a recording; then it
    is marked complete without the clock refit of a real stop (the times are the model's own, so that the
    model's ``steps`` are the truth to the microsecond).

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
    block_s : float
        Seconds of samples generated and queued at a time (bounded memory).
    """
    path = Path(path)
    model = GaitModel(runner, duration_s=duration_s + 2.0, start_s=start_s - 1.0)
    if isinstance(insoles, str):
        insoles = InsoleSpec()
    if isinstance(insoles, InsoleSpec):
        insoles = {"left": insoles, "right": insoles}
    insoles = insoles or {}
    root = {
        ff.A_FORMAT: ff.FORMAT, ff.A_FORMAT_VERSION: ff.FORMAT_VERSION, "created": "2026-01-01T00:00:00Z",
        "software_version": "test", "start_monotonic_ns": np.int64(10**12), "start_utc": "2026-01-01T00:00:00Z",
        "participant": "sim", "condition": "test", "shoe": "", "notes": "",
        ff.A_BODY_MASS_KG: float(runner.body_mass_kg if body_mass_kg is None else body_mass_kg),
        ff.A_TREADMILL_SPEED_MPS: float(runner.speed_mps), "rig": "",
    }
    setups, devs = [], []
    for side, spec in insoles.items():
        lay = load_layout(spec.layout)
        layout = {"positions_mm": lay.positions_mm, "areas_mm2": lay.areas_mm2,
                  "foot_length_mm": float(lay.foot_length_mm)}
        setups.append(_setup(f"insole_{side}", kind="insole", side=side, rate_hz=spec.rate_hz,
                             shape=(lay.n_sensels,), dtype=spec.dtype, gain=spec.gain, offset=spec.offset,
                             unit=spec.unit, layout=layout,
                             info={"kind": "insole", "side": side, "sensels": lay.n_sensels, "serial": f"T-{side}"}))
        devs.append((setups[-1].name, spec, lambda t, side=side, lay=lay: model.insole_forces(side, t, lay)))
    if mat is not None:
        setups.append(_setup("mat", kind="mat", side="", rate_hz=mat.rate_hz, shape=(mat.rows, mat.cols),
                             dtype=mat.dtype, gain=mat.gain, offset=mat.offset, unit=mat.unit,
                             info={"kind": "mat", "rows": mat.rows, "cols": mat.cols, "serial": "T-mat",
                                   "pitch_mm": [mat.pitch_mm, mat.pitch_mm]}))
        devs.append(("mat", mat, lambda t: model.mat_frames(t, mat.rows, mat.cols, mat.pitch_mm, mat.belt_axis)))
    writer = SessionWriter(create_session_file(str(path), root, setups), max_items=1 << 20, max_bytes=1 << 40)
    writer.start()
    try:
        for name, spec, values_at in devs:
            n_total = int(duration_s * spec.rate_hz)
            block = max(1, int(block_s * spec.rate_hz))
            dtype_max = np.iinfo(np.dtype(spec.dtype)).max
            last_seq = None
            for a in range(0, n_total, block):  # one iteration per block of samples
                idx = np.arange(a, min(a + block, n_total))
                t = start_s + idx / spec.rate_hz
                keep = np.ones(len(idx), dtype=bool)
                for lo, hi in getattr(spec, "drop", []):
                    keep &= ~((t >= lo) & (t < hi))
                idx, t = idx[keep], t[keep]
                if len(idx) == 0:
                    continue
                raw = np.clip(np.round(values_at(t) / spec.gain + spec.offset), 0, dtype_max).astype(spec.dtype)
                seq = idx.astype("u4")
                # A sequence jump is a gap row: (time of the last sample before it, first missing seq, count).
                prev_t = np.r_[np.nan if last_seq is None else last_seq[1], t[:-1]]
                prev_s = np.r_[-1 if last_seq is None else last_seq[0], idx[:-1]].astype(np.int64)
                jump = np.flatnonzero((prev_s >= 0) & (idx - prev_s > 1))
                if len(jump):
                    writer.put_gaps(name, np.column_stack([prev_t[jump], prev_s[jump] + 1,
                                                           idx[jump] - prev_s[jump] - 1]))
                assert writer.put_samples(name, seq, np.round(t * 1e6).astype("u8"), t, t + 0.002, raw), \
                    "the session writer dropped a batch"
                last_seq = (int(idx[-1]), float(t[-1]))
        for t_s, label in markers:
            writer.put_marker(t_s, label)
        writer.put_event(0.0, "session", 20, "start")
    finally:
        writer.stop()
    if writer.error is not None:
        raise writer.error
    with h5py.File(path, "r+", libver=ff.LIBVER) as f:  # a complete file, without the refit of a real stop (see above)
        f.attrs[ff.A_STATE] = ff.STATE_COMPLETE
        f.attrs[ff.A_DURATION_S] = float(duration_s)
        f.attrs[ff.A_STOP_REASON] = "duration"
    return model


def truth_in(model: GaitModel, start_s: float, stop_s: float, rate_hz: float | None = None):
    """Ground-truth steps whose whole stance lies inside ``[start_s, stop_s]``.

    With ``rate_hz``, the truth a device sampled at that rate should report (``GaitModel.steps_for_rate``: VILR
    over the sample interval when it is longer than 1 ms).
    """
    s = model.steps if rate_hz is None else model.steps_for_rate(rate_hz)
    return s[(s["ic_s"] >= start_s) & (s["to_s"] <= stop_s)].reset_index(drop=True)


def add_device_group(path: str | Path, name: str, *, kind: str, raw: np.ndarray, time_s: np.ndarray,
                     gain: np.ndarray | float = 1.0, offset: np.ndarray | float = 0.0, unit: str = "",
                     info: dict | None = None, rate_hz: float | None = None) -> None:
    """Add a ``/devices/<name>`` group of any kind to a session file (raw counts ``raw``, shape (n, ...))."""
    raw = np.asarray(raw)
    t = np.asarray(time_s, dtype=np.float64)
    values = int(np.prod(raw.shape[1:]))
    rate = float(rate_hz if rate_hz is not None else 1.0 / np.median(np.diff(t)))
    info = {"kind": kind, **(info or {})}
    with h5py.File(path, "r+", libver=ff.LIBVER) as f:
        g = f.require_group(ff.DEVICES).create_group(name)
        g.attrs.update({ff.A_KIND: kind, ff.A_SIDE: "", ff.A_PROTOCOL: "binary", ff.A_RATE_HZ: rate,
                        ff.A_INFO_JSON: json.dumps(info), ff.A_SERIAL: str(info.get("serial", "")),
                        ff.A_CLOCK_HZ: 1e6, ff.A_SHAPE: np.array(raw.shape[1:])})
        g.create_dataset(ff.RAW, data=raw, maxshape=(None, *raw.shape[1:]))
        g.create_dataset(ff.SEQ, data=np.arange(len(t), dtype="u4"))
        g.create_dataset(ff.DEVICE_TIME, data=np.round(t * 1e6).astype("u8"))
        g.create_dataset(ff.TIME, data=t)
        g.create_dataset(ff.HOST_TIME, data=t + 0.001)
        g.create_dataset(ff.GAPS, data=np.empty((0, 3)), maxshape=(None, 3))
        cal = g.create_group(ff.CALIBRATION)
        cal.create_dataset(ff.CAL_GAIN, data=np.broadcast_to(np.float32(gain), (values,)).astype("f4"))
        cal.create_dataset(ff.CAL_OFFSET, data=np.broadcast_to(np.float32(offset), (values,)).astype("f4"))
        cal.attrs[ff.A_CAL_UNIT] = unit
