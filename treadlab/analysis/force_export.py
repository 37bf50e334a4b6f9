"""C3D export of force devices (kind "force"): every channel as an analog channel with its unit, per plate.

Registered with :func:`treadlab.analysis.export.register_c3d_channels` on import (``treadlab.analysis`` imports
this module). Labels number the plates from 1 in the order of the device's belts (single belt: 1; split belts:
1 left, 2 right; a second force device's plates ``D2`` ``1``, ``2``...): ``Fx1 Fy1 Fz1 Mx1 My1 Mz1`` (N, Nmm),
``COPx1 COPy1`` (mm), ``Tz1`` (Nmm), ``BeltSpeed1`` (m/s), on the export's time base (linear interpolation, or
the anti-aliased resampling of :func:`treadlab.analysis.export._resampled` below the device's rate). Axes are the
device's own plate frame (``axes``: which axis is vertical and which forward), as in the session file. The CSV
export needs nothing here: it writes the calibrated channels by name (``ForceData.read_calibrated``).
"""

from __future__ import annotations

import numpy as np

from treadlab.analysis.export import C3dGrid, register_c3d_channels

__all__ = ["C3D_UNITS", "force_c3d_channels"]

#: C3D unit text of each calibrated unit.
C3D_UNITS = {"N": "N", "N·mm": "Nmm", "mm": "mm", "m/s": "m/s"}


def _label(base: str, plate_no: int, prefix: str) -> str:
    name = "BeltSpeed" if base == "belt_speed" else base
    return f"{prefix}{name}{plate_no}"


def force_c3d_channels(dev, index: int, grid: C3dGrid) -> list[tuple[str, str, np.ndarray]]:
    """Analog channels of one force device on the C3D grid: ``[(label, unit, row)]``, plate by plate."""
    prefix = "" if index == 0 else f"D{index + 1}"
    units = list(dev.channel_units()) or ["counts"] * dev.n_values
    unit_of = dict(zip(dev.channel_labels(), units))
    order = []
    for p_no, plate in enumerate(dev.plates(), start=1):
        for base, name in plate.channels.items():
            order.append((name, _label(base, p_no, prefix), C3D_UNITS.get(unit_of.get(name, ""), unit_of.get(name))))
    names = [o[0] for o in order]
    cols = [dev.channel_labels().index(n) for n in names]

    def blocks():
        for a, block in dev.iter_calibrated():  # one iteration per ~32 MiB block
            yield dev.read_time(a, a + len(block)), np.asarray(block, np.float64)[:, cols]

    rows = grid.resample(blocks(), dev.rate_hz, len(cols))
    return [(label, unit, rows[i]) for i, (_, label, unit) in enumerate(order)]


register_c3d_channels("force", force_c3d_channels)
