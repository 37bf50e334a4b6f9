"""Per-device ring buffer of the latest seconds of samples, for live views that poll (the desktop app)."""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """The latest ``capacity_n`` samples of one device (values and session time), thread-safe.

    One writer (the device's reader thread) calls :meth:`append`; any thread calls :meth:`snapshot`.

    Parameters
    ----------
    capacity_n : int
        Samples kept.
    n_values : int
        Values per sample (mats flattened).
    dtype : numpy dtype
        Dtype of the values.
    """

    def __init__(self, capacity_n: int, n_values: int, dtype: np.dtype) -> None:
        self.capacity_n = max(1, int(capacity_n))
        self._values = np.empty((self.capacity_n, n_values), dtype=dtype)
        self._values.fill(0)  # touch every page now, not one page fault per append while recording
        self._time_s = np.zeros(self.capacity_n, dtype=np.float64)
        self._total_n = 0
        self._lock = threading.Lock()

    @property
    def total_n(self) -> int:
        """Samples appended since creation."""
        return self._total_n

    def append(self, time_s: np.ndarray, values: np.ndarray) -> None:
        """Add samples (session times and values, shape (k, n_values)); the oldest are overwritten."""
        k = len(time_s)
        if k == 0:
            return
        if k > self.capacity_n:
            time_s, values, k = time_s[-self.capacity_n :], values[-self.capacity_n :], self.capacity_n
        with self._lock:
            start = self._total_n % self.capacity_n
            first = min(k, self.capacity_n - start)
            self._time_s[start : start + first] = time_s[:first]
            self._values[start : start + first] = values[:first]
            if first < k:
                self._time_s[: k - first] = time_s[first:]
                self._values[: k - first] = values[first:]
            self._total_n += k

    def times_s(self, last_s: float) -> np.ndarray:
        """Session times of the samples of the last ``last_s`` seconds (no values copied: cheap, for rates)."""
        with self._lock:
            n = min(self._total_n, self.capacity_n)
            end = self._total_n % self.capacity_n
            time_s = self._time_s[(np.arange(end - n, end)) % self.capacity_n]
        return time_s[time_s >= time_s[-1] - last_s] if n else time_s

    def snapshot(self, last_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the samples of the last ``last_s`` seconds (all kept ones when None), oldest first.

        Returns
        -------
        time_s : ndarray of float64, shape (k,)
        values : ndarray, shape (k, n_values)
        """
        with self._lock:
            n = min(self._total_n, self.capacity_n)
            end = self._total_n % self.capacity_n
            idx = (np.arange(end - n, end)) % self.capacity_n
            time_s = self._time_s[idx]
            if last_s is not None and n:
                # Select on the times first, so only the rows asked for are copied (a live view polling the
                # last few samples of a 10 s, 960-sensel ring copies kilobytes, not megabytes).
                keep = time_s >= time_s[-1] - last_s
                idx, time_s = idx[keep], time_s[keep]
            values = self._values[idx]
        return time_s, values
