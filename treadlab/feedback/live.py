"""A feedback engine on a live capture: the ``/feedback`` group of the session file, the engine on the recorder.

Usage (``lab record --feedback`` does this through :class:`~treadlab.acquisition.capture.CaptureSession`)::

    rec = Recorder(devices, meta, path, rig_text)
    rec.open()
    run = FeedbackRun(load_protocol("five-minute"), WavSink("cues.wav")).attach(rec)   # before rec.start()
    rec.start(); run.start()
    ...
    run.stop(); rec.stop()
"""

from __future__ import annotations

import dataclasses
import math

import h5py
import numpy as np

from treadlab.acquisition.writer import TableSetup
from treadlab.analysis.imu_online import IMU_METRIC_PLACEMENTS, ImuChannels
from treadlab.errors import ConfigError
from treadlab.feedback.engine import FeedbackEngine, FootInput
from treadlab.feedback.protocol import PHASE_NAME_BYTES, Protocol
from treadlab.feedback.sinks import AudioSink, NullSink, WavSink
from treadlab.kinds import imu as imu_kind

G_MPS2 = 9.80665
#: Version of the ``/feedback`` group layout (docs/file-format.md).
FEEDBACK_LAYOUT = 1


def feedback_tables(protocol: Protocol, sink: AudioSink) -> list[TableSetup]:
    """The ``/feedback`` group and its tables (docs/file-format.md)."""
    wav_start = sink.start_s if isinstance(sink, WavSink) else math.nan
    attrs = {"protocol": protocol.text, "protocol_name": protocol.name, "audio_sink": sink.name,
             "audio_latency_ms": float(sink.latency_ms), "wav_start_s": float(wav_start),
             "target_metric": protocol.metric, "cue_kind": protocol.cue_kind, "layout_version": FEEDBACK_LAYOUT}
    return [
        TableSetup("feedback", {}, attrs),
        TableSetup("feedback/phases", {"start": "f8", "stop": "f8",
                                       "name": h5py.string_dtype("utf-8", PHASE_NAME_BYTES)}),
        TableSetup("feedback/cues", {"time": "f8", "ic": "f8", "foot": "u1", "value": "f8", "in_band": "u1",
                                     "phase": "u1"}),
        TableSetup("feedback/band", {"time": "f8", "low": "f8", "high": "f8"}),
    ]


def foot_input(name: str, desc) -> FootInput:
    """Total force and moment along the foot of an identified insole (its description: calibration and layout).

    The same linear map as the session reader's ``InsoleData.iter_derived``: ``raw @ W - offset @ W`` with
    ``W = [1, y] x gain`` (x sensel area / 1000 for kPa).
    """
    lay = desc.layout or {}
    pos = np.asarray(lay.get("positions_mm"), dtype=np.float64).reshape(-1, 2)
    n = int(np.prod(desc.shape))
    cal = desc.calibration
    gain = np.broadcast_to(np.asarray(cal.gain if cal is not None else 1.0, np.float64), (n,))
    offset = np.broadcast_to(np.asarray(cal.offset if cal is not None else 0.0, np.float64), (n,))
    factor = np.asarray(lay.get("areas_mm2"), np.float64) * 1e-3 if cal is not None and cal.unit == "kPa" else 1.0
    w = np.column_stack([np.ones(n), pos[:, 1]]) * (factor * gain)[:, None]
    length = float(lay.get("foot_length_mm", math.nan))
    if not math.isfinite(length) or length <= 0:
        length = float(np.ptp(pos[:, 1]))
    return FootInput(name, desc.side, w, offset @ w, length)


def imu_channels(name: str, desc) -> ImuChannels:
    """Accelerometer and gyroscope columns and calibration of an identified IMU (its description)."""
    channels = list(desc.channel_labels) or [str(c) for c in desc.info.get("channels", [])]
    gain, offset = imu_kind.physical_scale(channels, desc.info, desc.calibration)
    return ImuChannels.from_channels(name, str(desc.info.get("placement", "")), float(desc.rate_hz), channels,
                                     gain, offset)


def on_file_clock(put, offset_s: float):
    """``put`` for batches on the file's clock, from a subscriber of batches on the stream's clock.

    A stream (:class:`~treadlab.acquisition.stream.DeviceStream`) that ran before its recording started gives
    :class:`~treadlab.acquisition.worker.LiveBatch` times from its own zero; the file's zero is ``offset_s`` later
    (``Recorder.offset_s``). The engine works on the file's clock, the clock of its cues and phases.
    """
    offset_s = float(offset_s)
    if not offset_s:
        return put

    def shifted(batch) -> None:
        put(dataclasses.replace(batch, time_s=batch.time_s - offset_s, host_time_s=batch.host_time_s - offset_s))

    return shifted


