"""Segments of a session: a time window given by times or by two markers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from treadlab.errors import AnalysisError

__all__ = ["Segment", "resolve_segment"]


@dataclass(frozen=True)
class Segment:
    """A half-open window ``[start_s, stop_s)`` on the session clock.

    Attributes
    ----------
    start_s, stop_s : float
    from_marker, to_marker : str
        The marker labels it was chosen by (``""`` when chosen by time).
    """

    start_s: float
    stop_s: float
    from_marker: str = ""
    to_marker: str = ""

    @property
    def duration_s(self) -> float:
        """Length of the window."""
        return self.stop_s - self.start_s

    def contains(self, t_s) -> np.ndarray:
        """Boolean mask of the times inside the window."""
        t = np.asarray(t_s, dtype=float)
        return (t >= self.start_s) & (t < self.stop_s)

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return {"start_s": self.start_s, "stop_s": self.stop_s, "from_marker": self.from_marker,
                "to_marker": self.to_marker}


def _marker_time(markers: pd.DataFrame, label: str, where: str) -> float:
    hit = markers.loc[markers["label"] == label, "time"] if len(markers) else pd.Series(dtype=float)
    if hit.empty:
        known = ", ".join(repr(x) for x in markers["label"]) if len(markers) else "none"
        raise AnalysisError(f"no marker {label!r} in {where} (markers: {known})")
    return float(hit.iloc[0])


def resolve_segment(time_range_s: tuple[float, float], markers: pd.DataFrame, *, start_s: float | None = None,
                    stop_s: float | None = None, from_marker: str | None = None, to_marker: str | None = None,
                    where: str = "the session") -> Segment:
    """The window chosen by times and/or marker labels; defaults to the whole recording.

    Parameters
    ----------
    time_range_s : (float, float)
        First and last sample time of the recording.
    markers : DataFrame
        Columns ``time`` and ``label``.
    start_s, stop_s : float, optional
    from_marker, to_marker : str, optional
        Labels; a marker wins over a time given for the same end.
    where : str
        Name of the file, for messages.

    Raises
    ------
    AnalysisError
        Unknown marker, or a window that is empty or lies outside the recording.
    """
    a, b = time_range_s
    start = a if start_s is None else float(start_s)
    stop = b + 1e-9 if stop_s is None else float(stop_s)
    if from_marker:
        start = _marker_time(markers, from_marker, where)
    if to_marker:
        stop = _marker_time(markers, to_marker, where)
    if not stop > start:
        raise AnalysisError(f"empty segment in {where}: from {start:.3f} s to {stop:.3f} s")
    if stop <= a or start > b:
        raise AnalysisError(f"segment {start:.3f}-{stop:.3f} s lies outside the recording ({a:.3f}-{b:.3f} s)")
    return Segment(start, stop, from_marker or "", to_marker or "")
