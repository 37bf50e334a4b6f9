"""Export a session file to CSV (one file per device, a README of units) and to C3D (the biomechanics interchange).

Both read the session through :func:`treadlab.analysis.read_session`, a block at a time, so memory stays bounded
whatever the length of the capture.

CSV: ``<out>/<device>.csv`` with ``time_s`` (session clock) then the calibrated values, one column a sensel
(insoles: force per sensel in N; mats: pressure per sensel in kPa, row-major ``rRRcCC``; external LSL streams:
one column a channel, named by its label, in its own unit), ``markers.csv`` and ``README.txt`` naming every
column's unit and the session metadata.

C3D: analog channels on one uniform time base (the fastest insole's rate, from the first insole sample):
``<Side>Fz`` total force (N), ``<Side>COPx`` and ``<Side>COPy`` centre of pressure (mm, foot frame: x
medio-lateral, y heel to toe; 0 while the foot is unloaded) for each insole, and ``MatFz`` (N) when there is a mat;
other kinds add theirs (:func:`register_c3d_channels`: the imus' ``<device>_ax``... in g, deg/s, uT). A session
without insoles takes its time base from those kinds' devices.
Markers become events (context ``General``), sequence gaps ``gap`` events, and the analysed steps ``Foot Strike`` /
``Foot Off`` events (context ``Left``/``Right``). No 3-D points. The session time of
frame 0 is the parameter ``TREADLAB:TIME0_S``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from treadlab.analysis.cop import cop_from_sums, layout_bounds_mm, min_load
from treadlab.analysis.session import Session, read_session
from treadlab.errors import AnalysisError, LabError, SessionFileError, StorageError

__all__ = ["C3D_CHANNELS", "C3D_PARAMETERS", "C3dAnalogs", "C3dGrid", "c3d_analogs", "export_c3d", "export_csv",
           "register_c3d_channels", "register_c3d_parameters"]

FORMATS = ("csv", "c3d")
_SIDE_PREFIX = {"left": "L", "right": "R"}


def _session(source: str | Path | Session) -> tuple[Session, bool]:
    if isinstance(source, Session):
        return source, False
    try:
        return read_session(source), True
    except RuntimeError as exc:  # h5py reports some damaged superblocks as RuntimeError, not OSError
        raise SessionFileError(f"{source} is damaged and cannot be opened ({exc})") from None


def _prepare_out(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise StorageError(f"{path} exists; remove it or export with --force")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create folder {path.parent}: {exc.strerror or exc}") from None


def _columns(dev) -> list[str]:
    """CSV column names of a device's channels (:meth:`~treadlab.analysis.session.DeviceData.channel_labels`),
    made safe and unique.
    """
    seen: dict[str, int] = {}
    cols = []
    for label in dev.channel_labels():
        clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(label)) or "ch"
        seen[clean] = seen.get(clean, 0) + 1
        cols.append(clean if seen[clean] == 1 else f"{clean}_{seen[clean]}")
    return cols


def _write_device_csv(dev, path: Path) -> None:
    cols = _columns(dev)
    header = True
    with open(path, "w", newline="") as fh:
        for a, block in dev.iter_calibrated():  # one iteration per ~32 MiB block
            df = pd.DataFrame(block, columns=cols, copy=False)
            df.insert(0, "time_s", dev.read_time(a, a + len(block)))
            df.to_csv(fh, index=False, header=header, lineterminator="\n")
            header = False


def _readme(session: Session, written: dict[str, tuple[Path, object, int]]) -> str:
    lines = [
        f"treadlab CSV export of {session.path.name}",
        "",
        "time_s: seconds on the session clock (host CLOCK_MONOTONIC, zero at session start); all files share it.",
        "",
        "Files:",
    ]
    for path, dev, n_rows in written.values():
        lines.append(f"  {path.name}: {dev.csv_source_text()}, {n_rows} rows; time_s, then "
                     f"{dev.csv_columns_text(_columns(dev))}")
    lines.append("  markers.csv: time_s, label (operator markers)")
    lines += ["", "Session:"]
    for key in ("participant", "condition", "shoe", "start_utc", "notes"):
        lines.append(f"  {key}: {getattr(session, key, '')}")
    lines.append(f"  body_mass_kg: {session.body_mass_kg}")
    lines.append(f"  treadmill_speed_mps: {session.treadmill_speed_mps}")
    return "\n".join(lines) + "\n"


def export_csv(source: str | Path | Session, out_dir: str | Path | None = None, *, force: bool = False) -> list[Path]:
    """Write one CSV per device, ``markers.csv`` and ``README.txt``.

    Parameters
    ----------
    source : str, Path or Session
        A session file or an open session.
    out_dir : str or Path or None
        Target folder; default ``<file stem>_csv`` beside the session file.
    force : bool
        Overwrite existing files.

    Returns
    -------
    list of Path
        The files written, README last.

    Raises
    ------
    SessionFileError
        The session cannot be read.
    StorageError
        A target exists (without ``force``) or cannot be written.
    """
    session, owned = _session(source)
    try:
        out = Path(out_dir) if out_dir is not None else session.path.with_name(session.path.stem + "_csv")
        written: dict[str, tuple[Path, object, int]] = {}
        sources = {**session.devices, **session.streams}
        targets = [out / f"{name}.csv" for name in sources] + [out / "markers.csv", out / "README.txt"]
        for p in targets:
            _prepare_out(p, force)
        try:
            for name, dev in sources.items():
                path = out / f"{name}.csv"
                _write_device_csv(dev, path)
                written[name] = (path, dev, dev.n_samples)
            markers = session.markers.rename(columns={"time": "time_s"})[["time_s", "label"]]
            markers.to_csv(out / "markers.csv", index=False, lineterminator="\n")
            (out / "README.txt").write_text(_readme(session, written))
        except OSError as exc:
            raise StorageError(f"cannot write the CSV export in {out}: {exc.strerror or exc}") from None
        return [p for p, _, _ in written.values()] + [out / "markers.csv", out / "README.txt"]
    finally:
        if owned:
            session.close()


class C3dAnalogs:
    """Analog channels of a session on one uniform time base (what :func:`export_c3d` writes).

    Attributes
    ----------
    time0_s : float
        Session time of frame 0.
    rate_hz : float
        Frame rate.
    labels, units : list of str
        One per channel.
    data : ndarray, shape (channels, frames), float64
    events : DataFrame
        Columns ``time_s`` (session clock), ``label``, ``context``.
    """

    def __init__(self, time0_s: float, rate_hz: float, labels: list[str], units: list[str], data: np.ndarray,
                 events: pd.DataFrame):
        self.time0_s, self.rate_hz, self.labels, self.units = time0_s, rate_hz, labels, units
        self.data, self.events = data, events

    @property
    def time_s(self) -> np.ndarray:
        """Session time of every frame."""
        return self.time0_s + np.arange(self.data.shape[1]) / self.rate_hz


def _on_grid(blocks, grid: np.ndarray, width: int) -> np.ndarray:
    """``np.interp`` of every column of ``(times, values)`` blocks (in time order) onto ``grid``, block by block.

    The same numbers as one ``np.interp`` over the whole signal (each block starts with the previous block's
    last sample, and the ends are held), in memory bounded by the block and the output. Shape (width, len(grid)).
    """
    out = np.zeros((width, len(grid)))
    prev_t = prev_v = None
    first = last = None
    lo_first = hi_last = 0
    for t, v in blocks:  # one iteration per block of the reader (~32 MiB of raw data)
        t = np.asarray(t, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64).reshape(len(t), width)
        if len(t) == 0:
            continue
        if prev_t is None:
            first, lo_first = v[0], int(np.searchsorted(grid, t[0], side="left"))
        else:
            t, v = np.concatenate([[prev_t], t]), np.vstack([prev_v, v])
        lo, hi = np.searchsorted(grid, t[0], side="left"), np.searchsorted(grid, t[-1], side="right")
        for j in range(width):  # a few channels
            out[j, lo:hi] = np.interp(grid[lo:hi], t, v[:, j])
        prev_t, prev_v = t[-1], v[-1]
        last, hi_last = v[-1], int(hi)
    if first is not None:
        out[:, :lo_first] = first[:, None]
        out[:, hi_last:] = last[:, None]
    return out


def _resampled(blocks, t0: float, rate_hz: float, n_frames: int, src_rate_hz: float, width: int) -> np.ndarray:
    """Channels of ``(times, values)`` blocks on the grid ``t0 + k / rate_hz`` (``n_frames`` frames).

    At or above the source's rate: linear interpolation. Below it (a lowered ``rate_hz``): interpolation onto
    a grid at about the source's rate, then :func:`scipy.signal.resample_poly` (anti-aliasing FIR) down to
    ``rate_hz``, so that the steps' force peaks do not alias.
    """
    if not (np.isfinite(src_rate_hz) and rate_hz < src_rate_hz * (1.0 - 1e-9)):
        return _on_grid(blocks, t0 + np.arange(n_frames) / rate_hz, width)
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(rate_hz / src_rate_hz).limit_denominator(1000)
    up, down = ratio.numerator, ratio.denominator
    fine_hz = rate_hz * down / up
    n_fine = int(np.ceil(n_frames * down / up)) + 1
    fine = _on_grid(blocks, t0 + np.arange(n_fine) / fine_hz, width)
    out = resample_poly(fine, up, down, axis=1, padtype="edge")[:, :n_frames]
    if out.shape[1] < n_frames:
        out = np.pad(out, ((0, 0), (0, n_frames - out.shape[1])), mode="edge")
    return out


class C3dGrid:
    """The C3D time base: ``n_frames`` frames at ``rate_hz`` from session time ``t0_s``."""

    def __init__(self, t0_s: float, rate_hz: float, n_frames: int):
        self.t0_s, self.rate_hz, self.n_frames = float(t0_s), float(rate_hz), int(n_frames)

    def resample(self, blocks, src_rate_hz: float, width: int) -> np.ndarray:
        """``(times, values)`` blocks on this grid (:func:`_resampled`), shape (width, n_frames)."""
        return _resampled(blocks, self.t0_s, self.rate_hz, self.n_frames, src_rate_hz, width)


def _insole_c3d(d, index: int, grid: C3dGrid) -> list[tuple[str, str, np.ndarray]]:
    """``<Side>Fz``, ``<Side>COPx``, ``<Side>COPy``: the total force and moments on the grid, then the COP from
    them (the one COP rule; 0 where undefined).
    """
    prefix = _SIDE_PREFIX.get(d.side, d.name)
    sums = grid.resample(((t, x[:, :3]) for _, t, x in d.iter_derived()), d.rate_hz, 3)
    cop = cop_from_sums(sums.T, min_load(d.body_weight_n, sums[0]), layout_bounds_mm(d.positions_mm),
                        dtype=np.float64)
    cop = np.nan_to_num(cop, nan=0.0)
    unit = "N" if d.calibrated else "counts"
    return [(f"{prefix}Fz", unit, sums[0]), (f"{prefix}COPx", "mm", cop[:, 0]), (f"{prefix}COPy", "mm", cop[:, 1])]


def _mat_c3d(mat, index: int, grid: C3dGrid) -> list[tuple[str, str, np.ndarray]]:
    """``MatFz`` (``Mat2Fz``...): the mat's total force."""
    def totals():
        for a, fr in mat.iter_calibrated():  # one iteration per ~32 MiB block of frames
            yield mat.read_time(a, a + len(fr)), fr.sum(axis=1, dtype=np.float64) * mat.force_factor

    return [("MatFz" if index == 0 else f"Mat{index + 1}Fz", "N" if mat.unit == "kPa" else "counts",
             grid.resample(totals(), mat.rate_hz, 1)[0])]


