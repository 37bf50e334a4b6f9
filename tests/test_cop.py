"""The centre of pressure: one rule (load level, layout bounds) for every COP treadlab shows or exports."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sessionfactory import InsoleSpec, write_session

from treadlab.analysis import analyze, read_session
from treadlab.analysis.cop import MIN_LOAD_BW, MIN_LOAD_PEAK_FRAC, cop_from_sums, layout_bounds_mm, min_load
from treadlab.analysis.export import _on_grid, c3d_analogs
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.lab.gui.live_data import InsoleGeometry
from treadlab.lab.report.collect import session_view

#: The "before" runner of ``lab demo`` (rearfoot strikes, 160 steps/min), on the demo's 99-sensel insoles.
DEMO_BEFORE = RunnerParams(cadence_spm=160.0, strike_left="rearfoot", strike_right="rearfoot",
                           loading_rate_asym_pct=12.0, body_mass_kg=70.0, speed_mps=3.0, seed=11)


def test_cop_rule_known_answers():
    sums = np.array([[0.0, 0.0, 0.0], [10.0, 100.0, 500.0], [100.0, 1000.0, 5000.0], [100.0, 9000.0, -500.0],
                     [-5.0, 100.0, 100.0]])
    cop = cop_from_sums(sums, 50.0)
    assert np.isnan(cop[[0, 1, 4]]).all()  # below the load level (and unloaded, and negative)
    np.testing.assert_allclose(cop[2], [10.0, 50.0])
    np.testing.assert_allclose(cop[3], [90.0, -5.0])
    clipped = cop_from_sums(sums, 50.0, (np.array([-20.0, 0.0]), np.array([40.0, 250.0])))
    np.testing.assert_allclose(clipped[3], [40.0, 0.0])  # beyond the layout's box: onto its edge
    np.testing.assert_allclose(clipped[2], [10.0, 50.0])
    assert min_load(700.0) == pytest.approx(MIN_LOAD_BW * 700.0)
    f = np.r_[np.zeros(900), np.full(100, 1500.0)]
    assert min_load(float("nan"), f) == pytest.approx(MIN_LOAD_PEAK_FRAC * 1500.0)
    assert min_load(None, np.zeros(10)) == np.inf
    lo, hi = layout_bounds_mm(np.array([[0.0, 10.0], [-5.0, 200.0], [30.0, 40.0]]))
    np.testing.assert_array_equal(lo, [-5.0, 10.0])
    np.testing.assert_array_equal(hi, [30.0, 200.0])


def test_blockwise_interpolation_equals_one_interp():
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.001, 0.003, 5000))
    v = rng.normal(size=(5000, 3))
    grid = np.linspace(t[0] - 0.05, t[-1] + 0.05, 3001)
    cuts = [0, 7, 1300, 1301, 4000, 5000]
    blocks = [(t[a:b], v[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    got = _on_grid(iter(blocks), grid, 3)
    for j in range(3):
        np.testing.assert_array_equal(got[j], np.interp(grid, t, v[:, j]))


def _outside(cop: np.ndarray, bounds) -> tuple[int, int]:
    c = np.asarray(cop, dtype=float).reshape(-1, 2)
    c = c[np.isfinite(c).all(axis=1)]
    lo, hi = bounds
    return int(((c < lo - 1e-3) | (c > hi + 1e-3)).any(axis=1).sum()), len(c)


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    path = tmp_path_factory.mktemp("cop") / "demo_like.h5"
    write_session(path, DEMO_BEFORE, duration_s=20.0, insoles=InsoleSpec(layout="insole99"))
    return path


def test_every_cop_output_lies_within_the_layout(demo_like):
    """Before the one COP rule, 1.1-1.8 % of these points lay outside the sensels' box (up to 194 mm)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ga = analyze(demo_like)
    with ga:
        for foot in ("left", "right"):
            ins = ga.session.insoles[foot]
            bounds = layout_bounds_mm(ins.positions_mm)
            paths = ga.cop_paths(foot)
            n_out, n = _outside(paths, bounds)
            assert n_out == 0 and n > 0.9 * paths.shape[0] * paths.shape[1]  # the gait lines are still drawn
            n_out, n = _outside(ga.signals[foot].cop_mm, bounds)
            assert n_out == 0 and n > 1000
            n_out, n = _outside(ins.cop_mm, bounds)  # the analyst's whole-file COP
            assert n_out == 0 and n > 1000
            # the live view's COP, from the same raw samples
            geo = InsoleGeometry(ins.positions_mm, ins.areas_mm2, ins.unit, ins.gain, ins.offset)
            _, live = geo.total_and_cop(ins.read_raw(0, 5000).reshape(5000, -1))
            n_out, n = _outside(live, bounds)
            assert n_out == 0 and n > 500
        view = session_view(ga, "demo-like")  # what the report draws
        for foot, fv in view.feet.items():
            assert _outside(fv.cop_mm, layout_bounds_mm(ga.session.insoles[foot].positions_mm))[0] == 0
    with read_session(demo_like) as s:
        for rate_hz in (None, 200.0):  # the C3D export at the insoles' rate and lowered (resample_poly)
            an = c3d_analogs(s, rate_hz, step_events=False)
            for i, label in enumerate(an.labels):
                if label.endswith("COPx"):
                    side = "left" if label[0] == "L" else "right"
                    cop = np.column_stack([an.data[i], an.data[i + 1]])
                    loaded = an.data[i - 1] >= MIN_LOAD_BW * s.body_weight_n
                    n_out, n = _outside(cop[loaded], layout_bounds_mm(s.insoles[side].positions_mm))
                    assert n_out == 0 and n > 1000
                    assert np.all(cop[~loaded] == 0.0)


def test_lowered_c3d_rate_keeps_the_force_peaks(demo_like):
    with read_session(demo_like) as s:
        full = c3d_analogs(s, step_events=False)
        low = c3d_analogs(s, 100.0, step_events=False)
    assert low.rate_hz == 100.0 and low.data.shape[1] == pytest.approx(full.data.shape[1] / 5, abs=2)
    # anti-aliased, then sampled: the same signal at every fifth frame, within the filter's ripple on the peaks
    f_full, f_low = full.data[0][::5][: low.data.shape[1]], low.data[0]
    assert np.abs(f_low - f_full).max() < 0.1 * f_full.max()
    assert f_low.max() == pytest.approx(f_full.max(), rel=0.05)
