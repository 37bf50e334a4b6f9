"""Read a treadlab session file (format v1, ``docs/file-format.md``), read-only, in bounded memory.

:func:`read_session` opens a file, also one that is still being recorded (SWMR), checks that it is a treadlab
session and gives a :class:`Session`: metadata, markers, events and one :class:`InsoleData` or :class:`MatData`
per device. Per-sample derived signals (total force, centre of pressure, regional forces) are computed in one
chunked pass over the raw dataset and cached, so memory stays bounded whatever the length of the capture; the
calibrated per-sensel values are read on request, a block at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from treadlab import fileformat as ff
from treadlab.analysis.chunkread import RowReader
from treadlab.analysis.cop import cop_from_sums, layout_bounds_mm, min_load
from treadlab.calibration import apply_calibration
from treadlab.errors import SessionFileError
from treadlab.sessionfile import HDF5_ERRORS, open_session_file
from treadlab.vocabulary import G_MPS2

__all__ = ["G_MPS2", "READERS", "DeviceData", "InsoleData", "MatData", "Session", "StreamData", "read_session",
           "reader_for", "register_reader"]


CALIBRATED_UNITS = ("N", "kPa", "imu", "force")  # "imu"/"force": per-channel units in calibration/units
_BLOCK_BYTES = 32 * 2**20  # float32 working block of the chunked passes


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return "" if value is None else str(value)


def _float(value, default: float = float("nan")) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _open(path: Path) -> tuple[h5py.File, str]:
    return open_session_file(path, allow_live=True, allow_crashed=True)


def _table(group, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a small table stored either as a group of 1-D datasets or as one compound dataset."""
    if group is None:
        return pd.DataFrame({c: [] for c in columns})
    data = {}
    if isinstance(group, h5py.Dataset):
        arr = group[()]
        names = arr.dtype.names or ()
        for c in columns:
            data[c] = arr[c] if c in names else np.full(len(arr), np.nan)
    else:
        n = None
        for c in columns:
            if c in group:
                data[c] = group[c][()]
                n = len(data[c])
        for c in columns:
            if c not in data:
                data[c] = np.full(n or 0, np.nan)
    for c, v in data.items():
        if v.dtype.kind in "SO":
            data[c] = [_text(x) for x in v]
    df = pd.DataFrame(data)
    if "time" in df:
        df["time"] = df["time"].astype(float)
        df = df.sort_values("time", kind="stable").reset_index(drop=True)
    return df


#: Reader class per device kind (the ``kind`` attribute of ``/devices/<name>``), filled by :func:`register_reader`.
READERS: dict[str, type] = {}


def register_reader(kind: str):
    """Class decorator: read device groups of ``kind`` with this :class:`DeviceData` subclass.

    A new kind registers its reader in its own module (or a test module), without editing this one::

        @register_reader("thermometer")
        class ThermometerData(DeviceData):
            clip_negative = False

            def channel_labels(self):
                return ["temperature"]
    """
    def deco(cls):
        READERS[kind] = cls
        return cls
    return deco


def reader_for(kind: str, group) -> type:
    """The reader class of a device group: the registered one; for files without a ``kind`` attribute a mat when
    ``raw`` is 3-D, else an insole; any other kind the generic :class:`StreamData` (an external stream).
    """
    if kind in READERS:
        return READERS[kind]
    if not kind:
        return READERS["mat"] if ff.RAW in group and group[ff.RAW].ndim == 3 else READERS["insole"]
    return StreamData


