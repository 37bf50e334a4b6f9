"""Session clock: map each device clock onto the host's monotonic clock (pure functions, no I/O).

Model, per clock segment: ``host = time0_s + s_per_tick * (ticks - ticks0)``. The pairs we observe are
(device ticks of a sample, host time the read that completed it returned). The host time is always *late* by a
varying delay (USB frames, scheduling, bursts, stalls), never early, so the model is fitted to the **lower
envelope** of the pairs, not their mean: per window of device time keep the pair with the smallest
``host - device``, then take the line under all those minima that is closest to them in total (the edge of their
lower convex hull that spans their mean). A least-squares fit would be biased by the mean delay.

PING round trips bound the absolute offset: a PONG stamped ``ticks`` by the device was handled between the host's
send and receive times, so the fitted line is shifted, if needed, into the interval every PING allows (the
shortest round trip gives the tightest bound).

The only Python loops run once per window (hull) or once per PING, never once per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Width of the windows of device time whose earliest pair feeds the envelope.
WINDOW_S = 0.5
#: A fitted drift beyond this is treated as a bad fit (short span) and clipped.
MAX_DRIFT_PPM = 2000.0
#: The online fit (short spans) never believes a drift beyond this.
ONLINE_MAX_DRIFT_PPM = 500.0


@dataclass(frozen=True)
class ClockFit:
    """One fitted segment: ``time = time0_s + s_per_tick * (ticks - ticks0)``.

    Attributes
    ----------
    ticks0 : int
        Device ticks of the segment's first sample (the origin of the line).
    time0_s : float
        Session time of ``ticks0``.
    s_per_tick : float
        Host seconds per device tick (``1 / clock_hz`` for a perfect device clock).
    clock_hz : float
        Nominal ticks per second of the device clock.
    residual_ms : float
        RMS distance of the envelope points above the line (delay jitter of the earliest samples).
    n_points : int
        Number of envelope points (windows) the fit used.
    """

    ticks0: int
    time0_s: float
    s_per_tick: float
    clock_hz: float
    residual_ms: float = 0.0
    n_points: int = 0

    @property
    def drift_ppm(self) -> float:
        """How fast the device clock runs against the host clock, in ppm (positive: device fast)."""
        return (1.0 / (self.s_per_tick * self.clock_hz) - 1.0) * 1e6

    def __call__(self, ticks: np.ndarray) -> np.ndarray:
        """Session time in seconds of device ``ticks`` (vectorised)."""
        dt = (np.asarray(ticks, dtype=np.uint64).astype(np.int64) - np.int64(self.ticks0)).astype(np.float64)
        return self.time0_s + self.s_per_tick * dt

    def as_row(self, first_index: int, n_samples: int) -> np.ndarray:
        """The fit as a ``clock/segments`` row (see ``docs/file-format.md``)."""
        return np.array(
            [first_index, n_samples, self.ticks0, self.time0_s, self.s_per_tick, self.drift_ppm, self.residual_ms],
            dtype=np.float64,
        )


def window_minima(
    x_s: np.ndarray, r_s: np.ndarray, window_s: float = WINDOW_S, origin_s: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Earliest pair per window of device time.

    Parameters
    ----------
    x_s : ndarray of float64
        Device time in seconds from the segment origin.
    r_s : ndarray of float64
        ``host - device`` in seconds for each pair.
    window_s : float
        Window width in device seconds.
    origin_s : float, optional
        Start of window 0 (default: ``x_s[0]``).

    Returns
    -------
    xm, rm : ndarray of float64
        Per non-empty window, the device time and ``host - device`` of its pair with the smallest ``r``.
    wm : ndarray of int64
        The window indices, increasing.
    """
    if len(x_s) == 0:
        return np.empty(0), np.empty(0), np.empty(0, np.int64)
    origin = x_s[0] if origin_s is None else origin_s
    idx = np.floor((x_s - origin) / window_s).astype(np.int64)
    order = np.lexsort((r_s, idx))  # by window, then by r: the first of each window is its minimum
    idx_sorted = idx[order]
    first = np.flatnonzero(np.r_[True, idx_sorted[1:] != idx_sorted[:-1]])
    pick = order[first]
    return x_s[pick], r_s[pick], idx_sorted[first]


