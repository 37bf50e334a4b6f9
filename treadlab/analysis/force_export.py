"""C3D export of force devices (kind "force"): analog channels per plate and FORCE_PLATFORM parameters (type 2).

Registered with :func:`treadlab.analysis.export.register_c3d_channels` and
:func:`~treadlab.analysis.export.register_c3d_parameters` on import (``treadlab.analysis`` imports this module).
Labels number the plates from 1 in the order of the device's belts (single belt: 1; split belts: 1 left, 2 right;
a second force device's plates ``D2`` ``1``, ``2``...), on the export's time base (linear interpolation, or the
anti-aliased resampling of :func:`treadlab.analysis.export._resampled` below the device's rate):

- ``Fx1 Fy1 Fz1`` (N) and ``Mx1 My1 Mz1`` (Nmm): the plate's forces and its moments **about the plate's surface
  centre** (``origin_mm``), computed from its centre of pressure and free moment (``(COP - origin) x F + T``) when
  the device sends a COP, else from its moments (``M - origin x F``, moments about the frame's origin as the
  force kind defines them). These six are the plate's type-2 channels;
- then the device's other channels: ``COPx1 COPy1`` (mm), ``Tz1`` (Nmm), ``BeltSpeed1`` (m/s).

``FORCE_PLATFORM`` (C3D type 2: six channels Fx Fy Fz Mx My Mz in the plate's frame): ``USED``, ``TYPE`` 2,
``ZERO`` (0, 0), ``CHANNEL`` (the six channel numbers, from 1), ``ORIGIN`` (0, 0, 0: the moments are already about
the surface centre) and ``CORNERS`` (the four corners of the working surface, ``origin_mm`` +- half of ``size_mm``,
in the device's own axes, which the C3D's lab frame is). The corners are ordered so that a reader's plate axes
(x from corner 2 to 1, y from corner 4 to 1, z = x × y, as ezc3d reads them) are the device's axes permuted so
that z is the vertical axis; forces and moments are written in that plate frame. A reader's type-2 COP
(``-My/Fz``, ``Mx/Fz`` from the surface centre) is then the device's COP, so ``lab import`` of the export gives
the same forces and centre of pressure (float32 rounding). Plates without horizontal-force or moment/COP
channels, or without a known geometry, are exported as channels only.
"""

from __future__ import annotations

import numpy as np

from treadlab.analysis.export import C3dGrid, register_c3d_channels, register_c3d_parameters

__all__ = ["C3D_UNITS", "force_c3d_channels", "force_c3d_platforms", "plate_frame"]

#: C3D unit text of each calibrated unit.
C3D_UNITS = {"N": "N", "N·mm": "Nmm", "mm": "mm", "m/s": "m/s"}
_LETTERS = "xyz"
_WRENCH = ("Fx", "Fy", "Fz", "Mx", "My", "Mz")


def _label(base: str, plate_no: int, prefix: str) -> str:
    name = "BeltSpeed" if base == "belt_speed" else base
    return f"{prefix}{name}{plate_no}"


def plate_frame(axes: dict) -> np.ndarray:
    """Rows: the C3D plate frame's x, y, z as unit vectors of the device's axes (z = the vertical axis, up or down
    as the device's vertical axis letter points; x, y the next two axes in cyclic order, so the frame stays
    right-handed).
    """
    v = _LETTERS.index(str((axes or {}).get("vertical", "z")).strip().lstrip("+-").lower())
    a, b = (v + 1) % 3, (v + 2) % 3
    return np.eye(3)[[a, b, v]]


def _geometry(dev, plate) -> tuple[np.ndarray, np.ndarray] | None:
    """``origin`` (3,) and ``corners`` (3, 4) of a plate in the device's axes, or None when not known."""
    origin = np.asarray(plate.origin_mm, np.float64)
    size = np.asarray(plate.size_mm, np.float64)
    if not (np.isfinite(origin).all() and np.isfinite(size).all()):
        return None
    rows = plate_frame(dev.axes)
    fwd = _LETTERS.index(dev.axis("forward")[0])
    half = [size[0] / 2.0 if int(np.argmax(r)) == fwd else size[1] / 2.0 for r in rows[:2]]
    ex, ey = rows[0] * half[0], rows[1] * half[1]
    corners = np.column_stack([origin + ex + ey, origin - ex + ey, origin - ex - ey, origin + ex - ey])
    return origin, corners


def _wrench(block: np.ndarray, names: list[str], plate, origin: np.ndarray, vertical: int) -> np.ndarray | None:
    """Forces and moments about the surface centre (n, 6) in the device's axes, from a block of calibrated values
    (columns ``names``); None when the plate has neither moments nor a centre of pressure.
    """
    col = {n: i for i, n in enumerate(names)}

    def ch(base):
        name = plate.channels.get(base)
        return block[:, col[name]] if name in col else None

    n = len(block)
    f = np.column_stack([ch(f"F{a}") if ch(f"F{a}") is not None else np.zeros(n) for a in _LETTERS])
    horiz = [a for a in range(3) if a != vertical]
    if all(ch(f"COP{_LETTERS[a]}") is not None for a in horiz):  # the COP when the device sends it
        r = np.zeros((n, 3))
        for a in horiz:
            r[:, a] = np.nan_to_num(ch(f"COP{_LETTERS[a]}")) - origin[a]
        m = np.cross(r, f)
        t = ch(f"T{_LETTERS[vertical]}")
        if t is not None:
            m[:, vertical] += np.nan_to_num(t)
        return np.column_stack([f, m])
    if all(ch(f"M{a}") is not None for a in _LETTERS):
        m = np.column_stack([ch(f"M{a}") for a in _LETTERS]) - np.cross(origin, f)
        return np.column_stack([f, m])
    return None


