"""Moticon OpenGo insoles through the UDP text stream of the OpenGo desktop software (rig ``protocol = "moticon"``).

The insoles talk BLE to Moticon's mobile app, which forwards to the desktop software; with its UDP output on, the
desktop software sends one datagram per sample of both insoles: ASCII numbers separated by white space, 51 fields
(see ``docs/adapters.md`` for the sources)::

    time  L.acc[3] L.gyro[3] L.cop[2] L.pressure[16] L.total_force  R.acc[3] R.gyro[3] R.cop[2] R.pressure[16]
    R.total_force

A rig file has one entry per insole, all on the same ``udp://:PORT`` (the datagrams carry both feet), with
``side``, the app's ``rate_hz`` and optionally a ``layout`` of the 16 sensors. Each entry becomes a 16-sensel
insole (float32 pressure in N/cm², calibration to kPa); an entry with ``kind = "imu"`` becomes the inertial sensor
of that insole (:class:`MoticonImu`: an imu worn at ``foot_<side>``, channels ``ax ay az gx gy gz``, float32 in g
and deg/s as sent). One socket is shared by every entry of the stream (:class:`_SharedStream`, reference-counted,
no thread of its own: whichever device reads first receives for all).

What the format cannot say is handled and counted: there is no CRC, so every sample is ``unchecked``; there is no
sequence number, so one is made from the device time and the rate (:class:`~.common.TimeSequencer`) and a missing
datagram is a sequence gap like any other; a datagram that does not parse or has another field count is a
``bad_lines`` error (counted on both insoles) and never parsed further; a time that does not advance is a
``duplicate``. Total force and centre of pressure are parsed and kept on each batch
(:attr:`MoticonInsole.last_extras`) but not recorded (the insole's own sensels give both); the inertial channels
are recorded by the imu entries (see ``docs/adapters.md``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from itertools import compress

import numpy as np

from treadlab.drivers.adapters.common import ListenOnlyDevice, TimeSequencer
from treadlab.drivers.base import Calibration, DeviceConfig, SampleBatch
from treadlab.drivers.common import check_info, resolve_layout
from treadlab.drivers.message import UdpPort
from treadlab.drivers.urls import network_address
from treadlab.errors import ConfigError, DeviceDisconnectedError, DeviceError, DeviceTimeoutError

PROTOCOL = "moticon"
SENSELS = 16
FIELDS = 51
#: Field offsets of one insole's block (the right insole's block starts 25 fields after the left one's).
_ACC, _GYRO, _COP, _PRESSURE, _FORCE = 0, 3, 6, 8, 24
_BLOCK = 25
_SIDE_START = {"left": 1, "right": 1 + _BLOCK}
#: Pressure arrives in N/cm²: 1 N/cm² = 10 kPa.
KPA_PER_N_CM2 = 10.0
TIME_UNITS_S = {"s": 1.0, "ms": 1e-3}
CLOCK_HZ = 1_000_000  # device time is stored in microseconds
DEFAULT_LAYOUT = "insole16"
RIG_KEYS = ("name", "port", "protocol", "kind", "side", "rate_hz", "layout", "time_unit", "required", "placement")
KINDS = ("insole", "imu")
#: The inertial channels of each insole, in the order they are recorded (acceleration in g, angular rate in deg/s).
IMU_CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz")


@dataclass(frozen=True)
class MoticonFrames:
    """Datagrams of the OpenGo UDP stream, parsed (k good datagrams).

    Attributes
    ----------
    t : ndarray of float64, shape (k,)
        The first field: device time in the sender's unit.
    fields : ndarray of float64, shape (k, 51)
        Every field of every good datagram.
    bad : int
        Datagrams dropped (not numbers, or not 51 fields).
    """

    t: np.ndarray
    fields: np.ndarray
    bad: int

    def side(self, side: str) -> dict[str, np.ndarray]:
        """One insole's channels: ``pressure`` (k, 16), ``total_force`` (k,), ``cop`` (k, 2), ``acc`` and
        ``gyro`` (k, 3).
        """
        a = _SIDE_START[side]
        f = self.fields
        return {"pressure": f[:, a + _PRESSURE:a + _PRESSURE + SENSELS], "total_force": f[:, a + _FORCE],
                "cop": f[:, a + _COP:a + _COP + 2], "acc": f[:, a + _ACC:a + _ACC + 3],
                "gyro": f[:, a + _GYRO:a + _GYRO + 3]}


def parse_datagrams(datagrams: list[bytes]) -> MoticonFrames:
    """Parse OpenGo UDP text datagrams, vectorised over the whole read.

    Field counts come from one C-level ``split`` per datagram; all good datagrams are converted by one numpy
    call. A per-datagram slow path runs only when that conversion fails (a datagram with a field that is not a
    number), to find and drop the bad ones.
    """
    if not datagrams:
        return MoticonFrames(np.zeros(0), np.zeros((0, FIELDS)), 0)
    counts = np.fromiter(map(len, map(bytes.split, datagrams)), np.int64, len(datagrams))
    good = list(compress(datagrams, (counts == FIELDS).tolist()))
    bad = len(datagrams) - len(good)
    try:
        fields = np.array(b" ".join(good).split(), dtype=np.float64).reshape(len(good), FIELDS)
    except ValueError:
        rows = []
        for row in map(bytes.split, good):
            try:
                rows.append(np.array(row, dtype=np.float64))
            except ValueError:
                bad += 1
        fields = np.array(rows, dtype=np.float64).reshape(len(rows), FIELDS)
    finite = np.isfinite(fields[:, 0])  # a sample without a time cannot be placed
    if not finite.all():
        bad += int(np.count_nonzero(~finite))
        fields = fields[finite]
    return MoticonFrames(fields[:, 0].copy(), fields, bad)


# --------------------------------------------------------------------------------------------- shared socket

_STREAMS: dict[tuple[str, int], _SharedStream] = {}
_STREAMS_LOCK = threading.Lock()


class _SharedStream:
    """One UDP socket shared by the insoles of one rig (the datagrams carry both feet).

    There is no receiving thread: the reader of either device receives for both (under :attr:`lock`) and
    leaves the other device's part in its queue.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.port = UdpPort(url, listen=True)
        self.users: dict[tuple[str, str], MoticonInsole] = {}  # by (kind, side)
        self.lock = threading.Lock()

    @classmethod
    def attach(cls, url: str, dev: MoticonInsole) -> _SharedStream:
        key = network_address(url, listen=True)[:2]
        with _STREAMS_LOCK:
            stream = _STREAMS.get(key)
            if stream is None:
                stream = _STREAMS[key] = cls(url)
            user = (dev.kind, dev.side)
            if user in stream.users:
                raise ConfigError(f"{dev.name}: the {dev.side} {dev.what} of {url} is open already "
                                  f"(device {stream.users[user].name!r})")
            stream.users[user] = dev
        return stream

    def detach(self, dev: MoticonInsole) -> None:
        key = network_address(self.url, listen=True)[:2]
        with _STREAMS_LOCK:
            user = (dev.kind, dev.side)
            if self.users.get(user) is dev:
                del self.users[user]
            if not self.users and _STREAMS.get(key) is self:
                del _STREAMS[key]
                self.port.close()

    def pump(self, timeout_s: float) -> None:
        """Receive for every attached insole (if no other reader holds the socket within ``timeout_s``)."""
        if not self.lock.acquire(timeout=max(timeout_s, 0.0)):
            return  # the other reader is receiving for both of us
        try:
            datagrams = self.port.recv_messages(timeout_s)
            if not datagrams:
                return
            host_ns = time.monotonic_ns()
            frames = parse_datagrams(datagrams)
            for dev in list(self.users.values()):
                dev.take_frames(frames, host_ns, sum(map(len, datagrams)))
        finally:
            self.lock.release()