def _golden_min(f, lo: float, hi: float, tol: float = 1e-10) -> float:
    """Minimiser of a unimodal ``f`` on ``[lo, hi]`` by golden-section search (about 40 calls for 1e-10)."""
    g = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = f(a), f(b)
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = f(b)
    return (lo + hi) / 2.0


def envelope_fit(
    xs: list[np.ndarray], rs: list[np.ndarray], max_slope: float = MAX_DRIFT_PPM * 1e-6
) -> tuple[float, list[float]]:
    """Lines ``r = c_k + m * x`` with one shared slope, under every point of their segment, closest to them in total.

    This is the linear program "minimise the summed height of the points above their segment's line, the line
    staying under all of them". For a fixed slope ``m`` each intercept is ``min(r - m x)`` of its segment, and the
    objective is convex and piecewise linear in ``m``, so a golden-section search finds the optimum. Sharing the
    slope across segments (one crystal) lets a short segment borrow the drift measured over the long ones.

    Parameters
    ----------
    xs, rs : list of ndarray
        Per segment, device seconds and ``host - device`` of its envelope points.
    max_slope : float
        Search interval for ``m`` is ``[-max_slope, max_slope]``.

    Returns
    -------
    m : float
        Shared slope.
    cs : list of float
        Intercept of each segment.
    """
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    rs = [np.asarray(r, dtype=np.float64) for r in rs]
    if not xs or any(len(x) == 0 for x in xs):
        raise ValueError("envelope_fit needs at least one point per segment")
    spans = [float(x.max() - x.min()) for x in xs]
    sum_r = sum(float(r.sum()) for r in rs)
    sum_x = sum(float(x.sum()) for x in xs)

    def cost(m: float) -> float:
        return sum_r - m * sum_x - sum(len(x) * float(np.min(r - m * x)) for x, r in zip(xs, rs))

    m = _golden_min(cost, -max_slope, max_slope) if max(spans) > 0 else 0.0
    cs = [float(np.min(r - m * x)) for x, r in zip(xs, rs)]
    return m, cs


def envelope_line(x: np.ndarray, r: np.ndarray, max_slope: float = MAX_DRIFT_PPM * 1e-6) -> tuple[float, float]:
    """The line ``r = c + m * x`` under every point that is closest to them in total (one segment).

    Returns
    -------
    c, m : float
        Intercept and slope.
    """
    m, cs = envelope_fit([x], [r], max_slope)
    return cs[0], m


def ping_shift(fit_at_ticks: np.ndarray, send_s: np.ndarray, recv_s: np.ndarray) -> float:
    """Shift of an envelope line that PING round trips call for.

    A PONG stamped with device ticks ``d`` was handled between ``send_s`` and ``recv_s``, so the true session time
    of ``d`` lies in that interval, and the envelope line (the latest the truth can be, given the samples) is an
    upper bound too. The line is moved to the middle of what remains between the latest lower bound (a send time)
    and the earliest upper bound; with many PINGs the shortest round trips decide. Inconsistent bounds (a clock
    reset) give no shift.

    Parameters
    ----------
    fit_at_ticks : ndarray
        The fitted line evaluated at each PONG's device ticks.
    send_s, recv_s : ndarray
        Host send and receive times of each PING, session seconds.
    """
    if len(fit_at_ticks) == 0:
        return 0.0
    lo = float(np.max(send_s - fit_at_ticks))
    hi = float(np.min(recv_s - fit_at_ticks))
    if lo > hi:
        return 0.0
    hi = min(hi, 0.0)
    if lo >= hi:
        return lo  # the samples' envelope is earlier than a PING allows
    return (lo + hi) / 2.0


