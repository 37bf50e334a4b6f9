"""Audio sinks: where the cue sounds go. A sink plays a PCM sound at a session time and says when it left.

- :class:`WavSink` renders exactly what would be played into a WAV file (stdlib ``wave``, 16-bit mono,
  48 kHz), sample 0 at session time ``start_s``: a sound asked for at ``t`` starts at the first sample at or
  after ``t`` (never earlier than what is already written), so the cue's time is known to one sample.
- :class:`NullSink`: no audio (screen cues only).
- :func:`open_device_sink` (in :mod:`treadlab.feedback.device_sink`): the sound device.

Every sink has ``name`` ("wav", "none" or the device's name), ``latency_ms`` (its output latency, NaN when
unknown) and ``play(onset_s, pcm) -> float`` returning the session time the sound leaves the sink (NaN when it
was not played).
"""

from __future__ import annotations

import math
import threading
import wave
from typing import Protocol

import numpy as np

from treadlab.errors import StorageError
from treadlab.feedback.sounds import SAMPLE_RATE_HZ


class AudioSink(Protocol):
    """What the feedback engine needs of an audio output."""

    name: str
    latency_ms: float

    def play(self, onset_s: float, pcm: np.ndarray) -> float:
        """Play ``pcm`` at session time ``onset_s`` (or as soon after as possible); the time it leaves the sink."""
        ...

    def close(self) -> None:
        """Stop and release the output."""
        ...


class NullSink:
    """No audio: the session goes on with the screen cue."""

    name = "none"
    latency_ms = float("nan")

    def play(self, onset_s: float, pcm: np.ndarray) -> float:
        """Nothing is played: NaN."""
        return float("nan")

    def close(self) -> None:
        """Nothing to release."""


class WavSink:
    """Render the cues into a WAV file on the session clock.

    Parameters
    ----------
    path : str
        The WAV file (created; an existing file is refused).
    start_s : float
        Session time of sample 0.
    rate_hz : int

    Attributes
    ----------
    onsets_ : list of int
        First sample of every sound played.
    """

    name = "wav"
    latency_ms = 0.0

    def __init__(self, path: str, start_s: float = 0.0, rate_hz: int = SAMPLE_RATE_HZ) -> None:
        self.path = path
        self.start_s = float(start_s)
        self.rate_hz = int(rate_hz)
        try:
            self._fh = open(path, "xb")  # noqa: SIM115 - closed by close()
        except FileExistsError:
            raise StorageError(f"{path}: exists already; choose another --audio-wav file") from None
        except OSError as exc:
            raise StorageError(f"{path}: cannot create the WAV file ({exc.strerror})") from exc
        self._wav = wave.open(self._fh, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(self.rate_hz)
        self._lock = threading.Lock()
        self._written = 0  # frames final in the file
        self._buf = np.zeros(0, np.float32)  # frames from _written on, still open for mixing
        self.onsets_: list[int] = []
        self._closed = False

    def frame_of(self, time_s: float) -> int:
        """First sample at or after session time ``time_s``."""
        return int(math.ceil((time_s - self.start_s) * self.rate_hz - 1e-6))

    def play(self, onset_s: float, pcm: np.ndarray) -> float:
        """Mix ``pcm`` in from the first sample at or after ``onset_s`` (or the first one still open)."""
        pcm = np.asarray(pcm, dtype=np.float32)
        with self._lock:
            if self._closed:
                return float("nan")
            frame = max(self.frame_of(onset_s), self._written)
            rel = frame - self._written
            if rel > len(self._buf):  # everything buffered is final: write it and the silence up to the sound
                self._flush(len(self._buf))
                self._silence(frame - self._written)
                rel = 0
            need = rel + len(pcm)
            if need > len(self._buf):
                self._buf = np.concatenate([self._buf, np.zeros(need - len(self._buf), np.float32)])
            self._buf[rel:need] += pcm
            self.onsets_.append(frame)
        return self.start_s + frame / self.rate_hz

    def _flush(self, n: int) -> None:
        if n <= 0:
            return
        out = np.clip(np.round(self._buf[:n] * 32767.0), -32768, 32767).astype("<i2")
        self._wav.writeframesraw(out.tobytes())
        self._written += n
        self._buf = self._buf[n:]

    def _silence(self, n: int) -> None:
        chunk = np.zeros(min(n, 1 << 20), "<i2").tobytes()
        left = n
        while left > 0:  # one write per MiB of silence
            k = min(left, len(chunk) // 2)
            self._wav.writeframesraw(chunk[: 2 * k])
            left -= k
        self._written += n

    def close(self, end_s: float | None = None) -> None:
        """Write what is buffered (and silence up to ``end_s``), finish the header, close the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._flush(len(self._buf))
            if end_s is not None:
                self._silence(max(0, self.frame_of(end_s) - self._written))
            self._wav.close()
            self._fh.close()
