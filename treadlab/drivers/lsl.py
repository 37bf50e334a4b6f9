"""An external Lab Streaming Layer stream recorded like a device: a ``Device`` backed by a pylsl inlet.

A rig file names the stream by any of its name, type and source id (``protocol = "lsl"``, keys ``stream_name``,
``stream_type``, ``source_id``). :class:`LslInletDevice` offers the interface the recorder uses for serial
devices (``identify``, ``start``, ``read`` -> :class:`~treadlab.drivers.base.SampleBatch``, ``stats``, ``close``...),
on the shared :class:`~treadlab.drivers.common.DeviceBase` (it implements :class:`~treadlab.drivers.base.Device`),
so a missing stream refuses a required capture (``identify`` raises :class:`~treadlab.errors.DeviceTimeoutError`)
and a stream that vanishes mid-capture raises :class:`~treadlab.errors.DeviceDisconnectedError` from ``read``, which
the recorder turns into a gap and a reconnection attempt, as for an unplugged insole.

Clock: the inlet applies LSL's clock synchronisation (``proc_clocksync``), so every timestamp is on this host's
``local_clock()`` = ``time.monotonic()``, the session clock. ``device_time`` holds those timestamps in
nanoseconds (``clock_hz`` = 1e9). The recorder fits every device clock to the host clock; for an LSL stream
the "device clock" *is* the host clock, and :meth:`LslInletDevice.read` says so the way a serial device does, with
PING results: every 100 ms it reads ``local_clock()`` between two ``monotonic_ns()`` calls, a round trip of a
few hundred nanoseconds that pins the fitted offset to LSL's own timestamps (:attr:`LslInletDevice.host_clock`
is True for code that wants to skip the fit altogether).

String streams (another program's markers, usually irregular-rate) are recorded too: such a device has
``markers = True``, :meth:`LslInletDevice.read` returns the strings (``values``: an object array of ``str``, one row
a sample, one column a channel) with their LSL timestamps in ``device_time``, and the reader thread turns them into
session markers and events instead of samples (see :mod:`treadlab.acquisition.worker`). No PING pairs are made for
them: their timestamps are mapped to the session clock directly (``host_clock``).

pylsl is imported lazily (:func:`load_pylsl`): loading liblsl costs a few ms and only LSL users need it.
"""

from __future__ import annotations

import collections
import json
import logging
import time

import numpy as np

from treadlab.drivers.base import Calibration, DeviceConfig, PingResult, SampleBatch
from treadlab.drivers.common import DeviceBase
from treadlab.errors import (
    CommandRejectedError,
    ConfigError,
    DeviceDisconnectedError,
    DeviceError,
    DeviceMismatchError,
    DeviceTimeoutError,
)

log = logging.getLogger(__name__)

PROTOCOL = "lsl"
QUERY_KEYS = {"stream_name": "name", "stream_type": "type", "source_id": "source_id"}
_NUMERIC = {"float32": np.float32, "double64": np.float64, "int8": np.int8, "int16": np.int16,
            "int32": np.int32, "int64": np.int64}
MAX_CHUNK_N = 4096
#: How long ``identify`` waits for a second stream matching the same query (liblsl resolves in ~0.5 s waves).
AMBIGUITY_WAIT_S = 0.7
#: One clock pair (see :meth:`LslInletDevice.read`) every 100 ms; at most this many kept between drains.
PONG_INTERVAL_NS = 100_000_000
MAX_PONGS = 64
#: How long ``start`` of a string stream waits for LSL's first clock offset (see :meth:`LslInletDevice.start`).
CLOCK_SYNC_WAIT_S = 2.0


def load_pylsl():
    """Import pylsl (lazily: loading liblsl costs a few ms and is only needed by LSL users).

    Raises
    ------
    DeviceError
        pylsl or liblsl is not installed.
    """
    try:
        import pylsl
    except (ImportError, OSError, RuntimeError) as exc:  # RuntimeError: pylsl cannot find liblsl
        raise DeviceError(f"Lab Streaming Layer is not available: {exc}") from exc
    return pylsl


_pylsl = load_pylsl


