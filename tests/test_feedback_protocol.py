"""Feedback protocols: presets, validation (one clear message), phases, faded shares, bands."""

from __future__ import annotations

import numpy as np
import pytest

from treadlab.errors import ConfigError
from treadlab.feedback.protocol import load_protocol, parse_protocol, preset_names

BASE = """
[target]
metric = "strike_index_pct"
low = 34.0
[cue]
kind = "step-tone"
[[phase]]
name = "baseline"
duration_s = 60
feedback = "off"
[[phase]]
name = "on"
duration_s = 30
feedback = {fb}
"""


def test_presets_are_named_without_a_path_and_follow_the_issue():
    assert {"five-minute", "2x5+5", "cadence-ramp", "faded"} <= set(preset_names())
    five = load_protocol("five-minute")
    assert [(p.name, p.start_s, p.duration_s, p.share) for p in five.phases] == [
        ("baseline", 0.0, 120.0, 0.0), ("feedback", 120.0, 180.0, 1.0), ("retention", 300.0, 120.0, 0.0)]
    assert five.duration_s == 420.0 and five.metric == "strike_index_pct" and five.cue_kind == "step-tone"
    wk = load_protocol("2x5+5")
    assert [p.share for p in wk.phases] == [0, 1, 0, 1, 0] and wk.duration_s == 1500.0
    assert wk.relative and wk.baseline_phase == "warm-up" and wk.high is None
    ramp = load_protocol("cadence-ramp")
    assert ramp.cue_kind == "metronome" and [p.metronome_pct_of_baseline for p in ramp.phases][1:3] == [105, 110]


def test_a_relative_band_is_set_from_the_baseline_median():
    wk = load_protocol("2x5+5")
    assert wk.in_band(50.0) == 255  # not known before the baseline
    wk.set_baseline(100.0)
    assert wk.high == pytest.approx(80.0)
    assert wk.in_band(79.0) == 1 and wk.in_band(81.0) == 0 and wk.in_band(float("nan")) == 255


@pytest.mark.parametrize("share", [0.5, 0.25, 0.3, 0.75, 1.0, 0.0])
def test_a_faded_phase_cues_an_exact_share_of_each_foots_steps(share):
    p = parse_protocol(BASE.format(fb=share)).phases[1]
    cued = np.array([p.cued(n) for n in range(400)])
    assert cued.sum() == int(np.floor(400 * share + 1e-9))
    if share == 0.5:
        assert cued[1::2].all() and not cued[0::2].any()  # every other step


@pytest.mark.parametrize("text, words", [
    ("[target]\nmetric = 'x'\nlow = 1\n[[phase]]\nname = 'a'\nduration_s = 1", "metric must be one of"),
    ("[target]\nmetric = 'cadence_spm'\n[[phase]]\nname = 'a'\nduration_s = 1", "band needs"),
    ("[target]\nmetric = 'cadence_spm'\nlow = 1\n[[phase]]\nname = 'a'\nduration_s = 1\nfeedback = 2",
     "feedback must be"),
    ("[target]\nmetric = 'cadence_spm'\nlow = 1\n[cue]\nkind = 'beep'\n[[phase]]\nname = 'a'\nduration_s = 1",
     "kind must be one of"),
    ("[target]\nmetric = 'cadence_spm'\nlow = 1\ncolour = 2\n[[phase]]\nname = 'a'\nduration_s = 1", "unknown key"),
    ("[target]\nmetric = 'cadence_spm'\nlow = 1\n", "at least one [[phase]]"),
    ("[target]\nmetric = 'vilr_bw_s'\nhigh_pct_of_baseline = 80\nbaseline_phase = 'b'\n[[phase]]\nname = 'a'\n"
     "duration_s = 1\nfeedback = 'on'\n[[phase]]\nname = 'b'\nduration_s = 1\nfeedback = 'off'", "must come before"),
    ("[target\n", "not valid TOML"),
])
def test_bad_protocols_get_one_clear_message(text, words):
    with pytest.raises(ConfigError, match=None) as exc:
        parse_protocol(text, "p.toml")
    assert words in str(exc.value) and "p.toml" in str(exc.value)


def test_a_missing_protocol_names_the_presets(tmp_path):
    with pytest.raises(ConfigError, match="five-minute"):
        load_protocol("no-such-protocol")
    with pytest.raises(ConfigError, match="not found"):
        load_protocol(str(tmp_path / "x.toml"))