class DeviceData:
    """What every device kind has in common: the datasets of ``/devices/<name>``, times, gaps, calibration.

    Every kind's reader class (registered per kind with :func:`register_reader`) has the same verbs:
    :meth:`read_calibrated` / :meth:`iter_calibrated` (values in :meth:`channel_units`, one column a channel),
    :meth:`channel_labels`, :meth:`channel_units`, ``unit`` (the calibration unit), :meth:`read_time`,
    :meth:`read_raw`. This base class is itself the generic reader: values ``gain * (raw - offset)`` with their
    sign, channels ``ch01``...

    Attributes
    ----------
    name, kind, side, protocol : str
    rate_hz : float
    unit : str
        Calibration unit of the file.
    attrs : dict
        Every attribute of the device group (text decoded), including the final counters of a finished file
        (``lost_samples``, ``crc_errors``, ``drift_ppm``, ``fit_residual_ms``...).
    counters : dict
        The recorder's live counters.
    info : dict
    n_samples, n_values : int
    gaps : ndarray, shape (k, 3)
    """

    #: True for data recorded beside the devices (external streams): :attr:`Session.streams`, not ``devices``.
    stream = False
    #: Clip calibrated values at zero (forces, pressures).
    clip_negative = False

    def __init__(self, path: Path, name: str, group: h5py.Group):
        self.path = path
        self.name = name
        self._group = group
        self._readers: dict[str, RowReader] = {}
        where = f"{path.name}: /devices/{name}"
        try:
            self._raw = group[ff.RAW]
            self._time_ds = group[ff.TIME]
            cal = group[ff.CALIBRATION]
            self.gain = np.asarray(cal[ff.CAL_GAIN][()], dtype=np.float32).ravel()
            self.offset = np.asarray(cal[ff.CAL_OFFSET][()], dtype=np.float32).ravel()
            self.unit = _text(cal.attrs.get(ff.A_CAL_UNIT, ""))
            #: Per-channel units (dataset ``calibration/units``: the imu and force kinds), empty otherwise.
            self.value_units = [_text(u) for u in cal[ff.CAL_UNITS][()]] if ff.CAL_UNITS in cal else []
        except KeyError as exc:
            raise SessionFileError(f"{where} lacks a required dataset ({exc.args[0] if exc.args else exc})") from None
        except OSError as exc:
            raise SessionFileError(f"{where} is damaged ({exc})") from None
        self.attrs = {k: (_text(v) if isinstance(v, (bytes, str, np.bytes_)) else v) for k, v in group.attrs.items()}
        attrs = self.attrs
        self.kind = _text(attrs.get(ff.A_KIND, ""))
        self.side = _text(attrs.get(ff.A_SIDE, ""))
        self.protocol = _text(attrs.get(ff.A_PROTOCOL, ""))
        self.rate_hz = _float(attrs.get(ff.A_RATE_HZ))
        try:
            self.info = json.loads(_text(attrs.get(ff.A_INFO_JSON, "{}")) or "{}")
        except json.JSONDecodeError:
            self.info = {}
        cnt = group.get(ff.COUNTERS)
        names = [_text(c) for c in cnt.attrs.get(ff.A_COLUMNS, [])] if cnt is not None else []
        #: The recorder's live counters (samples, lost_samples, crc_errors, ...), empty when the file has none.
        self.counters = dict(zip(names, (int(v) for v in cnt[()]))) if names else {}
        n_time = self._time_ds.shape[0]
        self.n_samples = self._written_rows(int(min(self._raw.shape[0], n_time)))
        self.n_values = int(np.prod(self._raw.shape[1:], dtype=np.int64))
        if self.gain.size != self.n_values or self.offset.size != self.n_values:
            raise SessionFileError(
                f"{where}: calibration has {self.gain.size} gains and {self.offset.size} offsets "
                f"for {self.n_values} sensels"
            )
        gaps = group.get(ff.GAPS)
        self.gaps = np.asarray(gaps[()], dtype=float).reshape(-1, 3) if gaps is not None else np.empty((0, 3))

    @property
    def calibrated(self) -> bool:
        """True when the calibration gives physical units ("N" or "kPa"), False for raw counts."""
        return self.unit in CALIBRATED_UNITS

    def _written_rows(self, n: int) -> int:
        """Rows up to the last finite time: rows a recorder had allocated but not yet written read as NaN (the
        datasets' fill value). Reads the time dataset backwards, a block at a time, only as far as needed.
        """
        step = 65536
        b = n
        while b > 0:  # one iteration per 64 Ki rows of unwritten tail (usually one)
            a = max(0, b - step)
            finite = np.flatnonzero(np.isfinite(self._read(self._time_ds, a, b).astype(np.float64)))
            if len(finite):
                return a + int(finite[-1]) + 1
            b = a
        return 0

    @cached_property
    def time(self) -> np.ndarray:
        """Sample times on the session clock (s), float64, shape (n,), read whole (see :meth:`iter_time`).

        Trailing rows not yet written are not part of the data (``n_samples``); interior ones (NaN) count as
        breaks.
        """
        return self._read(self._time_ds, 0, self.n_samples).astype(np.float64)

    def iter_time(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_row, times)`` blocks (float64) covering ``start:stop``, in bounded memory."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        rows = max(self.block_rows(), 1 << 18)
        for a in range(start, stop, rows):
            yield a, self._read(self._time_ds, a, min(a + rows, stop)).astype(np.float64)

    def read_time(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Times of rows ``start:stop`` (s, session clock), float64."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        return self._read(self._time_ds, start, stop).astype(np.float64)

    def read_raw(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Raw values of rows ``start:stop`` as stored (counts, the file's dtype), shape (rows, *sample shape)."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        return self._read(self._raw, start, stop)

    def _reader(self, ds: h5py.Dataset) -> RowReader:
        reader = self._readers.get(ds.name)
        if reader is None:
            reader = self._readers[ds.name] = RowReader(ds)
        return reader

    def _damaged(self, ds: h5py.Dataset, start: int, stop: int, exc: Exception) -> SessionFileError:
        return SessionFileError(f"{self.path.name}: /devices/{self.name}/{ds.name.rsplit('/', 1)[-1]} is damaged "
                                f"(rows {start}-{stop}: {exc})")

    def _read(self, ds: h5py.Dataset, start: int, stop: int) -> np.ndarray:
        try:
            return self._reader(ds).read(start, stop)  # ds[start:stop], inflated faster
        except (OSError, ValueError) as exc:
            raise self._damaged(ds, start, stop, exc) from None

    def _iter_read(self, ds: h5py.Dataset, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """``ds[start:stop]`` in pieces of at most one stored chunk (:meth:`RowReader.iter`), read-only."""
        try:
            yield from self._reader(ds).iter(start, stop)
        except (OSError, ValueError) as exc:
            raise self._damaged(ds, start, stop, exc) from None

    def times_at(self, rows: np.ndarray) -> np.ndarray:
        """Times of the given rows (one read), float64."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.empty(0)
        uniq, inv = np.unique(rows, return_inverse=True)
        try:
            return np.asarray(self._time_ds[uniq], dtype=np.float64)[inv]
        except (OSError, ValueError) as exc:
            raise SessionFileError(f"{self.path.name}: /devices/{self.name}/time is damaged ({exc})") from None

    def read_calibrated(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Calibrated values of rows ``start:stop``, shape (rows, channels), in :meth:`channel_units`."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        raw = self._read(self._raw, start, stop).reshape(stop - start, self.n_values)
        return apply_calibration(raw, self.gain, self.offset, clip=self.clip_negative,
                                 dtype=np.float32 if self.clip_negative else np.float64)

    def iter_calibrated(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_row, values)`` blocks of :meth:`read_calibrated` covering ``start:stop`` (~32 MiB each)."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        rows = self.block_rows()
        for a in range(start, stop, rows):
            yield a, self.read_calibrated(a, min(a + rows, stop))

    def channel_labels(self) -> list[str]:
        """One label a channel (column of :meth:`read_calibrated`)."""
        return [f"ch{i + 1:02d}" for i in range(self.n_values)]

    def channel_units(self) -> list[str]:
        """The unit of every channel of :meth:`read_calibrated` (``calibration/units`` when the file has them)."""
        if len(self.value_units) == self.n_values:
            return list(self.value_units)
        return [self.unit or "a.u."] * self.n_values

    def csv_source_text(self) -> str:
        """How the CSV export's README names this data."""
        return f"device {self.name!r} (kind {self.kind or '?'})"

    def csv_columns_text(self, columns: list[str]) -> str:
        """How the CSV export's README describes the value columns."""
        return ", ".join(f"{c} [{u or '?'}]" for c, u in zip(columns, self.channel_units()))

    def block_rows(self) -> int:
        """Rows per block of a chunked pass: about 32 MiB of float32, a whole number of HDF5 chunks."""
        rows = max(1, _BLOCK_BYTES // (4 * max(1, self.n_values)))
        chunk = (self._raw.chunks or (1,))[0]
        return max(chunk, rows // chunk * chunk)

    def _calibrated_block(self, start: int, stop: int, rows: np.ndarray | None = None) -> np.ndarray:
        raw = self._read(self._raw, start, stop).reshape(stop - start, self.n_values)
        if rows is not None:  # calibrate only the rows asked for
            raw = raw[rows]
        return apply_calibration(raw, self.gain, self.offset, clip=True)

    def break_indices(self) -> np.ndarray:
        """Sample indices that start a new continuous run: after a sequence gap or a jump in time.

        Returns
        -------
        ndarray of int
            Sorted indices ``i`` such that no step may span samples ``i - 1`` and ``i``.
        """
        return self.breaks_from_blocks(self.iter_time())

    def breaks_from_blocks(self, blocks) -> np.ndarray:
        """:meth:`break_indices` from ``(first_row, times)`` blocks in order (one pass, bounded memory)."""
        n = self.n_samples
        nominal_s = 1.0 / self.rate_hz if self.rate_hz > 0 else None
        parts, prev = [], None
        gap_t = np.sort(self.gaps[:, 0]) if len(self.gaps) else np.empty(0)
        for a, t in blocks:  # one iteration per block of ~2^18 rows
            if nominal_s is None:
                nominal_s = float(np.median(np.diff(t))) if len(t) > 1 else np.inf
            ext = t if prev is None else np.concatenate([[prev], t])
            base = a if prev is None else a - 1
            dt = np.diff(ext)
            parts.append(np.flatnonzero((dt > 1.5 * nominal_s) | (dt <= 0) | ~np.isfinite(dt)) + 1 + base)
            if len(gap_t) and len(t):
                # Gap-table entries: the first sample after the gap's time (times ascend within a run).
                inside = (gap_t >= (ext[0] if prev is not None else -np.inf)) & (gap_t < t[-1])
                parts.append(np.searchsorted(ext, gap_t[inside], side="right") + base)
            prev = t[-1] if len(t) else prev
        if n < 3 or not parts:  # every block is consumed even then: callers may do their own work per block
            return np.empty(0, dtype=np.int64)
        idx = np.unique(np.concatenate(parts).astype(np.int64))
        return idx[(idx > 0) & (idx < n)]


@register_reader("insole")
class InsoleData(DeviceData):
    """One insole of a session: times, calibrated forces, total force and centre of pressure.

    Attributes
    ----------
    name, side, kind, protocol : str
        Device name and attributes; ``side`` is "left" or "right".
    rate_hz : float
        Nominal sampling rate.
    unit : str
        Calibration unit: "N" (per-sensel force), "kPa" (pressure, times sensel area gives force) or anything
        else for raw counts (then ``calibrated`` is False and forces are in counts).
    n_samples, n_values : int
        Samples and sensels.
    positions_mm : ndarray, shape (sensels, 2)
        Sensel centres in the foot frame (x medio-lateral, y along the long axis from the heel).
    areas_mm2 : ndarray, shape (sensels,)
    foot_length_mm : float
    gaps : ndarray, shape (k, 3)
        (time, first missing seq, count) of every sequence jump and reconnection.
    """

    #: Body weight (N) of the session, set by :class:`Session` for calibrated insoles (NaN otherwise): the COP's
    #: load level.
    body_weight_n: float = float("nan")

    def __init__(self, path: Path, name: str, group: h5py.Group):
        super().__init__(path, name, group)
        lay = group.get(ff.LAYOUT)
        where = f"{path.name}: /devices/{name}/layout"
        if lay is None or ff.LAYOUT_POSITIONS not in lay:
            raise SessionFileError(f"{where} is missing (insoles need sensel positions)")
        self.positions_mm = np.asarray(lay[ff.LAYOUT_POSITIONS][()], dtype=np.float64).reshape(-1, 2)
        areas = lay.get(ff.LAYOUT_AREAS)
        self.areas_mm2 = (np.asarray(areas[()], dtype=np.float64).ravel() if areas is not None
                          else np.ones(self.n_values))
        self.foot_length_mm = _float(lay.attrs.get(ff.A_FOOT_LENGTH_MM))
        if len(self.positions_mm) != self.n_values or len(self.areas_mm2) != self.n_values:
            raise SessionFileError(f"{where} describes {len(self.positions_mm)} sensels, the data has {self.n_values}")
        if not np.isfinite(self.foot_length_mm) or self.foot_length_mm <= 0:
            y = self.positions_mm[:, 1]
            self.foot_length_mm = float(np.ptp(y)) if self.n_values > 1 else float("nan")

    @property
    def sensel_force_factor(self) -> np.ndarray:
        """Factor from calibrated value to newtons per sensel (kPa x mm^2 / 1000 = N; 1 otherwise)."""
        if self.unit == "kPa":
            return self.areas_mm2 * 1e-3
        return np.ones(self.n_values)

    def forces(self, start: int = 0, stop: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """Calibrated per-sensel force (N, or counts when uncalibrated), float32, shape (stop - start, sensels).

        Negative values (below the calibration offset) are set to zero. ``rows`` (indices into ``start:stop``),
        when given, selects rows: ``forces(a, b, rows)`` is ``forces(a, b)[rows]``, calibrating only those.
        """
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        block = self._calibrated_block(start, stop, rows)
        if self.unit == "kPa":
            block *= self.sensel_force_factor.astype(np.float32)
        return block

    def iter_forces(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_row, forces)`` blocks of :meth:`forces` covering ``start:stop``."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        rows = self.block_rows()
        for a in range(start, stop, rows):
            yield a, self.forces(a, min(a + rows, stop))

    clip_negative = True

    def read_calibrated(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """:meth:`forces` (the insole's calibrated values are forces per sensel)."""
        return self.forces(start, stop)

    def channel_labels(self) -> list[str]:
        """``s01``, ``s02``... one a sensel."""
        return [f"s{i + 1:02d}" for i in range(self.n_values)]

    def channel_units(self) -> list[str]:
        """"N" per sensel when calibrated, else the raw unit."""
        return ["N" if self.calibrated else (self.unit or "counts")] * self.n_values

    def csv_source_text(self) -> str:
        """How the CSV export's README names this data."""
        return f"device {self.name!r}"

    def csv_columns_text(self, columns: list[str]) -> str:
        """How the CSV export's README describes the value columns."""
        return f"force per sensel s01.. in {self.channel_units()[0] if self.n_values else 'N'}"

    def region_masks(self) -> dict[str, np.ndarray]:
        """Sensels of the heel (first third of foot length) and forefoot (last third) regions."""
        y = self.positions_mm[:, 1] / self.foot_length_mm * 100.0 if self.foot_length_mm > 0 else np.zeros(1)
        return {"heel": y < 100.0 / 3.0, "forefoot": y > 200.0 / 3.0}

    def iter_derived(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """One chunked pass over the raw data: ``(first_row, times, derived)`` blocks covering ``start:stop``.

        ``derived`` (float32, shape (rows, 5)) holds total force, moment x, moment y (N mm), heel force and
        forefoot force (see :meth:`region_masks`). Linear in the raw values (``raw @ W - offset @ W``, one matrix
        product per block): values below the calibration offset are kept, so zero-mean noise averages out instead
        of biasing the totals upwards.

        Each block's product is made over sub-blocks of about 1 MB of float32 filled straight from the inflated
        chunks (:meth:`_derived_block`): the same numbers as one product over the block, without a float32 copy
        of the whole block going through memory (the raw pass of an hour of a 960-sensel insole is 2.6 G values).
        """
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        masks = self.region_masks()
        w = np.column_stack([np.ones(self.n_values), self.positions_mm[:, 0], self.positions_mm[:, 1],
                             masks["heel"], masks["forefoot"]]) * (self.sensel_force_factor * self.gain)[:, None]
        const = (self.offset.astype(np.float64) @ w).astype(np.float32)
        w32 = w.astype(np.float32)
        rows = self.block_rows()
        for a in range(start, stop, rows):
            b = min(a + rows, stop)
            t = self._read(self._time_ds, a, b).astype(np.float64)
            d = self._derived_block(a, b, w32)
            d -= const
            yield a, t, d

    #: Rows of the sub-blocks of :meth:`iter_derived`'s products: about 1 MB of float32 at 960 sensels (in cache).
    #: At least 256 rows: BLAS may take another path, with other roundings, for much smaller products.
    SUB_BLOCK_BYTES = 1 << 20
    MIN_SUB_ROWS = 256

    def _derived_block(self, a: int, b: int, w32: np.ndarray) -> np.ndarray:
        """``raw[a:b] @ w32`` (float32), one product per sub-block; the last sub-block takes the remainder."""
        n_values = self.n_values
        sub = max(self.MIN_SUB_ROWS, self.SUB_BLOCK_BYTES // (4 * max(1, n_values)))
        if b - a < 2 * sub:  # one product
            sub = b - a
        cuts = list(range(a, b, sub))
        if len(cuts) > 1 and b - cuts[-1] < sub:  # no short last sub-block: the one before takes the remainder
            cuts.pop()
        cuts.append(b)
        out = np.empty((b - a, w32.shape[1]), dtype=np.float32)
        buf = np.empty((max(c1 - c0 for c0, c1 in zip(cuts[:-1], cuts[1:])), n_values), dtype=np.float32)
        pieces = self._iter_read(self._raw, a, b)
        piece, p0 = np.empty((0, n_values)), a  # the current inflated chunk's rows, and its first row
        for c0, c1 in zip(cuts[:-1], cuts[1:]):  # one iteration per sub-block (a few stored chunks)
            r = c0
            while r < c1:  # one iteration per stored chunk within the sub-block
                if r >= p0 + len(piece):
                    p0, piece = next(pieces)
                    piece = piece.reshape(len(piece), n_values)
                k = min(c1, p0 + len(piece)) - r
                np.copyto(buf[r - c0:r - c0 + k], piece[r - p0:r - p0 + k], casting="unsafe")
                r += k
            np.matmul(buf[:c1 - c0], w32, out=out[c0 - a:c1 - a])
        return out

    @cached_property
    def _derived(self) -> np.ndarray:
        """:meth:`iter_derived` of the whole file in memory, (n, 5) float32 (20 bytes per sample)."""
        out = np.empty((self.n_samples, 5), dtype=np.float32)
        for a, _, d in self.iter_derived():
            out[a:a + len(d)] = d
        return out

    @property
    def total_force_n(self) -> np.ndarray:
        """Sum of the sensel forces (N, or counts when uncalibrated), shape (n,)."""
        return self._derived[:, 0]

    @property
    def moments_nmm(self) -> np.ndarray:
        """First moments sum(f_i * position_i) (N mm), shape (n, 2); COP = moments / total force."""
        return self._derived[:, 1:3]

    @property
    def region_forces_n(self) -> dict[str, np.ndarray]:
        """Total force of the heel and forefoot regions (see :meth:`region_masks`)."""
        return {"heel": self._derived[:, 3], "forefoot": self._derived[:, 4]}

    @cached_property
    def cop_mm(self) -> np.ndarray:
        """Centre of pressure in the foot frame (mm), shape (n, 2), every sample in memory.

        NaN where the foot carries less than :func:`~treadlab.analysis.cop.min_load` (5 % of body weight when
        the session gives one and the insole is calibrated, else 2 % of the 99th percentile of its total force);
        within the layout's bounds (:func:`~treadlab.analysis.cop.cop_from_sums`).
        """
        return cop_from_sums(self._derived[:, :3], min_load(self.body_weight_n, self.total_force_n),
                             layout_bounds_mm(self.positions_mm))


@register_reader("mat")
class MatData(DeviceData):
    """The treadmill pressure mat: frames (rows, cols) on a square grid of ``pitch_mm``.

    Attributes
    ----------
    rows, cols : int
    pitch_mm : float
        Sensel spacing; a sensel's area is ``pitch_mm ** 2``.
    unit : str
        Calibration unit ("kPa" for a calibrated mat; anything else is raw counts).
    """

    def __init__(self, path: Path, name: str, group: h5py.Group):
        super().__init__(path, name, group)
        shape = self._raw.shape
        if len(shape) != 3:
            raise SessionFileError(f"{path.name}: /devices/{name}/raw has shape {shape}, a mat needs (n, rows, cols)")
        self.rows, self.cols = int(shape[1]), int(shape[2])
        lay = group.get(ff.LAYOUT)
        pitch = group.attrs.get(ff.A_PITCH_MM, lay.attrs.get(ff.A_PITCH_MM) if lay is not None else None)
        pitch = np.asarray(pitch if pitch is not None else np.nan, dtype=float).ravel()
        self.pitch_mm = float(pitch.mean()) if pitch.size else float("nan")
        if not np.isfinite(self.pitch_mm) or self.pitch_mm <= 0:
            raise SessionFileError(f"{path.name}: /devices/{name} has no valid pitch_mm attribute")

    def frames(self, start: int = 0, stop: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """Calibrated frames (kPa, or counts), float32, shape (stop - start, rows, cols); negatives set to 0.

        ``rows`` (indices into ``start:stop``), when given, selects frames: ``frames(a, b, rows)`` is
        ``frames(a, b)[rows]``, calibrating only those.
        """
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        return self._calibrated_block(start, stop, rows).reshape(-1, self.rows, self.cols)

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_row, frames)`` blocks covering ``start:stop``."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        rows = self.block_rows()
        for a in range(start, stop, rows):
            yield a, self.frames(a, min(a + rows, stop))

    @property
    def force_factor(self) -> float:
        """KPa times sensel area in mm^2 / 1000 gives newtons."""
        return self.pitch_mm**2 * 1e-3 if self.unit == "kPa" else 1.0

    clip_negative = True

    def read_calibrated(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """:meth:`frames` flattened row-major, shape (rows of data, rows x cols)."""
        frames = self.frames(start, stop)
        return frames.reshape(len(frames), -1)

    def channel_labels(self) -> list[str]:
        """``rRRcCC``, row-major."""
        return [f"r{r:02d}c{c:02d}" for r in range(self.rows) for c in range(self.cols)]

    def channel_units(self) -> list[str]:
        """The calibration unit ("kPa") per sensel, or counts."""
        return [self.unit or "counts"] * self.n_values

    def csv_source_text(self) -> str:
        """How the CSV export's README names this data."""
        return f"device {self.name!r}"

    def csv_columns_text(self, columns: list[str]) -> str:
        """How the CSV export's README describes the value columns."""
        return f"pressure per sensel, row-major rRRcCC in {self.unit or 'counts'}"


@register_reader("lsl")
class StreamData(DeviceData):
    """An external stream recorded beside our devices (``kind`` "lsl": a Lab Streaming Layer inlet).

    Values are in the stream's own unit (``unit``; ``units`` per channel) and keep their sign (EMG, EEG...).

    Attributes
    ----------
    labels, units : list of str
        Channel labels and units from the stream's metadata (``info["labels"]``, ``info["units"]``).
    """

    def __init__(self, path: Path, name: str, group: h5py.Group):
        super().__init__(path, name, group)
        self.labels = [str(x) for x in self.info.get("labels", [])] or [f"ch{i + 1:02d}" for i in range(self.n_values)]
        self.units = [str(x) for x in self.info.get("units", [])] or [self.unit] * self.n_values

    stream = True

    def values(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Calibrated values (float64, sign kept), shape (stop - start, channels)."""
        return self.read_calibrated(start, stop)

    def iter_values(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_row, values)`` blocks of :meth:`values` covering ``start:stop``."""
        return self.iter_calibrated(start, stop)

    def channel_labels(self) -> list[str]:
        """The stream's channel labels."""
        return list(self.labels)

    def channel_units(self) -> list[str]:
        """The stream's channel units."""
        return list(self.units)

    def csv_source_text(self) -> str:
        """How the CSV export's README names this data."""
        return f"external stream {self.name!r} ({self.info.get('name', '')}, {self.info.get('type', '')})"


class Session:
    """An open session file. Use as a context manager or call :meth:`close`.

    Attributes
    ----------
    path : Path
    attrs : dict
        Every root attribute (text decoded).
    participant, condition, shoe, notes, rig : str
    body_mass_kg, treadmill_speed_mps : float
        NaN when not given.
    devices : dict of str to DeviceData
        One reader a device group, chosen by its ``kind`` (:data:`READERS`).
    insoles : dict of str to InsoleData
        Keyed by side ("left", "right").
    mats : list of MatData
    streams : dict of str to StreamData
        External streams recorded beside the devices (LSL), not in ``devices``.
    status : {"complete", "recording", "crashed"}
        How the file was found (:func:`treadlab.sessionfile.open_session_file`).
    markers : DataFrame
        Columns ``time`` (s, session clock) and ``label``.
    events : DataFrame
        Columns ``time``, ``source``, ``level``, ``text``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file, self.status = _open(self.path)
        try:
            self._load()
        except SessionFileError:
            self._file.close()
            raise
        except HDF5_ERRORS as exc:
            # Damaged metadata surfaces from h5py as any of these, deep inside a read.
            self._file.close()
            raise SessionFileError(f"{self.path} is damaged and cannot be read ({type(exc).__name__}: {exc})") from None
        except BaseException:
            self._file.close()
            raise

    def _load(self) -> None:
        f = self._file
        version = f.attrs.get(ff.A_FORMAT_VERSION)
        if _float(version) != ff.FORMAT_VERSION:
            raise SessionFileError(
                f"{self.path} has session format version {version}; this treadlab reads version {ff.FORMAT_VERSION}"
            )
        self.attrs = {k: (_text(v) if isinstance(v, (bytes, str, np.bytes_)) else v) for k, v in f.attrs.items()}
        for key in ff.TEXT_ROOT_ATTRS:
            setattr(self, key, _text(f.attrs.get(key, "")))
        self.body_mass_kg = _float(f.attrs.get(ff.A_BODY_MASS_KG))
        self.treadmill_speed_mps = _float(f.attrs.get(ff.A_TREADMILL_SPEED_MPS))
        if ff.DEVICES not in f:
            raise SessionFileError(f"{self.path} has no /devices group (truncated or not a session)")
        self.devices: dict[str, DeviceData] = {}
        self.streams: dict[str, DeviceData] = {}
        for name, group in f[ff.DEVICES].items():  # one reader per device group, by its kind (READERS)
            data = reader_for(_text(group.attrs.get(ff.A_KIND, "")), group)(self.path, name, group)
            (self.streams if data.stream else self.devices)[name] = data
        self.insoles = {d.side: d for d in self.of_kind("insole") if d.side}
        for d in self.insoles.values():
            d.body_weight_n = self.body_weight_n if d.calibrated else float("nan")
        self.mats = self.of_kind("mat")
        self.markers = _table(f.get(ff.MARKERS), ff.MARKER_COLUMNS)
        self.events = _table(f.get(ff.EVENTS), ff.EVENT_COLUMNS)

    def of_kind(self, kind: str) -> list[DeviceData]:
        """The devices read by the reader registered for ``kind`` (files without a kind attribute included)."""
        cls = READERS.get(kind)
        return [d for d in self.devices.values() if cls is not None and type(d) is cls]

    @property
    def gaps(self) -> pd.DataFrame:
        """Every device's gaps: ``device``, ``time`` (last sample before), ``first_missing_seq``, ``count``."""
        parts = [pd.DataFrame({"device": name, "time": d.gaps[:, 0], "first_missing_seq": d.gaps[:, 1],
                               "count": d.gaps[:, 2]}) for name, d in self.devices.items() if len(d.gaps)]
        if not parts:
            return pd.DataFrame({"device": [], "time": [], "first_missing_seq": [], "count": []})
        return pd.concat(parts, ignore_index=True).sort_values("time", kind="stable").reset_index(drop=True)

    @property
    def body_weight_n(self) -> float:
        """Body mass times standard gravity (N); NaN without a body mass."""
        m = self.body_mass_kg
        return m * G_MPS2 if np.isfinite(m) and m > 0 else float("nan")

    @property
    def time_range_s(self) -> tuple[float, float]:
        """First and last sample time over every device (session clock, s)."""
        firsts, lasts = [], []
        for d in self.devices.values():
            if d.n_samples:
                t = d.read_time(0, 1)[0], d.read_time(d.n_samples - 1, d.n_samples)[0]
                firsts.append(float(t[0]))
                lasts.append(float(t[1]))
        return (min(firsts), max(lasts)) if firsts else (0.0, 0.0)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last sample of any device."""
        a, b = self.time_range_s
        return b - a

    def marker_time(self, label: str) -> float:
        """Time of the first marker with this label; :class:`AnalysisError` when there is none."""
        from treadlab.errors import AnalysisError

        hit = self.markers.loc[self.markers["label"] == label, "time"]
        if hit.empty:
            known = ", ".join(repr(x) for x in self.markers["label"]) or "none"
            raise AnalysisError(f"no marker {label!r} in {self.path.name} (markers: {known})")
        return float(hit.iloc[0])

    def refresh(self) -> None:
        """Re-read dataset sizes of a file still being recorded (SWMR); cached signals are recomputed."""
        try:
            if self._file.swmr_mode:
                for ds in self._file.values():
                    _refresh_tree(ds)
            self._load()
        except HDF5_ERRORS as exc:
            raise SessionFileError(f"{self.path} is damaged and cannot be read ({type(exc).__name__}: {exc})") from None

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Session({str(self.path)!r}, devices={list(self.devices)})"


def _refresh_tree(node) -> None:
    if isinstance(node, h5py.Dataset):
        node.id.refresh()
    elif isinstance(node, h5py.Group):
        for child in node.values():
            _refresh_tree(child)


def read_session(path: str | Path) -> Session:
    """Open a session file read-only (also while it is being recorded).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Session

    Raises
    ------
    SessionFileError
        The file is missing, not HDF5, not a treadlab session, of another format version, damaged or truncated.

    Examples
    --------
    >>> with read_session("run.h5") as s:  # doctest: +SKIP
    ...     left = s.insoles["left"]
    ...     print(left.rate_hz, left.total_force_n.max())
    """
    return Session(path)