def stream_query(cfg: DeviceConfig) -> dict[str, str]:
    """The LSL properties a rig entry asks for: ``{"name"|"type"|"source_id": value}``.

    Parameters
    ----------
    cfg : DeviceConfig
        A ``protocol = "lsl"`` entry; the keys come from ``cfg.extra`` (or ``port = "lsl:name=X;type=Y"``).

    Raises
    ------
    ConfigError
        The entry names no property.
    """
    query: dict[str, str] = {}
    for key, prop in QUERY_KEYS.items():
        if cfg.extra.get(key):
            query[prop] = str(cfg.extra[key])
    port = cfg.port or ""
    if port.startswith("lsl:"):
        for part in filter(None, port[4:].split(";")):
            key, _, value = part.partition("=")
            prop = QUERY_KEYS.get(key.strip(), key.strip())
            if prop not in QUERY_KEYS.values() or not value:
                raise ConfigError(f"{cfg.name}: bad LSL port {port!r}: use lsl:name=...;type=...;source_id=...")
            query[prop] = value.strip()
    if not query:
        raise ConfigError(f"{cfg.name}: an LSL device needs stream_name, stream_type or source_id")
    return query


def _predicate(query: dict[str, str]) -> str:
    return " and ".join(f"{prop}='{value}'" for prop, value in sorted(query.items()))


def _describe(query: dict[str, str]) -> str:
    return ", ".join(f"{prop} {value!r}" for prop, value in sorted(query.items()))


def marker_texts(values: np.ndarray) -> list[str]:
    """The text of each string sample: its channels joined with ``" | "``.

    Parameters
    ----------
    values : ndarray of object, shape (k, channels)
        Strings as returned by :meth:`LslInletDevice.read` of a string stream.

    Returns
    -------
    list of str
        One text a sample (a loop over markers, which come a few a second at most, not over samples).
    """
    return [" | ".join(row) for row in np.asarray(values, dtype=object).reshape(len(values), -1).tolist()]


