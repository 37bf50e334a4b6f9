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

import math

import h5py
import numpy as np

from treadlab.acquisition.writer import TableSetup
from treadlab.errors import ConfigError
from treadlab.feedback.engine import FeedbackEngine, FootInput
from treadlab.feedback.protocol import PHASE_NAME_BYTES, Protocol
from treadlab.feedback.sinks import AudioSink, NullSink, WavSink

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


def foot_input(name: str, dev) -> FootInput:
    """Total force and moment along the foot of an identified insole driver (its calibration and layout).

    The same linear map as the session reader's ``InsoleData.iter_derived``: ``raw @ W - offset @ W`` with
    ``W = [1, y] x gain`` (x sensel area / 1000 for kPa).
    """
    lay = dev.layout or {}
    pos = np.asarray(lay.get("positions_mm"), dtype=np.float64).reshape(-1, 2)
    n = int(dev.n_values)
    cal = getattr(dev, "calibration", None)
    gain = np.broadcast_to(np.asarray(cal.gain if cal is not None else 1.0, np.float64), (n,))
    offset = np.broadcast_to(np.asarray(cal.offset if cal is not None else 0.0, np.float64), (n,))
    factor = np.asarray(lay.get("areas_mm2"), np.float64) * 1e-3 if cal is not None and cal.unit == "kPa" else 1.0
    w = np.column_stack([np.ones(n), pos[:, 1]]) * (factor * gain)[:, None]
    length = float(lay.get("foot_length_mm", math.nan))
    if not math.isfinite(length) or length <= 0:
        length = float(np.ptp(pos[:, 1]))
    return FootInput(name, dev.side, w, offset @ w, length)


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
            The rig has not one left and one right insole.
        """
        feet = {}
        for dev in rec.connected:  # the identified drivers (their name is the rig's device name)
            name = dev.name
            if getattr(dev, "kind", None) == "insole" and getattr(dev, "side", None) in ("left", "right") and \
                    getattr(dev, "n_values", 0) > 1 and dev.layout:
                feet.setdefault(dev.side, foot_input(name, dev))
        if set(feet) != {"left", "right"}:
            raise ConfigError("--feedback needs a left and a right insole with a sensel layout in the rig "
                              f"(found: {', '.join(sorted(feet)) or 'none'})")
        mass = self.body_mass_kg or float(rec.meta.get("body_mass_kg") or 70.0)
        self.recorder = rec
        self.engine = FeedbackEngine(self.protocol, list(feet.values()), mass * G_MPS2, lambda: rec.elapsed_s,
                                     self.sink, rows=rec.put_rows, marker=rec.mark)
        rec.tables.extend(feedback_tables(self.protocol, self.sink))
        return self

    def start(self) -> None:
        """Subscribe to the recorder (started) and start the engine."""
        if hasattr(self.sink, "epoch_s") and self.recorder.start_ns is not None:
            self.sink.epoch_s = self.recorder.start_ns / 1e9  # the device sink's clock is time.monotonic()
        self._unsubscribe = self.recorder.subscribe(self.engine.put)
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
