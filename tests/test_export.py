"""CSV and C3D export of session files, checked against the known content of the file and read back by ezc3d."""

from __future__ import annotations

import subprocess
import sys

import ezc3d
import numpy as np
import pandas as pd
import pytest
from integration_sessions import write_session

from treadlab.analysis.export import c3d_analogs, export_c3d, export_csv
from treadlab.analysis.session import read_session
from treadlab.drivers.sim.gait import GaitModel
from treadlab.errors import SessionFileError, StorageError
from treadlab.lab import cli


@pytest.fixture()
def session_file(tmp_path):
    path = tmp_path / "run01.h5"
    truth = write_session(path, duration_s=6.0, markers=((1.5, "start"), (4.25, "speed up")), gap=(3.0, 7))
    return path, truth


def test_csv_has_time_then_calibrated_values_per_device(session_file, tmp_path):
    path, truth = session_file
    files = export_csv(path, tmp_path / "out")
    names = sorted(p.name for p in files)
    assert names == ["README.txt", "insole_left.csv", "insole_right.csv", "markers.csv"]
    left = pd.read_csv(tmp_path / "out" / "insole_left.csv")
    assert list(left.columns) == ["time_s"] + [f"s{i:02d}" for i in range(1, 17)]
    assert len(left) == len(truth["left"]["time"]) == 6 * 200 - 7
    assert list(left.columns)[-1] == "s16"
    np.testing.assert_array_equal(left["time_s"].to_numpy(), truth["left"]["time"])
    np.testing.assert_allclose(left.iloc[:, 1:].to_numpy(), truth["left"]["forces"], rtol=1e-6, atol=1e-4)
    markers = pd.read_csv(tmp_path / "out" / "markers.csv")
    assert markers["label"].tolist() == ["start", "speed up"] and markers["time_s"].tolist() == [1.5, 4.25]
    readme = (tmp_path / "out" / "README.txt").read_text()
    assert "insole_left.csv" in readme and "in N" in readme and "participant: P01" in readme


def test_csv_refuses_to_overwrite_without_force(session_file, tmp_path):
    path, _ = session_file
    export_csv(path, tmp_path / "out")
    with pytest.raises(StorageError, match="insole_left.csv exists"):
        export_csv(path, tmp_path / "out")
    assert len(export_csv(path, tmp_path / "out", force=True)) == 4


def test_c3d_read_back_by_ezc3d(session_file, tmp_path):
    path, truth = session_file
    out = export_c3d(path, tmp_path)
    assert out == tmp_path / "run01.c3d"
    c = ezc3d.c3d(str(out))
    labels = c["parameters"]["ANALOG"]["LABELS"]["value"]
    assert labels == ["LFz", "LCOPx", "LCOPy", "RFz", "RCOPx", "RCOPy"]
    assert c["parameters"]["ANALOG"]["UNITS"]["value"] == ["N", "mm", "mm"] * 2
    assert c["parameters"]["ANALOG"]["RATE"]["value"][0] == 200.0
    an = c["data"]["analogs"][0]
    time0 = float(c["parameters"]["TREADLAB"]["TIME0_S"]["value"][0])
    grid = time0 + np.arange(an.shape[1]) / 200.0
    with read_session(path) as s:
        reader_total = {side: (ins.time, ins.total_force_n.copy()) for side, ins in s.insoles.items()}
    for side, p in (("left", "L"), ("right", "R")):
        tt = truth[side]
        fz = an[labels.index(f"{p}Fz")]
        # the simulator's force, through the quantisation: peaks agree within 2 %
        assert fz.max() == pytest.approx(tt["total"].max(), rel=0.02)
        # and the channel is the session reader's total force on the C3D time base
        t_read, f_read = reader_total[side]
        inside = (grid > t_read[0]) & (grid < t_read[-1])
        np.testing.assert_allclose(fz[inside], np.interp(grid[inside], t_read, f_read), atol=1e-3)
        loaded = fz > 0.5 * tt["total"].max()
        copy = an[labels.index(f"{p}COPy")][loaded]
        y = truth["positions_mm"][:, 1]
        assert copy.min() >= y.min() and copy.max() <= y.max()
        assert np.all(an[labels.index(f"{p}COPy")][fz == 0] == 0)
    ev_labels = np.array(c["parameters"]["EVENT"]["LABELS"]["value"])
    contexts = np.array(c["parameters"]["EVENT"]["CONTEXTS"]["value"])
    times = c["parameters"]["EVENT"]["TIMES"]["value"]
    ev_s = times[0] * 60 + times[1] + time0
    other = ~np.isin(ev_labels, ["Foot Strike", "Foot Off"])
    assert ev_labels[other].tolist() == ["start", "gap", "speed up"]
    assert contexts[other].tolist() == ["General", "Left", "General"]
    np.testing.assert_allclose(ev_s[other][[0, 2]], [1.5, 4.25], atol=1e-5)
    # foot strikes against the simulator's ground truth
    truth_steps = GaitModel(truth["params"], 7.0).steps
    for side in ("Left", "Right"):
        strikes = ev_s[(ev_labels == "Foot Strike") & (contexts == side)]
        true_ic = truth_steps.loc[truth_steps["foot"] == side.lower(), "ic_s"].to_numpy()
        assert len(strikes) >= 6
        err_ms = np.abs(strikes[:, None] - true_ic[None, :]).min(axis=1) * 1e3
        assert np.median(err_ms) < 5.0, err_ms


