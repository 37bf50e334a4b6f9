"""The feedback engine on the simulated runner's insole signals, batch by batch on a fake clock (deterministic):
cues per phase, faded shares, in-band flags, WAV onsets, mute, step loss, the metronome over 30 minutes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.feedback_support import FakeClock, drive, insole_feet, wav_onsets
from treadlab.drivers.sim.gait import GaitModel, RunnerParams
from treadlab.feedback import sounds
from treadlab.feedback.check import match_contacts
from treadlab.feedback.engine import FeedbackEngine
from treadlab.feedback.protocol import parse_protocol
from treadlab.feedback.sinks import WavSink

RUNNER = RunnerParams(strike_left="rearfoot", strike_right="midfoot", cadence_spm=172.0, seed=2)
STRIKE = """
[target]
metric = "strike_index_pct"
low = 34.0
[cue]
kind = "{kind}"
[[phase]]
name = "baseline"
duration_s = 6
feedback = "off"
[[phase]]
name = "feedback"
duration_s = 10
feedback = "on"
[[phase]]
name = "faded"
duration_s = 12
feedback = 0.5
[[phase]]
name = "retention"
duration_s = 4
feedback = "off"
"""


class Rows:
    def __init__(self) -> None:
        self.tables: dict[str, dict[str, list]] = {}
        self.markers: list[tuple[str, float]] = []

    def __call__(self, group: str, cols: dict) -> None:
        t = self.tables.setdefault(group, {})
        for k, v in cols.items():
            t.setdefault(k, []).extend(np.asarray(v).tolist())

    def mark(self, label: str, time_s: float) -> None:
        self.markers.append((label, time_s))

    def col(self, group: str, name: str) -> np.ndarray:
        return np.asarray(self.tables.get(group, {}).get(name, []))


def _engine(proto_text: str, sink=None, **kw):
    feet, _ = insole_feet()
    clock = FakeClock()
    rows = Rows()
    eng = FeedbackEngine(parse_protocol(proto_text, "test"), feet, RUNNER.body_mass_kg * 9.80665, clock, sink,
                         rows=rows, marker=rows.mark, **kw)
    return eng, clock, rows


@pytest.fixture(scope="module")
def strike_run(tmp_path_factory):
    wav = tmp_path_factory.mktemp("fb") / "cues.wav"
    sink = WavSink(str(wav))
    eng, clock, rows = _engine(STRIKE.format(kind="step-tone"), sink)
    drive(eng, clock, RUNNER, 32.0)
    sink.close(end_s=32.0)
    return eng, rows, wav, GaitModel(RUNNER, 33.0).steps


def test_every_step_of_an_on_phase_is_cued_none_off_and_a_faded_phase_gets_its_share(strike_run):
    eng, rows, _, truth = strike_run
    cue_ic, phase, foot = rows.col("feedback/cues", "ic"), rows.col("feedback/cues", "phase"), \
        rows.col("feedback/cues", "foot")
    true_ic = truth["ic_s"].to_numpy()
    j = match_contacts(cue_ic, true_ic)
    assert (j >= 0).all()  # every cue answers a real contact
    assert set(phase) == {1, 2}  # nothing in baseline or retention
    on = np.flatnonzero((true_ic > 6.05) & (true_ic < 15.95))
    assert set(on) <= set(j[phase == 1])
    for f, name in ((0, "left"), (1, "right")):
        steps = np.flatnonzero((true_ic > 16.05) & (true_ic < 27.9) & (truth["foot"].to_numpy() == name))
        share = np.isin(steps, j[(phase == 2) & (foot == f)]).mean()
        assert abs(share - 0.5) <= 0.02 + 1.0 / len(steps)
    assert [m[0] for m in rows.markers] == ["phase: baseline", "phase: feedback", "phase: faded", "phase: retention"]
    np.testing.assert_allclose(rows.col("feedback/phases", "start"), [0, 6, 16, 28])


def test_in_band_flags_follow_the_true_strike_class(strike_run):
    eng, rows, _, truth = strike_run
    j = match_contacts(rows.col("feedback/cues", "ic"), truth["ic_s"].to_numpy())
    want = (truth["strike_index_pct"].to_numpy()[j] >= 34.0).astype(int)
    assert np.mean(rows.col("feedback/cues", "in_band") == want) >= 0.95
    values = rows.col("feedback/cues", "value")
    assert np.median(np.abs(values - truth["strike_index_pct"].to_numpy()[j])) < 5.0


def test_cue_times_are_the_wav_onsets_to_the_sample(strike_run):
    eng, rows, wav, _ = strike_run
    onsets = wav_onsets(wav)
    times = rows.col("feedback/cues", "time")
    assert len(onsets) == len(times)
    np.testing.assert_allclose(onsets / 48_000, times, atol=1e-3)  # within 1 ms (the attack's threshold)
    assert np.all(times >= np.array([c.decided_s for c in eng.cues_]) - 1e-9)  # never before it was decided


def test_mute_silences_the_sound_but_the_screen_cue_goes_on(tmp_path):
    wav = tmp_path / "m.wav"
    sink = WavSink(str(wav))
    eng, clock, rows = _engine(STRIKE.format(kind="step-tone"), sink)
    drive(eng, clock, RUNNER, 10.0)
    eng.mute(True)
    assert eng.muted and "MUTED" in eng.status_line()
    n_before = len(sink.onsets_)
    eng.mute(False)
    sink.close()
    assert n_before == len(wav_onsets(wav))
    eng2, clock2, rows2 = _engine(STRIKE.format(kind="step-tone"), WavSink(str(tmp_path / "m2.wav")))
    eng2.mute(True)
    drive(eng2, clock2, RUNNER, 16.0)
    eng2.sink.close()
    assert len(rows2.col("feedback/cues", "time")) > 20  # cues still recorded (screen)
    assert len(wav_onsets(tmp_path / "m2.wav")) == 0  # and no sound


METRONOME = """
[target]
metric = "cadence_spm"
low = 165
high = 180
[cue]
kind = "metronome"
metronome_spm = {spm}
ramp_spm_per_min = {ramp}
[[phase]]
name = "baseline"
duration_s = 4
feedback = "off"
[[phase]]
name = "beat"
duration_s = {dur}
feedback = "on"
"""


def test_cues_stop_within_1_5_s_once_the_runner_steps_off(tmp_path):
    sink = WavSink(str(tmp_path / "off.wav"))
    eng, clock, rows = _engine(METRONOME.format(spm=172, ramp=0, dur=30), sink)
    drive(eng, clock, RUNNER, 20.0, stop_steps_at_s=12.0)
    sink.close()
    last_ic = max(eng._contacts)
    assert 11.0 < last_ic < 12.0
    beats = rows.col("feedback/cues", "time")
    assert beats.max() <= last_ic + 1.5
    assert (beats > 8.0).sum() > 8  # it was beating before


@pytest.mark.parametrize("minutes, ramp", [(30.0, 0.0), (5.0, 2.0)])
def test_the_metronome_is_sample_accurate_and_does_not_drift(tmp_path, minutes, ramp):
    """30 minutes of beats at 172 steps/min rendered to the WAV: every onset on its scheduled sample."""
    sink = WavSink(str(tmp_path / "beat.wav"))
    dur = minutes * 60.0
    eng, clock, rows = _engine(METRONOME.format(spm=172, ramp=ramp, dur=dur), sink)
    t = 0.0
    ticks = np.arange(0.0, 4.0 + dur, 0.05)
    for t in ticks:  # one tick per 50 ms, a contact every 0.35 s (the runner keeps stepping)
        clock.now = float(t)
        if int(t * 20) % 7 == 0:
            eng.notify_contact(float(t))
        eng.tick()
    sink.close(end_s=4.0 + dur)
    # the detector finds the first sample above its threshold: that many samples into the click's attack
    attack = int(np.argmax(np.abs(sounds.beat(eng.protocol.volume)) > 0.05))
    onsets = wav_onsets(tmp_path / "beat.wav", min_gap_s=0.1) - attack
    k = np.arange(len(onsets))
    want = np.array([eng.beat_time(1, int(i)) for i in k])
    assert want[-1] < 4.0 + dur <= eng.beat_time(1, len(onsets))  # every beat of the phase, none missing
    want_frames = np.ceil(want * 48_000 - 1e-6)
    np.testing.assert_array_equal(onsets, want_frames)  # on the scheduled sample: no drift over the run
    np.testing.assert_allclose(np.diff(onsets) - np.diff(want * 48_000), 0.0, atol=1.0)  # <= 1 sample
    times = rows.col("feedback/cues", "time")
    np.testing.assert_allclose(times, onsets / 48_000, atol=1e-9)  # recorded = rendered
    if ramp == 0:
        assert len(onsets) == int(np.ceil(dur * 172 / 60.0))
    else:  # the rate at the end is 172 + 2/min x 5 min
        assert 60.0 / np.diff(want[-3:]).mean() == pytest.approx(172 + ramp * minutes, abs=0.1)
