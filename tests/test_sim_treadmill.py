"""The simulated instrumented treadmill against its own ground truth (pure model; no I/O).

The truth is the rig's steps table (GaitModel.steps): the plate's vertical force is the two feet's sum, the centre
of pressure at initial contact sits at the step's strike index from the heel's landing position, the COP moves
back with the belt while progressing heel to toe in the foot frame, and each step's horizontal impulse is zero.
"""

from __future__ import annotations

import numpy as np
import pytest

from treadlab.drivers import protocol as p
from treadlab.drivers.sim.change import gait_model
from treadlab.drivers.sim.device import make_device
from treadlab.drivers.sim.params import RunnerParams
from treadlab.drivers.sim.pressure import cop_line_x_mm
from treadlab.drivers.sim.rig import treadmill_spec
from treadlab.drivers.sim.treadmill import (
    COP_MIN_FZ_N,
    TreadmillModel,
    TreadmillParams,
    channel_names,
    force_info,
)

DT_S = 1e-3


@pytest.fixture(scope="module")
def running():
    g = gait_model(RunnerParams(strike_left="rearfoot", strike_right="forefoot", seed=4), 40.0)
    return g, np.arange(2.0, 30.0, DT_S)


def _clean(belts="single", outputs="moments", gait=None):
    return TreadmillModel(gait, TreadmillParams(belts=belts, outputs=outputs, noise_n=0, noise_cop_mm=0,
                                                noise_speed_mps=0))


def test_single_belt_vertical_force_is_the_sum_of_both_feet_in_walking():
    g = gait_model(RunnerParams(walking=True, cadence_spm=110, contact_time_ms=650, speed_mps=1.3,
                                strike_left="rearfoot", strike_right="rearfoot", seed=2), 30.0)
    t = np.arange(1.0, 20.0, DT_S)
    v = _clean(gait=g).plates(t)
    left, right = g.vertical_force("left", t), g.vertical_force("right", t)
    np.testing.assert_allclose(v["Fz"], left + right, rtol=1e-12, atol=1e-9)
    both = (left > 50) & (right > 50)
    assert both.mean() > 0.1  # walking: double support, both feet on the one plate
    assert v["Fz"][both].max() > max(left[both].max(), right[both].max())


def test_split_belts_carry_one_foot_each(running):
    g, t = running
    v = _clean("split", gait=g).plates(t)
    np.testing.assert_allclose(v["Fz_l"], g.vertical_force("left", t), atol=1e-9)
    np.testing.assert_allclose(v["Fz_r"], g.vertical_force("right", t), atol=1e-9)
    m = TreadmillModel(g, {"belts": "split"})
    # each foot's COP is on its own belt (left belt at +y); moments about the treadmill frame's origin
    cy_l = v["Mx_l"][v["Fz_l"] > 100] / v["Fz_l"][v["Fz_l"] > 100]
    cy_r = v["Mx_r"][v["Fz_r"] > 100] / v["Fz_r"][v["Fz_r"] > 100]
    half = m.size_mm[0, 1] / 2
    assert (np.abs(cy_l - m.origin_mm[0, 1]) < half).all() and (np.abs(cy_r - m.origin_mm[1, 1]) < half).all()
    assert cy_l.min() > 0 > cy_r.max()


def test_cop_at_initial_contact_gives_the_true_strike_index(running):
    g, t = running
    model = _clean(gait=g)
    steps = g.steps[(g.steps.ic_s > 3) & (g.steps.to_s < 29)]
    for foot in ("left", "right"):
        s = steps[steps.foot == foot]
        ic = s.ic_s.to_numpy() + 1e-6
        cop = model.belt_cop_mm(g, foot, ic)
        # treadmill frame x = the belt frame's forward y; the heel landed at steps.y_mm
        si = (cop[:, 0] - s.y_mm.to_numpy()) / g.params.foot_length_mm * 100.0
        np.testing.assert_allclose(si, s.strike_index_pct.to_numpy(), atol=0.01)
        lateral = cop_line_x_mm(s.strike_index_pct.to_numpy() / 100 * g.params.foot_length_mm,
                                g.params.foot_length_mm)  # on the foot's COP line, lateral positive
        np.testing.assert_allclose(cop[:, 1], -s.x_mm.to_numpy() - (1 if foot == "right" else -1) * lateral,
                                   atol=0.5)  # y is the runner's left


def test_cop_moves_back_with_the_belt_and_progresses_heel_to_toe(running):
    g, t = running
    v = _clean(gait=g).plates(t)
    L, speed = g.params.foot_length_mm, g.params.speed_mps * 1e3
    steps = g.steps[(g.steps.ic_s > 3) & (g.steps.to_s < 29) & (g.steps.foot == "left")]
    for _, s in steps.iterrows():
        inside = (t > s.ic_s + 0.1 * (s.to_s - s.ic_s)) & (t < s.to_s - 0.1 * (s.to_s - s.ic_s))
        # flight before and after: only this foot is on the plate through its stance (running)
        copx = -v["My"][inside] / v["Fz"][inside]
        assert np.all(np.diff(copx) < 0)  # the belt carries the foot back faster than the COP rolls forward
        foot_y = copx + speed * (t[inside] - s.ic_s) - s.y_mm  # back in the foot frame: from the heel
        assert np.all(np.diff(foot_y) > -1e-6)  # heel to toe (rearfoot: monotone roll-over)
        assert 0 <= foot_y[0] < 0.4 * L and foot_y[-1] > 0.8 * L