def fit_segment(
    ticks: np.ndarray,
    host_s: np.ndarray,
    clock_hz: float,
    pings: np.ndarray | None = None,
    window_s: float = WINDOW_S,
) -> ClockFit:
    """Fit one clock segment from its (device ticks, host receive time) pairs.

    Parameters
    ----------
    ticks : ndarray of uint64, shape (n,)
        Device clock of each sample (non-decreasing within a segment).
    host_s : ndarray of float64, shape (n,)
        Host receive time of each sample, session seconds.
    clock_hz : float
        Nominal ticks per second.
    pings : ndarray of int64, shape (p, 3), optional
        PING round trips of this segment: host send ns, host receive ns (session clock), device ticks.
    window_s : float
        Envelope window width.

    Returns
    -------
    ClockFit
    """
    _, segs = fit_recording(ticks, host_s, clock_hz, pings=pings, window_s=window_s, split_backward=False)
    return segs[0][2]


def segment_starts(ticks: np.ndarray, known_starts: np.ndarray | list[int] = ()) -> np.ndarray:
    """Indices where clock segments start: index 0, the ``known_starts`` (reconnections) and every backward jump.

    Returns
    -------
    ndarray of int64
        Sorted unique start indices, all below ``len(ticks)``.
    """
    ticks = np.asarray(ticks, dtype=np.uint64)
    n = len(ticks)
    back = np.flatnonzero(ticks[1:] < ticks[:-1]) + 1
    starts = np.unique(np.r_[np.int64(0), np.asarray(known_starts, dtype=np.int64), back.astype(np.int64)])
    return starts[(starts >= 0) & (starts < max(n, 1))]


def fit_recording(
    ticks: np.ndarray,
    host_s: np.ndarray,
    clock_hz: float,
    known_starts: np.ndarray | list[int] = (),
    pings: np.ndarray | None = None,
    window_s: float = WINDOW_S,
    split_backward: bool = True,
) -> tuple[np.ndarray, list[tuple[int, int, ClockFit]]]:
    """Refit a whole recording of one device: one shared drift, one offset per segment.

    Segments start at ``known_starts`` (reconnections) and, with ``split_backward``, wherever the device clock goes
    backwards. PINGs are assigned to the segment whose device-time range contains their ticks and whose span of
    host time contains their send time (a device that power-cycles twice covers the same ticks twice), and shift
    that segment's offset into their bounds.

    Returns
    -------
    time_s : ndarray of float64, shape (n,)
        Session time of every sample.
    segments : list of (first_index, n_samples, ClockFit)
    """
    ticks = np.asarray(ticks, dtype=np.uint64)
    host_s = np.asarray(host_s, dtype=np.float64)
    n = len(ticks)
    time_s = np.empty(n, dtype=np.float64)
    if n == 0:
        return time_s, []
    starts = segment_starts(ticks, known_starts) if split_backward else np.array([0], np.int64)
    ends = np.r_[starts[1:], n]
    # Host-time border between two segments: halfway between the last receipt of one and the first of the next.
    borders_s = np.r_[-np.inf, (host_s[starts[1:] - 1] + host_s[starts[1:]]) / 2.0, np.inf]
    xs, rs, xl, rl = [], [], [], []
    for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):  # one iteration per segment
        x = (ticks[s:e].astype(np.int64) - np.int64(ticks[s])).astype(np.float64) / clock_hz
        xm, rm, _ = window_minima(x, host_s[s:e] - x, window_s)
        # A PONG is a (device ticks, host receive) pair too, and usually a prompt one: an upper bound; the PING's
        # send time is a lower bound.
        in_seg = _pings_in(pings, int(ticks[s]), int(ticks[e - 1]), borders_s[k], borders_s[k + 1])
        xp = (in_seg[:, 2] - np.int64(ticks[s])).astype(np.float64) / clock_hz
        xs.append(np.r_[xm, xp])
        rs.append(np.r_[rm, in_seg[:, 1] / 1e9 - xp])
        xl.append(xp)
        rl.append(in_seg[:, 0] / 1e9 - xp)
    m, cs = envelope_fit(xs, rs)
    band = band_fit(xs, rs, xl, rl)
    segments: list[tuple[int, int, ClockFit]] = []
    for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
        if band is not None:
            m, c = band[0], band[1][k]
        else:
            c = cs[k]
        residual_ms = float(np.median(rs[k] - (c + m * xs[k])) * 1e3)
        fit = ClockFit(int(ticks[s]), c, (1.0 + m) / clock_hz, float(clock_hz), residual_ms, len(xs[k]))
        if band is None and len(xl[k]):
            shift = ping_shift(c + m * xl[k] + xl[k], rl[k] + xl[k], rs[k][-len(xl[k]):] + xl[k])
            if shift:
                fit = ClockFit(fit.ticks0, c + shift, fit.s_per_tick, fit.clock_hz, residual_ms, len(xs[k]))
        time_s[s:e] = fit(ticks[s:e])
        segments.append((s, e - s, fit))
    return time_s, segments