class MoticonInsole(ListenOnlyDevice):
    """One insole of a Moticon OpenGo UDP stream (the rig entry's ``side``).

    Parameters
    ----------
    cfg : DeviceConfig
        ``protocol = "moticon"``, ``port = "udp://[HOST]:PORT"`` (the local port the desktop app sends to),
        ``side``, ``rate_hz``, optional ``layout`` and ``time_unit`` (``extra``).
    """

    protocol = PROTOCOL
    #: The kind of device this entry of the stream is.
    what = "insole"

    def __init__(self, cfg: DeviceConfig) -> None:
        super().__init__(cfg)
        self.side = cfg.side
        self.kind = self.what  # "insole" or "imu": the shared stream keys its devices by (kind, side)
        self.rate_hz = int(cfg.rate_hz)
        self.n_values = SENSELS
        self.shape = (SENSELS,)
        self.dtype = np.dtype(np.float32)
        self.clock_hz = CLOCK_HZ
        self.unit_s = TIME_UNITS_S[cfg.extra.get("time_unit", "s")]
        self.calibration = Calibration(unit="kPa", gain=np.full(SENSELS, KPA_PER_N_CM2, np.float32),
                                       offset=np.zeros(SENSELS, np.float32))
        self.last_extras: dict[str, np.ndarray] = {}
        self._sequencer = TimeSequencer(self.rate_hz)
        self._queue: list[tuple[np.ndarray, np.ndarray, int]] = []
        self._qlock = threading.Lock()
        self._closed = False
        self._stream = _SharedStream.attach(cfg.port, self)

    @property
    def port(self) -> UdpPort:
        """The transport: the UDP port object shared by the insoles of this stream."""
        return self._stream.port

    @property
    def where(self) -> str:
        """The ``udp://`` URL of the stream."""
        return self.cfg.port

    def take_frames(self, frames: MoticonFrames, host_ns: int, nbytes: int) -> None:
        """Keep this insole's part of a parsed read (called by the shared stream, from either reader's thread)."""
        ch = frames.side(self.side)
        with self._qlock:
            self.stats.bytes += nbytes
            self.stats.bad_lines += frames.bad
            self.stats.messages += len(frames.t)
            if self.info is None or not self.started:
                return
            self._queue.append((frames.t, self._values(ch), host_ns))
            self.last_extras = {k: v for k, v in ch.items() if k != "pressure"}

    def _values(self, ch: dict[str, np.ndarray]) -> np.ndarray:
        """What this device records of its side's channels: the 16 pressures (float32, N/cm²)."""
        return ch["pressure"].astype(np.float32)

    def _discard_queued(self) -> None:
        """Drop the samples kept and not yet read (both readers may be queueing)."""
        with self._qlock:
            self._queue.clear()

    def identify(self, timeout_s: float = 2.0, retries: int = 1) -> dict:
        """Wait for the stream (the sender cannot be asked anything) and describe the insole.

        Raises
        ------
        DeviceTimeoutError
            No datagram within ``timeout_s`` (the desktop app is not streaming to this port).
        """
        deadline = time.monotonic() + timeout_s
        seen = self.stats.messages + self.stats.bad_lines
        while self.stats.messages + self.stats.bad_lines == seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceTimeoutError(
                    f"{self.name}: nothing arrived on {self.cfg.port} within {timeout_s:g} s; is the OpenGo "
                    "desktop software streaming (UDP output on) to this computer and port?")
            self._stream.pump(min(left, 0.05))
        if self.stats.messages == 0:
            raise DeviceError(f"{self.name}: datagrams on {self.cfg.port} are not the OpenGo text stream "
                              f"({self.stats.bad_lines} did not have {FIELDS} numbers)")
        self.info = self._describe_stream()
        check_info(self.info, self.cfg, self.name, self.where)
        return self.info

    def _describe_stream(self) -> dict:
        """INFO of this device of the stream (the sender sends none: treadlab writes it)."""
        self.layout = resolve_layout(self.cfg.layout or DEFAULT_LAYOUT, SENSELS, self.name)
        return {"protocol": PROTOCOL, "kind": "insole", "model": "Moticon OpenGo (desktop UDP stream)",
                "side": self.side, "sensels": SENSELS, "dtype": "f4", "rate_hz": self.rate_hz,
                "clock_hz": CLOCK_HZ, "unit": "N/cm2", "layout": self.layout["name"],
                "extras": ["total_force_n", "cop"]}

    def read(self, timeout_s: float = 0.05) -> SampleBatch | None:
        """All samples of this insole received since the last call (None when there are none)."""
        if self._closed:
            raise DeviceDisconnectedError(f"{self.name}: closed")
        with self._qlock:
            queued = bool(self._queue)
        if not queued:
            self._stream.pump(timeout_s)
        with self._qlock:
            parts, self._queue = self._queue, []
        if not parts:
            return None
        t = np.concatenate([q[0] for q in parts])
        values = np.concatenate([q[1] for q in parts])
        host = np.concatenate([np.full(len(q[0]), q[2], np.int64) for q in parts])
        seq, keep = self._sequencer.number(t * self.unit_s)
        dup = len(t) - int(np.count_nonzero(keep))
        if dup:
            t, values, host = t[keep], values[keep], host[keep]
        self.stats.duplicates += dup
        self.stats.unchecked += len(t)
        if len(t) == 0:
            return None
        ticks = np.maximum(np.round(t * self.unit_s * CLOCK_HZ), 0).astype(np.uint64)
        return self._batch(seq, ticks, values, host)

    def close(self) -> None:
        """Close the transport (safe to call more than once)."""
        if not self._closed:
            self._closed = True
            self._stream.detach(self)


