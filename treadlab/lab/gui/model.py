"""Qt-free pieces of the desktop app: device states, form validation, formatting and image mapping.

Everything here is plain Python and numpy so it can be tested without a display; the widgets in
:mod:`treadlab.lab.gui` only draw what these functions return.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from treadlab.errors import ConfigError

#: Device states shown by the devices panel, with the colour of their status light.
STATE_COLOURS = {
    "streaming": "#2e9d3a",  # green
    "stalled": "#e0a000",  # amber
    "reconnecting": "#e0a000",  # amber
    "connecting": "#e0a000",
    "lost": "#c62828",  # red
    "disconnected": "#8a8a8a",  # grey: switched off by the technician
}
#: A device whose newest sample is older than this is shown as stalled.
STALL_AFTER_S = 1.0

BODY_MASS_RANGE_KG = (20.0, 300.0)
SPEED_RANGE_MPS = (0.0, 12.0)


@dataclass(frozen=True)
class DeviceRow:
    """What the devices panel shows for one device.

    Attributes
    ----------
    name : str
        Device name from the rig file.
    kind : str
        ``"insole"``, ``"mat"``, ``"lsl"`` (an external numeric stream) or ``"markers"`` (an external string
        stream: its samples are session markers, so it has no rate and no live view).
    side : str or None
        ``"left"`` / ``"right"`` for insoles.
    state : str
        One of :data:`STATE_COLOURS`.
    rate_hz : float
        Measured samples per second over the last second or so.
    nominal_hz : float
        The rate the device was asked for.
    lost_n : int
        Samples lost (sequence gaps) since the device was opened.
    crc_errors_n : int
        Frames dropped by the CRC check.
    drift_ppm : float or None
        Device clock drift against the host clock, when the clock fit has one.
    stalled_s : float
        Seconds since the newest sample arrived.
    """

    name: str
    kind: str
    side: str | None
    state: str
    rate_hz: float
    nominal_hz: float
    lost_n: int
    crc_errors_n: int
    drift_ppm: float | None
    stalled_s: float

    @property
    def colour(self) -> str:
        """Colour of the status light."""
        return STATE_COLOURS.get(self.state, "#8a8a8a")

    @property
    def rate_text(self) -> str:
        """The samples/s cell: measured against nominal (a string stream has no rate: ``markers``)."""
        if self.kind == "markers":
            return "markers"
        return f"{self.rate_hz:.0f} / {self.nominal_hz:.0f}"

    @property
    def message(self) -> str:
        """Short text next to the light; a stalled device says for how long."""
        if self.state == "stalled":
            return f"stalled {self.stalled_s:.1f} s"
        return self.state


def classify_state(reported: str, age_s: float, stall_after_s: float = STALL_AFTER_S) -> str:
    """The state to show: the acquisition's own state, or ``stalled`` when a streaming device went quiet.

    Parameters
    ----------
    reported : str
        State reported by the acquisition (``streaming``, ``reconnecting``, ``lost``, ...).
    age_s : float
        Seconds since the device's newest sample (``inf`` if it never sent one).
    stall_after_s : float
        Silence after which a streaming device counts as stalled.

    Returns
    -------
    str
        A key of :data:`STATE_COLOURS`.
    """
    reported = reported if reported in STATE_COLOURS else "lost"
    if reported in ("streaming", "stalled"):
        return "stalled" if age_s >= stall_after_s else "streaming"
    return reported


def validate_session_form(
    participant: str, condition: str, body_mass_kg: float, speed_mps: float, shoe: str, notes: str
) -> dict:
    """Check the session form and return the metadata for the recorder.

    Parameters
    ----------
    participant, condition, shoe, notes : str
        Free text; participant is required.
    body_mass_kg : float
        20-300 kg.
    speed_mps : float
        Treadmill speed, 0-12 m/s.

    Returns
    -------
    dict
        Keys ``participant``, ``condition``, ``body_mass_kg``, ``treadmill_speed_mps``, ``shoe``, ``notes``
        (the names of the session file's root attributes).

    Raises
    ------
    ConfigError
        Naming the first field that is invalid and its allowed range.
    """
    participant = participant.strip()
    if not participant:
        raise ConfigError("participant: enter an identifier (for example P01)")
    lo, hi = BODY_MASS_RANGE_KG
    if not (np.isfinite(body_mass_kg) and lo <= body_mass_kg <= hi):
        raise ConfigError(f"body mass: {body_mass_kg:g} kg is outside {lo:g}-{hi:g} kg")
    lo, hi = SPEED_RANGE_MPS
    if not (np.isfinite(speed_mps) and lo <= speed_mps <= hi):
        raise ConfigError(f"treadmill speed: {speed_mps:g} m/s is outside {lo:g}-{hi:g} m/s")
    return {
        "participant": participant,
        "condition": condition.strip(),
        "body_mass_kg": float(body_mass_kg),
        "treadmill_speed_mps": float(speed_mps),
        "shoe": shoe.strip(),
        "notes": notes.strip(),
    }


def format_bytes(n_bytes: float) -> str:
    """``1536`` -> ``"1.5 kB"`` (powers of 1000, like file managers)."""
    n = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000.0 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    raise AssertionError("unreachable")  # pragma: no cover


def format_elapsed(seconds: float) -> str:
    """``3725.4`` -> ``"1:02:05"``; under an hour ``"02:05"``."""
    s = int(max(0.0, seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def free_space_bytes(folder: str | Path) -> int:
    """Free bytes on the file system of ``folder`` (or of its nearest existing parent)."""
    p = Path(folder).expanduser().resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    return int(shutil.disk_usage(p).free)


def session_filename(participant: str, condition: str, stamp: str) -> str:
    """A file name from the form: ``P01_baseline_20250101-101500.h5`` (unsafe characters become ``-``)."""
    parts = [participant.strip(), condition.strip(), stamp]
    safe = ["".join(c if (c.isalnum() or c in "-.") else "-" for c in p) for p in parts if p]
    return "_".join(safe) + ".h5"


class SenselRaster:
    """Maps an insole's sensels onto a pixel grid (nearest sensel), so a frame becomes an image by one lookup.

    Parameters
    ----------
    positions_mm : ndarray, shape (n, 2)
        Sensel centres (x across the foot, y from heel to toe), millimetres.
    pixel_mm : float
        Pixel size of the image.
    reach_mm : float or None
        Pixels farther than this from every sensel stay empty; default 1.5x the median sensel spacing.

    Attributes
    ----------
    index_ : ndarray of intp, shape (rows, cols)
        Sensel index of each pixel, ``n`` for pixels outside the insole (they read an extra zero).
    rect_mm_ : tuple of float
        ``(x0, y0, width, height)`` of the image in millimetres, for ``ImageItem.setRect``.
    """

    def __init__(self, positions_mm: np.ndarray, pixel_mm: float = 2.5, reach_mm: float | None = None) -> None:
        from scipy.spatial import cKDTree

        pos = np.asarray(positions_mm, dtype=np.float64).reshape(-1, 2)
        if len(pos) == 0:
            raise ConfigError("insole layout has no sensel positions")
        self.n_sensels = len(pos)
        tree = cKDTree(pos)
        if reach_mm is None:
            if len(pos) > 1:
                d, _ = tree.query(pos, k=2)
                reach_mm = 1.5 * float(np.median(d[:, 1]))
            else:
                reach_mm = 10.0
            reach_mm = max(reach_mm, pixel_mm)
        lo = pos.min(axis=0) - reach_mm
        hi = pos.max(axis=0) + reach_mm
        cols = max(1, int(np.ceil((hi[0] - lo[0]) / pixel_mm)))
        rows = max(1, int(np.ceil((hi[1] - lo[1]) / pixel_mm)))
        xs = lo[0] + (np.arange(cols) + 0.5) * pixel_mm
        ys = lo[1] + (np.arange(rows) + 0.5) * pixel_mm
        gx, gy = np.meshgrid(xs, ys)
        dist, idx = tree.query(np.column_stack([gx.ravel(), gy.ravel()]), distance_upper_bound=reach_mm)
        idx = np.where(np.isfinite(dist), idx, len(pos)).astype(np.intp)
        self.index_ = idx.reshape(rows, cols)
        self.rect_mm_ = (float(lo[0]), float(lo[1]), cols * pixel_mm, rows * pixel_mm)

    def image(self, values: np.ndarray) -> np.ndarray:
        """One frame of per-sensel values as a float32 image (row 0 at the heel)."""
        padded = np.zeros(self.n_sensels + 1, dtype=np.float32)
        padded[: self.n_sensels] = values
        return padded[self.index_]
