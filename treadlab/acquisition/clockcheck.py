"""Clock sanity: whether a device's clock ticks at the rate it claims (INFO ``clock_hz``).

A device whose crystal is off, whose firmware assumes the wrong oscillator, or that runs in an emulator (which
does not keep real time) stamps its samples with ticks that do not advance at ``clock_hz``. The session clock fit
(:mod:`treadlab.acquisition.clock`) absorbs a small drift but clips a large one, so the mistake would go unseen.
This module estimates the true tick rate from the same (device ticks, host receive time) pairs, with the same
lower-envelope idea (host times are late by a varying delay, never early), over a slope range wide enough for an
emulator running 20 times too fast, and says when the estimate is off ``clock_hz`` by more than
:data:`TOLERANCE_PPM` beyond its own uncertainty.

Uncertainty: the line rests on the earliest pairs, so it is wrong by about how far those lie above the true
minimum delay: the lower quartile of the envelope points' heights above the line. Host times may also fall on a
grid that no scatter reveals: USB polls every 1 ms, and when the device's sample period is a whole number of
frames the samples keep their phase to the grid, so a slope stays hidden until the samples slip by a whole frame
(half a second at 2000 ppm). A 1-ms grid (:data:`GRID_S`) is therefore always allowed for. Twice the scatter, the
grid and one tick at each end, over the span of device time, is the uncertainty; it shrinks as the recording
grows, so a short check (``lab devices``, 1-2 s) only warns about a clock that is surely off, and a recording
finds a subtler error within seconds. A coarser grid (an FTDI adapter's 16 ms latency timer) needs a longer span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from treadlab.acquisition.clock import envelope_line, window_minima

#: A clock off its nominal rate by more than this (0.1 %) is reported.
TOLERANCE_PPM = 1000.0
#: Widest slope searched: an emulated device running up to 20 times too fast or about twice too slow.
MAX_SLOPE = 0.95
#: Shortest window of device time whose earliest pair feeds the envelope (a window holds at least 8 samples).
WINDOW_S = 0.05
#: No estimate before the pairs span this much device time.
MIN_SPAN_S = 0.5
#: Host times may fall on a grid this coarse that no spread reveals (a USB full-speed frame, when the device's
#: sample period is a whole number of frames): allowed for in every uncertainty.
GRID_S = 0.001


@dataclass(frozen=True)
class TickRate:
    """An estimate of a device's true tick rate.

    Attributes
    ----------
    clock_hz : float
        What the device claims (INFO ``clock_hz``).
    measured_hz : float
        Device ticks per second of the host's monotonic clock.
    error_ppm : float
        ``(measured_hz / clock_hz - 1) * 1e6``: positive when the device clock runs fast.
    uncertainty_ppm : float
        How far off the estimate may be.
    span_s : float
        Device time the estimate is based on.
    """

    clock_hz: float
    measured_hz: float
    error_ppm: float
    uncertainty_ppm: float
    span_s: float

    @property
    def off(self) -> bool:
        """True when the clock is surely off by more than :data:`TOLERANCE_PPM`."""
        return abs(self.error_ppm) - self.uncertainty_ppm > TOLERANCE_PPM

    def describe(self) -> str:
        """One line: measured rate, error and verdict."""
        pct = f"{TOLERANCE_PPM / 1e4:g}%"
        if self.off:
            verdict = f"more than {pct} off"
        elif abs(self.error_ppm) + self.uncertainty_ppm <= TOLERANCE_PPM:
            verdict = f"within {pct}"
        else:
            verdict = f"not yet known to be within {pct}"
        return (f"device clock ticks at {_hz(self.measured_hz)}, INFO says {_hz(self.clock_hz)}: "
                f"{self.error_ppm:+.0f} ppm (+/- {self.uncertainty_ppm:.0f} over {self.span_s:.1f} s), {verdict}")


def _hz(f: float) -> str:
    if f >= 1e6:
        return f"{f / 1e6:.6g} MHz"
    if f >= 1e3:
        return f"{f / 1e3:.6g} kHz"
    return f"{f:.6g} Hz"


def rate_from_minima(x_s: np.ndarray, r_s: np.ndarray, clock_hz: float) -> TickRate | None:
    """The tick rate from envelope points.

    Parameters
    ----------
    x_s, r_s : ndarray of float64
        Device seconds at the nominal rate, and host minus device seconds, of the earliest pair per window.
    clock_hz : float
        The rate the device claims.

    Returns
    -------
    TickRate or None
        None while the points span less than :data:`MIN_SPAN_S` or are fewer than 3.
    """
    x_s = np.asarray(x_s, dtype=np.float64)
    r_s = np.asarray(r_s, dtype=np.float64)
    if len(x_s) < 3:
        return None
    span = float(x_s.max() - x_s.min())
    if span < MIN_SPAN_S:
        return None
    c, m = envelope_line(x_s, r_s, max_slope=MAX_SLOPE)
    scatter_s = float(np.quantile(r_s - (c + m * x_s), 0.25))
    measured = clock_hz / (1.0 + m)
    # An error dm of the slope is an error dm / (1 + m) of the rate (large for an emulator running fast).
    uncertainty = (2.0 * scatter_s + GRID_S + 2.0 / clock_hz) / span / (1.0 + m) * 1e6
    return TickRate(float(clock_hz), float(measured), (measured / clock_hz - 1.0) * 1e6, uncertainty, span)


def _window_for(x_s: np.ndarray) -> float:
    """A window of at least :data:`WINDOW_S` holding about 8 samples."""
    if len(x_s) < 2:
        return WINDOW_S
    return max(WINDOW_S, 8.0 * float(np.median(np.diff(x_s))))


def estimate_tick_rate(ticks: np.ndarray, host_s: np.ndarray, clock_hz: float) -> TickRate | None:
    """Estimate the true tick rate of one clock segment from its (ticks, host receive seconds) pairs.

    Parameters
    ----------
    ticks : ndarray of uint64
        Device clock of each sample (non-decreasing).
    host_s : ndarray of float64
        Host receive time of each sample, seconds (any origin).
    clock_hz : float
        The rate the device claims.

    Returns
    -------
    TickRate or None
        None while the pairs span too little device time.
    """
    ticks = np.asarray(ticks, dtype=np.uint64)
    if len(ticks) == 0:
        return None
    x = (ticks.astype(np.int64) - np.int64(ticks[0])).astype(np.float64) / clock_hz
    r = np.asarray(host_s, dtype=np.float64) - x
    window = _window_for(x)
    xm, rm, _ = window_minima(x, r, window, origin_s=0.0)
    return rate_from_minima(xm, rm, clock_hz)


class TickRateCheck:
    """Online :func:`estimate_tick_rate` for one device: fed every batch, refitted about once a second.

    Keeps only the earliest pair per window (at most ``max_points``: the windows widen as the recording grows).
    Not thread-safe: one reader thread feeds it; :attr:`warning` and :attr:`rate` may be read from other threads.

    Parameters
    ----------
    clock_hz : float
        The rate the device claims.
    rate_hz : float or None
        Nominal sample rate (sets the window: about 8 samples, at least :data:`WINDOW_S`).
    max_points : int
        Most envelope points kept.
    refit_every_s : float
        Device seconds between fits (``inf``: only :meth:`final` fits).
    """

    def __init__(self, clock_hz: float, rate_hz: float | None = None, max_points: int = 2000,
                 refit_every_s: float = 1.0) -> None:
        self.clock_hz = float(clock_hz)
        self.window_s = max(WINDOW_S, 8.0 / rate_hz) if rate_hz else WINDOW_S
        self.max_points = max_points
        self.refit_every_s = refit_every_s
        self.rate: TickRate | None = None
        self.warning: str | None = None
        self.new_segment()

    def new_segment(self) -> None:
        """Forget the pairs (after a reconnection or a device clock reset); a warning already given stays."""
        self._ticks0: int | None = None
        self._last_tick = 0
        self._buf = np.empty((2 * self.max_points + 2, 3))  # per window: x, r, window index
        self._n = 0
        self._next_fit_x = 0.0

    @property
    def n_points(self) -> int:
        """Envelope points kept now."""
        return self._n

    def _fit(self) -> TickRate | None:
        pts = self._buf[: self._n]
        rate = rate_from_minima(pts[:, 0], pts[:, 1], self.clock_hz)
        if rate is not None:
            self.rate = rate
            if rate.off and self.warning is None:
                self.warning = rate.describe()
                return rate
        return None

    def final(self) -> TickRate | None:
        """Fit all pairs kept now, whatever the refit period; the latest estimate (None: too short a span)."""
        self._fit()
        return self.rate

    def update(self, ticks: np.ndarray, host_s: np.ndarray) -> str | None:
        """Add a batch; returns the warning text the first time the clock is found off, else None.

        A device clock that goes backwards (a reset) starts a new segment at the last backward step.
        """
        ticks = np.asarray(ticks, dtype=np.uint64)
        host_s = np.asarray(host_s, dtype=np.float64)
        if len(ticks) == 0 or self.clock_hz <= 0:
            return None
        ti = ticks.astype(np.int64)
        # A reset: the batch starts before the last tick seen, or ends before it starts (a batch spans milliseconds,
        # so after a reset within it the clock cannot have climbed back above the batch's first tick).
        if (self._ticks0 is not None and ti[0] < self._last_tick) or ti[-1] < ti[0]:
            back = np.flatnonzero(np.r_[ti[0] < self._last_tick, ti[1:] < ti[:-1]])[-1]
            self.new_segment()
            ti, host_s = ti[back:], host_s[back:]
        if self._ticks0 is None:
            self._ticks0 = int(ti[0])
        self._last_tick = int(ti[-1])
        x = (ti - np.int64(self._ticks0)).astype(np.float64) / self.clock_hz
        r = host_s - x
        buf, n = self._buf, self._n
        w = int(x[0] // self.window_s)
        if w == int(x[-1] // self.window_s):  # the usual batch: within one window, a handful of numpy calls
            k = int(np.argmin(r))
            if n and w == buf[n - 1, 2]:
                if r[k] < buf[n - 1, 1]:
                    buf[n - 1, 0], buf[n - 1, 1] = x[k], r[k]
            else:
                buf[n] = (x[k], r[k], w)
                self._n = n + 1
                self._coarsen_if_full()
            return self._maybe_fit(float(x[-1]))
        xm, rm, wm = window_minima(x, r, self.window_s, origin_s=0.0)
        if n and wm[0] == buf[n - 1, 2]:  # the batch continues the last window
            if rm[0] < buf[n - 1, 1]:
                buf[n - 1, 0], buf[n - 1, 1] = xm[0], rm[0]
            xm, rm, wm = xm[1:], rm[1:], wm[1:]
        k = min(len(wm), len(buf) - n)  # a batch spans few windows; the buffer has room for max_points more
        buf[n:n + k, 0], buf[n:n + k, 1], buf[n:n + k, 2] = xm[:k], rm[:k], wm[:k]
        self._n = n + k
        self._coarsen_if_full()
        return self._maybe_fit(float(x[-1]))

    def _coarsen_if_full(self) -> None:
        """Past ``max_points``: windows twice as wide, the earliest pair of each pair of windows kept."""
        n, buf = self._n, self._buf
        if n <= self.max_points:
            return
        self.window_s *= 2.0
        xc, rc, wc = window_minima(buf[:n, 0], buf[:n, 1], self.window_s, origin_s=0.0)
        self._n = len(wc)
        buf[: self._n, 0], buf[: self._n, 1], buf[: self._n, 2] = xc, rc, wc

    def _maybe_fit(self, x_last: float) -> str | None:
        if x_last < self._next_fit_x:
            return None
        self._next_fit_x = x_last + self.refit_every_s
        return f"clock check: {self.warning}" if self._fit() is not None else None