class MoticonImu(MoticonInsole):
    """The inertial sensor of one insole of the stream (a rig entry with ``kind = "imu"``): kind "imu", placement
    ``foot_<side>``, channels ``ax ay az gx gy gz`` as sent (float32, g and deg/s; calibration "imu", gain 1).

    The stream does not state the sensor's full scale, so ``range_g`` and ``range_dps`` are not known (NaN in the
    file) and clipping is not counted.
    """

    what = "imu"

    def __init__(self, cfg: DeviceConfig) -> None:
        super().__init__(cfg)
        n = len(IMU_CHANNELS)
        self.n_values = n
        self.shape = (n,)
        self.calibration = Calibration(unit="imu", gain=np.ones(n, np.float32), offset=np.zeros(n, np.float32))

    def _values(self, ch: dict[str, np.ndarray]) -> np.ndarray:
        """Acceleration then angular rate (float32, g and deg/s)."""
        return np.hstack([ch["acc"], ch["gyro"]]).astype(np.float32)

    def _describe_stream(self) -> dict:
        self.layout = None
        return {"protocol": PROTOCOL, "kind": "imu", "model": "Moticon OpenGo (desktop UDP stream), insole IMU",
                "side": self.side, "placement": f"foot_{self.side}", "channels": list(IMU_CHANNELS),
                "dtype": "f4", "rate_hz": self.rate_hz, "clock_hz": CLOCK_HZ, "unit": "g, deg/s"}


