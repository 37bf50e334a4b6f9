"""Streaming analysis: a session analysed in many blocks gives the steps of an analysis in one piece, and the
simulator's truth; per-sample signals live on disk and go when the analysis is closed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sessionfactory import InsoleSpec, truth_in, write_session

from treadlab.analysis import analyze
from treadlab.analysis.insolepass import pooled_quantile
from treadlab.analysis.store import SignalStore, block_plan
from treadlab.drivers.sim.gait import RunnerParams

DURATION_S = 60.0
RATE_HZ = 500.0
BLOCK = 4096  # 8.2 s of samples per block at 500 Hz (and 10 s of padding either side): 7 blocks per foot


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("blocks") / "run.h5"
    runner = RunnerParams(strike_left="rearfoot", strike_right="midfoot", cadence_spm=170,
                          loading_rate_asym_pct=15.0, contact_time_asym_pct=6.0, swing_offset_n=30.0, seed=21)
    # A 0.3-s loss on the left insole straddles the boundary of blocks 3 and 4 (sample 12288 = 25.1 s).
    drop = [(24.9, 25.2)]
    model = write_session(path, runner, duration_s=DURATION_S, markers=[(20.0, "a"), (40.0, "b")],
                          insoles={"left": InsoleSpec(layout="insole99", rate_hz=RATE_HZ, drop=drop),
                                   "right": InsoleSpec(layout="insole99", rate_hz=RATE_HZ)})
    return path, model


@pytest.fixture(scope="module")
def both(long_run):
    path, model = long_run
    with analyze(path) as whole, analyze(path, block_samples=BLOCK) as blocks:
        yield whole, blocks, model, blocks.summary["blocks"]


def _pairs(a: pd.DataFrame, b: pd.DataFrame, tol_s: float = 0.02):
    """Rows of a and b paired by foot and nearest initial contact; counts of unpaired rows."""
    out_a, out_b, unpaired = [], [], 0
    for foot in ("left", "right"):
        x = a[a["foot"] == foot].reset_index(drop=True)
        y = b[b["foot"] == foot].reset_index(drop=True)
        d = np.abs(x["ic_s"].to_numpy()[:, None] - y["ic_s"].to_numpy()[None, :])
        j = d.argmin(axis=1)
        ok = d[np.arange(len(x)), j] <= tol_s
        unpaired += int((~ok).sum()) + len(y) - len(np.unique(j[ok]))
        out_a.append(x[ok])
        out_b.append(y.iloc[j[ok]])
    return pd.concat(out_a, ignore_index=True), pd.concat(out_b, ignore_index=True), unpaired


def test_block_plan_tiles_the_samples():
    plan = block_plan(10_000, 3000, 500)
    cores = [(a, b) for _, a, b, _ in plan]
    assert cores[0][0] == 0 and cores[-1][1] == 10_000
    assert all(b1 == a2 for (_, b1), (a2, _) in zip(cores[:-1], cores[1:]))
    assert all(lo == max(0, a - 500) and hi == min(10_000, b + 500) for lo, a, b, hi in plan)
    assert block_plan(4000, 3000, 500) == [(0, 0, 4000, 4000)]  # up to 1.5 cores: one piece
    assert min(b - a for _, a, b, _ in block_plan(10_400, 3000, 0)) >= 1500  # no short last block


def test_pooled_quantile_of_blocks_matches_the_whole():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, 30_000), rng.exponential(50, 20_000), rng.normal(5, 2, 50_000)])
    parts = np.split(x, [30_000, 50_000, 70_000])
    sketches = [np.quantile(p, np.linspace(0, 1, 1001)) for p in parts]
    got = pooled_quantile(sketches, [len(p) for p in parts], 0.99)
    # Within 0.1 % of rank of the exact quantile.
    assert np.quantile(x, 0.989) <= got <= np.quantile(x, 0.991)


def test_many_blocks_were_used(both):
    whole, _, _, blocks = both
    assert blocks["left"] >= 6 and blocks["right"] >= 6
    assert whole.summary["blocks"] == {"left": 1, "right": 1}


def test_blocks_give_the_same_steps_as_one_piece(both):
    whole, blocks, _, _ = both
    a, b, unpaired = _pairs(whole.steps, blocks.steps)
    assert unpaired == 0 and len(whole.steps) == len(blocks.steps)
    # Swing noise and the edge shape are per block (here ~12 steps a foot): timing moves by a fraction of a ms.
    d_ms = np.abs(np.concatenate([a["ic_s"] - b["ic_s"], a["to_s"] - b["to_s"]])) * 1e3
    assert np.median(d_ms) < 0.2 and np.percentile(d_ms, 99) < 1.0 and d_ms.max() < 2.0
    assert (a["strike_class"].to_numpy() == b["strike_class"].to_numpy()).all()
    assert np.abs(a["strike_index_pct"] - b["strike_index_pct"]).max() < 3.0  # points (an extrapolation to IC)
    for col, tol in (("vilr_bw_s", 0.03), ("avlr_bw_s", 0.03), ("peak_force_bw", 0.02), ("impulse_bw_s", 0.02)):
        # Loading rates pool each block's steps into a template of the foot's loading edge: ~12 steps here.
        rel = np.abs(b[col].to_numpy() / a[col].to_numpy() - 1)
        assert np.nanmax(rel) < tol, col
    assert blocks.summary["cadence_spm"] == pytest.approx(whole.summary["cadence_spm"], rel=1e-3)
    assert blocks.summary["insole_scale"] == pytest.approx(whole.summary["insole_scale"], rel=2e-3)


def test_blocks_recover_the_truth_as_well_as_one_piece(both):
    whole, blocks, model, _ = both
    truth = truth_in(model, 0.55, 0.45 + DURATION_S, rate_hz=RATE_HZ)
    truth = truth[~((truth["foot"] == "left") & (truth["to_s"] > 24.85) & (truth["ic_s"] < 25.25))]
    errors = {}
    for name, ga in (("whole", whole), ("blocks", blocks)):
        found, true, _ = _pairs(ga.steps, truth, tol_s=0.04)
        assert len(found) >= 0.99 * len(truth)
        assert np.abs(found["ic_s"] - true["ic_s"]).max() * 1e3 <= 5.0
        assert (found["strike_class"].to_numpy() == true["strike_class"].to_numpy()).mean() >= 0.95
        errors[name] = {c: np.abs(found[c].to_numpy() / true[c].to_numpy() - 1) for c in ("vilr_bw_s", "avlr_bw_s")}
        for c, rel in errors[name].items():
            assert np.nanpercentile(rel, 95) <= 0.10, (name, c)
    for c in ("vilr_bw_s", "avlr_bw_s"):
        # Within the issue's target either way; the blocks' loading-edge templates pool ~12 steps each, not ~80.
        assert np.nanmax(errors["blocks"][c]) <= min(0.10, np.nanmax(errors["whole"][c]) + 0.02), c


def test_no_step_across_the_gap_at_a_block_boundary(both):
    _, blocks, _, _ = both
    left = blocks.steps[blocks.steps["foot"] == "left"]
    assert not ((left["ic_s"] < 25.2) & (left["to_s"] > 24.898)).any()
    # Steps on both sides of the gap are there.
    assert ((left["to_s"] < 24.9) & (left["to_s"] > 24.0)).any()
    assert ((left["ic_s"] > 25.2) & (left["ic_s"] < 26.2)).any()


def test_per_step_arrays_read_from_disk_match(both):
    whole, blocks, _, _ = both
    for ga in (whole, blocks):
        assert ga.force_curves("left").shape == (int((ga.steps["foot"] == "left").sum()), 101)
    seg_w, seg_b = whole.select(from_marker="a", to_marker="b"), blocks.select(from_marker="a", to_marker="b")
    cw, cb = seg_w.force_curves("right"), seg_b.force_curves("right")
    assert cw.shape == cb.shape and cw.shape[0] > 25
    assert np.nanmax(np.abs(cw - cb)) < 0.02  # BW
    pw, pb = seg_w.cop_paths("left", 21), seg_b.cop_paths("left", 21)
    assert pw.shape == pb.shape == (len(seg_w.steps[seg_w.steps["foot"] == "left"]), 21, 2)
    # Within stance (at its very ends the force is tiny and the COP jumps with a fraction of a ms of timing).
    assert np.nanmax(np.abs(pw[:, 2:-2] - pb[:, 2:-2])) < 2.0  # mm
    # Heel first for a rearfoot striker: the COP moves forward over stance.
    assert np.nanmedian(pb[:, -3, 1] - pb[:, 2, 1]) > 60.0
    sig = blocks.signals["left"]
    part = sig.read(1000, 1500)
    assert len(part["time_s"]) == 500 and part["cop_mm"].shape == (500, 2)
    assert np.all(np.diff(part["time_s"]) > 0)


def test_store_is_deleted_on_close(long_run):
    path, _ = long_run
    ga = analyze(path, block_samples=BLOCK)
    folder = ga._store.path
    assert any(folder.iterdir())
    seg = ga.select(10.0, 20.0)
    assert seg.force_curves("left").shape[0] > 5
    ga.close()
    assert not folder.exists()
    assert not ga.session._file.id.valid


def test_signal_store_columns(tmp_path):
    st = SignalStore(tmp_path)
    st.append("left", "time_s", np.arange(5.0))
    st.append("left", "time_s", np.arange(5.0, 8.0))
    st.append("left", "cop_mm", np.arange(16.0).reshape(8, 2))
    assert st.read("left", "time_s", 3, 6).tolist() == [3.0, 4.0, 5.0]
    assert st.read("left", "time_s", 0, 8).dtype == np.float64
    cop = st.read("left", "cop_mm", 6, 8)
    assert cop.dtype == np.float32 and cop.tolist() == [[12.0, 13.0], [14.0, 15.0]]
    assert st.has("left", "cop_mm") and not st.has("right", "cop_mm")
    st.close()
    assert not st.path.exists()


@pytest.fixture(scope="module")
def mat_blocks(tmp_path_factory):
    from sessionfactory import MatSpec

    from treadlab.analysis import MatAnalysis, read_session

    path = tmp_path_factory.mktemp("matblocks") / "mat.h5"
    runner = RunnerParams(strike_left="rearfoot", strike_right="forefoot", speed_mps=3.2, cadence_spm=172,
                          step_width_mm=100.0, seed=12)
    model = write_session(path, runner, duration_s=30.0, insoles=None, mat=MatSpec(rows=176, cols=48))
    with read_session(path) as s:
        mat = s.mats[0]
        whole = MatAnalysis().detect(mat, 700.0, s.treadmill_speed_mps)
        blocks = MatAnalysis().detect(mat, 700.0, s.treadmill_speed_mps, block_frames=600)  # 5 s: 6 blocks
        yield whole, blocks, model, runner, s


def test_mat_in_blocks_finds_the_same_footprints(mat_blocks):
    whole, blocks, _, _, _ = mat_blocks
    assert whole.blocks_ == 1 and blocks.blocks_ == 6
    a, b, unpaired = _pairs(whole.steps_, blocks.steps_, tol_s=0.005)
    assert unpaired == 0 and len(a) == len(whole.steps_) == len(blocks.steps_) > 70
    # A footprint is found whole in one block: the same frames, so the same onset up to the foot's onset exponent,
    # which is pooled per block (like the belt figures): well under a millisecond.
    assert (a["first_frame"].to_numpy() == b["first_frame"].to_numpy()).all()
    assert (a["last_frame"].to_numpy() == b["last_frame"].to_numpy()).all()
    assert np.abs(a["ic_s"] - b["ic_s"]).max() < 1e-3 and np.abs(a["to_s"] - b["to_s"]).max() < 1e-3
    assert (a["strike_class"].to_numpy() == b["strike_class"].to_numpy()).all()
    assert np.abs(a["strike_index_pct"] - b["strike_index_pct"]).max() < 2.0  # belt figures per block
    assert np.nanmax(np.abs(a["step_length_m"] - b["step_length_m"])) < 0.01
    assert blocks.belt_speed_mps_ == pytest.approx(whole.belt_speed_mps_, rel=0.02)


def test_mat_blocks_keep_the_truth_and_the_force_signals(mat_blocks):
    _, blocks, model, runner, _ = mat_blocks
    truth = truth_in(model, 0.6, 30.4)
    found, true, _ = _pairs(blocks.steps_[(blocks.steps_["ic_s"] > 0.6) & (blocks.steps_["to_s"] < 30.4)], truth,
                            tol_s=0.04)
    assert len(found) >= 0.99 * len(truth)
    assert (found["foot"].to_numpy() == true["foot"].to_numpy()).all()
    assert blocks.belt_speed_mps_ == pytest.approx(runner.speed_mps, rel=0.1)
    sig = blocks.signals()
    left = sig["left"].read()
    # Force is on the left foot's signal only during its footprints.
    t = left["time_s"]
    on = np.zeros(len(t), dtype=bool)
    for row in blocks.steps_[blocks.steps_["foot"] == "left"].itertuples():  # per step, a test
        on |= (t >= row.ic_s - 0.01) & (t <= row.to_s + 0.01)
    assert left["force"][~on].max() == 0.0 and left["force"][on].max() > 500.0


def test_unwritable_temporary_folder_is_one_clear_error(long_run, tmp_path, monkeypatch, capsys):
    import tempfile

    from treadlab.errors import AnalysisError
    from treadlab.lab.cli import main

    path, _ = long_run
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing" / "folder"))
    with pytest.raises(AnalysisError, match="temporary folder"):
        analyze(path)
    assert main(["analyze", str(path)]) == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "temporary folder" in err[0]


def test_regular_time_removes_timestamp_quantisation():
    from treadlab.analysis.insolepass import regular_time

    interval = (1 + 40e-6) / 180.0  # a 180-Hz device, its crystal 40 ppm fast
    true = 12.3456 + np.arange(2000) * interval
    true = np.concatenate([true, true[-1] + 0.5 + np.arange(1000) * interval])  # and a 0.5-s gap
    reported = np.floor(true * 1e3) / 1e3  # whole milliseconds, as over the line protocol
    fitted = regular_time(reported)
    # One-interval differences, which a low-rate VILR divides by: 5 or 6 ms as reported, 5.556 ms fitted.
    assert np.abs(np.diff(reported)[:1999] - interval).max() > 0.4e-3
    assert np.abs(np.diff(fitted)[:1999] - interval).max() < 1e-6
    assert np.abs(np.diff(fitted)[2000:] - interval).max() < 1e-6 and fitted[2000] - fitted[1999] > 0.49
    assert np.abs(fitted - true).max() < 1e-3  # the clock (offset, drift) is kept, not moved
    irregular = np.cumsum(np.random.default_rng(1).uniform(0.001, 0.009, 500))  # not regular sampling
    assert np.array_equal(regular_time(irregular), irregular)
