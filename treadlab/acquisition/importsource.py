"""What a file reader of ``lab import`` hands to the importer: force data per plate, in blocks, in N, N·mm, mm.

The C3D reader (:mod:`treadlab.acquisition.import_c3d`) has the whole file in memory (ezc3d reads it so) and
gives one block; the text reader (:mod:`treadlab.acquisition.import_text`) gives its first block and reads the
rest while the importer writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BLOCK_ROWS", "AnalogSource", "ForceSource", "PlateSource"]

#: Rows per block read and written (about 9 MiB of float32 for nine channels).
BLOCK_ROWS = 1 << 18


@dataclass
class PlateSource:
    """One force plate of the source file.

    Attributes
    ----------
    first : dict of str to ndarray
        The first block: quantity name in the file's own axes (``Fx`` ... ``Mz``, ``COPx`` ... ``COPz``,
        ``Tx`` ... ``Tz``) -> float32 values in N, N·mm, mm.
    corners_mm : ndarray (3, 4) or None
        The plate's corners in the file's frame (C3D ``FORCE_PLATFORM:CORNERS``), None when the file gives none.
    type : int
        C3D platform type (0 for a text export).
    belt : str
        ``"left"`` or ``"right"`` when the file names the belt (a split-belt text export's ``_l``/``_r``
        columns), else "".
    """

    first: dict
    corners_mm: np.ndarray | None = None
    type: int = 0
    belt: str = ""


@dataclass
class AnalogSource:
    """Analog channels of a C3D file that no force platform uses, kept as the file has them."""

    labels: list
    units: list
    rate_hz: float
    values: np.ndarray  # (n, channels) float32


@dataclass
class ForceSource:
    """A file opened for import.

    Attributes
    ----------
    path, format : str
        The source file and ``"c3d"`` or ``"text"``.
    rate_hz : float
        Rate of the force samples.
    plates : list of PlateSource
    rest : iterator of list of dict
        The blocks after the first, one dict per plate (as :attr:`PlateSource.first`).
    markers : list of (float, str)
        Events of the file (time from its first sample, label).
    analog : AnalogSource or None
    notes : list of str
        What the reader found and checked, said by ``lab import`` and kept in ``/events``.
    """

    path: str
    format: str
    rate_hz: float
    plates: list
    rest: Iterator = field(default_factory=lambda: iter(()))
    markers: list = field(default_factory=list)
    analog: AnalogSource | None = None
    notes: list = field(default_factory=list)

    @property
    def quantities(self) -> list[str]:
        """Quantities every plate has."""
        names = [set(p.first) for p in self.plates]
        return [q for q in self.plates[0].first if all(q in n for n in names)]

    def first_rows(self) -> int:
        """Rows of the first block."""
        return len(next(iter(self.plates[0].first.values())))


def vertical_total(block: list[dict], letter: str, sign: float) -> np.ndarray:
    """The summed vertical force of one block of every plate (N, float64)."""
    return sign * np.sum([np.asarray(p[f"F{letter}"], dtype=np.float64) for p in block], axis=0)
