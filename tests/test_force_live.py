"""The simulated instrumented treadmill through the real path: its own process on a pty, the protocol v1 driver,
the recorder, the session file (``/devices/treadmill`` per the force contract) and the force analysis, against the
simulator's ground truth (the rig's steps CSV).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest

from treadlab import fileformat as ff
from treadlab.acquisition.recorder import Recorder
from treadlab.analysis import analyze, read_session
from treadlab.drivers import connect
from treadlab.drivers.sim.params import RunnerParams
from treadlab.drivers.sim.rig import SimulatedRig, treadmill_spec
from treadlab.drivers.sim.signals import make_gait
from treadlab.drivers.sim.treadmill import ForceSignalSource, channel_names
from treadlab.lab.rig import load_rig

RECORD_S = 8.0


def record(workdir, belts: str, runner: RunnerParams, seconds: float = RECORD_S, seed: int = 3):
    """Simulate a treadmill, record it through the recorder, return (file, steps truth on the session clock)."""
    rig = SimulatedRig([treadmill_spec(belts, seed=seed)], workdir / "sim", runner=runner, seed=seed)
    out = workdir / f"{belts}.h5"
    with rig:
        r = load_rig(rig.write_rig(workdir / "rig.toml"))
        with Recorder(list(r.devices), {**r.session, "participant": "P1", "condition": belts}, str(out),
                      r.text) as rec:
            rec.start()
            time.sleep(seconds)
        truth = rig.steps()
    with h5py.File(out, "r") as f:
        t0_ns = int(f.attrs["start_monotonic_ns"])
    truth["ic_sess"] = (truth["ic_ns"] - t0_ns) / 1e9
    truth["to_sess"] = (truth["to_ns"] - t0_ns) / 1e9
    return out, truth


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    runner = RunnerParams(strike_left="rearfoot", strike_right="forefoot", loading_rate_asym_pct=10.0, seed=3)
    return record(tmp_path_factory.mktemp("tm-single"), "single", runner)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    runner = RunnerParams(strike_left="midfoot", strike_right="midfoot", cadence_spm=180, seed=5)
    return record(tmp_path_factory.mktemp("tm-split"), "split", runner, seed=5)


def test_the_pty_treadmill_is_decoded_by_the_driver(tmp_path):
    runner = RunnerParams(seed=2)
    spec = treadmill_spec("split", seed=2)
    with SimulatedRig([spec], tmp_path, runner=runner, seed=2) as rig:
        cfg = load_rig(rig.write_rig(tmp_path / "rig.toml")).devices[0]
        dev = connect(cfg)
        try:
            desc = dev.describe()
            assert desc.kind == "force" and desc.dtype == np.dtype("<i4") and desc.rate_hz == 1000
            assert desc.channel_labels == tuple(channel_names("split"))
            assert desc.channel_units[:4] == ("N", "N", "N", "N·mm") and desc.channel_units[6] == "m/s"
            assert desc.unit == "force" and desc.info["belts"] == "split"
            dev.start()
            batches = []
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                b = dev.read(0.05)
                if b is not None:
                    batches.append(b)
            dev.stop()
        finally:
            dev.close()
        time.sleep(0.3)  # the truth file is flushed every 0.25 s
        t_seq, t_ns = rig.truth("treadmill")
    seq = np.concatenate([b.seq for b in batches])
    raw = np.vstack([b.values for b in batches])
    assert len(seq) > 900 and np.all(np.diff(seq.astype(np.int64)) == 1)
    cal = desc.calibration
    got = cal.gain.astype(np.float64) * (raw.astype(np.float64) - cal.offset)
    true_t = t_ns[np.searchsorted(t_seq, seq)]
    source = ForceSignalSource(spec, make_gait(runner), rig.t_epoch_ns, cal.gain, cal.offset)
    np.testing.assert_allclose(got, source.forces(true_t), atol=0.51 * float(cal.gain.max()), rtol=1e-6)


def test_the_recorded_file_follows_the_force_contract(single):
    path, _ = single
    with h5py.File(path, "r") as f:
        g = f[ff.DEVICES]["treadmill"]
        assert g.attrs["kind"] == "force" and g.attrs["protocol"] == "binary"
        assert [str(c) for c in g.attrs["channels"]] == channel_names("single")
        assert g.attrs["belts"] == "single" and json.loads(g.attrs["axes"]) == {"vertical": "z", "forward": "x"}
        np.testing.assert_array_equal(np.asarray(g.attrs["origin_mm"]).ravel(), [0.0, 0.0, 0.0])
        np.testing.assert_array_equal(np.asarray(g.attrs["size_mm"]).ravel(), [1800.0, 500.0])
        raw = g[ff.RAW]
        assert raw.dtype == np.dtype("<i4") and raw.shape[1] == 7 and raw.shape[0] > 0.95 * RECORD_S * 1000
        cal = g[ff.CALIBRATION]
        assert [u.decode() if isinstance(u, bytes) else u for u in cal["units"][()]] == \
            ["N", "N", "N", "N·mm", "N·mm", "N·mm", "m/s"]
        assert len(cal["gain"][()]) == 7 and len(cal["offset"][()]) == 7
        seq = g[ff.SEQ][()]
        assert np.all(np.diff(seq.astype(np.int64)) == 1)
        assert float(f.attrs["foot_length_mm"]) == 260.0  # from the simulated rig's [session]


def _matched(steps: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    inside = truth[(truth["ic_sess"] > steps["ic_s"].min() - 0.05) & (truth["to_sess"] < steps["to_s"].max() + 0.05)]
    m = pd.merge_asof(inside.sort_values("ic_sess"), steps.sort_values("ic_s"), left_on="ic_sess", right_on="ic_s",
                      direction="nearest", suffixes=("_true", ""), tolerance=0.05)
    return m


@pytest.mark.parametrize("which", ["single", "split"])
def test_force_analysis_of_the_recording_meets_the_known_answers(which, request):
    path, truth = request.getfixturevalue(which)
    with read_session(path) as s:
        bw = s.body_weight_n
        d = s.devices["treadmill"]
        whole = d.read_channels(["Fz"] if which == "single" else ["Fz_l", "Fz_r"])
        with analyze(s, source="auto") as ga:
            assert ga.source == "force"
            steps = ga.steps[ga.steps["quality"] == "ok"]
            summary = ga.summary
    m = _matched(steps, truth)
    found = m["ic_s"].notna()
    assert found.mean() >= 0.99 and len(m) > 20
    m = m[found]
    assert (m["foot"] == m["foot_true"]).mean() >= 0.99
    assert np.abs(m["ic_s"] - m["ic_sess"]).max() < 0.005
    assert (m["strike_class"] == m["strike_class_true"]).mean() >= 0.95
    np.testing.assert_allclose(m["avlr_bw_s"], m["avlr_bw_s_true"], rtol=0.10)
    np.testing.assert_allclose(m["contact_time_ms"], m["contact_time_ms_true"], atol=15.0)
    true_means = truth[truth["ic_sess"].between(m["ic_sess"].min(), m["ic_sess"].max())].groupby("foot")
    si_true = {k: v.mean() for k, v in true_means["avlr_bw_s"]}
    asym_true = (si_true["right"] - si_true["left"]) / (0.5 * (si_true["right"] + si_true["left"])) * 100
    assert summary["asymmetry_si_pct"]["avlr_bw_s"] == pytest.approx(asym_true, abs=3.0)
    total = sum(whole.values())
    assert np.mean(total) == pytest.approx(bw, rel=0.05)  # the plate carries the body over whole strides


# --------------------------------------------------------------------------------------------- reports and exports


def _page_json(html_path):
    import re

    text = html_path.read_text()
    m = re.search(r'<script type="application/json" id="treadlab-data">(.*?)</script>', text, re.S)
    return text, json.loads(m.group(1).replace("<\\/", "</"))


def test_report_compare_and_batch_on_force_sessions(single, split, tmp_path, capsys):
    from treadlab.lab import cli

    before, after = single[0], split[0]
    assert cli.main(["report", str(before), "--out", str(tmp_path / "r.html")]) == 0
    text, doc = _page_json(tmp_path / "r.html")
    for fig in ("fig-force", "fig-butterfly", "fig-strike", "fig-overtime"):  # force curves, COP on the belt...
        assert f'id="{fig}"' in text
    assert "Measured by the force plate under the belt" in text
    summary = doc  # the page embeds the summary as `lab analyze --json` prints it
    assert summary["source"] == "force"
    feet = summary["feet"]
    assert feet["left"]["strike_counts"]["rearfoot"] > 0 and feet["right"]["strike_counts"]["forefoot"] > 0
    assert feet["left"]["avlr_bw_s"]["mean"] > 1.5 * feet["right"]["avlr_bw_s"]["mean"]  # rearfoot loads faster
    assert cli.main(["compare", str(before), str(after), "--out", str(tmp_path / "c.html")]) == 0
    text, doc = _page_json(tmp_path / "c.html")
    assert doc["before"]["source"] == doc["after"]["source"] == "force"
    assert doc["after"]["belts"] == "split" and 'id="fig-force"' in text and 'id="fig-distributions"' in text
    assert doc["after"]["feet"]["left"]["strike_counts"]["midfoot"] > 0
    assert doc["changes"] and doc["strike"]  # what changed, strike shares before and after
    csv = tmp_path / "study.csv"
    res = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "batch", str(before), str(after), "--source",
                          "auto", "--workers", "1", "--no-progress", "--out", str(csv)],
                         capture_output=True, text=True, timeout=300)  # its own process: Dask's threads stay there
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(csv)
    assert len(table) == 4 and set(table["source"]) == {"force"} and table["error"].isna().all()
    with analyze(before, source="force") as ga:
        want = ga.summary["feet"]["left"]["avlr_bw_s"]["mean"]
    got = table[(table["file"] == str(before)) & (table["foot"] == "left")]["avlr_bw_s_mean"].iat[0]
    assert got == pytest.approx(want, rel=1e-9)


def test_csv_and_c3d_export_of_a_split_belt_session(split, tmp_path):
    import ezc3d

    from treadlab.lab import cli

    path = split[0]
    assert cli.main(["export", str(path), "--to", "csv", "--out", str(tmp_path / "csv")]) == 0
    table = pd.read_csv(tmp_path / "csv" / "treadmill.csv")
    readme = (tmp_path / "csv" / "README.txt").read_text()
    assert list(table.columns) == ["time_s", *channel_names("split")]
    assert "Mx_l [N·mm]" in readme and "belt_speed_r [m/s]" in readme
    with read_session(path) as s:
        d = s.devices["treadmill"]
        values, t = d.read_calibrated(), d.time
    np.testing.assert_allclose(table[channel_names("split")].to_numpy(), values, rtol=1e-6, atol=1e-3)
    assert cli.main(["export", str(path), "--to", "c3d", "--out", str(tmp_path / "x.c3d")]) == 0
    c3d = ezc3d.c3d(str(tmp_path / "x.c3d"))
    analog = c3d["parameters"]["ANALOG"]
    labels, units = analog["LABELS"]["value"], analog["UNITS"]["value"]
    assert labels == [f"{b}{p}" for p in (1, 2) for b in ("Fx", "Fy", "Fz", "Mx", "My", "Mz", "BeltSpeed")]
    assert units[:7] == ["N", "N", "N", "Nmm", "Nmm", "Nmm", "m/s"]
    rate = float(analog["RATE"]["value"][0])
    data = c3d["data"]["analogs"][0]
    t0 = float(c3d["parameters"]["TREADLAB"]["TIME0_S"]["value"][0])
    grid = t0 + np.arange(data.shape[1]) / rate
    assert rate == 1000.0 and t0 == pytest.approx(t[0])
    names = channel_names("split")
    for label, name in (("Fz1", "Fz_l"), ("My2", "My_r"), ("BeltSpeed2", "belt_speed_r")):
        want = np.interp(grid, t, values[:, names.index(name)])
        np.testing.assert_allclose(data[labels.index(label)], want, rtol=1e-5,
                                   atol=1e-6 * np.abs(want).max())  # C3D analogs are float32
    events = c3d["parameters"]["EVENT"]["LABELS"]["value"]
    assert events.count("Foot Strike") > 20  # the force analysis' contacts


def test_lab_simulate_treadmill_writes_a_force_rig_that_lab_devices_reads(tmp_path):
    work = tmp_path / "sim"
    sim = subprocess.Popen([sys.executable, "-m", "treadlab.lab.cli", "simulate", "--treadmill", "split",
                            "--workdir", str(work), "--seconds", "30"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        rig = work / "rig.toml"
        deadline = time.monotonic() + 30.0
        while not rig.exists() and time.monotonic() < deadline and sim.poll() is None:
            time.sleep(0.1)
        assert rig.exists(), sim.stderr.read() if sim.poll() is not None else "no rig file"
        text = rig.read_text()
        assert 'kind = "force"' in text and "foot_length_mm = 260.0" in text
        res = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "devices", "--rig", str(rig)],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "force split belts (left, right), 14 channels" in res.stdout
        assert "insole" in res.stdout and "mat" in res.stdout  # the treadmill comes beside the default rig
    finally:
        sim.terminate()
        out, err = sim.communicate(timeout=30)
    assert sim.returncode == 0, err
