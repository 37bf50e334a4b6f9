"""Known answers for the VILR window and filter: the device-rate truth and the slope noise of the low-pass."""

from __future__ import annotations

import numpy as np
import pytest

from treadlab.analysis.metrics import auto_cutoff_hz, lowpass, secant_slope_noise
from treadlab.drivers.sim.force import vilr_window_s
from treadlab.drivers.sim.gait import GaitModel, RunnerParams


@pytest.fixture(scope="module")
def model():
    return GaitModel(RunnerParams(strike_left="rearfoot", strike_right="forefoot", seed=3), duration_s=4.0)


def test_vilr_window_is_the_sample_interval_when_longer_than_1_ms():
    assert vilr_window_s(1000.0) == pytest.approx(1e-3)
    assert vilr_window_s(2000.0) == pytest.approx(1e-3)
    assert vilr_window_s(200.0) == pytest.approx(5e-3)
    assert vilr_window_s(None) == pytest.approx(1e-3)


def test_device_rate_truth_recomputes_vilr_over_the_sample_interval(model):
    fast = model.steps_for_rate(1000.0)
    slow = model.steps_for_rate(200.0)
    assert fast["vilr_bw_s"].equals(model.steps["vilr_bw_s"])
    for col in ("ic_s", "avlr_bw_s", "peak_force_bw"):  # only VILR depends on the window
        assert slow[col].equals(model.steps[col])
    # Independently: the largest 5-ms secant of the noise-free force (10 kHz) between t20 and t80.
    for row in slow.iloc[2:6].itertuples():
        t = row.ic_s + np.arange(0.0, row.contact_time_ms / 1e3, 1e-4)
        f = model.vertical_force(row.foot, t) / model.bw_n
        ref = row.impact_peak_bw if np.isfinite(row.impact_peak_bw) else np.interp(
            row.ic_s + 0.13 * (row.to_s - row.ic_s), t, f)
        t20 = np.interp(0.2 * ref, np.maximum.accumulate(f), t)
        t80 = np.interp(0.8 * ref, np.maximum.accumulate(f), t)
        sel = (t[:-50] >= t20 - 1e-9) & (t[:-50] <= t80 - 5e-3 + 1e-9)
        want = np.max((f[50:] - f[:-50])[sel]) / 5e-3
        assert row.vilr_bw_s == pytest.approx(want, rel=5e-3)
    # A 5-ms secant is flatter than the steepest 1-ms one.
    assert (slow["vilr_bw_s"] < model.steps["vilr_bw_s"]).all()


@pytest.mark.parametrize("rate_hz, cutoff_hz", [(200.0, 40.0), (500.0, 60.0), (1000.0, 100.0)])
def test_secant_slope_noise_matches_filtered_white_noise(rate_hz, cutoff_hz):
    rng = np.random.default_rng(1)
    n = 200_000
    t = np.arange(n) / rate_hz
    x = lowpass(t, rng.normal(0.0, 0.02, n), cutoff_hz)
    lag = max(1, int(round(1e-3 * rate_hz)))
    w = lag / rate_hz
    measured = np.std((x[lag:] - x[:-lag]) / w)
    assert secant_slope_noise(cutoff_hz, rate_hz, 0.02, w)[0] == pytest.approx(measured, rel=0.03)


def test_auto_cutoff_meets_its_slope_noise_target():
    for rate_hz in (200.0, 500.0, 1000.0):
        fc = auto_cutoff_hz(rate_hz, 0.02, 2.0)
        assert 15.0 <= fc <= 0.4 * rate_hz
        assert secant_slope_noise(fc, rate_hz, 0.02)[0] <= 2.0
        if fc < 0.4 * rate_hz:  # the highest such cutoff
            assert secant_slope_noise(fc * 1.05, rate_hz, 0.02)[0] > 2.0
    assert auto_cutoff_hz(500.0, 0.0) == pytest.approx(200.0)