def test_cop_moves_heel_to_toe_within_a_contact(session_file):
    path, _ = session_file
    with read_session(path) as s:
        an = c3d_analogs(s)
    fz, copy = an.data[0], an.data[2]
    on = np.flatnonzero(fz > 300)
    first_contact = on[: np.argmax(np.diff(on) > 1)]
    assert len(first_contact) > 10
    # the default simulated runner strikes with the rearfoot: the COP runs from the heel towards the toes
    assert copy[first_contact[-1]] - copy[first_contact[0]] > 50.0


def test_truncated_or_foreign_file_is_a_session_file_error(session_file, tmp_path):
    path, _ = session_file
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(SessionFileError, match="cut.h5"):
        export_c3d(cut, tmp_path)
    header = tmp_path / "header.h5"
    header.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # an HDF5 signature, then a damaged superblock
    with pytest.raises(SessionFileError, match="header.h5"):
        export_csv(header, tmp_path / "y")
    text = tmp_path / "notes.h5"
    text.write_text("not a session")
    with pytest.raises(SessionFileError, match="not HDF5"):
        export_csv(text, tmp_path / "x")


def test_lab_export_cli_one_line_errors_and_success(session_file, tmp_path, capsys):
    path, _ = session_file
    assert cli.main(["export", str(tmp_path / "nope.h5"), "--to", "csv"]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lab export: error:") and "not found" in err
    ok = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "export", str(path), "--to", "c3d", "--out",
                         str(tmp_path / "c3d")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(tmp_path / "c3d" / "run01.c3d") and (tmp_path / "c3d" / "run01.c3d").exists()


def test_mat_in_csv_and_c3d(tmp_path):
    from sessionfactory import MatSpec
    from sessionfactory import write_session as write_with_mat

    from treadlab.drivers.sim.gait import RunnerParams

    path = tmp_path / "mat.h5"
    write_with_mat(path, RunnerParams(seed=4), duration_s=3.0, mat=MatSpec(rows=40, cols=16))
    files = export_csv(path, tmp_path / "csv")
    mat_csv = [f for f in files if f.name == "mat.csv"][0]
    with mat_csv.open() as fh:
        head = fh.readline().strip().split(",")
    assert head[:3] == ["time_s", "r00c00", "r00c01"] and len(head) == 1 + 40 * 16
    with read_session(path) as s:
        mat = s.mats[0]
        total = mat.frames().reshape(mat.n_samples, -1).sum(axis=1) * mat.force_factor
        an = c3d_analogs(s, step_events=False)
    fz = an.data[an.labels.index("MatFz")]
    assert an.units[an.labels.index("MatFz")] == "N"
    assert fz.max() == pytest.approx(total.max(), rel=0.05)
