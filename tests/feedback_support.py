"""Helpers of the feedback tests: WAV onsets, a fake clock, insole batches from the gait model."""

from __future__ import annotations

import wave
from dataclasses import dataclass

import numpy as np

from treadlab.drivers.layouts import load_layout
from treadlab.drivers.sim.gait import GaitModel, RunnerParams
from treadlab.feedback.engine import FeedbackEngine, FootInput


def wav_onsets(path, threshold: float = 0.05, min_gap_s: float = 0.03, block_s: float = 20.0) -> np.ndarray:
    """Sample indices where the rectified signal first exceeds ``threshold`` after ``min_gap_s`` of silence.

    Read a block at a time (a 30-min WAV stays out of memory); vectorised within a block.
    """
    out = []
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        gap = int(min_gap_s * rate)
        block = int(block_s * rate)
        pos = 0
        last = -10 * gap
        while True:  # one iteration per block
            raw = w.readframes(block)
            if not raw:
                break
            x = np.abs(np.frombuffer(raw, "<i2").astype(np.float32) / 32767.0)
            loud = np.flatnonzero(x > threshold) + pos
            if len(loud):
                prev = np.concatenate([[last], loud[:-1]])
                out.append(loud[loud - prev > gap])
                last = loud[-1]
            pos += len(x)
    return np.concatenate(out) if out else np.empty(0, np.int64)


@dataclass
class FakeBatch:
    name: str
    time_s: np.ndarray
    values: np.ndarray
    host_time_s: np.ndarray


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def insole_feet(layout: str = "insole16") -> tuple[list[FootInput], np.ndarray]:
    """FootInputs for two simulated insoles whose raw values are forces in N (gain 1, offset 0)."""
    lay = load_layout(layout)
    pos = np.asarray(lay.positions_mm, dtype=np.float64)
    w = np.column_stack([np.ones(len(pos)), pos[:, 1]])
    feet = [FootInput(f"insole_{f}", f, w, np.zeros(2), lay.foot_length_mm) for f in ("left", "right")]
    return feet, pos


def drive(engine: FeedbackEngine, clock: FakeClock, params: RunnerParams, seconds: float, rate_hz: float = 200.0,
          batch_s: float = 0.01, layout: str = "insole16", stop_steps_at_s: float | None = None) -> None:
    """Feed ``seconds`` of the simulated runner to ``engine`` in real-time-sized batches on the fake clock.

    The engine's thread is not started: its work is done here, batch by batch (deterministic). After
    ``stop_steps_at_s`` the runner has stepped off (only sensor noise).
    """
    model = GaitModel(params, seconds + 1.0)
    lay = load_layout(layout)
    n = int(seconds * rate_hz)
    t = np.arange(n) / rate_hz
    forces = {f: model.insole_forces(f, t, lay) for f in ("left", "right")}
    if stop_steps_at_s is not None:
        off = t >= stop_steps_at_s
        rng = np.random.default_rng(0)
        for f in forces:
            forces[f][off] = np.abs(rng.normal(0, params.noise_n, (int(off.sum()), lay.n_sensels)))
    k = max(1, int(batch_s * rate_hz))
    for a in range(0, n, k):  # one iteration per batch
        b = min(a + k, n)
        clock.now = t[b - 1] + 0.002
        engine.tick()
        for f in ("left", "right"):
            engine._feed(f"insole_{f}", t[a:b], forces[f][a:b], clock.now)
