"""The sound device sink, on miniaudio (pyminiaudio: its wheels carry the whole audio engine, so ``pip`` alone
installs it; at run time it uses the system's PulseAudio/PipeWire or ALSA, as every desktop Linux has).

The device pulls blocks from a generator; the sink keeps its own frame counter, so a sound asked for at session
time ``t`` starts exactly at the frame that plays at ``t`` (or, if that frame is already in the device's buffer,
at the first one that is not). The reported output latency is the device buffer (``buffer_ms``), the part of the
path the software knows; the rest (driver, DAC, amplifier) needs a loopback measurement (docs/feedback.md).

:func:`open_sink` picks the sink for ``lab record`` and ``lab gui``: a WAV file when asked, else the sound
device, else (no device, no library) one clear line and no audio: the session goes on with the screen cue.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from treadlab.feedback.sinks import AudioSink, NullSink, WavSink
from treadlab.feedback.sounds import SAMPLE_RATE_HZ


class DeviceSinkError(RuntimeError):
    """The sound device cannot be opened (no library, no device, no audio server)."""


class MiniaudioSink:
    """Cues on the default sound device.

    Parameters
    ----------
    buffer_ms : float
        Device buffer (the output latency the sink reports).
    rate_hz : int

    Raises
    ------
    DeviceSinkError
        miniaudio is not installed or no playback device opens.
    """

    #: ``time.monotonic()`` at session time 0 (set by the capture when it starts; default: when opened).
    epoch_s: float

    def __init__(self, buffer_ms: float = 20.0, rate_hz: int = SAMPLE_RATE_HZ) -> None:
        try:
            import miniaudio
        except ImportError as exc:
            raise DeviceSinkError("the miniaudio package is not installed (pip install miniaudio)") from exc
        self.rate_hz = int(rate_hz)
        self.latency_ms = float(buffer_ms)
        self._lock = threading.Lock()
        self._pending: list[tuple[int, np.ndarray]] = []
        self._pos = 0  # frames handed to the device so far
        self._t0 = math.nan  # time.monotonic() of frame 0
        backends = [b for b in miniaudio.Backend if b.name != "NULL"]  # the null device plays to nowhere
        try:
            with _quiet_stderr():  # ALSA prints a page of lines to fd 2 when there is no card
                self._dev = miniaudio.PlaybackDevice(output_format=miniaudio.SampleFormat.FLOAT32, nchannels=1,
                                                     sample_rate=self.rate_hz, buffersize_msec=int(buffer_ms),
                                                     backends=backends)
                self.name = str(getattr(self._dev, "name", "sound device") or "sound device")
                gen = self._frames()
                next(gen)
                self._t0 = self.epoch_s = time.monotonic()
                self._dev.start(gen)
        except Exception as exc:  # noqa: BLE001 - miniaudio raises its own error types
            what = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
            raise DeviceSinkError(f"no sound device (miniaudio: {what})") from exc

    def _frames(self):
        n = yield b""
        while True:  # one iteration per device block (every few ms), vectorised over its frames
            with self._lock:
                a, b = self._pos, self._pos + n
                out = np.zeros(n, np.float32)
                keep = []
                for start, pcm in self._pending:  # the few sounds overlapping this block
                    lo, hi = max(start, a), min(start + len(pcm), b)
                    if hi > lo:
                        out[lo - a:hi - a] += pcm[lo - start:hi - start]
                    if start + len(pcm) > b:
                        keep.append((start, pcm))
                self._pending = keep
                self._pos = b
            n = yield np.clip(out, -1.0, 1.0).tobytes()

    def play(self, onset_s: float, pcm: np.ndarray) -> float:
        """Queue ``pcm`` at the frame playing at ``onset_s`` (or the first one not yet handed to the device)."""
        with self._lock:
            frame = max(int(math.ceil((onset_s + self.epoch_s - self._t0) * self.rate_hz - 1e-6)), self._pos)
            self._pending.append((frame, np.asarray(pcm, np.float32)))
        return self._t0 + frame / self.rate_hz - self.epoch_s

    def clear(self) -> None:
        """Drop every sound not yet handed to the device, including the rest of one playing (the mute)."""
        with self._lock:
            self._pending = []

    def close(self) -> None:
        """Stop the device."""
        dev, self._dev = getattr(self, "_dev", None), None
        if dev is not None:
            dev.stop()
            dev.close()


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for the duration (the C libraries' messages; Python's stderr is flushed)."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def open_sink(wav_path: str | None, warn: Callable[[str], None], start_s: float = 0.0) -> AudioSink:
    """The sink of a capture: :class:`WavSink` for ``wav_path``, else the sound device, else :class:`NullSink`.

    ``warn`` gets one line when there is no sound device.
    """
    if wav_path:
        return WavSink(wav_path, start_s)
    try:
        return MiniaudioSink()
    except DeviceSinkError as exc:
        warn(f"{exc}: cues go to the runner screen only")
        return NullSink()
