"""The IMU analysis's span-at-a-time helpers give the results of one piece (bounded temporaries, issue #14)."""

from __future__ import annotations

import numpy as np
import pytest

from treadlab.analysis.imu import events as ev
from treadlab.analysis.imu import metrics as mx


def _ranges(rng, n, k, max_len):
    first = np.sort(rng.integers(0, n - 10, k))
    stop = first + rng.integers(0, max_len, k)
    stop[::17] = first[::17]  # some empty ranges
    return first, stop


@pytest.mark.parametrize("fn", [mx.range_mean, mx.range_ptp, mx.detrended_range])
def test_by_span_matches_one_piece(fn):
    rng = np.random.default_rng(3)
    x = rng.normal(size=20_000).astype(np.float32)
    first, stop = _ranges(rng, len(x), 400, 300)
    whole = fn(x, first, stop)
    spans = mx.by_span(fn, x, first, stop, span=997)
    np.testing.assert_allclose(spans, whole, rtol=1e-9, atol=1e-9)
    assert np.isnan(spans[stop <= first]).all() and np.isfinite(spans[stop - first >= 3]).all()


def test_by_span_per_step_argument_and_indices():
    rng = np.random.default_rng(4)
    x = rng.normal(size=30_000)
    first, stop = _ranges(rng, len(x), 300, 200)
    foot = np.where(np.arange(len(first)) % 2 == 0, "left", "right")
    np.testing.assert_array_equal(mx.by_span(mx.pelvic_drop_deg, x, first, stop, foot, span=1500),
                                  mx.pelvic_drop_deg(x, first, stop, foot))
    peak, _ = mx.by_span(mx.window_peak, x, first, stop, index_out=(1,), span=1500)
    np.testing.assert_array_equal(peak, mx.window_peak(x, first, stop)[0])
    sep = np.minimum(stop, np.append(first[1:], len(x)))  # disjoint ranges: indices shifted back to the session
    ref = np.array([a + np.argmax(x[a:b]) if b > a else -1 for a, b in zip(first, sep)])  # reference per range
    np.testing.assert_array_equal(mx.by_span(mx.window_peak, x, first, sep, index_out=(1,), span=1500)[1], ref)
    vo = mx.by_span(lambda s, a, b: mx.vertical_oscillation_mm(s, 500.0, a, b), x, first, stop, span=1500)
    np.testing.assert_allclose(vo, mx.vertical_oscillation_mm(x, 500.0, first, stop), rtol=1e-9)


def test_by_span_no_steps():
    assert mx.by_span(mx.range_mean, np.ones(10), np.zeros(0, int), np.zeros(0, int)).shape == (0,)


def test_blockwise_lowpass_matches_one_piece(monkeypatch):
    rng = np.random.default_rng(5)
    x = np.cumsum(rng.normal(size=60_000))
    whole = ev._lowpass(x, 500.0, 5.0)
    monkeypatch.setattr(ev, "LOWPASS_BLOCK", 4096)
    blocks = ev._lowpass(x, 500.0, 5.0)
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-9 * np.abs(x).max())


def test_crossings_by_span_match_one_piece(monkeypatch):
    t = np.arange(50_000) / 500.0
    x = np.sin(2 * np.pi * 1.4 * t)
    a = np.arange(100, 49_000, 357)
    b = a + 300
    level = np.full(len(a), 0.2)
    whole = ev._crossing(x, a, b, level, rising=False)
    monkeypatch.setattr(mx, "SPAN_SAMPLES", 2000)
    np.testing.assert_allclose(ev._crossings(x, a, b, level, rising=False), whole, rtol=0, atol=1e-9)
    assert np.isfinite(whole).mean() > 0.5