def band_fit(
    xu: list[np.ndarray], ru: list[np.ndarray], xl: list[np.ndarray], rl: list[np.ndarray],
    max_slope: float = MAX_DRIFT_PPM * 1e-6,
) -> tuple[float, list[float]] | None:
    """The line in the middle of the band every bound allows, with the widest margin (needs PINGs).

    Per segment ``k``, the truth ``r = c_k + m x`` lies under every upper bound (sample and PONG receipts,
    ``ru``) and over every lower bound (PING send times, ``rl``). For a slope ``m`` the band of offsets is
    ``[max(rl - m xl), min(ru - m xu)]``; its width is concave in ``m``. The slope maximising the narrowest band
    over the segments with PINGs is kept (golden-section search), and each offset is the middle of its band
    (segments without PINGs: the top, i.e. the envelope).

    Returns
    -------
    (m, cs) or None
        None when no segment has PINGs or the bounds are inconsistent (a clock that is not linear).
    """
    with_pings = [k for k in range(len(xu)) if len(xl[k])]
    if not with_pings:
        return None

    def hi(k: int, m: float) -> float:
        return float(np.min(ru[k] - m * xu[k]))

    def lo(k: int, m: float) -> float:
        return float(np.max(rl[k] - m * xl[k]))

    def width(m: float) -> float:
        return min(hi(k, m) - lo(k, m) for k in with_pings)

    m = _golden_min(lambda v: -width(v), -max_slope, max_slope)  # width is concave in m: maximise it
    if width(m) < 0:
        return None
    cs = [(hi(k, m) + lo(k, m)) / 2.0 if len(xl[k]) else hi(k, m) for k in range(len(xu))]
    return m, cs


def _pings_in(pings: np.ndarray | None, lo_ticks: int, hi_ticks: int, lo_s: float = -np.inf,
              hi_s: float = np.inf) -> np.ndarray:
    """The PINGs of a segment, as int64 (p, 3): device ticks in ``[lo_ticks, hi_ticks]``, send time (session
    seconds) in ``[lo_s, hi_s)``.
    """
    if pings is None or len(pings) == 0:
        return np.empty((0, 3), np.int64)
    p = np.asarray(pings, dtype=np.int64).reshape(-1, 3)
    send_s = p[:, 0] / 1e9
    return p[(p[:, 2] >= lo_ticks) & (p[:, 2] <= hi_ticks) & (send_s >= lo_s) & (send_s < hi_s)]