class LslInletDevice(DeviceBase):
    """An LSL stream as a capture device (one sample = one row of ``channel_count`` values).

    Numeric streams are recorded as samples; string streams (``markers`` True) as session markers.

    Parameters
    ----------
    cfg : DeviceConfig
        The rig entry (``protocol = "lsl"``); ``required`` is honoured by the recorder.
    """

    protocol = PROTOCOL
    supports_ping = False
    host_clock = True
    #: True for a string stream: its samples are markers (the recorder writes no ``/devices`` group for it).
    markers = False

    def __init__(self, cfg: DeviceConfig) -> None:
        super().__init__(cfg)
        self.query = stream_query(cfg)
        self.kind = PROTOCOL
        self.clock_hz = 1_000_000_000
        self.rate_hz = 0.0
        self.units: list[str] = []
        self.labels: list[str] = []
        self._inlet = None
        self._next_seq = 0
        self._pongs = collections.deque(maxlen=MAX_PONGS)
        self._next_pong_ns = 0

    @property
    def where(self) -> str:
        """The stream query."""
        return f"LSL {_describe(self.query)}"

    # -------------------------------------------------------------------- discovery
    def identify(self, timeout_s: float = 2.0, retries: int = 1) -> dict:
        """Resolve the stream, open an inlet and read its description.

        Parameters
        ----------
        timeout_s : float
            How long to look for the stream, per try.
        retries : int
            Tries.

        Returns
        -------
        dict
            INFO-like: ``protocol``, ``kind`` ("lsl"), ``name``, ``type``, ``source_id``, ``hostname``,
            ``sensels`` (channels), ``rate_hz``, ``channel_format``, ``labels``, ``units``, ``xml``.

        Raises
        ------
        DeviceTimeoutError
            No stream matches.
        DeviceMismatchError
            Several streams match.
        """
        pylsl = _pylsl()
        found: list = []
        for _ in range(max(1, retries)):
            found = pylsl.resolve_bypred(_predicate(self.query), minimum=1, timeout=timeout_s)
            if found:
                break
        if not found:
            raise DeviceTimeoutError(f"{self.name}: no LSL stream with {_describe(self.query)} found within "
                                     f"{timeout_s:g} s; is its sender running on this network?")
        # resolve returns with the first match; look briefly for a second one so an ambiguous rig is refused.
        found += pylsl.resolve_bypred(_predicate(self.query), minimum=2, timeout=AMBIGUITY_WAIT_S)
        uids = {f.uid() for f in found}
        if len(uids) > 1:
            ids = ", ".join(sorted(f"{f.name()} ({f.source_id() or f.hostname()})" for f in found))
            raise DeviceMismatchError(f"{self.name}: {len(uids)} LSL streams match {_describe(self.query)}: {ids}; "
                                      "name it by source_id")
        self._open(found[0], timeout_s)
        return self.info

    def _open(self, stream_info, timeout_s: float) -> None:
        pylsl = _pylsl()
        from pylsl.lib import fmt2string

        fmt = fmt2string[stream_info.channel_format()]
        if fmt not in _NUMERIC and fmt != "string":
            raise DeviceMismatchError(f"{self.name}: LSL stream {stream_info.name()!r} carries {fmt or 'unknown'}"
                                      " values; only numeric and string streams can be recorded")
        self.markers = fmt == "string"
        flags = pylsl.proc_clocksync | pylsl.proc_threadsafe
        inlet = pylsl.StreamInlet(stream_info, max_buflen=60, recover=False, processing_flags=flags)
        try:
            full = inlet.info(timeout=timeout_s)
        except pylsl.util.TimeoutError:
            inlet.close_stream()
            raise DeviceTimeoutError(f"{self.name}: LSL stream {stream_info.name()!r} did not send its "
                                     f"description within {timeout_s:g} s") from None
        n = full.channel_count()
        labels = full.get_channel_labels() or []
        units = full.get_channel_units() or []
        self.labels = [lab or f"ch{i + 1:02d}" for i, lab in enumerate(labels)] or [f"ch{i + 1:02d}" for i in range(n)]
        self.units = [u or "" for u in units] or [""] * n
        self._inlet = inlet
        self.n_values = n
        self.shape = (n,)
        self.dtype = np.dtype(object) if self.markers else np.dtype(_NUMERIC[fmt])
        self.rate_hz = float(full.nominal_srate())
        self.serial = full.source_id() or full.uid()
        self.info = {
            "protocol": PROTOCOL, "kind": PROTOCOL, "name": full.name(), "type": full.type(),
            "source_id": full.source_id(), "uid": full.uid(), "hostname": full.hostname(),
            "session_id": full.session_id(), "sensels": n, "rate_hz": self.rate_hz, "clock_hz": self.clock_hz,
            "channel_format": fmt, "labels": self.labels, "units": self.units, "serial": self.serial,
            "xml": full.as_xml(),
        }

    # -------------------------------------------------------------------- device interface
    def set_rate(self, rate_hz: float, timeout_s: float = 0.0) -> None:
        """An LSL stream has the rate its sender chose: accept that rate (or None), refuse any other."""
        if rate_hz is not None and float(rate_hz) != self.rate_hz:
            raise CommandRejectedError(f"{self.name}: the LSL stream runs at {self.rate_hz:g} Hz, not {rate_hz} Hz; "
                                       "its sender sets the rate")

    def get_calibration(self, timeout_s: float = 0.0) -> Calibration:
        """Identity calibration; ``unit`` is the channels' unit when they share one (``"a.u."`` otherwise)."""
        unit = self.units[0] if self.units and len(set(self.units)) == 1 and self.units[0] else "a.u."
        self.calibration = Calibration(unit=unit, gain=np.ones(self.n_values, np.float32),
                                       offset=np.zeros(self.n_values, np.float32))
        return self.calibration

    def start(self, timeout_s: float = 2.0, keep_received: bool = False) -> None:
        """Open the data connection and drop anything buffered so far (not with ``keep_received``, a
        reconnection); ``seq`` restarts at 0.

        For a string stream it also waits (up to :data:`CLOCK_SYNC_WAIT_S`) for LSL's first clock offset: the
        inlet holds the first sample back until it has one (about 0.7 s on loopback), and a marker sent just
        before its sender quits would otherwise be lost with the connection.
        """
        self._require_inlet()
        pylsl = _pylsl()
        try:
            self._inlet.open_stream(timeout=timeout_s)
            if not keep_received:
                self._inlet.flush()
            if self.markers:
                try:
                    self._inlet.time_correction(timeout=CLOCK_SYNC_WAIT_S)
                except pylsl.util.TimeoutError:
                    pass  # the inlet goes on trying; the first marker is only late, not misplaced
        except pylsl.util.LostError:
            raise DeviceDisconnectedError(f"{self.name}: LSL stream {_describe(self.query)} vanished") from None
        except pylsl.util.TimeoutError:
            raise DeviceTimeoutError(f"{self.name}: LSL stream {_describe(self.query)} did not open within "
                                     f"{timeout_s:g} s") from None
        self._next_seq = 0
        self._seq.reset()

    def stop(self, timeout_s: float = 0.0) -> None:
        """Close the data connection (the inlet stays resolved)."""
        if self._inlet is not None:
            self._inlet.close_stream()

    def read(self, timeout_s: float = 0.05) -> SampleBatch | None:
        """Samples received since the last call (waits up to ``timeout_s`` for the first).

        For a string stream ``values`` is an object array of ``str`` (UTF-8, undecodable bytes replaced).

        Raises
        ------
        DeviceDisconnectedError
            The stream's sender vanished.
        """
        self._require_inlet()
        pylsl = _pylsl()
        try:
            values, stamps = self._inlet.pull_chunk(timeout=timeout_s, max_samples=MAX_CHUNK_N, min_samples=1,
                                                    as_numpy=True)
        except pylsl.util.LostError:
            log.warning("%s: LSL stream %s vanished", self.name, _describe(self.query))
            raise DeviceDisconnectedError(f"{self.name}: LSL stream {_describe(self.query)} vanished") from None
        host_ns = time.monotonic_ns()
        if host_ns >= self._next_pong_ns and not self.markers:
            self._clock_pong(host_ns)
        k = len(stamps)
        if k == 0:
            return None
        if self.markers:  # raw bytes as sent; decoded here so that a bad byte cannot stop the reader
            raw = np.asarray(values, dtype=object).reshape(k, self.n_values)
            values = np.array([b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)
                               for b in raw.ravel().tolist()], dtype=object).reshape(k, self.n_values)
        else:
            values = np.asarray(values, dtype=self.dtype).reshape(k, self.n_values)
        device_time = np.round(np.asarray(stamps, dtype=np.float64) * 1e9).astype(np.uint64)
        seq = ((np.arange(k, dtype=np.int64) + self._next_seq) % 2**32).astype(np.uint32)
        self._next_seq = (self._next_seq + k) % 2**32
        self.stats.messages += k
        self.stats.bytes += values.nbytes if not self.markers else sum(map(len, values.ravel().tolist()))
        return self._batch(seq, device_time, values, np.full(k, host_ns, dtype=np.int64))

    def _clock_pong(self, now_ns: int) -> None:
        """Record one exact (host, LSL clock) pair as a PING result; the LSL clock is read between the two."""
        pylsl = _pylsl()
        send_ns = time.monotonic_ns()
        lsl_ns = int(round(pylsl.local_clock() * 1e9))
        recv_ns = time.monotonic_ns()
        self._pongs.append(PingResult(send_ns, recv_ns, lsl_ns))  # the deque keeps the newest MAX_PONGS
        self._next_pong_ns = now_ns + PONG_INTERVAL_NS

    def ping(self, timeout_s: float = 0.0) -> PingResult:
        """LSL streams have no PING."""
        raise CommandRejectedError(f"{self.name}: LSL streams do not answer PING")

    def close(self) -> None:
        """Close the inlet (safe to call more than once)."""
        if self._inlet is not None:
            self._inlet.close_stream()
            self._inlet = None  # dropping the last reference destroys the liblsl inlet

    def _require_inlet(self) -> None:
        if self._inlet is None:
            raise DeviceDisconnectedError(f"{self.name}: LSL stream {_describe(self.query)} is not open")

    def metadata_json(self) -> str:
        """The stream's description as JSON (what the session file keeps in ``info_json``)."""
        return json.dumps(self.info or {})


def open_lsl_device(cfg: DeviceConfig) -> LslInletDevice:
    """The device of a ``protocol = "lsl"`` rig entry, not yet identified (call ``identify()`` next).

    Raises
    ------
    ConfigError
        The entry names no stream.
    """
    if cfg.protocol != PROTOCOL:
        raise ConfigError(f"{cfg.name}: protocol is {cfg.protocol!r}, not 'lsl'")
    return LslInletDevice(cfg)
