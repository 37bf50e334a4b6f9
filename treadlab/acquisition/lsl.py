"""Publish a capture on Lab Streaming Layer: one outlet per device, one irregular string outlet for markers.

LSL's ``local_clock()`` is ``time.monotonic()``, the clock the session clock is built on, so a sample at session
time ``t_s`` goes out stamped ``clock_origin_s + t_s`` where ``clock_origin_s`` is the session's
``start_monotonic_ns`` in seconds: an inlet on this machine reads back the session file's times exactly.

An :class:`LslPublisher` owns one thread that pushes to liblsl, fed through a bounded queue: the caller (a
recorder subscriber, the GUI) never blocks on the network, and batches that do not fit are counted, not queued.

Names: an outlet is ``treadlab-<kind>-<side>-<serial>`` (type ``Force`` for insoles, ``Pressure`` for mats) with
source id ``treadlab-<serial>``, so a stream keeps its identity across captures and LabRecorder recovers it after a
restart. Channel metadata follows the XDF meta-data conventions: ``desc/channels/channel`` with ``label``,
``unit``, ``type`` and, where known, ``location_mm`` (x, y); ``desc/acquisition`` names the device.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from treadlab.calibration import apply_calibration
from treadlab.drivers.lsl import load_pylsl
from treadlab.errors import ConfigError, DeviceError, LabError
from treadlab.kinds import DeviceDescription, UnknownKindError, get_kind

log = logging.getLogger(__name__)

MARKER_STREAM_TYPE = "Markers"


def _pylsl():
    """Import pylsl lazily (loading liblsl costs a few ms and is only needed with ``--lsl``)."""
    return load_pylsl()


def loopback_config(session_id: str = "default") -> str:
    """Text of an ``lsl_api.cfg`` that keeps LSL on this machine (IPv4 loopback only).

    Parameters
    ----------
    session_id : str
        LSL session id; streams of other sessions are invisible, so concurrent test runs do not see each other.

    Returns
    -------
    str
        The configuration; write it to a file and point ``LSLAPICFG`` at it before liblsl is first used.
    """
    return (
        "[ports]\nIPv6 = disable\n"
        "[multicast]\nResolveScope = machine\nKnownPeers = {127.0.0.1}\n"
        f"[lab]\nSessionID = {session_id}\n"
        "[log]\nlevel = -3\n"
    )


def configure_loopback(folder: str | Path, session_id: str) -> Path:
    """Write :func:`loopback_config` to ``folder/lsl_api.cfg`` and make liblsl use it.

    Sets ``LSLAPICFG`` and calls ``pylsl.set_config_filename``; effective only if liblsl has not been used yet
    in this process.

    Parameters
    ----------
    folder : str or Path
        Where to write the file.
    session_id : str
        LSL session id.

    Returns
    -------
    Path
        The configuration file.
    """
    path = Path(folder) / "lsl_api.cfg"
    path.write_text(loopback_config(session_id))
    os.environ["LSLAPICFG"] = str(path)
    _pylsl().set_config_filename(str(path))
    return path


@dataclass(frozen=True)
class StreamSpec:
    """What one outlet publishes: a device's calibrated values at its rate.

    Parameters
    ----------
    device : str
        Device name in the session (``/devices/<name>``); the key used by :meth:`LslPublisher.publish`.
    kind : str
        ``"insole"``, ``"mat"`` or anything else (published with type ``kind``).
    serial : str
        The device's serial number: the stream's name and source id derive from it.
    rate_hz : float
        Nominal sampling rate.
    unit : str
        Unit of the calibrated values (``"N"`` or ``"kPa"``).
    n_values : int
        Channels per sample (sensels; rows * cols for a mat, flattened row-major).
    side : str or None
        ``"left"`` or ``"right"`` for an insole.
    positions_mm : ndarray of shape (n_values, 2) or None
        Sensel centres in the device's frame (insole layout); mats give ``shape`` and ``pitch_mm`` instead.
    shape : tuple of int or None
        ``(rows, cols)`` of a mat.
    pitch_mm : tuple of float or None
        Sensel pitch of a mat (one value, or one per axis as the device reports it).
    gain, offset : ndarray of shape (n_values,) or None
        When given, :meth:`LslPublisher.publish` receives raw values and publishes ``gain * (raw - offset)``
        (negative values set to 0, as the session reader does).
    labels : tuple of str
        Channel labels (default: the kind's, see :mod:`treadlab.kinds`).
    units : tuple of str
        One unit a channel when the kind has per-channel units (an imu's g, deg/s); empty: :attr:`unit` for all.
    clip : bool
        Publish negative calibrated values as 0 (forces, pressures); False for signed kinds (:attr:`Kind.signed`).
    """

    device: str
    kind: str
    serial: str
    rate_hz: float
    unit: str
    n_values: int
    side: str | None = None
    positions_mm: np.ndarray | None = field(default=None, compare=False)
    shape: tuple[int, ...] | None = None
    pitch_mm: tuple[float, ...] | None = None
    gain: np.ndarray | None = field(default=None, compare=False)
    offset: np.ndarray | None = field(default=None, compare=False)
    labels: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    clip: bool = True

    @property
    def name(self) -> str:
        """The stream name: ``treadlab-<kind>[-<side>]-<serial>``."""
        parts = ["treadlab", self.kind] + ([self.side] if self.side else []) + [self.serial]
        return "-".join(parts)

    @property
    def source_id(self) -> str:
        """The stream's source id: ``treadlab-<serial>``."""
        return f"treadlab-{self.serial}"

    @property
    def stream_type(self) -> str:
        """The kind's LSL type (``Force`` for insoles, ``Pressure`` for mats), else the kind."""
        try:
            return get_kind(self.kind).lsl_type or self.kind
        except UnknownKindError:
            return self.kind

    def channel_labels(self) -> list[str]:
        """One label a channel: :attr:`labels`, else the kind's (``s01``... insoles, ``r00c00``... mats)."""
        if self.labels:
            return list(self.labels)
        shape = self.shape or (self.n_values,)
        try:
            return list(get_kind(self.kind).channel_labels(shape, {}))
        except (UnknownKindError, ValueError):
            return [f"ch{i + 1:02d}" for i in range(self.n_values)]


def spec_of_device(desc: DeviceDescription) -> StreamSpec | None:
    """The outlet of an identified device (its description), publishing raw values calibrated.

    Parameters
    ----------
    desc : DeviceDescription
        From the driver's ``describe()`` (after :func:`treadlab.drivers.connect`).

    Returns
    -------
    StreamSpec or None
        None for a kind that is never published (a device that is itself an LSL stream).
    """
    if not get_kind(desc.kind, desc.name).lsl_outlet:
        return None
    cal = desc.calibration
    shape = tuple(int(x) for x in (desc.shape or (desc.n_values,)))
    layout = desc.layout or {}
    positions = layout.get("positions_mm")
    pitch = desc.info.get("pitch_mm", layout.get("pitch_mm"))
    pitch_mm = tuple(float(x) for x in np.atleast_1d(np.asarray(pitch, dtype=float))) if pitch is not None else None
    return StreamSpec(device=desc.name, kind=desc.kind, serial=str(desc.serial or desc.name),
                      rate_hz=float(desc.rate_hz), unit=cal.unit if cal is not None else "counts",
                      n_values=desc.n_values, side=desc.side or None, positions_mm=positions,
                      shape=shape if len(shape) == 2 else None, pitch_mm=pitch_mm,
                      gain=None if cal is None else np.asarray(cal.gain, dtype=np.float32).ravel(),
                      offset=None if cal is None else np.asarray(cal.offset, dtype=np.float32).ravel(),
                      labels=tuple(desc.channel_labels), units=tuple(desc.channel_units),
                      clip=not get_kind(desc.kind, desc.name).signed)


def make_stream_info(spec: StreamSpec):
    """The ``pylsl.StreamInfo`` of one device outlet, with its channel metadata.

    Parameters
    ----------
    spec : StreamSpec
        The device.

    Returns
    -------
    pylsl.StreamInfo
    """
    pylsl = _pylsl()
    if spec.n_values < 1 or spec.rate_hz <= 0:
        raise ConfigError(f"device {spec.device!r}: cannot publish {spec.n_values} channels at {spec.rate_hz} Hz")
    info = pylsl.StreamInfo(spec.name, spec.stream_type, spec.n_values, float(spec.rate_hz), "float32",
                            spec.source_id)
    desc = info.desc()
    acq = desc.append_child("acquisition")
    acq.append_child_value("manufacturer", "treadlab")
    acq.append_child_value("device", spec.device)
    acq.append_child_value("kind", spec.kind)
    acq.append_child_value("serial_number", spec.serial)
    if spec.side:
        acq.append_child_value("side", spec.side)
    if spec.shape is not None:
        acq.append_child_value("shape", "x".join(str(s) for s in spec.shape))
    if spec.pitch_mm is not None:
        acq.append_child_value("pitch_mm", " ".join(repr(float(x)) for x in np.atleast_1d(spec.pitch_mm)))
    desc.append_child_value("clock", "session clock = time.monotonic() = lsl local_clock()")
    positions = None if spec.positions_mm is None else np.asarray(spec.positions_mm, dtype=float)
    if positions is not None and positions.shape != (spec.n_values, 2):
        raise ConfigError(f"device {spec.device!r}: positions_mm has shape {positions.shape}, "
                          f"expected ({spec.n_values}, 2)")
    chans = desc.append_child("channels")
    ctype = spec.stream_type
    # Building the XML header is once per outlet, not a hot path.
    for i, label in enumerate(spec.channel_labels()):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", spec.units[i] if len(spec.units) == spec.n_values else spec.unit)
        ch.append_child_value("type", ctype)
        if positions is not None:
            loc = ch.append_child("location_mm")
            loc.append_child_value("x", repr(float(positions[i, 0])))
            loc.append_child_value("y", repr(float(positions[i, 1])))
    return info


def make_marker_info(source_id: str | None = None, name: str = "treadlab-markers"):
    """The ``pylsl.StreamInfo`` of the marker outlet: one string channel, irregular rate.

    Parameters
    ----------
    source_id : str or None
        Defaults to ``treadlab-markers-<hostname>``.
    name : str
        Stream name.

    Returns
    -------
    pylsl.StreamInfo
    """
    pylsl = _pylsl()
    sid = source_id or f"treadlab-markers-{socket.gethostname()}"
    info = pylsl.StreamInfo(name, MARKER_STREAM_TYPE, 1, pylsl.IRREGULAR_RATE, "string", sid)
    info.desc().append_child("channels").append_child("channel").append_child_value("label", "marker")
    return info


def push_stamped(outlet, values: np.ndarray, stamps_s: np.ndarray) -> None:
    """Push a chunk with one timestamp a sample, without a Python loop over the stamps.

    ``pylsl.StreamOutlet.push_chunk`` builds a ctypes array element by element from a list of stamps; this calls
    liblsl's ``push_chunk_*tnp`` with the numpy buffers directly.

    Parameters
    ----------
    outlet : pylsl.StreamOutlet
        A numeric outlet.
    values : ndarray, shape (k, channels)
        Samples; converted to the outlet's dtype.
    stamps_s : ndarray, shape (k,)
        LSL timestamps (``local_clock`` seconds).
    """
    from pylsl.util import handle_error

    arr = np.ascontiguousarray(values, dtype=outlet.np_dtype)
    stamps = np.ascontiguousarray(stamps_s, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != outlet.channel_count or len(stamps) != arr.shape[0]:
        raise ValueError(f"chunk of shape {arr.shape} with {len(stamps)} stamps does not fit an outlet of "
                         f"{outlet.channel_count} channels")
    if arr.size == 0:
        return
    err = outlet.do_push_chunk_n(outlet.obj, ctypes.c_void_p(arr.ctypes.data), ctypes.c_long(arr.size),
                                 ctypes.c_void_p(stamps.ctypes.data), ctypes.c_int(1))
    handle_error(err)


@dataclass
class PublisherStats:
    """Counters of an :class:`LslPublisher`: samples pushed per device, markers, batches dropped on overflow."""

    samples_n: dict[str, int] = field(default_factory=dict)
    markers_n: int = 0
    dropped_batches_n: int = 0
    dropped_samples_n: int = 0
    errors: list[str] = field(default_factory=list)


class LslPublisher:
    """Outlets for a capture's devices and markers, pushed from one owned thread.

    Parameters
    ----------
    specs : sequence of StreamSpec
        One outlet each.
    clock_origin_s : float
        ``local_clock()`` seconds at session time 0 (the session's ``start_monotonic_ns / 1e9``).
    markers : bool
        Also publish the marker stream.
    marker_source_id : str or None
        Source id of the marker stream (default ``treadlab-markers-<hostname>``).
    queue_n : int
        Capacity of the queue, in batches; a full queue drops the batch and counts it.
    resolver : callable or None
        ``resolver(device) -> StreamSpec | None`` for devices not in ``specs``: their outlet is created (by the
        push thread) when their first samples arrive; None means "do not publish this device".

    Examples
    --------
    >>> pub = LslPublisher([spec], clock_origin_s=start_ns / 1e9)   # doctest: +SKIP
    >>> with pub:                                                    # doctest: +SKIP
    ...     pub.publish("left", calibrated, time_s)
    ...     pub.publish_marker("warm-up done", 12.5)
    """

    def __init__(self, specs: Sequence[StreamSpec], *, clock_origin_s: float, markers: bool = True,
                 marker_source_id: str | None = None, queue_n: int = 1024,
                 resolver: Callable[[str], StreamSpec | None] | None = None) -> None:
        names = [s.device for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate device names for LSL outlets: {names}")
        self.specs: dict[str, StreamSpec | None] = {s.device: s for s in specs}
        self.resolver = resolver
        self.clock_origin_s = float(clock_origin_s)
        self.markers = markers
        self.marker_source_id = marker_source_id
        self.stats = PublisherStats(samples_n={s.device: 0 for s in specs})
        self._queue: queue.Queue = queue.Queue(maxsize=queue_n)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outlets: dict[str, object] = {}
        self._marker_outlet = None
        self._lock = threading.Lock()
        self._pylsl = None

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> LslPublisher:
        """Create the outlets (they become discoverable) and start the push thread."""
        if self._thread is not None:
            raise RuntimeError("LslPublisher already started")
        pylsl = self._pylsl = _pylsl()
        try:
            for dev, spec in self.specs.items():
                self._outlets[dev] = pylsl.StreamOutlet(make_stream_info(spec), max_buffered=60)
            if self.markers:
                self._marker_outlet = pylsl.StreamOutlet(make_marker_info(self.marker_source_id))
        except RuntimeError as exc:  # liblsl could not create an outlet (no network interface, ports exhausted)
            self._destroy_outlets()
            raise DeviceError(f"cannot create LSL outlets: {exc}") from exc
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lsl-publisher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Push what is queued, stop the thread (checked join) and destroy the outlets."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError(f"LSL publisher thread did not stop within {timeout_s} s")
        self._thread = None
        self._destroy_outlets()

    def __enter__(self) -> LslPublisher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None

    # -- feeding ---------------------------------------------------------------------------------------------------
    def publish(self, device: str, values: np.ndarray, time_s: np.ndarray) -> bool:
        """Queue calibrated samples of one device (never blocks).

        Parameters
        ----------
        device : str
            A device named in the specs.
        values : ndarray, shape (k, n_values) or (k, rows, cols)
            Calibrated values.
        time_s : ndarray, shape (k,)
            Session time of each sample.

        Returns
        -------
        bool
            False if the queue was full and the batch was dropped (counted in :attr:`stats`).
        """
        if device not in self.specs and self.resolver is None:
            raise KeyError(f"no LSL outlet for device {device!r}")
        vals = np.asarray(values).reshape(len(time_s), -1)
        return self._put(("data", device, vals, np.asarray(time_s, dtype=np.float64)), len(vals))

    def publish_marker(self, label: str, time_s: float) -> bool:
        """Queue a marker at session time ``time_s``; False if dropped (no marker stream or queue full)."""
        if not self.markers:
            return False
        return self._put(("marker", str(label), float(time_s)), 1)

    def _put(self, item: tuple, n: int) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.stats.dropped_batches_n += 1
                self.stats.dropped_samples_n += n
            return False
        return True

    # -- thread ----------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            self._push(item)
        for _ in range(self._queue.qsize()):  # push what was queued before stop
            self._push(self._queue.get_nowait())

    def _push(self, item: tuple) -> None:
        try:
            if item[0] == "data":
                _, device, vals, time_s = item
                outlet = self._outlet(device)
                if outlet is None:
                    return
                spec = self.specs[device]
                if spec.gain is not None:
                    vals = apply_calibration(vals, spec.gain, spec.offset, clip=spec.clip)
                push_stamped(outlet, vals, time_s + self.clock_origin_s)
                with self._lock:
                    self.stats.samples_n[device] = self.stats.samples_n.get(device, 0) + len(vals)
            else:
                _, label, time_s = item
                self._marker_outlet.push_sample([label], time_s + self.clock_origin_s)
                with self._lock:
                    self.stats.markers_n += 1
        # liblsl errors are RuntimeErrors; a device whose description cannot be published must not end the thread
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError, LabError) as exc:
            with self._lock:
                if len(self.stats.errors) < 100:
                    self.stats.errors.append(f"{item[1]}: {exc}")
            log.warning("LSL push failed for %s: %s", item[1], exc)

    def _outlet(self, device: str):
        """The device's outlet, created on first use for devices found by the resolver (push thread only)."""
        outlet = self._outlets.get(device)
        if outlet is not None or device in self.specs and self.specs[device] is None:
            return outlet
        self.specs[device] = None  # until the outlet exists: a device that fails here is not retried per batch
        spec = self.resolver(device)
        if spec is None:
            return None
        outlet = self._pylsl.StreamOutlet(make_stream_info(spec), max_buffered=60)
        self.specs[device] = spec
        self._outlets[device] = outlet
        return outlet

    def _destroy_outlets(self) -> None:
        # Dropping the last reference destroys the liblsl outlet (it vanishes from the network).
        self._outlets.clear()
        self._marker_outlet = None


class RecorderLsl:
    """Publish a :class:`~treadlab.acquisition.recorder.Recorder`'s capture on LSL (``lab record --lsl``, the GUI).

    Every device except external LSL streams gets an outlet, created when its first samples arrive, publishing
    calibrated values stamped ``start_monotonic_ns / 1e9 + time_s``; markers go out on the marker stream.

    Parameters
    ----------
    recorder : Recorder
        Subscribed to on :meth:`start` (before or after the recorder starts).
    markers : bool
        Publish the marker stream (needs ``Recorder.subscribe_markers``).
    queue_n : int
        Bound of the publisher's queue, in batches.
    """

    def __init__(self, recorder, *, markers: bool = True, queue_n: int = 1024) -> None:
        self.recorder = recorder
        self.publisher = LslPublisher([], clock_origin_s=0.0, markers=markers, queue_n=queue_n,
                                      resolver=self._spec)
        self._unsubscribe: list[Callable[[], None]] = []

    def _spec(self, name: str) -> StreamSpec | None:
        desc = self.recorder.descriptions.get(name)
        return None if desc is None else spec_of_device(desc)

    def _origin_s(self) -> float:
        return self.recorder.clock_origin_ns / 1e9

    def _on_batch(self, batch) -> None:
        self.publisher.publish(batch.name, batch.values, batch.time_s + self._origin_s())

    def _on_marker(self, time_s: float, label: str) -> None:
        self.publisher.publish_marker(label, time_s + self._origin_s())

    def start(self) -> RecorderLsl:
        """Start the push thread and subscribe to the recorder's batches and markers."""
        self.publisher.start()
        self._unsubscribe.append(self.recorder.subscribe(self._on_batch))
        if self.publisher.markers:
            self._unsubscribe.append(self.recorder.subscribe_markers(self._on_marker))
        return self

    def stop(self) -> None:
        """Unsubscribe, push what is queued, stop the thread (checked join) and withdraw the outlets."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.publisher.stop()

    def __enter__(self) -> RecorderLsl:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
