"""Per-sample signals of an analysis, kept on disk so that memory does not grow with the length of a session.

:func:`~treadlab.analysis.analyze` reads each insole's raw data once and writes the few per-sample signals it
works with (time, total force, moments, region forces; later the baseline-corrected and the filtered force and
the centre of pressure) to column files in a temporary folder (:class:`SignalStore`). Every later pass reads
them back a block at a time (:func:`block_plan`), and the analysis keeps only step tables. :class:`FootSignals`
gives the signals of one foot to the analyst, a block or a range of steps at a time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from treadlab.errors import AnalysisError

__all__ = ["FootSignals", "SignalStore", "block_plan"]

#: Samples per block of the streaming passes (the core; each block also reads ``pad`` samples either side).
BLOCK_SAMPLES = 1 << 18


def block_plan(n: int, core_n: int, pad_n: int) -> list[tuple[int, int, int, int]]:
    """Blocks ``(lo, a, b, hi)`` covering ``0..n``: cores ``[a, b)`` tile the samples, ``[lo, hi)`` adds ``pad_n``
    samples either side. A signal shorter than 1.5 cores is one block (no padding needed).
    """
    core_n = max(1, int(core_n))
    if n <= core_n + core_n // 2:
        return [(0, 0, n, n)]
    cuts = list(range(0, n, core_n))
    if n - cuts[-1] < core_n // 2:  # no short last block: the last core takes the remainder
        cuts.pop()
    cuts.append(n)
    return [(max(0, a - pad_n), a, b, min(n, b + pad_n)) for a, b in zip(cuts[:-1], cuts[1:])]


class SignalStore:
    """Column files of per-sample signals in a temporary folder, deleted by :meth:`close` (or at exit).

    Parameters
    ----------
    folder : str or Path, optional
        Where to make the temporary folder (default: the system's temporary folder).
    """

    _DTYPES = {"time_s": np.float64}

    def __init__(self, folder: str | Path | None = None):
        try:
            self._tmp = tempfile.TemporaryDirectory(prefix="treadlab-analysis-", dir=folder)
        except OSError as exc:
            raise AnalysisError(f"cannot make a temporary folder for the analysis ({exc})") from None
        self.path = Path(self._tmp.name)
        self._shape: dict[str, tuple[np.dtype, int]] = {}

    def _file(self, key: str, name: str) -> Path:
        return self.path / f"{key}.{name}.bin"

    def append(self, key: str, name: str, values: np.ndarray) -> None:
        """Append rows (1-D, or 2-D with a fixed number of columns) to column ``name`` of ``key``."""
        dtype = np.dtype(self._DTYPES.get(name, np.float32))
        v = np.ascontiguousarray(values, dtype=dtype)
        width = 1 if v.ndim == 1 else int(v.shape[1])
        self._shape.setdefault(f"{key}.{name}", (dtype, width))
        try:
            with open(self._file(key, name), "ab") as fh:
                v.tofile(fh)
        except OSError as exc:
            raise AnalysisError(f"cannot write the analysis' temporary data in {self.path} ({exc})") from None

    def has(self, key: str, name: str) -> bool:
        """True when column ``name`` of ``key`` has been written."""
        return f"{key}.{name}" in self._shape

    def read(self, key: str, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of a column (1-D, or 2-D for multi-column signals)."""
        dtype, width = self._shape[f"{key}.{name}"]
        start, stop = max(0, int(start)), max(int(start), int(stop))
        out = np.fromfile(self._file(key, name), dtype=dtype, count=(stop - start) * width,
                          offset=start * width * dtype.itemsize)
        return out if width == 1 else out.reshape(-1, width)

    def close(self) -> None:
        """Delete the folder (idempotent)."""
        self._tmp.cleanup()


class FootSignals:
    """Per-sample signals of one foot that its steps were computed from, read on request.

    Parameters
    ----------
    foot : str
    reader : callable
        ``reader(start, stop)`` returns a dict with ``time_s``, ``force``, ``force_bw`` and ``cop_mm`` (or None).
    n_samples : int
    breaks : ndarray of int
    device : InsoleData or MatData
    has_cop : bool
    extra : dict, optional

    Attributes
    ----------
    foot : str
    n_samples : int
    breaks : ndarray of int
        Sample indices that start a new continuous run.
    device : InsoleData or MatData
    has_cop : bool
        Whether ``cop_mm`` is given (insoles with sensel positions).
    extra : dict
        ``filter_cutoff_hz`` and other parameters.

    Notes
    -----
    ``force`` is the baseline-corrected total force (N, or counts when uncalibrated), unfiltered; ``force_bw``
    the same low-pass filtered and divided by the normalising force; ``cop_mm`` the centre of pressure in the
    foot frame (NaN where the foot carries almost nothing). The whole-signal properties load every sample: for a
    long session use :meth:`read` or :meth:`stance_curves`.
    """

    def __init__(self, foot: str, reader: Callable[[int, int], dict], n_samples: int, breaks: np.ndarray,
                 device=None, has_cop: bool = True, extra: dict | None = None):
        self.foot = foot
        self._reader = reader
        self.n_samples = int(n_samples)
        self.breaks = np.asarray(breaks, dtype=np.int64)
        self.device = device
        self.has_cop = has_cop
        self.extra = dict(extra or {})

    @classmethod
    def from_arrays(cls, foot: str, time_s: np.ndarray, force: np.ndarray, force_bw: np.ndarray,
                    cop_mm: np.ndarray | None, breaks: np.ndarray, device=None,
                    extra: dict | None = None) -> FootSignals:
        """Signals held in memory (short signals, e.g. a mat's per-frame force)."""
        def reader(a: int, b: int) -> dict:
            return {"time_s": time_s[a:b], "force": force[a:b], "force_bw": force_bw[a:b],
                    "cop_mm": None if cop_mm is None else cop_mm[a:b]}
        return cls(foot, reader, len(time_s), breaks, device, cop_mm is not None, extra)

    def read(self, start: int = 0, stop: int | None = None) -> dict:
        """Signals of samples ``start:stop``: ``time_s``, ``force``, ``force_bw``, ``cop_mm`` (None without COP)."""
        stop = self.n_samples if stop is None else min(int(stop), self.n_samples)
        return self._reader(max(0, int(start)), stop)

    @property
    def time_s(self) -> np.ndarray:
        """Sample times (s), every sample."""
        return self.read()["time_s"]

    @property
    def force(self) -> np.ndarray:
        """Baseline-corrected total force, unfiltered, every sample."""
        return self.read()["force"]

    @property
    def force_bw(self) -> np.ndarray:
        """Filtered force in body weights, every sample."""
        return self.read()["force_bw"]

    @property
    def cop_mm(self) -> np.ndarray | None:
        """Centre of pressure (mm, foot frame), shape (n, 2), every sample; None without COP."""
        return self.read()["cop_mm"] if self.has_cop else None

    def iter_steps(self, first: np.ndarray, stop: np.ndarray, max_rows: int = BLOCK_SAMPLES
                   ) -> Iterator[tuple[slice, int, dict]]:
        """Steps (sample ranges ``[first, stop)``, in time order) in groups, with the signals around them.

        Yields ``(steps, offset, signals)``: ``steps`` a slice of the step arrays, ``signals`` as :meth:`read`
        for samples ``offset`` .. (two samples beyond the group's ranges either side).
        """
        first = np.asarray(first, dtype=np.int64)
        stop = np.asarray(stop, dtype=np.int64)
        i = 0
        while i < len(first):  # one iteration per group of steps spanning at most max_rows samples
            j = i + 1 + int(np.searchsorted(stop[i + 1:], first[i] + max_rows, side="right"))
            a = max(0, int(first[i]) - 2)
            b = min(self.n_samples, int(stop[i:j].max()) + 2)
            yield slice(i, j), a, self.read(a, b)
            i = j

    def stance_curves(self, name: str, ic_s: np.ndarray, to_s: np.ndarray, first: np.ndarray | None = None,
                      stop: np.ndarray | None = None, n_points: int = 101) -> np.ndarray:
        """Signal ``name`` ("force_bw", "force" or "cop_mm") of each step on a stance-normalised axis.

        ``first``, ``stop`` (the steps' sample ranges) let long signals be read a group of steps at a time;
        without them the whole signal is read.

        Returns
        -------
        ndarray, shape (steps, n_points) or (steps, n_points, 2)
        """
        from treadlab.analysis.metrics import stance_curves

        ic_s, to_s = np.asarray(ic_s, float), np.asarray(to_s, float)
        shape = (len(ic_s), n_points) + ((2,) if name == "cop_mm" else ())
        out = np.full(shape, np.nan)
        if first is None or stop is None:
            sig = self.read()
            if len(ic_s) and sig[name] is not None:
                out[:] = stance_curves(sig["time_s"], sig[name], ic_s, to_s, n_points)
            return out
        order = np.argsort(first, kind="stable")
        for sl, _, sig in self.iter_steps(np.asarray(first)[order], np.asarray(stop)[order]):
            rows = order[sl]
            out[rows] = stance_curves(sig["time_s"], sig[name], ic_s[rows], to_s[rows], n_points)
        return out
