"""``lab import``: a C3D file or a text export of force plates -> a treadlab session file (``docs/import.md``).

The session file is laid out by the recorders' own writer (:func:`~treadlab.acquisition.writer.create_session_file`)
and finished by the same :func:`~treadlab.acquisition.session.finalize`, so ``lab info``, ``lab repair`` and the
readers take it like a recording. Devices are of kind ``"force"`` with ``protocol`` "import": one per plate, or one
split-belt device of two plates; values are stored calibrated (float32 N, N·mm, mm; gain 1, offset 0); time zero
is the first sample (``time = index / rate``). The file is written under a temporary name and takes its name only
when complete: a failed import leaves nothing at the output path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from scipy.signal import butter, sosfiltfilt

from treadlab import fileformat as ff
from treadlab.acquisition.importsource import BLOCK_ROWS, ForceSource, vertical_total
from treadlab.acquisition.recording import root_attributes
from treadlab.acquisition.session import finalize
from treadlab.acquisition.writer import append_events, append_markers, append_samples, create_session_file
from treadlab.errors import ImportFileError, ProtocolError, StorageError
from treadlab.kinds import Calibration, DeviceDescription, get_kind
from treadlab.kinds.force import AXES, allowed_channels, parse_axis, right_axis
from treadlab.vocabulary import G_MPS2

__all__ = ["ImportOptions", "ImportResult", "check_newtons", "find_axes", "find_forward", "find_vertical",
           "import_file", "sniff_format"]

FORMATS = ("c3d", "text")
TEXT_SUFFIXES = (".txt", ".tsv", ".csv", ".dat", ".tab")
#: The vertical axis must carry this many times the mean force of either other axis.
VERTICAL_DOMINANCE = 3.0
#: The forward axis: the COP's median stance velocity along it at least this many times that across it, and
#: at least MIN_BELT_MPS (a belt carries the stance foot backwards; on a treadmill this is the belt speed minus
#: the COP's roll along the foot).
FORWARD_DOMINANCE = 3.0
MIN_BELT_MPS = 0.2
MIN_STANCES = 4
#: 99th percentile of the vertical force of a person on the plate(s), N: from a small child standing to a heavy
#: runner's peak (about 3 body weights of 300 kg). Outside it the forces are not in newtons.
PLAUSIBLE_P99_N = (150.0, 9000.0)
INFO, WARNING = 20, 30


@dataclass
class ImportOptions:
    """What ``lab import`` was asked (None: found from the file)."""

    format: str | None = None
    rate_hz: float | None = None
    vertical: str | None = None
    forward: str | None = None
    body_mass_kg: float | None = None
    speed_mps: float | None = None
    foot_length_mm: float | None = None
    participant: str = ""
    condition: str = ""
    split_belts: bool = False


@dataclass
class ImportResult:
    """The file written and what the import found."""

    path: str
    devices: list
    axes: dict
    n_samples: int
    rate_hz: float
    mean_vertical_n: float
    notes: list = field(default_factory=list)


def sniff_format(path: str) -> str:
    """``"c3d"`` or ``"text"`` from the suffix, else from the first bytes (a C3D header's byte 2 is 0x50)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".c3d":
        return "c3d"
    if suffix in TEXT_SUFFIXES:
        return "text"
    with open(path, "rb") as fh:
        head = fh.read(512)
    if len(head) >= 2 and head[1] == 0x50:
        return "c3d"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        raise ImportFileError(f"{path}: neither a C3D file nor a text export (give --format c3d or text)") from None


# ---------------------------------------------------------------------------------------------- axes


def _contacts(fv: np.ndarray, rate_hz: float) -> np.ndarray:
    """Stance mask of the summed vertical force: its 20 Hz low-pass above half its 95th percentile."""
    if len(fv) < 16:
        return np.zeros(len(fv), bool)
    wn = min(20.0 / (rate_hz / 2.0), 0.9)
    f = sosfiltfilt(butter(2, wn, output="sos"), np.nan_to_num(fv))
    return f > 0.5 * np.percentile(f, 95)


def _vertical(plates, where: str) -> tuple[str, float] | None:
    means = np.array([np.nanmean(np.sum([p.first[f"F{a}"] for p in plates], axis=0, dtype=np.float64))
                      for a in AXES])
    order = np.argsort(-np.abs(means))
    top, second = means[order[0]], means[order[1]]
    if not np.isfinite(top) or abs(top) < VERTICAL_DOMINANCE * abs(second) or abs(top) < 1e-9:
        return None
    return AXES[order[0]], float(np.sign(top))


def _forward(src: ForceSource, vertical: tuple[str, float]) -> tuple[str, float] | None:
    """The horizontal axis the COP moves along in stance (carried back by the belt); forward is against it."""
    v, sv = vertical
    horizontal = [a for a in AXES if a != v]
    plates = [p for p in src.plates if all(f"COP{a}" in p.first for a in horizontal)]
    best = None
    for p in plates:  # one iteration per plate
        fv = sv * np.asarray(p.first[f"F{v}"], dtype=np.float64)
        stance = _contacts(fv, src.rate_hz)
        edges = np.flatnonzero(np.diff(stance.astype(np.int8))) + 1
        runs = np.split(np.arange(len(stance)), edges)
        runs = [r for r in runs if len(r) > 4 and stance[r[0]]]
        if len(runs) < MIN_STANCES:
            continue
        med = []
        for a in horizontal:
            cop = np.asarray(p.first[f"COP{a}"], dtype=np.float64) / 1000.0
            vel = np.gradient(cop) * src.rate_hz
            per = [np.nanmedian(vel[r[1:-1]]) for r in runs]  # one value per stance
            med.append(float(np.nanmedian(per)))
        if best is None or len(runs) > best[0]:
            best = (len(runs), med)
    if best is None:
        return None
    med = np.abs(best[1])
    i = int(np.argmax(med))
    if not np.isfinite(med[i]) or med[i] < MIN_BELT_MPS or med[i] < FORWARD_DOMINANCE * med[1 - i]:
        return None
    return horizontal[i], -float(np.sign(best[1][i]))


def _axis_text(letter: str, sign: float) -> str:
    return ("-" if sign < 0 else "") + letter


def find_vertical(src: ForceSource, given: str | None = None) -> tuple[tuple[str, float], list[str]]:
    """The vertical axis ``(letter, sign)``: as given, else the axis whose mean force (summed over the plates) is
    at least three times that of the others, signed so that the runner pushes down (the reaction points up).

    Raises
    ------
    ImportFileError
        Not an axis letter with a sign; a given vertical along which the force pulls; no axis carries a weight.
    """
    where = src.path
    if given:
        try:
            v = parse_axis(given, "--vertical")
        except ValueError as exc:
            raise ImportFileError(f"{where}: {exc}") from None
        mean = float(np.nanmean(vertical_total([p.first for p in src.plates], *v)))
        if mean < 0:
            flip = _axis_text(v[0], -v[1])
            hint = f"--vertical={flip}" if flip.startswith("-") else f"--vertical {flip}"
            raise ImportFileError(f"{where}: the force along {_axis_text(*v)} averages {mean:.0f} N: with --vertical "
                                  f"{given} the runner would pull on the plate ({hint}?)")
        return v, []
    v = _vertical(src.plates, where)
    if v is None:
        raise ImportFileError(f"{where}: neither the vertical axis nor the forward axis can be found from the data "
                              "(no axis carries a body weight); give --vertical and --forward, e.g. --vertical z "
                              "--forward x")
    return v, [f"vertical axis {_axis_text(*v)} (it carries the body weight)"]


def find_forward(src: ForceSource, vertical: tuple[str, float], given: str | None = None
                 ) -> tuple[tuple[str, float], list[str]]:
    """The forward axis ``(letter, sign)``: as given, else the horizontal axis along which the centre of pressure
    moves in stance, faster than across it (a belt carries the stance foot backwards), pointing the other way.

    Raises
    ------
    ImportFileError
        Not an axis letter with a sign; the same axis as the vertical; no such motion in the data.
    """
    where = src.path
    notes = []
    if given:
        try:
            f = parse_axis(given, "--forward")
        except ValueError as exc:
            raise ImportFileError(f"{where}: {exc}") from None
    else:
        f = _forward(src, vertical)
        if f is None:
            raise ImportFileError(f"{where}: the forward axis cannot be found from the data (no belt carries the "
                                  "centre of pressure backwards in stance, or the file has no centre of pressure); "
                                  "give --forward, e.g. --forward x")
        notes.append(f"forward axis {_axis_text(*f)} (the belt carries the centre of pressure along "
                     f"{_axis_text(f[0], -f[1])} in stance)")
    if f[0] == vertical[0]:
        raise ImportFileError(f"{where}: vertical and forward are the same axis ({f[0]})")
    return f, notes


def find_axes(src: ForceSource, vertical: str | None = None, forward: str | None = None) -> tuple[dict, list[str]]:
    """``{"vertical": ..., "forward": ...}`` from :func:`find_vertical` and :func:`find_forward`, and notes."""
    v, notes = find_vertical(src, vertical)
    f, more = find_forward(src, v, forward)
    return {"vertical": _axis_text(*v), "forward": _axis_text(*f)}, notes + more


def check_newtons(src: ForceSource, vertical: tuple[str, float]) -> tuple[float, str]:
    """Check the forces against a person's weight (the file's unit labels are not trusted); returns the
    99th percentile of the summed vertical force and a note.

    Raises
    ------
    ImportFileError
        The vertical force is no person's weight in newtons (volts, kN, counts...).
    """
    fv = vertical_total([p.first for p in src.plates], *vertical)
    p99 = float(np.nanpercentile(fv, 99)) if np.isfinite(fv).any() else float("nan")
    lo, hi = PLAUSIBLE_P99_N
    if not (lo <= p99 <= hi):
        raise ImportFileError(f"{src.path}: the vertical force reaches {p99:.3g} N (99th percentile), no person's "
                              f"weight ({lo:g}-{hi:g} N expected): the force channels are not in newtons "
                              "(the file's units or platform calibration are wrong)")
    return p99, f"forces checked in newtons: vertical force 99th percentile {p99:.0f} N ({p99 / G_MPS2:.0f} kg-force)"


# ---------------------------------------------------------------------------------------------- devices


@dataclass
class _Device:
    desc: DeviceDescription
    picks: list  # per output column: (plate index, quantity name)


def _geometry(corners: np.ndarray | None, axes: dict) -> tuple[list, list]:
    if corners is None:
        return [np.nan] * 3, [np.nan] * 2
    f, _ = parse_axis(axes["forward"])
    r, _ = right_axis(axes)
    centre = corners.mean(axis=1)
    idx = {a: i for i, a in enumerate(AXES)}
    size = [float(np.ptp(corners[idx[f]])), float(np.ptp(corners[idx[r]]))]
    return [float(x) for x in centre], size


def _devices(src: ForceSource, axes: dict, split: bool) -> list[_Device]:
    base = [q for q in allowed_channels(axes) if q in src.quantities]
    plates = list(range(len(src.plates)))
    groups: list[tuple[str, list[int], list[str]]]
    named = [p.belt for p in src.plates]
    if named == ["left", "right"]:  # a split-belt export names its belts
        groups = [("force", [0, 1], ["_l", "_r"])]
        split = True
    elif split:
        if len(plates) != 2:
            raise ImportFileError(f"{src.path}: --split-belts needs two force plates (the two belts); the file has "
                                  f"{len(plates)}")
        r, sr = right_axis(axes)
        ri = AXES.index(r)
        lateral = [sr * (c.corners_mm[ri].mean() if c.corners_mm is not None else np.nan) for c in src.plates]
        if not np.isfinite(lateral).all() or lateral[0] == lateral[1]:
            raise ImportFileError(f"{src.path}: --split-belts: the plates' corners do not tell the left belt from "
                                  "the right one")
        order = [int(np.argmin(lateral)), int(np.argmax(lateral))]  # left, right
        groups = [("force", order, ["_l", "_r"])]
    else:
        groups = [("force" if len(plates) == 1 else f"force{i + 1}", [i], [""]) for i in plates]
    out = []
    for name, members, suffixes in groups:  # one iteration per device
        channels, picks, origins, sizes = [], [], [], []
        for pi, suffix in zip(members, suffixes):
            channels += [q + suffix for q in base]
            picks += [(pi, q) for q in base]
            o, s = _geometry(src.plates[pi].corners_mm, axes)
            origins.append(o)
            sizes.append(s)
        info = {"kind": "force", "dtype": "f32", "channels": channels, "belts": "split" if split else "single",
                "origin_mm": origins if split else origins[0], "size_mm": sizes if split else sizes[0], "axes": axes,
                "rate_hz": src.rate_hz, "source_file": os.path.abspath(src.path), "source_format": src.format,
                "plates": [int(m) + 1 for m in members]}
        kind = get_kind("force")
        try:
            kind.check_info(info, src.path)
        except ProtocolError as exc:
            raise ImportFileError(str(exc)) from None
        shape = kind.shape(info)
        n = shape[0]
        desc = DeviceDescription(
            name=name, kind="force", protocol="import", shape=shape, dtype=np.dtype("<f4"), rate_hz=src.rate_hz,
            clock_hz=src.rate_hz, serial=os.path.basename(src.path), info=info,
            calibration=Calibration("force", np.ones(n, np.float32), np.zeros(n, np.float32)),
            channel_labels=kind.channel_labels(shape, info), channel_units=kind.channel_units(shape, info, "force"))
        out.append(_Device(desc, picks))
    return out


def _analog_device(src: ForceSource) -> DeviceDescription | None:
    a = src.analog
    if a is None:
        return None
    n = len(a.labels)
    info = {"kind": "analog", "sensels": n, "labels": list(a.labels), "units": list(a.units), "name": "C3D analog",
            "type": "analog", "rate_hz": a.rate_hz, "source_file": os.path.abspath(src.path), "source_format": "c3d"}
    return DeviceDescription(name="analog", kind="analog", protocol="import", shape=(n,), dtype=np.dtype("<f4"),
                             rate_hz=a.rate_hz, clock_hz=a.rate_hz, serial=os.path.basename(src.path), info=info,
                             calibration=Calibration("a.u.", np.ones(n, np.float32), np.zeros(n, np.float32)),
                             channel_labels=tuple(a.labels))


# ---------------------------------------------------------------------------------------------- writing


def _append_block(h5: h5py.File, name: str, first_row: int, rate_hz: float, values: np.ndarray) -> None:
    idx = np.arange(first_row, first_row + len(values), dtype=np.int64)
    t = idx / rate_hz
    append_samples(h5, name, idx.astype(np.uint32), idx.astype(np.uint64), t, t, values)


def _write(tmp: str, src: ForceSource, devices: list[_Device], analog: DeviceDescription | None, meta: dict,
           notes: list[str]) -> tuple[int, float]:
    """Write the whole file at ``tmp``; returns (rows, mean summed vertical force over every row)."""
    descs = [d.desc for d in devices] + ([analog] if analog is not None else [])
    root = root_attributes(meta, "", 0)
    root.update({ff.A_FOOT_LENGTH_MM: float(meta.get("foot_length_mm") or np.nan), "protocol": "import",
                 "source_file": os.path.abspath(src.path), "source_format": src.format,
                 "notes": f"imported by lab import from {os.path.abspath(src.path)} ({src.format})"})
    v = parse_axis(devices[0].desc.info["axes"]["vertical"])
    h5 = create_session_file(tmp, root, descs)
    rows, fv_sum = 0, 0.0
    try:
        blocks = iter([[p.first for p in src.plates]])
        for block in _chain(blocks, src.rest):  # one iteration per block read from the source
            n = len(next(iter(block[0].values())))
            for a in range(0, n, BLOCK_ROWS):  # a C3D's single block is written in pieces too
                b = min(a + BLOCK_ROWS, n)
                for d in devices:
                    values = np.column_stack([block[pi][q][a:b] for pi, q in d.picks]).astype(np.float32, copy=False)
                    _append_block(h5, d.desc.name, rows + a, src.rate_hz, values)
            fv_sum += float(np.nansum(vertical_total(block, *v)))
            rows += n
        if analog is not None:
            vals = src.analog.values
            for a in range(0, len(vals), BLOCK_ROWS):
                _append_block(h5, "analog", a, src.analog.rate_hz, vals[a:a + BLOCK_ROWS])
        if src.markers:
            append_markers(h5, [m[0] for m in src.markers], [m[1] for m in src.markers])
        if rows:
            notes += _weight_notes(fv_sum / rows, meta.get("body_mass_kg"))
        levels = [WARNING if n.startswith("WARNING") else INFO for n in notes]
        append_events(h5, [0.0] * len(notes), ["import"] * len(notes), levels, notes)
        h5.flush()
    finally:
        h5.close()
    if rows == 0:
        raise ImportFileError(f"{src.path}: no samples to import")
    with h5py.File(tmp, "r+", libver=ff.LIBVER) as f:
        finalize(f, ff.STATE_COMPLETE, "imported", (rows - 1) / src.rate_hz)
        for d in descs:  # time = index / rate exactly (the clock refit of a perfect clock is within 1e-7 s)
            g = f[ff.DEVICES][d.name]
            n_rows = g[ff.TIME].shape[0]
            for a in range(0, n_rows, BLOCK_ROWS):
                b = min(a + BLOCK_ROWS, n_rows)
                g[ff.TIME][a:b] = np.arange(a, b, dtype=np.int64) / d.rate_hz
    return rows, fv_sum / rows


def _weight_notes(mean_fv: float, body_mass_kg: float | None) -> list[str]:
    """What the mean vertical force says about the runner's weight, and a warning when it is far from the mass."""
    mass = mean_fv / G_MPS2
    out = [f"mean vertical force over the whole file {mean_fv:.0f} N = {mass:.1f} kg"]
    if body_mass_kg and abs(mass / body_mass_kg - 1) > 0.05:
        out.append(f"WARNING: that is {100 * (mass / body_mass_kg - 1):+.0f}% from --body-mass {body_mass_kg:g} kg "
                   "(the analysis' force_body_mass_kg counts whole strides only)")
    return out


def _chain(*iterators):
    for it in iterators:
        yield from it


def default_output(path: str, out: str | None) -> str:
    """``--out``: a file, a folder (``<stem>.h5`` in it), or by default ``<stem>.h5`` in the current folder."""
    stem = Path(path).stem + ".h5"
    if not out:
        return stem
    if os.path.isdir(out) or out.endswith(os.sep):
        return os.path.join(out, stem)
    return out


def import_file(path: str, out: str | None = None, options: ImportOptions | None = None) -> ImportResult:
    """Import a C3D file or a text export into a new session file.

    Parameters
    ----------
    path : str
        The source file.
    out : str, optional
        The session file (never overwritten), or a folder; default ``<stem>.h5`` in the current folder.
    options : ImportOptions, optional

    Returns
    -------
    ImportResult

    Raises
    ------
    ImportFileError
        The file is missing, empty, damaged or unsupported, lacks needed columns, or its axes cannot be found.
    StorageError
        The output exists or cannot be written. Nothing is left at the output path on any error.
    """
    opts = options or ImportOptions()
    if not os.path.isfile(path):
        raise ImportFileError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise ImportFileError(f"{path}: the file is empty")
    fmt = opts.format or sniff_format(path)
    if fmt not in FORMATS:
        raise ImportFileError(f"{path}: unknown format {fmt!r} (c3d or text)")
    target = default_output(path, out)
    if os.path.exists(target):
        raise StorageError(f"{target}: exists already; session files are never overwritten")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise StorageError(f"{target}: the folder {folder} does not exist")
    if fmt == "c3d":
        from treadlab.acquisition.import_c3d import read_c3d

        src = read_c3d(path)
    else:
        from treadlab.acquisition.import_text import read_text

        src = read_text(path, opts.rate_hz)
    if fmt == "c3d" and opts.rate_hz and abs(opts.rate_hz / src.rate_hz - 1) > 1e-6:
        raise ImportFileError(f"{path}: the C3D file samples its force plates at {src.rate_hz:g} Hz, not at "
                              f"--rate-hz {opts.rate_hz:g}")
    v, axis_notes = find_vertical(src, opts.vertical)
    _, unit_note = check_newtons(src, v)  # before the forward axis: forces in volts have no body weight
    f, more = find_forward(src, v, opts.forward)
    axes = {"vertical": _axis_text(*v), "forward": _axis_text(*f)}
    axis_notes += more
    devices = _devices(src, axes, opts.split_belts)
    analog = _analog_device(src)
    notes = [*src.notes, *axis_notes, unit_note]
    meta = {"participant": opts.participant, "condition": opts.condition, "body_mass_kg": opts.body_mass_kg,
            "treadmill_speed_mps": opts.speed_mps, "foot_length_mm": opts.foot_length_mm}
    tmp = target + ".importing"
    if os.path.exists(tmp):
        os.remove(tmp)  # left by an import that was killed: never a session file
    try:
        rows, mean_fv = _write(tmp, src, devices, analog, meta, notes)
        _place(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return ImportResult(path=target, devices=[d.desc.name for d in devices] + (["analog"] if analog else []),
                        axes=axes, n_samples=rows, rate_hz=src.rate_hz, mean_vertical_n=mean_fv, notes=notes)


def _place(tmp: str, target: str) -> None:
    """Give the finished file its name, never over an existing file."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise StorageError(f"{target}: exists already; session files are never overwritten") from None
    except OSError:  # a file system without hard links
        if os.path.exists(target):
            raise StorageError(f"{target}: exists already; session files are never overwritten") from None
        os.replace(tmp, target)
        return
    os.remove(tmp)


def describe_result(res: ImportResult) -> str:
    """The lines ``lab import`` prints."""
    lines = [*res.notes, f"axes: {json.dumps(res.axes)}; {res.n_samples} samples at {res.rate_hz:g} Hz "
             f"({res.n_samples / res.rate_hz:.1f} s); devices: {', '.join(res.devices)}", res.path]
    return "\n".join(lines)