class StreamTarget:
    """The recorder-like face of a :class:`~treadlab.acquisition.stream.DeviceStream`'s next recording.

    What :meth:`FeedbackRun.attach` and :meth:`FeedbackRun.start` use of a
    :class:`~treadlab.acquisition.recorder.Recorder`, for the app, which records from its running stream:
    pass :attr:`tables` to ``DeviceStream.record`` and set :attr:`recording` to what it returns before
    :meth:`FeedbackRun.start`.
    """

    def __init__(self, stream, meta: dict) -> None:
        self.stream = stream
        self.meta = dict(meta)
        self.tables: list[TableSetup] = []
        self.recording = None

    @property
    def descriptions(self) -> dict:
        """Descriptions of the streaming devices, by name."""
        return self.stream.descriptions

    @property
    def start_ns(self) -> int | None:
        """``monotonic_ns`` of the file's time zero (None before the recording)."""
        return None if self.recording is None else self.recording.start_ns

    @property
    def offset_s(self) -> float:
        """Stream time of the file's time zero."""
        return 0.0 if self.recording is None else self.recording.offset_s

    @property
    def elapsed_s(self) -> float:
        """Seconds since the file's time zero."""
        return 0.0 if self.recording is None else self.recording.elapsed_s

    def put_rows(self, group: str, columns: dict) -> bool:
        """Append rows to one of :attr:`tables` in the file."""
        return self.recording.put_rows(group, columns)

    def mark(self, label: str, time_s: float | None = None) -> float:
        """A marker now (or at file time ``time_s``); returns its file time."""
        return self.stream.mark(label, time_s=time_s)

    def subscribe(self, callback):
        """Subscribe to the stream's batches (stream time); returns the unsubscribe function."""
        return self.stream.subscribe(callback)


class FeedbackRun:
    """The engine of one capture, with its sink; owns both (started and stopped with the capture).

    Parameters
    ----------
    protocol : Protocol
    sink : AudioSink, optional
        Default :class:`NullSink` (screen cues only).
    body_mass_kg : float, optional
        Default: the session's (70 kg when missing).
    """

    def __init__(self, protocol: Protocol, sink: AudioSink | None = None, body_mass_kg: float | None = None) -> None:
        self.protocol = protocol
        self.sink = sink or NullSink()
        self.body_mass_kg = body_mass_kg
        self.engine: FeedbackEngine | None = None
        self.recorder = None
        self._unsubscribe = None

    def attach(self, rec) -> FeedbackRun:
        """Build the engine for an opened (not started) recorder and add the ``/feedback`` tables to its file.

        Raises
        ------
        ConfigError
            The rig has not one left and one right insole (or, for an IMU target, no IMU of its placement).
        """
        feet = {}
        for name, desc in rec.descriptions.items():  # what each identified driver describes of itself
            if desc.kind == "insole" and desc.side in ("left", "right") and int(np.prod(desc.shape)) > 1 \
                    and desc.layout:
                feet.setdefault(desc.side, foot_input(name, desc))
        if set(feet) != {"left", "right"}:
            raise ConfigError("--feedback needs a left and a right insole with a sensel layout in the rig "
                              f"(found: {', '.join(sorted(feet)) or 'none'})")
        imus = []
        metric = self.protocol.metric
        if metric in IMU_METRIC_PLACEMENTS:  # an IMU target: its values from the IMUs, its steps from the insoles
            imus = [imu_channels(name, d) for name, d in rec.descriptions.items() if d.kind == "imu"]
            wanted = IMU_METRIC_PLACEMENTS[metric]
            if not any(i.placement in wanted for i in imus):
                raise ConfigError(f"--feedback on {metric} needs an IMU placed on the {' or '.join(wanted)} in the "
                                  f"rig (found: {', '.join(sorted(i.placement for i in imus)) or 'none'})")
        mass = self.body_mass_kg or float(rec.meta.get("body_mass_kg") or 70.0)
        self.recorder = rec
        self.engine = FeedbackEngine(self.protocol, list(feet.values()), mass * G_MPS2, lambda: rec.elapsed_s,
                                     self.sink, rows=rec.put_rows, marker=rec.mark, imus=imus)
        rec.tables.extend(feedback_tables(self.protocol, self.sink))
        return self

    def start(self) -> None:
        """Subscribe to the recorder (started) and start the engine."""
        if hasattr(self.sink, "epoch_s") and self.recorder.start_ns is not None:
            self.sink.epoch_s = self.recorder.start_ns / 1e9  # the device sink's clock is time.monotonic()
        self._unsubscribe = self.recorder.subscribe(on_file_clock(self.engine.put, self.recorder.offset_s))
        self.engine.start()

    def stop(self) -> None:
        """Stop the engine (checked join), unsubscribe, close the sink (a WAV file is finished up to now)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        try:
            if self.engine is not None:
                self.engine.stop()
        finally:
            if isinstance(self.sink, WavSink):
                self.sink.close(end_s=self.recorder.elapsed_s if self.recorder is not None else None)
            else:
                self.sink.close()

    def status_lines(self) -> list[str]:
        """The engine's status line (phase, time left, share of steps in band)."""
        return [self.engine.status_line()] if self.engine is not None else []
