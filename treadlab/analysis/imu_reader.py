"""Read the inertial sensors of a session (kind "imu", ``docs/file-format.md`` "IMU devices"), a block at a time.

:class:`ImuData` gives each sensor in its physical unit: acceleration in g, angular rate in deg/s, magnetic field
in uT, as ``value = gain * (raw - offset)`` from the device's CALIBRATION (unit "imu"). A device that sent no
calibration (unit "raw") is converted from its full scale: ``value = raw / 2**(adc_bits - 1) * range`` with
``adc_bits`` from INFO (16 for i16), the range of the channel's sensor (``range_g``, ``range_dps``, ``range_ut``).

Clipping: a sample whose reading on any axis of a sensor is at :data:`~treadlab.kinds.imu.CLIP_FRACTION` (95 %)
of that sensor's full scale or more is clipping (:meth:`ImuData.clipped_mask`, :meth:`ImuData.clipping_fraction`).
The module also registers the kind's C3D analog channels (:func:`imu_c3d`); the CSV export needs nothing more
than the reader's channel labels and units.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from treadlab.analysis.export import register_c3d_channels
from treadlab.analysis.session import DeviceData, _text, register_reader
from treadlab.calibration import apply_calibration
from treadlab.errors import SessionFileError
from treadlab.kinds import Calibration
from treadlab.kinds import imu as k

__all__ = ["SENSORS", "ImuData", "imu_c3d"]

#: The sensors of an imu by name, with their channels.
SENSORS = {"acc": k.ACC, "gyro": k.GYRO, "mag": k.MAG}
_RANGE_OF = {"acc": k.A_RANGE_G, "gyro": k.A_RANGE_DPS, "mag": k.A_RANGE_UT}


def _attr_float(attrs: dict, info: dict, key: str) -> float:
    v = attrs.get(key, info.get(key))
    try:
        v = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return v if np.isfinite(v) and v > 0 else float("nan")


@register_reader("imu")
class ImuData(DeviceData):
    """One inertial sensor of a session.

    Attributes
    ----------
    placement : str
        Where it is worn (``pelvis``, ``trunk``, ``tibia_left``, ``tibia_right``; ``foot_left``/``foot_right``
        for insole-borne sensors).
    channels : list of str
        Channel names, the column order of ``raw`` (``ax``, ``ay``, ``az``, ``gx``...).
    range_g, range_dps, range_ut : float
        Full scale of the accelerometer (g), gyroscope (deg/s) and magnetometer (uT); NaN when the device has no
        such sensor or did not state it.
    has_gyro, has_mag : bool
        All three gyroscope (magnetometer) axes are recorded.
    """

    def __init__(self, path: Path, name: str, group: h5py.Group):
        super().__init__(path, name, group)
        attrs, info = self.attrs, self.info
        chans = attrs.get(k.A_CHANNELS)
        if chans is not None and not isinstance(chans, str):
            self.channels = [_text(c) for c in np.asarray(chans).ravel()]
        else:
            self.channels = [str(c) for c in info.get("channels", [])]
        if len(self.channels) != self.n_values:
            self.channels = [f"ch{i + 1:02d}" for i in range(self.n_values)]
        self.placement = _text(attrs.get(k.A_PLACEMENT, info.get("placement", "")))
        self.range_g = _attr_float(attrs, info, k.A_RANGE_G)
        self.range_dps = _attr_float(attrs, info, k.A_RANGE_DPS)
        self.range_ut = _attr_float(attrs, info, k.A_RANGE_UT)
        self.has_gyro = all(c in self.channels for c in k.GYRO)
        self.has_mag = all(c in self.channels for c in k.MAG)
        self._full_scale = np.array([self._range_of_channel(c) for c in self.channels])
        stated = {**info, k.A_RANGE_G: self.range_g, k.A_RANGE_DPS: self.range_dps, k.A_RANGE_UT: self.range_ut}
        gain, offset = k.physical_scale(self.channels, stated, Calibration(self.unit, self.gain, self.offset))
        #: Channels in physical units (False: counts, a raw file whose sensor range is unknown).
        self.physical = np.isfinite(gain)
        gain = np.where(self.physical, gain, self.gain)
        offset = np.where(self.physical, offset, self.offset)
        # The calibration in use (the file's, or from the full scale): read_calibrated is gain * (raw - offset).
        self.gain, self.offset = gain.astype(np.float32), offset.astype(np.float32)
        self._gain64, self._offset64 = gain.astype(np.float64), offset.astype(np.float64)
        if acc_missing := [c for c in k.ACC if c not in self.channels]:
            raise SessionFileError(f"{path.name}: /devices/{name} is an imu without {' '.join(acc_missing)} "
                                   f"(channels {' '.join(self.channels)})")

    def _range_of_channel(self, name: str) -> float:
        letter = name[:1]
        return {"a": self.range_g, "g": self.range_dps, "m": self.range_ut}.get(letter, float("nan"))

    def _columns(self, sensor: str) -> list[int] | None:
        names = SENSORS[sensor]
        if not all(c in self.channels for c in names):
            return None
        return [self.channels.index(c) for c in names]

    @property
    def calibrated(self) -> bool:
        """True when every value is physical: a CALIBRATION of unit "imu", or every sensor's range known."""
        return bool(np.all(self.physical))

    # ------------------------------------------------------------------------------------------ values

    def _physical(self, raw: np.ndarray, cols: list[int]) -> np.ndarray:
        return apply_calibration(raw[:, cols], self.gain[cols], self.offset[cols])  # float32, signed

    def _raw2d(self, start: int, stop: int | None) -> np.ndarray:
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        start = min(max(int(start), 0), stop)
        return self._read(self._raw, start, stop).reshape(stop - start, self.n_values)

    def read_calibrated(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Every channel in its unit (:meth:`channel_units`), float32, shape (rows, channels)."""
        return self._physical(self._raw2d(start, stop), list(range(self.n_values)))

    def read_acc_g(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Acceleration ``ax ay az`` (g, gravity included, sensor frame), float32, shape (rows, 3)."""
        return self._physical(self._raw2d(start, stop), self._columns("acc"))

    def read_gyro_dps(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """Angular rate ``gx gy gz`` (deg/s), float32, shape (rows, 3); None without a gyroscope."""
        cols = self._columns("gyro")
        return None if cols is None else self._physical(self._raw2d(start, stop), cols)

    def read_mag_ut(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """Magnetic field ``mx my mz`` (uT), float32, shape (rows, 3); None without a magnetometer."""
        cols = self._columns("mag")
        return None if cols is None else self._physical(self._raw2d(start, stop), cols)

    def iter_imu(self, start: int = 0, stop: int | None = None
                 ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]]:
        """Yield ``(first_row, time_s, acc_g, gyro_dps_or_None)`` blocks covering ``start:stop`` in bounded memory
        (about 32 MiB of float32 a block, whole HDF5 chunks).
        """
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        acc, gyro = self._columns("acc"), self._columns("gyro")
        rows = self.block_rows()
        for a in range(start, stop, rows):  # one iteration per block
            b = min(a + rows, stop)
            raw = self._raw2d(a, b)
            yield (a, self.read_time(a, b), self._physical(raw, acc),
                   None if gyro is None else self._physical(raw, gyro))

    def channel_labels(self) -> list[str]:
        """The channel names (``ax``, ``ay``...)."""
        return list(self.channels)

    def channel_units(self) -> list[str]:
        """``g``, ``deg/s`` or ``uT`` per channel (raw counts are converted through the ranges; "counts" where a
        raw file's range is unknown).
        """
        return [k.SENSOR_UNITS.get(c[:1], "a.u.") if ok else "counts" for c, ok in zip(self.channels, self.physical)]

    def csv_source_text(self) -> str:
        """How the CSV export's README names this data."""
        return f"imu {self.name!r} (placement {self.placement or '?'})"

    # ------------------------------------------------------------------------------------------ clipping

    def _clip_columns(self, sensor: str) -> list[int]:
        sensors = list(SENSORS) if sensor == "any" else [sensor]
        if any(s not in SENSORS for s in sensors):
            raise ValueError(f"sensor must be 'acc', 'gyro', 'mag' or 'any', got {sensor!r}")
        cols = []
        for s in sensors:
            c = self._columns(s)
            if c is not None and np.isfinite(getattr(self, _RANGE_OF[s])):
                cols += c
        return cols

    def clipped_mask(self, start: int = 0, stop: int | None = None, sensor: str = "any") -> np.ndarray:
        """True for each sample of rows ``start:stop`` at 95 % or more of full scale on any axis of ``sensor``
        (``"acc"``, ``"gyro"``, ``"mag"`` or ``"any"``); False where the range is unknown. Shape (rows,).
        """
        raw = self._raw2d(start, stop)
        cols = self._clip_columns(sensor)
        if not cols:
            return np.zeros(len(raw), bool)
        limits = self._clip_limits(cols, raw.dtype)
        if limits is not None:  # integer counts: compare with the counts at the clip level (exact, no conversion)
            lo, hi = limits
            sub = raw[:, cols]
            return np.any((sub >= hi) | (sub <= lo), axis=1)
        values = apply_calibration(raw[:, cols], self._gain64[cols], self._offset64[cols], dtype=np.float64)
        return np.any(np.abs(values) >= k.CLIP_FRACTION * self._full_scale[cols], axis=1)

    def _clip_limits(self, cols: list[int], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray] | None:
        """Per column, the highest count that clips low and the lowest that clips high: the counts where
        ``|gain * (raw - offset)| >= 95 % of full scale`` (float64, as :meth:`clipped_mask` defines it) starts,
        found from the formula and checked at the neighbouring count. None for float raw or a gain <= 0.
        """
        gain, offset = self._gain64[cols], self._offset64[cols]
        if dtype.kind not in "iu" or np.any(gain <= 0):
            return None
        level = k.CLIP_FRACTION * self._full_scale[cols]

        def clips(x):
            return np.abs(gain * (x - offset)) >= level

        hi = np.ceil(offset + level / gain)
        hi = np.where(clips(hi - 1), hi - 1, np.where(clips(hi), hi, hi + 1))
        lo = np.floor(offset - level / gain)
        lo = np.where(clips(lo + 1), lo + 1, np.where(clips(lo), lo, lo - 1))
        info = np.iinfo(dtype)
        if np.any(hi > info.max) or np.any(lo < info.min):
            return None  # a level the counts cannot reach: the float path
        return lo.astype(dtype), hi.astype(dtype)

    def clipped_samples(self, sensor: str = "any") -> int:
        """How many samples of the recording clip (:meth:`clipped_mask`), counted a block at a time."""
        rows = self.block_rows()
        return int(sum(np.count_nonzero(self.clipped_mask(a, min(a + rows, self.n_samples), sensor))
                       for a in range(0, self.n_samples, rows)))

    def clipping_fraction(self, sensor: str = "any") -> float:
        """Fraction of the samples that clip (0-1); NaN without samples or when no range of ``sensor`` is known."""
        if self.n_samples == 0 or not self._clip_columns(sensor):
            return float("nan")
        return self.clipped_samples(sensor) / self.n_samples


def imu_c3d(dev: ImuData, index: int, grid) -> list[tuple[str, str, np.ndarray]]:
    """C3D analog channels of one imu: ``<device>_<channel>`` (``pelvis_imu_ax``...) in g, deg/s, uT,
    resampled onto the export's time base (anti-aliased when that is slower than the imu).
    """
    prefix = dev.name
    blocks = ((dev.read_time(a, a + len(v)), v) for a, v in dev.iter_calibrated())
    rows = grid.resample(blocks, dev.rate_hz, dev.n_values)
    return [(f"{prefix}_{c}", u, rows[i]) for i, (c, u) in enumerate(zip(dev.channels, dev.channel_units()))]


register_c3d_channels("imu", imu_c3d)