#: The kind whose devices set the C3D time base (and whose gaps become events).
C3D_TIME_BASE_KIND = "insole"
#: C3D analog channels per device kind: ``channels(device, index_within_kind, grid) -> [(label, unit, row)]``.
#: A new kind adds its function here from its own module (see :func:`register_c3d_channels`).
C3D_CHANNELS: dict = {"insole": _insole_c3d, "mat": _mat_c3d}


def register_c3d_channels(kind: str, channels) -> None:
    """Export devices of ``kind`` to C3D with ``channels(device, index, grid)`` (see :data:`C3D_CHANNELS`)."""
    C3D_CHANNELS[kind] = channels


#: Per kind, ``parameters(session, analogs, c3d)`` adding the kind's C3D parameters (e.g. FORCE_PLATFORM).
C3D_PARAMETERS: dict = {}


def register_c3d_parameters(kind: str, parameters) -> None:
    """Add C3D parameters for devices of ``kind`` with ``parameters(session, analogs, c3d)``."""
    C3D_PARAMETERS[kind] = parameters


def _step_events(session: Session) -> pd.DataFrame:
    """Initial contacts and toe-offs of both insoles as C3D events ("Foot Strike", "Foot Off"), as analysed by
    :func:`treadlab.analysis.analyze` with its defaults; empty when the session cannot be analysed.
    """
    from treadlab.analysis.api import analyze, default_source

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scale warnings belong to `lab analyze`, not to an export
            with analyze(session, source=default_source(session)) as ga:
                steps = ga.all_steps
    except LabError:
        return pd.DataFrame({"time_s": [], "label": [], "context": []})
    context = steps["foot"].str.capitalize()
    return pd.concat([pd.DataFrame({"time_s": steps["ic_s"], "label": "Foot Strike", "context": context}),
                      pd.DataFrame({"time_s": steps["to_s"], "label": "Foot Off", "context": context})],
                     ignore_index=True)


