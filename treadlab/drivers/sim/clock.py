"""Time models of a simulated device: its crystal clock, its sampling schedule and its USB-like delivery.

Three clocks meet here:

* the TRUE time of an event, in the host's ``CLOCK_MONOTONIC`` domain (``time.monotonic_ns()``, shared by all
  processes on the machine), which the tests use as ground truth;
* the DEVICE clock, a counter of ``clock_hz`` ticks driven by a crystal that runs ``drift_ppm`` fast or slow::

      device_ticks = offset_ticks + (t_true_ns - t_epoch_ns) * (1 + drift_ppm * 1e-6) * clock_hz / 1e9

* the device samples on its own clock (a timer every ``clock_hz / rate_hz`` ticks), so in true time its samples
  are ``1 / (rate_hz * (1 + drift_ppm * 1e-6))`` seconds apart.

Everything is vectorised: one call converts a whole block of samples. Pure numpy, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DeviceClock:
    """A device's tick counter as a function of true (host monotonic) time.

    Parameters
    ----------
    clock_hz : int
        Tick rate of the counter.
    drift_ppm : float
        How much faster (positive) or slower the crystal runs than true time, in parts per million.
    offset_ticks : int
        Counter value at ``t_epoch_ns``.
    t_epoch_ns : int
        True time (``time.monotonic_ns`` domain) at which the counter read ``offset_ticks``.
    """

    clock_hz: int
    drift_ppm: float = 0.0
    offset_ticks: int = 0
    t_epoch_ns: int = 0

    @property
    def ticks_per_ns(self) -> float:
        """Device ticks per true nanosecond."""
        return (1.0 + self.drift_ppm * 1e-6) * self.clock_hz / 1e9

    def ticks_at(self, t_true_ns: np.ndarray | int) -> np.ndarray:
        """Device counter (uint64, floor) at true times ``t_true_ns`` (at or after the epoch)."""
        dt_ns = np.asarray(t_true_ns, dtype=np.int64) - np.int64(self.t_epoch_ns)
        ticks = np.floor(dt_ns.astype(np.float64) * self.ticks_per_ns).astype(np.int64) + np.int64(self.offset_ticks)
        return np.maximum(ticks, 0).astype(np.uint64)

    def true_ns_at(self, ticks: np.ndarray | int) -> np.ndarray:
        """True time (int64 ns, rounded) at which the counter reads ``ticks``: the inverse of :meth:`ticks_at`."""
        dticks = np.asarray(ticks, dtype=np.int64) - np.int64(self.offset_ticks)
        return np.round(dticks.astype(np.float64) / self.ticks_per_ns).astype(np.int64) + np.int64(self.t_epoch_ns)


@dataclass
class SampleSchedule:
    """When a device takes its samples: every ``clock_hz / rate_hz`` device ticks from an anchor.

    The schedule is absolute: sample ``k`` after the anchor is taken at device tick
    ``anchor_ticks + round(k * clock_hz / rate_hz)``, so no error accumulates and a late wake-up of the
    simulator never shifts a sample.

    Parameters
    ----------
    clock : DeviceClock
    rate_hz : float
        Sampling rate in device time.
    anchor_ticks : int
        Device tick of sample 0 of this schedule.
    """

    clock: DeviceClock
    rate_hz: float
    anchor_ticks: int
    next_k: int = 0

    @classmethod
    def starting_after(cls, clock: DeviceClock, rate_hz: float, t_true_ns: int) -> SampleSchedule:
        """A schedule whose first sample is one period after true time ``t_true_ns``."""
        period_ticks = clock.clock_hz / rate_hz
        now_ticks = int(clock.ticks_at(t_true_ns))
        return cls(clock, rate_hz, now_ticks + int(round(period_ticks)))

    def ticks_of(self, k: np.ndarray) -> np.ndarray:
        """Device ticks (uint64) of samples ``k`` of this schedule."""
        offs = np.round(np.asarray(k, dtype=np.float64) * (self.clock.clock_hz / self.rate_hz)).astype(np.int64)
        return (offs + np.int64(self.anchor_ticks)).astype(np.uint64)

    def next_block(self, until_true_ns: int, max_n: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        """Take the next samples up to true time ``until_true_ns`` (inclusive) off the schedule.

        Returns
        -------
        ticks : ndarray of uint64
            Device clock of each sample.
        t_true_ns : ndarray of int64
            True time of each sample.
        """
        until_ticks = int(self.clock.ticks_at(until_true_ns))
        period = self.clock.clock_hz / self.rate_hz
        last_k = int(np.floor((until_ticks - self.anchor_ticks) / period))
        # Rounding of tick offsets can put sample last_k+1 at until_ticks too; ticks_of decides exactly.
        n = max(0, min(max_n, last_k + 2 - self.next_k))
        k = np.arange(self.next_k, self.next_k + n)
        ticks = self.ticks_of(k)
        keep = ticks <= np.uint64(until_ticks)
        ticks = ticks[keep]
        self.next_k += len(ticks)
        return ticks, self.clock.true_ns_at(ticks)

    def next_true_ns(self) -> int:
        """True time of the next sample not yet taken."""
        return int(self.clock.true_ns_at(self.ticks_of(np.array([self.next_k])))[0])


@dataclass
class UsbDelivery:
    """USB-like delivery: bytes leave in 1 ms frames, with occasional stalls followed by a burst.

    A real USB full-speed device is polled by the host once per 1 ms frame, so a sample taken at time ``t``
    reaches the host at the next frame boundary after ``t`` (0-1 ms later). Now and then the host controller or
    the device firmware is busy and nothing moves for several milliseconds; then everything queued goes at once.

    Parameters
    ----------
    frame_ns : int
        USB frame period (1 ms full speed, 125 us high speed).
    phase_ns : int
        Offset of the frame grid against true time.
    stall_rate_hz : float
        Mean number of stalls per second (Poisson).
    stall_max_ms : float
        Longest stall; stall lengths are uniform in [1 frame, stall_max_ms].
    rng : numpy.random.Generator
    """

    frame_ns: int
    phase_ns: int
    stall_rate_hz: float
    stall_max_ms: float
    rng: np.random.Generator
    stalled_until_ns: int = 0
    next_stall_ns: int | None = None
    stalls_n: int = 0

    def next_frame_ns(self, t_ns: int) -> int:
        """First frame boundary at or after ``t_ns``."""
        k = -((self.phase_ns - t_ns) // self.frame_ns)  # ceil((t - phase) / frame)
        return self.phase_ns + k * self.frame_ns

    def _draw_next_stall(self, now_ns: int) -> None:
        if self.stall_rate_hz <= 0:
            self.next_stall_ns = None
        else:
            self.next_stall_ns = now_ns + int(self.rng.exponential(1e9 / self.stall_rate_hz))

    def may_send(self, now_ns: int) -> bool:
        """Whether the link moves bytes at ``now_ns`` (False during a stall); starts stalls when due."""
        if self.next_stall_ns is None and self.stall_rate_hz > 0:
            self._draw_next_stall(now_ns)
        if self.next_stall_ns is not None and now_ns >= self.next_stall_ns:
            length_ns = int(self.rng.uniform(self.frame_ns, max(self.frame_ns, self.stall_max_ms * 1e6)))
            self.stalled_until_ns = max(self.stalled_until_ns, self.next_stall_ns + length_ns)
            self.stalls_n += 1
            self._draw_next_stall(self.next_stall_ns + length_ns)
        return now_ns >= self.stalled_until_ns

    def next_send_ns(self, due_ns: int) -> int:
        """When bytes that are ready at ``due_ns`` can leave: the next frame boundary, after any stall."""
        return self.next_frame_ns(max(due_ns, self.stalled_until_ns))