def force_c3d_channels(dev, index: int, grid: C3dGrid) -> list[tuple[str, str, np.ndarray]]:
    """Analog channels of one force device on the C3D grid: ``[(label, unit, row)]``, plate by plate."""
    prefix = "" if index == 0 else f"D{index + 1}"
    units = list(dev.channel_units()) or ["counts"] * dev.n_values
    labels = list(dev.channel_labels())
    unit_of = dict(zip(labels, units))
    vertical = _LETTERS.index(dev.axis("vertical")[0])
    rot = plate_frame(dev.axes)
    plates = dev.plates()
    geo = [_geometry(dev, p) for p in plates]
    order, wrench_plates = [], []
    for p_no, (plate, g) in enumerate(zip(plates, geo), start=1):
        if g is not None and "F" + _LETTERS[vertical] in plate.channels and (
                all(f"M{a}" in plate.channels for a in _LETTERS)
                or all(f"COP{_LETTERS[a]}" in plate.channels for a in range(3) if a != vertical)):
            wrench_plates.append(p_no - 1)
            order += [(None, _label(w, p_no, prefix), "N" if w[0] == "F" else "Nmm") for w in _WRENCH]
            skip = {f"F{a}" for a in _LETTERS} | {f"M{a}" for a in _LETTERS}
        else:
            skip = set()
        for base, name in plate.channels.items():
            if base not in skip:
                order.append((name, _label(base, p_no, prefix), C3D_UNITS.get(unit_of.get(name, ""),
                                                                                unit_of.get(name))))
    direct = [o[0] for o in order if o[0] is not None]
    cols = [labels.index(n) for n in direct]

    def blocks():
        for a, block in dev.iter_calibrated():  # one iteration per ~32 MiB block
            x = np.asarray(block, np.float64)
            parts = []
            for i in wrench_plates:  # one or two plates
                w = _wrench(x, labels, plates[i], geo[i][0], vertical)
                parts.append(np.column_stack([w[:, :3] @ rot.T, w[:, 3:] @ rot.T]))  # in the C3D plate frame
            yield dev.read_time(a, a + len(block)), np.column_stack(parts + [x[:, cols]]) if parts or cols \
                else np.empty((len(x), 0))

    rows = grid.resample(blocks(), dev.rate_hz, 6 * len(wrench_plates) + len(cols))
    wrench_labels = [o for o in order if o[0] is None]
    direct_labels = [o for o in order if o[0] is not None]
    ordered = wrench_labels + direct_labels  # the row order of ``blocks``
    out = {label: (unit, rows[i]) for i, (_, label, unit) in enumerate(ordered)}
    return [(label, *out[label]) for _, label, _ in order]


def _set_int(c3d, group: str, name: str, value) -> None:
    """An integer C3D parameter: ezc3d's ``add_parameter`` stores a list's ints as floats, so the parameter is
    created from one int (type INT) and then given its value (kept INT when written).
    """
    arr = np.asarray(value, dtype=np.int64)
    c3d.add_parameter(group, name, int(arr.ravel()[0]))
    if arr.ndim:
        c3d["parameters"][group][name]["value"] = arr


def force_c3d_platforms(session, analogs, c3d) -> None:
    """``FORCE_PLATFORM`` (type 2) of every plate exported with its six wrench channels (see the module)."""
    devs = sorted((d for d in session.of_kind("force") if d.n_samples > 1), key=lambda d: (d.side != "left", d.name))
    labels = list(analogs.labels)
    channels, corners = [], []
    for i, dev in enumerate(devs):
        prefix = "" if i == 0 else f"D{i + 1}"
        for p_no, plate in enumerate(dev.plates(), start=1):
            names = [_label(w, p_no, prefix) for w in _WRENCH]
            g = _geometry(dev, plate)
            if g is None or not all(n in labels for n in names):
                continue
            channels.append([labels.index(n) + 1 for n in names])
            corners.append(g[1])
    if not channels:
        return
    n = len(channels)
    _set_int(c3d, "FORCE_PLATFORM", "USED", n)
    _set_int(c3d, "FORCE_PLATFORM", "TYPE", [2] * n)
    _set_int(c3d, "FORCE_PLATFORM", "ZERO", [0, 0])
    _set_int(c3d, "FORCE_PLATFORM", "CHANNEL", np.array(channels).T)
    c3d.add_parameter("FORCE_PLATFORM", "CORNERS", np.stack(corners, axis=2))
    c3d.add_parameter("FORCE_PLATFORM", "ORIGIN", np.zeros((3, n)))
    c3d.add_parameter("POINT", "UNITS", ["mm"])


register_c3d_channels("force", force_c3d_channels)
register_c3d_parameters("force", force_c3d_platforms)