def c3d_analogs(session: Session, rate_hz: float | None = None, *, step_events: bool = True) -> C3dAnalogs:
    """Total force and COP of each insole (and the mat's total force) resampled onto one time base.

    Parameters
    ----------
    session : Session
        An open session with at least one insole.
    rate_hz : float or None
        Frame rate; default the fastest insole's nominal rate (without insoles: the fastest device's of the
        kinds in :data:`C3D_CHANNELS`, e.g. the imus).
    step_events : bool
        Add each step's initial contact and toe-off ("Foot Strike", "Foot Off", context Left/Right) from the
        analysis; skipped silently when the session has no analysable steps.

    Returns
    -------
    C3dAnalogs

    Raises
    ------
    AnalysisError
        The session has no insole with samples.
    """
    insoles = [d for d in session.of_kind(C3D_TIME_BASE_KIND) if d.n_samples > 1]
    if not insoles:  # no insole (an imu-only session): the devices of the other exported kinds set the time base
        insoles = [d for kind in C3D_CHANNELS for d in session.of_kind(kind) if d.n_samples > 1]
    if not insoles:
        raise AnalysisError(f"{session.path.name} has no insole samples (nor of another kind C3D exports) "
                            "to export to C3D")
    rate = float(rate_hz or max(d.rate_hz for d in insoles if np.isfinite(d.rate_hz)))
    ends = [d.times_at(np.array([0, d.n_samples - 1])) for d in insoles]
    t0 = min(float(e[0]) for e in ends)
    t1 = max(float(e[1]) for e in ends)
    grid = C3dGrid(t0, rate, int(np.floor((t1 - t0) * rate)) + 1)
    labels, units, rows = [], [], []
    events = [session.markers.rename(columns={"time": "time_s"})[["time_s", "label"]].assign(context="General")]
    for kind, channels in C3D_CHANNELS.items():  # the kinds that export C3D channels, in registration order
        devs = sorted((d for d in session.of_kind(kind) if d.n_samples > 1), key=lambda d: (d.side != "left", d.name))
        for i, d in enumerate(devs):
            for label, unit, row in channels(d, i, grid):
                labels.append(label)
                units.append(unit)
                rows.append(row)
            if kind == C3D_TIME_BASE_KIND and len(d.gaps):
                events.append(pd.DataFrame({"time_s": d.gaps[:, 0], "label": "gap",
                                            "context": d.side.capitalize() or "General"}))
    if step_events:
        events.append(_step_events(session))
    ev = pd.concat([e for e in events if len(e)] or events[:1], ignore_index=True)
    ev = ev.sort_values("time_s", kind="stable").reset_index(drop=True)
    return C3dAnalogs(t0, rate, labels, units, np.vstack(rows), ev)