class OnlineClock:
    """Clock fit updated while recording, for one device.

    Keeps the earliest pair of each closed window over the last ``history_s`` seconds and refits when a window
    closes; samples are timed with the current fit (the first window's provisional fit uses the nominal rate).
    Not thread-safe: one reader thread owns it.

    Parameters
    ----------
    clock_hz : float
        Nominal ticks per second.
    history_s : float
        Span of device time the online fit looks at.
    window_s : float
        Envelope window width.
    min_span_s : float
        The drift is fitted once the envelope spans this many seconds (nominal rate before).
    """

    def __init__(self, clock_hz: float, history_s: float = 60.0, window_s: float = WINDOW_S,
                 min_span_s: float = 4.0) -> None:
        self.clock_hz = float(clock_hz)
        self.window_s = window_s
        self.max_windows = max(2, int(history_s / window_s))
        self.min_span_s = min_span_s
        self.fit: ClockFit | None = None
        self._ticks0: int | None = None
        self._xm: list[float] = []
        self._rm: list[float] = []
        self._cur_w = -1
        self._cur_x = 0.0
        self._cur_r = np.inf
        self._pings: list[tuple[int, int, int]] = []

    @property
    def has_drift(self) -> bool:
        """True once the envelope spans enough time for the drift to be fitted (before: nominal rate)."""
        return len(self._xm) >= 2 and (self._cur_x - self._xm[0]) >= self.min_span_s

    def new_segment(self) -> None:
        """Forget the current segment (after a reconnection or a device clock reset)."""
        self.fit = None
        self._ticks0 = None
        self._xm, self._rm = [], []
        self._cur_w, self._cur_r = -1, np.inf
        self._pings = []

    def add_ping(self, send_ns: int, recv_ns: int, device_ticks: int) -> None:
        """Record a PING round trip (session-clock ns) for the offset bound; keeps the 16 shortest."""
        self._pings.append((int(send_ns), int(recv_ns), int(device_ticks)))
        self._pings.sort(key=lambda p: p[1] - p[0])
        del self._pings[16:]

    def update(self, ticks: np.ndarray, host_s: np.ndarray) -> np.ndarray:
        """Add a batch of pairs and return the session times of its samples.

        Parameters
        ----------
        ticks : ndarray of uint64
            Device ticks of the batch (a backward jump must be handled by the caller with :meth:`new_segment`).
        host_s : ndarray of float64
            Host receive times, session seconds.
        """
        ticks = np.asarray(ticks, dtype=np.uint64)
        host_s = np.asarray(host_s, dtype=np.float64)
        if len(ticks) == 0:
            return np.empty(0)
        if self._ticks0 is None:
            self._ticks0 = int(ticks[0])
        x = (ticks.astype(np.int64) - np.int64(self._ticks0)).astype(np.float64) / self.clock_hz
        r = host_s - x
        w_first, w_last = int(x[0] // self.window_s), int(x[-1] // self.window_s)
        if w_first == w_last == self._cur_w:  # the usual case: the batch stays in the current window
            k = int(np.argmin(r))
            if r[k] < self._cur_r:
                self._cur_x, self._cur_r = float(x[k]), float(r[k])
            if self.fit is None or len(self._xm) < 2:
                self._refit()
            assert self.fit is not None
            return self.fit(ticks)
        xs, rs, ws = window_minima(x, r, self.window_s, origin_s=0.0)
        closed = False
        for wi, xi, ri in zip(ws.tolist(), xs.tolist(), rs.tolist()):  # once per window touched by the batch
            if wi == self._cur_w:
                if ri < self._cur_r:
                    self._cur_x, self._cur_r = xi, ri
                continue
            if self._cur_w >= 0:
                self._xm.append(self._cur_x)
                self._rm.append(self._cur_r)
                closed = True
            self._cur_w, self._cur_x, self._cur_r = wi, xi, ri
        if len(self._xm) > self.max_windows:
            del self._xm[: len(self._xm) - self.max_windows]
            del self._rm[: len(self._rm) - self.max_windows]
        if closed or self.fit is None or len(self._xm) < 2:
            self._refit()
        assert self.fit is not None
        return self.fit(ticks)

    def _refit(self) -> None:
        xm = np.array(self._xm + [self._cur_x])
        rm = np.array(self._rm + [self._cur_r])
        assert self._ticks0 is not None
        if self._pings:
            p = np.array(self._pings, dtype=np.int64)
            xp = (p[:, 2] - np.int64(self._ticks0)).astype(np.float64) / self.clock_hz
            keep = xp >= 0
            xm, rm = np.r_[xm, xp[keep]], np.r_[rm, p[keep, 1] / 1e9 - xp[keep]]
        if len(self._xm) < 2 or xm.max() - xm.min() < self.min_span_s:
            c, m = float(np.min(rm)), 0.0  # too short a span for a slope: nominal rate
        else:
            c, m = envelope_line(xm, rm, max_slope=ONLINE_MAX_DRIFT_PPM * 1e-6)
        fit = ClockFit(self._ticks0, c, (1.0 + m) / self.clock_hz, self.clock_hz, 0.0, len(xm))
        if self._pings:
            p = np.array(self._pings, dtype=np.int64)
            shift = ping_shift(fit(p[:, 2].astype(np.uint64)), p[:, 0] / 1e9, p[:, 1] / 1e9)
            if shift:
                fit = ClockFit(self._ticks0, c + shift, fit.s_per_tick, self.clock_hz, 0.0, len(xm))
        self.fit = fit
