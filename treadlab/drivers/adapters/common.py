"""What the adapters share: counters for what a format cannot check, sequence numbers made from device times,
and the shared base of a device that is not a protocol v1 port (no commands, no PING).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from treadlab.drivers.base import Calibration, PingResult
from treadlab.drivers.common import DeviceBase, DeviceStats
from treadlab.errors import CommandRejectedError, DeviceTimeoutError


@dataclass
class AdapterStats(DeviceStats):
    """:class:`~treadlab.drivers.common.DeviceStats` plus what a foreign format leaves unchecked.

    Attributes
    ----------
    unchecked : int
        Samples accepted without any integrity check (the format has no CRC): their values may be damaged.
    duplicates : int
        Samples dropped because their device time did not advance (sent twice, or out of order).
    resyncs : int
        Times the parser lost the frame boundaries and hunted for the next sync marker.
    """

    unchecked: int = 0
    duplicates: int = 0
    resyncs: int = 0


class TimeSequencer:
    """Sequence numbers for a stream that has none, from its device times and nominal rate (vectorised).

    Each sample's number is the previous one plus ``round(dt * rate_hz)`` (at least 1), so a sample missing from
    a regular stream shows as a sequence jump, which the drivers and the recorder count as lost like any gap.
    A time that does not advance is a duplicate (dropped, counted); a time more than ``restart_s`` back is a
    restart of the sender's clock (numbering goes on by one).
    """

    def __init__(self, rate_hz: float, restart_s: float = 1.0) -> None:
        self.rate_hz = float(rate_hz)
        self.restart_s = float(restart_s)
        self.last_t: float | None = None
        self.last_seq = -1

    def number(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sequence numbers (uint32) for device times ``t_s`` (s), and the mask of samples kept."""
        t = np.asarray(t_s, dtype=np.float64)
        if len(t) == 0:
            return np.zeros(0, np.uint32), np.zeros(0, bool)
        prev = np.concatenate(([np.nan if self.last_t is None else self.last_t], t[:-1]))
        dt = t - prev
        restart = dt < -self.restart_s
        keep = ~(dt <= 0) | restart  # NaN (the very first sample) is kept
        # a duplicate must not become the reference of the next step: measure each kept step from the last kept
        kept_t = t[keep]
        if len(kept_t) == 0:
            return np.zeros(0, np.uint32), keep
        prev_kept = np.concatenate(([np.nan if self.last_t is None else self.last_t], kept_t[:-1]))
        dt_kept = kept_t - prev_kept
        step = np.where(np.isnan(dt_kept) | (dt_kept < 0), 1, np.maximum(1, np.round(dt_kept * self.rate_hz)))
        seq = self.last_seq + np.cumsum(step.astype(np.int64))
        self.last_t = float(kept_t[-1])
        self.last_seq = int(seq[-1])
        return (seq % 2**32).astype(np.uint32), keep


class ListenOnlyDevice(DeviceBase):
    """A stream-only device (no commands, no PING, no LOG) on the shared :class:`~treadlab.drivers.common.DeviceBase`.

    It implements :class:`~treadlab.drivers.base.Device`: ``set_rate`` accepts only the rig's nominal rate,
    ``get_calibration`` returns the calibration the format implies, ``start``/``stop`` only decide whether
    received samples are kept (the sender streams all the time); PING, PONG and LOG are the base's no-ops.
    Counters are :class:`AdapterStats`. Subclasses set the description attributes in ``identify`` (``info``,
    ``shape``, ``dtype``...), count into :attr:`stats`, return batches through ``_batch`` (the one place
    sequence gaps are counted), and implement ``read``, ``_discard_queued`` and ``close``. The constructor is
    cooperative, so a subclass may also derive from :class:`~treadlab.drivers.common.ByteStreamDevice`.

    Attributes
    ----------
    started : bool
        Received samples are kept for ``read`` (between ``start`` and ``stop``).
    """

    stats: AdapterStats

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stats = AdapterStats()
        self.started = False

    def set_rate(self, rate_hz: int, timeout_s: float = 0.0) -> None:
        """The sender's rate is set in its own software: only the nominal rate of the rig file is accepted."""
        if int(rate_hz) != int(self.rate_hz):
            raise CommandRejectedError(f"{self.name}: the rate is set in the sending device or app, not by "
                                       f"treadlab (rig file says {self.rate_hz} Hz)")

    def get_calibration(self, timeout_s: float = 0.0) -> Calibration:
        """The calibration the format implies (nothing to ask the device); the description carries it."""
        return self.calibration

    def start(self, timeout_s: float = 0.0, keep_received: bool = False) -> None:
        """Start keeping samples (the sender streams all the time): what came before is dropped, unless
        ``keep_received`` (a reconnection: those are the next samples).
        """
        if not keep_received:
            self._discard_queued()
            self._seq.reset()
        self.started = True

    def stop(self, timeout_s: float = 0.0) -> None:
        """Stop keeping samples (the sender goes on streaming; what was kept stays readable)."""
        self.started = False

    def ping(self, timeout_s: float = 0.0) -> PingResult:
        """Raise :class:`DeviceTimeoutError`: the device cannot answer PING."""
        raise DeviceTimeoutError(f"{self.name}: this device cannot answer PING")

    def _discard_queued(self) -> None:
        """Drop the samples received and not yet read (at ``start``)."""
        raise NotImplementedError