def test_horizontal_forces_brake_then_propel_with_zero_impulse(running):
    g, t = running
    v = _clean(gait=g).plates(t)
    bw = g.bw_n
    steps = g.steps[(g.steps.ic_s > 3) & (g.steps.to_s < 29)]
    for _, s in steps.iterrows():
        inside = (t >= s.ic_s) & (t < s.to_s)
        fx = v["Fx"][inside]
        half = len(fx) // 2
        assert fx[:half].min() < -0.1 * bw and fx[half:].max() > 0.1 * bw  # braking, then propulsion
        assert abs(fx.sum() * DT_S) < 0.005 * bw * (s.to_s - s.ic_s)  # the quadrature's residue only
        sign = 1.0 if s.foot == "right" else -1.0
        assert sign * v["Fy"][inside].mean() > 0  # pushed towards the centre line (+y is left)
    assert np.abs(v["Fx"]).max() < 0.5 * bw and np.abs(v["Fy"]).max() < 0.25 * bw


def test_cop_outputs_and_the_low_load_cut(running):
    g, t = running
    mom = _clean(gait=g).plates(t)
    cop = _clean(outputs="cop", gait=g).plates(t)
    loaded = mom["Fz"] >= COP_MIN_FZ_N
    np.testing.assert_allclose(cop["COPx"][loaded], -mom["My"][loaded] / mom["Fz"][loaded])
    np.testing.assert_allclose(cop["COPy"][loaded], mom["Mx"][loaded] / mom["Fz"][loaded])
    assert np.all(cop["COPx"][~loaded] == 0)  # the plate's centre (single belt: the treadmill's)
    split = _clean("split", "cop", gait=g).plates(t)
    split_m = _clean("split", gait=g).plates(t)
    on = split_m["Fz_r"] >= COP_MIN_FZ_N
    origin_r = TreadmillModel(g, {"belts": "split"}).origin_mm[1]
    np.testing.assert_allclose(split["COPy_r"][on], split_m["Mx_r"][on] / split_m["Fz_r"][on])
    assert np.all(split["COPy_r"][~on] == origin_r[1]) and origin_r[1] < 0  # the right belt: -y
    noisy = TreadmillModel(g, {"outputs": "cop"}, seed=1).values(t)
    ch = channel_names("single", "cop")
    assert np.all(noisy[noisy[:, ch.index("Fz")] < COP_MIN_FZ_N, ch.index("COPx")] == 0)


def test_belt_speed_and_noise(running):
    g, t = running
    m = TreadmillModel(g, {"noise_n": 3.0}, seed=5)
    vals = m.values(t)
    ch = m.channels
    np.testing.assert_allclose(vals[:, ch.index("belt_speed")].mean(), g.params.speed_mps, atol=1e-3)
    flight = (g.vertical_force("left", t) == 0) & (g.vertical_force("right", t) == 0)
    assert vals[flight, ch.index("Fz")].std() == pytest.approx(3.0, rel=0.1)
    # block-independent: the same instants in two batches give the same values
    half = len(t) // 2
    np.testing.assert_array_equal(np.vstack([m.values(t[:half]), m.values(t[half:])]), vals)


def test_force_info_and_wire_values():
    info = force_info(TreadmillParams(belts="split"))
    assert info["channels"][:3] == ["Fx_l", "Fy_l", "Fz_l"] and info["channels"][-1] == "belt_speed_r"
    assert info["belts"] == "split" and len(info["origin_mm"]) == 2 and info["axes"]["vertical"] == "z"
    spec = treadmill_spec("single", seed=2)
    dev = make_device(spec, 0)
    _, msgs = p.FrameDecoder().feed(dev.handle(p.IDENTIFY, b"", 0))
    sent = p.parse_info(msgs[0][1])
    assert sent["kind"] == "force" and sent["dtype"] == "i32" and sent["channels"] == channel_names("single")
    _, msgs = p.FrameDecoder().feed(dev.handle(p.GET_CALIBRATION, b"", 0))
    unit, gain, offset = p.parse_calibration(msgs[0][1])
    assert unit == "force"
    dev.handle(p.START, b"", 0)
    datas, _ = p.FrameDecoder().feed(dev.take(int(3e9)))
    seq, ticks, raw = p.decode_data(datas, spec.n_values, "i32")
    t_s = dev.pop_truth()["t_ns"] / 1e9
    expect = dev.source.model.values(t_s)
    np.testing.assert_allclose(gain * (raw.astype(np.float64) - offset), expect, atol=0.6 * gain.max())


def test_standing_then_running_and_a_runner_who_changes():
    g = gait_model(RunnerParams(stand_s=3.0, seed=1, change={"start_s": 5.0, "stop_s": 6.0,
                                                             "after": {"strike_left": "forefoot"}}), 20.0)
    t = np.arange(0.0, 12.0, DT_S)
    v = _clean(gait=g).plates(t)
    standing = t < 2.5
    np.testing.assert_allclose(v["Fz"][standing], g.bw_n, rtol=1e-9)  # both feet on the plate carry the body
    assert np.all(v["belt_speed"][standing] == 0) and np.all(v["Fx"][standing] == 0)
    np.testing.assert_allclose(v["Fz"], g.vertical_force("left", t) + g.vertical_force("right", t), atol=1e-9)
    steps = g.steps[(g.steps.foot == "left") & (g.steps.ic_s > 7) & (g.steps.to_s < 11.5)]
    model = _clean(gait=g)
    after = g.after if hasattr(g, "after") else g
    for _, s in steps.iterrows():  # after the change: forefoot strikes, from the "after" model's landing
        cop = model.foot("left", np.array([s.ic_s + 1e-6])).cop[0]
        assert (cop[0] - s.y_mm) / g.params.foot_length_mm * 100 == pytest.approx(s.strike_index_pct, abs=0.01)
        assert s.strike_class == "forefoot" and after is not g
