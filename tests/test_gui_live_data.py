"""Qt-free live derivations: calibrated forces, COP, current step, footprints, live step metrics."""

from __future__ import annotations

import numpy as np
import pytest

from treadlab.lab.gui.live_data import InsoleGeometry, current_step_slice, footprints, step_threshold_n


def test_insole_geometry_total_force_and_cop_known_answer():
    pos = np.array([[0.0, 10.0], [20.0, 10.0], [0.0, 200.0], [20.0, 200.0]])
    geo = InsoleGeometry(pos, areas_mm2=np.full(4, 100.0), unit="kPa", gain=np.full(4, 2.0), offset=np.full(4, 10.0))
    raw = np.array([[10, 10, 10, 10],          # all at the offset: no force
                    [510, 510, 10, 10],         # heel only: 2 * 500 kPa * 100 mm2 = 100 N per sensel
                    [10, 260, 10, 260],         # lateral column only
                    [0, 0, 0, 0]], dtype=np.uint16)  # below the offset clips to 0, not negative
    total, cop = geo.total_and_cop(raw, min_force_n=1.0)
    np.testing.assert_allclose(total, [0.0, 200.0, 100.0, 0.0], rtol=1e-6)
    assert np.isnan(cop[0]).all() and np.isnan(cop[3]).all()
    np.testing.assert_allclose(cop[1], [10.0, 10.0])
    np.testing.assert_allclose(cop[2], [20.0, 105.0])
    n_geo = InsoleGeometry(pos, unit="N")
    t2, c2 = n_geo.total_and_cop(np.array([[1.0, 3.0, 0.0, 0.0]], np.float32), min_force_n=0.5)
    assert t2[0] == pytest.approx(4.0) and c2[0, 0] == pytest.approx(15.0)


def test_current_step_is_the_latest_contact_run():
    total = np.array([0, 0, 50, 80, 60, 0, 0, 90, 120, 70, 0, 0], dtype=float)
    s = current_step_slice(total, 40.0)
    assert (s.start, s.stop) == (7, 10)
    s = current_step_slice(np.r_[total, 100.0, 130.0], 40.0)
    assert (s.start, s.stop) == (12, 14)
    assert current_step_slice(np.zeros(10), 40.0) is None
    assert current_step_slice(np.full(5, 100.0), 40.0) == slice(0, 5)
    assert step_threshold_n(np.array([0.0, 2000.0])) == 100.0
    assert step_threshold_n(np.zeros(3)) == 20.0


def test_footprints_keep_the_peak_of_each_sensel():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 100, size=(30, 8, 12)).astype(np.uint16)
    frames[7, 2, 3] = 999
    fp = footprints(frames)
    assert fp.shape == (8, 12) and fp[2, 3] == 999
    np.testing.assert_array_equal(fp, frames.max(axis=0))
    with pytest.raises(ValueError, match="footprints"):
        footprints(np.zeros((0, 8, 12)))


def test_ring_snapshot_of_the_last_seconds_matches_the_full_snapshot():
    """The live view polls ``RingBuffer.snapshot(last_s)``; it must equal the full snapshot cut to the window."""
    from treadlab.acquisition.ring import RingBuffer

    ring = RingBuffer(100, 3, np.dtype(np.uint16))
    t = np.arange(250) / 50.0
    vals = np.arange(750, dtype=np.uint16).reshape(250, 3)
    for a in range(0, 250, 37):  # wraps around several times
        ring.append(t[a:a + 37], vals[a:a + 37])
    full_t, full_v = ring.snapshot()
    np.testing.assert_array_equal(full_t, t[-100:])
    for last_s in (0.0, 0.3, 1.0, 1.99, 5.0):
        st, sv = ring.snapshot(last_s=last_s)
        keep = full_t >= full_t[-1] - last_s
        np.testing.assert_array_equal(st, full_t[keep])
        np.testing.assert_array_equal(sv, full_v[keep])
