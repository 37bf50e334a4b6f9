"""The cue sounds, synthesised as PCM (float32, mono, -1..1) so that every cue has a known first sample.

Every sound starts with a 1 ms raised-cosine attack (a sharp, click-free onset that an envelope threshold finds
to within a fraction of a millisecond) and ends with a 5 ms release. Left and right steps get the same sound at
the same loudness (asymmetric loudness induces asymmetric gait, Reh 2022); only the band decides the pitch.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE_HZ = 48_000
ATTACK_MS = 1.0
RELEASE_MS = 5.0
#: Pitches: a step in band, out of band (step-tone), the six out-of-band levels (bandwidth), the metronome.
IN_BAND_HZ = 880.0
OUT_BAND_HZ = 330.0
LEVELS_N = 6
BEAT_HZ = 1500.0
BEAT_MS = 15.0


def tone(freq_hz: float, duration_ms: float, volume: float = 0.5, rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """A sine tone with the attack and release envelope, float32."""
    n = max(int(round(duration_ms * 1e-3 * rate_hz)), 2)
    t = np.arange(n) / rate_hz
    env = np.ones(n)
    a = min(n, max(1, int(round(ATTACK_MS * 1e-3 * rate_hz))))
    r = min(n - a, max(1, int(round(RELEASE_MS * 1e-3 * rate_hz))))
    env[:a] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(a) + 1) / a)
    if r > 0:
        env[n - r:] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(r) + 1) / r)
    return (volume * env * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def step_tone(in_band: bool, duration_ms: float = 60.0, volume: float = 0.5) -> np.ndarray:
    """The step-tone cue: a high tone in band, a low one outside."""
    return tone(IN_BAND_HZ if in_band else OUT_BAND_HZ, duration_ms, volume)


def excess_level(value: float, low: float | None, high: float | None) -> int:
    """Level 1-6 of a value outside the band: 1 per 5 % of the bound it misses by (0 in band or unknown)."""
    if not np.isfinite(value):
        return 0
    if low is not None and value < low:
        miss = (low - value) / max(abs(low), 1e-9)
    elif high is not None and value > high:
        miss = (value - high) / max(abs(high), 1e-9)
    else:
        return 0
    return int(min(LEVELS_N, 1 + np.floor(miss * 100.0 / 5.0)))


def bandwidth_tone(level: int, duration_ms: float = 60.0, volume: float = 0.5) -> np.ndarray:
    """The bandwidth cue of an out-of-band step: pitch rises a whole tone per level (Wood & Kipp 2014)."""
    return tone(OUT_BAND_HZ * 2.0 ** (2.0 * (max(level, 1) - 1) / 12.0), duration_ms, volume)


def beat(volume: float = 0.5) -> np.ndarray:
    """The metronome click."""
    return tone(BEAT_HZ, BEAT_MS, volume)
