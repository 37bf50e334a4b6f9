"""Audio sinks without a sound card: the WAV sink's timeline, the device sink's frame placement (its generator
driven by hand), and the no-device path (one line, screen cues)."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from treadlab.errors import StorageError
from treadlab.feedback import sounds
from treadlab.feedback.device_sink import MiniaudioSink, open_sink
from treadlab.feedback.sinks import NullSink, WavSink


def test_the_wav_sink_renders_sounds_on_the_session_clock(tmp_path):
    path = tmp_path / "c.wav"
    sink = WavSink(str(path), start_s=2.0)
    pcm = sounds.tone(1000.0, 20.0, 0.5)
    got = [sink.play(t, pcm) for t in (2.5, 3.0000001, 3.01, 10.0)]  # 3.01 overlaps the previous sound: mixed
    assert got[0] == 2.5 and got[1] == pytest.approx(3.0 + 1 / 48_000) and got[3] == 10.0
    assert sink.play(5.0, pcm) == 10.0  # never before what is written: the first sample still open for mixing
    sink.close(end_s=12.0)
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 48_000)
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float) / 32767
    assert len(x) == 10 * 48_000
    i = int(0.5 * 48_000)
    np.testing.assert_allclose(x[i:i + len(pcm)], pcm, atol=1 / 32767)
    j = int(8.0 * 48_000)  # the two sounds at 10.0 s, mixed
    np.testing.assert_allclose(x[j:j + len(pcm)], np.clip(2 * pcm, -1, 1), atol=2 / 32767)
    assert np.all(x[:i] == 0)
    with pytest.raises(StorageError, match="exists already"):
        WavSink(str(path))


def test_the_device_sink_places_each_sound_on_its_frame():
    sink = object.__new__(MiniaudioSink)  # the timing logic alone, no device: frames are pulled by hand
    import threading

    sink.rate_hz, sink.latency_ms, sink._lock, sink._pending, sink._pos = 48_000, 20.0, threading.Lock(), [], 0
    sink._t0, sink.epoch_s = 100.0, 99.0  # frame 0 plays at session time 1.0
    gen = sink._frames()
    next(gen)
    pcm = np.ones(100, np.float32) * 0.25
    assert sink.play(1.01, pcm) == pytest.approx(1.01)
    blocks = [np.frombuffer(gen.send(256), np.float32) for _ in range(4)]
    out = np.concatenate(blocks)
    start = int(round(0.01 * 48_000))
    assert np.all(out[:start] == 0) and np.all(out[start:start + 100] == 0.25) and np.all(out[start + 100:] == 0)
    # a sound asked for in the past starts at the first frame not yet handed to the device
    assert sink.play(0.5, pcm) == pytest.approx(1.0 + 1024 / 48_000)
    # the mute drops a sound that is playing: the rest of it is never handed to the device
    long = np.ones(4800, np.float32) * 0.5
    sink.play(1.0 + 1024 / 48_000, long)
    first = np.frombuffer(gen.send(256), np.float32)
    sink.clear()
    rest = np.frombuffer(gen.send(256), np.float32)
    assert np.all(first[100:] == 0.5) and np.all(rest == 0)


def test_no_sound_device_is_one_line_and_the_session_goes_on_with_the_screen(capfd):
    lines = []
    sink = open_sink(None, lines.append)
    try:
        if isinstance(sink, NullSink):  # CI and this machine: no sound card
            assert len(lines) == 1 and "no sound device" in lines[0] and "runner screen only" in lines[0]
            assert np.isnan(sink.latency_ms) and sink.name == "none" and np.isnan(sink.play(1.0, sounds.beat()))
            assert capfd.readouterr().err == ""  # the audio library's own messages are kept off the terminal
        else:  # a machine with a sound device: the sink interface
            assert lines == [] and isinstance(sink.name, str) and sink.latency_ms > 0
    finally:
        sink.close()