def export_c3d(source: str | Path | Session, out: str | Path | None = None, *, rate_hz: float | None = None,
               force: bool = False, step_events: bool = True) -> Path:
    """Write the insoles' total force and COP as C3D analog channels, markers as events.

    Parameters
    ----------
    source : str, Path or Session
        A session file or an open session.
    out : str or Path or None
        Target file, or a folder to write ``<stem>.c3d`` into; default ``<stem>.c3d`` beside the session.
    rate_hz : float or None
        Analog rate; default the fastest insole's.
    force : bool
        Overwrite an existing file.
    step_events : bool
        Also write the analysed foot strikes and toe-offs as events.

    Returns
    -------
    Path
        The C3D file.

    Raises
    ------
    AnalysisError
        No insole data.
    StorageError
        The target exists (without ``force``) or cannot be written.
    """
    import ezc3d

    session, owned = _session(source)
    try:
        if out is None:
            path = session.path.with_suffix(".c3d")
        else:
            path = Path(out)
            if path.is_dir() or path.suffix.lower() != ".c3d":
                path = path / (session.path.stem + ".c3d")
        _prepare_out(path, force)
        an = c3d_analogs(session, rate_hz, step_events=step_events)
        c3d = ezc3d.c3d()
        c3d["parameters"]["POINT"]["RATE"]["value"] = [an.rate_hz]
        c3d["parameters"]["POINT"]["LABELS"]["value"] = []
        c3d["parameters"]["ANALOG"]["RATE"]["value"] = [an.rate_hz]
        c3d["parameters"]["ANALOG"]["LABELS"]["value"] = an.labels
        c3d["parameters"]["ANALOG"]["UNITS"]["value"] = an.units
        c3d["data"]["points"] = np.zeros((4, 0, an.data.shape[1]))
        c3d["data"]["analogs"] = an.data[None, :, :]
        ev = an.events
        if len(ev):
            rel_s = ev["time_s"].to_numpy(dtype=float) - an.time0_s
            minutes = np.floor(rel_s / 60.0)
            c3d.add_parameter("EVENT", "USED", len(ev))
            c3d.add_parameter("EVENT", "TIMES", np.vstack([minutes, rel_s - 60.0 * minutes]))
            c3d.add_parameter("EVENT", "LABELS", ev["label"].astype(str).tolist())
            c3d.add_parameter("EVENT", "CONTEXTS", ev["context"].astype(str).tolist())
            c3d.add_parameter("EVENT", "DESCRIPTIONS", [""] * len(ev))
        for parameters in C3D_PARAMETERS.values():  # the kinds with parameters of their own (force platforms)
            parameters(session, an, c3d)
        c3d.add_parameter("TREADLAB", "TIME0_S", [an.time0_s])
        c3d.add_parameter("TREADLAB", "SOURCE", [session.path.name])
        if session.participant:
            c3d.add_parameter("SUBJECTS", "NAMES", [session.participant])
        c3d.add_parameter("MANUFACTURER", "COMPANY", ["treadlab"])
        try:
            c3d.write(str(path))
        except (RuntimeError, OSError) as exc:
            raise StorageError(f"cannot write {path}: {exc}") from None
        return path
    finally:
        if owned:
            session.close()
