"""Known answers of every IMU metric definition on constructed signals (treadlab.analysis.imu.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from treadlab.analysis.imu import metrics as mx

RATE = 500.0


def test_pelvic_drop_is_the_largest_swing_side_drop_in_each_stance():
    t = np.arange(int(4 * RATE)) / RATE
    obl = np.zeros_like(t)
    # left stance 0.2-0.45 s: right side drops 6 deg; right stance 0.55-0.8 s: left side drops 3.5 deg (obliquity -3.5);
    # a hip hike in a later left stance: the swing side rises 2 deg (obliquity -2)
    for lo, hi, v in ((0.2, 0.45, 6.0), (0.55, 0.8, -3.5), (1.2, 1.45, -2.0)):
        m = (t >= lo) & (t < hi)
        obl[m] = v * np.sin(np.pi * (t[m] - lo) / (hi - lo))
    first = (np.array([0.2, 0.55, 1.2]) * RATE).astype(int)
    stop = (np.array([0.45, 0.8, 1.45]) * RATE).astype(int)
    got = mx.pelvic_drop_deg(obl, first, stop, np.array(["left", "right", "left"]))
    np.testing.assert_allclose(got, [6.0, 3.5, 0.0], atol=0.01)  # the hike's largest "drop" is its start, 0
    hike = mx.pelvic_drop_deg(obl, first[2:] + 5, stop[2:] - 5, np.array(["left"]))
    assert hike[0] < -0.1


def _polyfit_range(x, a, b):
    out = []
    for i, j in zip(a, b):  # a reference implementation, one range at a time
        u = np.arange(j - i)
        r = x[i:j] - np.polyval(np.polyfit(u, x[i:j], 1), u)
        out.append(np.ptp(r))
    return np.array(out)


def test_detrended_range_removes_each_range_s_least_squares_line():
    rng = np.random.default_rng(3)
    t = np.arange(int(20 * RATE)) / RATE
    x = 4.0 * np.sin(2 * np.pi * 1.4 * t) + 3.0 * t + 0.2 * rng.standard_normal(len(t))
    a = np.sort(rng.integers(0, len(t) - 400, 60))
    b = a + rng.integers(200, 400, 60)
    np.testing.assert_allclose(mx.detrended_range(x, a, b), _polyfit_range(x, a, b), rtol=1e-9, atol=1e-9)
    line = 0.5 + 2.0 * t
    np.testing.assert_allclose(mx.detrended_range(line, a, b), 0.0, atol=1e-9)
    # a whole period of a sine after its trend: the known range of sin over one period less its fitted line
    one = int(RATE / 1.4)
    got = mx.detrended_range(np.sin(2 * np.pi * 1.4 * t), np.array([0]), np.array([one]))
    np.testing.assert_allclose(got, _polyfit_range(np.sin(2 * np.pi * 1.4 * t), [0], [one]), rtol=1e-9)
    assert np.isnan(mx.detrended_range(x, np.array([5]), np.array([6]))[0])


def test_mean_and_range_per_stride():
    t = np.arange(int(10 * RATE)) / RATE
    tilt = 3.0 + 2.5 * np.cos(2 * np.pi * 2.8 * t)
    a = np.arange(0, 8 * int(RATE), int(RATE / 1.4))
    b = a + int(RATE / 1.4)
    np.testing.assert_allclose(mx.range_mean(tilt, a, b), 3.0, atol=0.02)
    np.testing.assert_allclose(mx.range_ptp(tilt, a, b), 5.0, atol=0.01)


@pytest.mark.parametrize("offset_g, drift_g_per_s", [(0.0, 0.0), (0.03, 0.0), (-0.02, 0.004)])
def test_vertical_oscillation_double_integration_with_drift_removed(offset_g, drift_g_per_s):
    """z = -(VO/2) cos(2 pi f t): the acceleration, with a constant (gravity leak) and a slowly drifting offset."""
    step = 180
    f = RATE / step  # IC to the other foot's next IC is one period of the vertical motion
    vo_m = 0.085
    t = np.arange(int(30 * RATE)) / RATE
    acc_g = 1.0 + (vo_m / 2) * (2 * np.pi * f) ** 2 * np.cos(2 * np.pi * f * t) / 9.80665
    acc_g += offset_g + drift_g_per_s * t
    a = np.arange(0, len(t) - step, step) + 37  # any phase
    got = mx.vertical_oscillation_mm(acc_g, RATE, a, a + step)
    np.testing.assert_allclose(got, vo_m * 1000, rtol=0.01)


def test_window_peak_and_shock_attenuation():
    t = np.arange(int(3 * RATE)) / RATE
    x = np.ones_like(t)
    ics = np.array([0.5, 1.2, 2.0])
    peaks = np.array([8.0, 11.5, 6.0])
    for ic, p in zip(ics, peaks):
        x += (p - 1.0) * np.exp(-0.5 * ((t - ic - 0.012) / 0.004) ** 2)
    x[int(1.0 * RATE)] = 30.0  # a spike outside every window
    a = (ics * RATE).astype(int)
    got, where = mx.window_peak(x, a, a + int(0.1 * RATE))
    np.testing.assert_allclose(got, peaks, rtol=0.02)
    np.testing.assert_allclose(t[where], ics + 0.012, atol=1.5 / RATE)
    np.testing.assert_allclose(mx.shock_attenuation_pct([3.0, 2.0, np.nan], [10.0, 8.0, 5.0]), [70.0, 75.0, np.nan])
    assert np.isnan(mx.shock_attenuation_pct([3.0], [0.0])[0])


def test_has_break():
    got = mx.has_break(np.array([100, 250]), np.array([0, 90, 101, 260]), np.array([100, 110, 250, 300]))
    assert got.tolist() == [False, True, False, False]
