"""The pressure-mat kind: a grid of pressure sensels under the belt (INFO ``rows``, ``cols``, ``pitch_mm``)."""

from __future__ import annotations

import numpy as np

from treadlab import fileformat as ff
from treadlab.kinds.base import Kind, register_kind

DEFAULT_PITCH_MM = (10.0, 10.0)


class MatKind(Kind):
    """Pressure mats: shape ``(rows, cols)`` (row-major), labels ``r00c00``..., LSL type ``Pressure``."""

    name = "mat"
    info_keys = ("rows", "cols")
    lsl_type = "Pressure"

    def shape(self, info: dict) -> tuple[int, ...]:
        """``(rows, cols)``."""
        return (int(info["rows"]), int(info["cols"]))

    def summary(self, desc) -> str:
        """``mat 48 x 112 sensels``."""
        return f"mat {desc.shape[0]} x {desc.shape[1]} sensels"

    def channel_labels(self, shape: tuple[int, ...], info: dict) -> tuple[str, ...]:
        """``r00c00``, ``r00c01``... (row-major)."""
        rows, cols = shape
        return tuple(f"r{r:02d}c{c:02d}" for r in range(rows) for c in range(cols))

    def geometry(self, info: dict, shape: tuple[int, ...], layout: dict | None) -> tuple[dict, dict]:
        """``pitch_mm``, ``rows``, ``cols``, ``belt_axis``; and sensel centres and areas from the pitch."""
        rows_n, cols_n = shape
        pitch = [float(v) for v in info.get("pitch_mm", DEFAULT_PITCH_MM)]
        attrs = {ff.A_PITCH_MM: np.asarray(pitch), ff.A_ROWS: rows_n, ff.A_COLS: cols_n,
                 ff.A_BELT_AXIS: str(info.get("belt_axis", "rows"))}
        data = {}
        if layout is None:
            rr, cc = np.mgrid[0:rows_n, 0:cols_n]
            data[ff.LAYOUT_POSITIONS] = np.c_[cc.ravel() * pitch[1], rr.ravel() * pitch[0]].astype(np.float32)
            data[ff.LAYOUT_AREAS] = np.full(rows_n * cols_n, pitch[0] * pitch[1], np.float32)
        return attrs, data


MAT = register_kind(MatKind())