def check_rig_entry(entry: dict, where: str, get) -> DeviceConfig:
    """Validate a ``protocol = "moticon"`` rig entry (see ``docs/rig.md``)."""
    misplaced = sorted(set(entry) - set(RIG_KEYS))
    if misplaced:
        raise ConfigError(f"{where}: {', '.join(map(repr, misplaced))} do not apply to Moticon insoles; "
                          f"allowed: {', '.join(RIG_KEYS)}")
    port = get("port", str, lambda v: v.lower().startswith("udp://"),
               "the local UDP port the OpenGo desktop software sends to, e.g. 'udp://:8888'")
    if port is None:
        raise ConfigError(f"{where}: missing 'port' (the local UDP port the OpenGo desktop software sends to, "
                          "e.g. 'udp://:8888')")
    try:
        network_address(port, listen=True)
    except DeviceError as exc:
        raise ConfigError(f"{where}: port: {exc}") from exc
    kind = get("kind", str, lambda v: v in KINDS, "'insole' (the default) or 'imu' (the insole's inertial sensor)") \
        or "insole"
    side = get("side", str, lambda v: v in ("left", "right"), "'left' or 'right'")
    rate_hz = get("rate_hz", int, lambda v: 0 < v <= 1000, "an integer 1-1000 (the rate set in the OpenGo app)")
    for key, value in (("side", side), ("rate_hz", rate_hz)):
        if value is None:
            raise ConfigError(f"{where}: Moticon insoles need {key!r}")
    layout = get("layout", (str, dict), None, "a layout name or table")
    # rig.py lets placement through for imu entries only
    get("placement", str, lambda v: v == f"foot_{side}", f"'foot_{side}' (the {side} insole's imu)")
    if kind == "imu":
        if layout is not None:
            raise ConfigError(f"{where}: 'layout' does not apply to the insole's imu")
        time_unit = get("time_unit", str, lambda v: v in TIME_UNITS_S, "'s' or 'ms' (unit of the time field)")
        required = get("required", bool)
        return DeviceConfig(name=entry["name"], port=port, protocol=PROTOCOL, rate_hz=rate_hz, kind="imu",
                            side=side, required=True if required is None else required,
                            extra={"time_unit": time_unit or "s"}, expect={"placement": f"foot_{side}"})
    time_unit = get("time_unit", str, lambda v: v in TIME_UNITS_S, "'s' or 'ms' (unit of the time field)")
    required = get("required", bool)
    if layout is not None:
        try:
            resolve_layout(layout, SENSELS, where)
        except (ConfigError, DeviceError) as exc:
            raise ConfigError(f"{where}: layout: {exc}") from exc
    return DeviceConfig(name=entry["name"], port=port, protocol=PROTOCOL, rate_hz=rate_hz, kind="insole",
                        side=side, sensels=SENSELS, layout=layout, required=True if required is None else required,
                        extra={"time_unit": time_unit or "s"})


def open_moticon(cfg: DeviceConfig, timeout_s: float = 0.05) -> MoticonInsole:
    """The insole, or its imu (``kind = "imu"``), of a ``protocol = "moticon"`` rig entry (not yet identified)."""
    try:
        return MoticonImu(cfg) if cfg.kind == "imu" else MoticonInsole(cfg)
    except DeviceError as exc:
        raise type(exc)(f"{cfg.name}: {exc}") from exc
