"""The reader of force devices (kind ``"force"``): force plates and instrumented treadmills, recorded or imported.

A device group ``/devices/<name>`` of kind "force" (``docs/file-format.md``) holds ``raw`` (n, n_channels), its
calibration to N, N·mm, mm and m/s, and the attributes ``channels``, ``belts``, ``origin_mm``, ``size_mm`` and
``axes``. :class:`ForceData` reads the channels by name, calibrated, a block at a time; :meth:`ForceData.plates`
gives one :class:`ForcePlate` per belt, and :meth:`ForceData.channel` names the channel of a quantity along a
role axis (the vertical force of an imported motion-capture file is ``Fy``, that of a treadmill ``Fz``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from treadlab.analysis.session import DeviceData, _text, register_reader
from treadlab.calibration import apply_calibration
from treadlab.errors import SessionFileError
from treadlab.kinds.force import BELT_NAMES, DEFAULT_AXES, belt_suffixes, parse_axis, right_axis, split_name

__all__ = ["ForceData", "ForcePlate"]

ROLES = ("vertical", "forward", "right")


@dataclass(frozen=True)
class ForcePlate:
    """One belt (plate) of a force device.

    Attributes
    ----------
    belt : {"single", "left", "right"}
    suffix : str
        Channel-name suffix of the belt ("" on a single belt, ``_l``/``_r`` on split belts).
    channels : dict of str to str
        Base name (``Fz``, ``COPx``...) to the device's channel name (``Fz_l``...).
    origin_mm : ndarray, shape (3,)
        The plate's surface centre in the frame of the COP channels (NaN when unknown).
    size_mm : ndarray, shape (2,)
        Length along the forward axis and width across it (NaN when unknown).
    """

    belt: str
    suffix: str
    channels: dict
    origin_mm: np.ndarray
    size_mm: np.ndarray


def _strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [_text(value)]
    return [_text(v) for v in np.asarray(value).ravel()]


@register_reader("force")
class ForceData(DeviceData):
    """A force plate or instrumented treadmill: named channels in N, N·mm, mm and m/s.

    Attributes
    ----------
    channels : list of str
        Channel names in column order (``Fx Fy Fz COPx COPy Tz``...; ``_l``/``_r`` on split belts).
    belts : {"single", "split"}
    origin_mm : ndarray, shape (plates, 3)
    size_mm : ndarray, shape (plates, 2)
    axes : dict
        ``{"vertical": "z", "forward": "x"}``: the plate-frame axis (letter, optional sign) pointing up and the
        one the runner faces.
    source_file, source_format : str
        For an imported file (``protocol`` "import"): the file it came from and its format ("c3d", "text");
        "" for a recording.
    """

    clip_negative = False  # forces, moments and COP keep their sign

    def __init__(self, path: Path, name: str, group: h5py.Group):
        super().__init__(path, name, group)
        where = f"{path.name}: /devices/{name}"
        a, info = self.attrs, self.info
        self.channels = _strings(a.get("channels")) or [str(c) for c in info.get("channels", [])]
        if len(self.channels) != self.n_values:
            raise SessionFileError(f"{where}: names {len(self.channels)} force channels for {self.n_values} values")
        self.belts = _text(a.get("belts", info.get("belts", "single"))) or "single"
        if self.belts not in ("single", "split"):
            raise SessionFileError(f"{where}: belts {self.belts!r} is neither 'single' nor 'split'")
        try:
            axes = json.loads(_text(a["axes"])) if "axes" in a else dict(info.get("axes", DEFAULT_AXES))
            self.axes = {"vertical": str(axes["vertical"]), "forward": str(axes["forward"])}
            for role in ("vertical", "forward"):
                parse_axis(self.axes[role])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SessionFileError(f"{where}: unreadable axes attribute ({exc})") from None
        n_plates = len(belt_suffixes(self.belts))
        self.origin_mm = self._geometry(a.get("origin_mm", info.get("origin_mm")), n_plates, 3)
        self.size_mm = self._geometry(a.get("size_mm", info.get("size_mm")), n_plates, 2)
        self.source_file = _text(a.get("source_file", ""))
        self.source_format = _text(a.get("source_format", ""))
        self._index = {c: i for i, c in enumerate(self.channels)}

    @staticmethod
    def _geometry(value, n_plates: int, n: int) -> np.ndarray:
        try:
            arr = np.asarray(value, dtype=np.float64).reshape(n_plates, n)
        except (TypeError, ValueError):
            arr = np.full((n_plates, n), np.nan)
        return arr

    @property
    def imported(self) -> bool:
        """True for a file made by ``lab import`` (``protocol`` "import")."""
        return self.protocol == "import"

    # ------------------------------------------------------------------ geometry and names

    def plates(self) -> list[ForcePlate]:
        """One :class:`ForcePlate` per belt: the single belt, or the left and the right belt."""
        out = []
        for i, suffix in enumerate(belt_suffixes(self.belts)):
            chans = {}
            for c in self.channels:
                base, s = split_name(c, self.belts)
                if s == suffix:
                    chans[base] = c
            out.append(ForcePlate(BELT_NAMES[suffix], suffix, chans, self.origin_mm[i], self.size_mm[i]))
        return out

    def axis(self, role: str) -> tuple[str, float]:
        """The plate-frame axis of a role, ``"vertical"``, ``"forward"`` or ``"right"`` (forward x vertical), as
        ``(letter, sign)``: the vertical force is ``sign * F<letter>``.
        """
        if role == "right":
            return right_axis(self.axes)
        if role not in self.axes:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        return parse_axis(self.axes[role])

    def channel(self, quantity: str, role: str, plate: ForcePlate | None = None) -> tuple[str | None, float]:
        """The channel carrying ``quantity`` ("F", "M", "COP" or "T") along a role axis, and the sign that turns
        it into the role's direction; ``(None, sign)`` when the device has no such channel.

        Examples
        --------
        >>> name, sign = force.channel("F", "vertical")     # doctest: +SKIP
        >>> fv = sign * force.read_channels([name])[name]  # doctest: +SKIP
        """
        letter, sign = self.axis(role)
        plate = plate or self.plates()[0]
        return plate.channels.get(f"{quantity}{letter}"), sign

    def channel_labels(self) -> list[str]:
        """The channel names."""
        return list(self.channels)

    def csv_columns_text(self, columns: list[str]) -> str:
        """How the CSV export's README describes the value columns."""
        return ", ".join(f"{c} [{u}]" for c, u in zip(columns, self.channel_units()))

    # ------------------------------------------------------------------ data

    def _columns(self, names) -> list[int]:
        names = list(self.channels) if names is None else [names] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in self._index]
        if missing:
            raise KeyError(f"{self.name} has no channel {', '.join(missing)} (channels: {' '.join(self.channels)})")
        return [self._index[n] for n in names]

    def read_channels(self, names=None, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Calibrated channels of rows ``start:stop``: name -> float32 array (N, N·mm, mm, m/s).

        Parameters
        ----------
        names : str or list of str, optional
            Channel names (default: every channel).
        start, stop : int
            Rows.

        Raises
        ------
        KeyError
            A name the device does not have.
        """
        cols = self._columns(names)
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        start = min(start, stop)
        raw = self._read(self._raw, start, stop).reshape(stop - start, self.n_values)
        return {self.channels[i]: self._calibrate(raw[:, i], i) for i in cols}  # one iteration per channel

    def iter_force(self, start: int = 0, stop: int | None = None, names=None
                   ) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
        """Yield ``(first_row, times, channels)`` blocks covering ``start:stop`` in bounded memory (about 32 MiB
        of values each): times in s (float64), channels as :meth:`read_channels`.
        """
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        self._columns(names)
        rows = self.block_rows()
        for a in range(start, stop, rows):
            b = min(a + rows, stop)
            yield a, self.read_time(a, b), self.read_channels(names, a, b)

    def read_calibrated(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Every channel of rows ``start:stop``, shape (rows, channels), float32, in :meth:`channel_units`."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        raw = self._read(self._raw, start, stop).reshape(stop - start, self.n_values)
        return self._calibrate(raw, slice(None))

    def _calibrate(self, raw: np.ndarray, cols) -> np.ndarray:
        """:func:`~treadlab.calibration.apply_calibration` (sign kept) as float32, computed in float64 for 32-bit
        counts (float32 holds integers only up to 2**24).
        """
        work = np.float64 if raw.dtype.itemsize >= 4 and raw.dtype.kind in "iu" else np.float32
        out = apply_calibration(raw, self.gain[cols], self.offset[cols], dtype=work)
        return out.astype(np.float32, copy=False)

    def csv_source_text(self) -> str:
        """How the CSV export's README names this data."""
        src = f", imported from {self.source_file} ({self.source_format})" if self.imported else ""
        return f"force device {self.name!r} ({self.belts} belt{'s' if self.belts == 'split' else ''}{src})"
