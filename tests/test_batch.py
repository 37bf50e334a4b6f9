"""Study-wide analysis on a local Dask cluster of 2 worker processes: same numbers as ``analyze`` on each file."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from dask.distributed import LocalCluster
from integration_sessions import write_session

from treadlab.analysis import analyze
from treadlab.drivers.sim.gait import RunnerParams
from treadlab.errors import SessionFileError
from treadlab.lab import cli
from treadlab.lab.batch import expand_paths, run_batch, summary_rows

RUNNERS = {
    "p01/run_a.h5": RunnerParams(cadence_spm=165.0, seed=1),
    "p01/run_b.h5": RunnerParams(cadence_spm=180.0, strike_left="forefoot", strike_right="forefoot", seed=2),
    "p02/run_a.h5": RunnerParams(cadence_spm=172.0, body_mass_kg=82.0, contact_time_asym_pct=10.0, seed=3),
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    # Two process-wide helpers live as long as the test process once created: distributed's "Dask-Offload"
    # executor thread and multiprocessing's resource tracker process (started when worker processes are spawned).
    # Start them here, before the per-test check, so they are not counted as a test's leak; the cluster's own
    # scheduler, nannies and workers are still checked.
    from multiprocessing import resource_tracker

    from distributed.utils import _offload_executor

    _offload_executor.submit(lambda: None).result()
    resource_tracker.ensure_running()
    root = tmp_path_factory.mktemp("study")
    truths = {}
    for rel, params in RUNNERS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        truths[str(root / rel)] = write_session(root / rel, params=params, duration_s=12.0,
                                                participant=rel.split("/")[0], condition=rel[-4])
    good = root / "p02" / "run_a.h5"
    (root / "p02" / "run_broken.h5").write_bytes(good.read_bytes()[:4000])
    return root, truths


def _reference(path: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with analyze(path) as ga:
            return ga.summary


def test_expand_paths_recursive_and_missing(study):
    root, truths = study
    paths = expand_paths([str(root / "**" / "*.h5")])
    assert [str(p) for p in paths] == sorted(list(truths) + [str(root / "p02" / "run_broken.h5")])
    with pytest.raises(SessionFileError, match="no session files match"):
        expand_paths([str(root / "nothing" / "*.h5")])


def test_summary_rows_flatten_every_metric():
    summary = {"duration_s": 10.0, "cadence_spm": 170.0, "markers": [{"time_s": 1.0}], "warnings": ["a", "b"],
               "asymmetry_si_pct": {"avlr_bw_s": 3.0}, "parameters": {"x": 1},
               "feet": {"left": {"steps": 5, "avlr_bw_s": {"mean": 60.0, "sd": 2.0}, "strike_counts": {"rearfoot": 5}},
                        "right": {"steps": 6, "avlr_bw_s": {"mean": 62.0, "sd": 1.0}}}}
    rows = summary_rows(summary, {"file": "f.h5", "participant": "P"})
    assert [r["foot"] for r in rows] == ["left", "right"]
    left = rows[0]
    assert left["avlr_bw_s_mean"] == 60.0 and left["strike_counts_rearfoot"] == 5 and left["participant"] == "P"
    assert left["asymmetry_si_pct_avlr_bw_s"] == 3.0 and left["warnings"] == "a; b" and left["n_markers"] == 1
    assert "parameters_x" not in left and rows[1]["avlr_bw_s_sd"] == 1.0


def test_study_on_two_worker_cluster_matches_analyze(study):
    root, truths = study
    paths = expand_paths([str(root / "**" / "*.h5")])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        table = run_batch(paths, scheduler=cluster.scheduler_address, progress=False)
        workers_used = len(cluster.workers)
        # an analysis that raises something else than a LabError (a bug) is reported the same way
        crashed = run_batch(paths[:2], scheduler=cluster.scheduler_address, progress=False, analyse=int)
    assert workers_used == 2
    assert crashed["file"].tolist() == [str(p) for p in paths[:2]]
    assert crashed["error"].str.startswith("ValueError: invalid literal for int()").all()
    assert len(table) == 2 * len(truths) + 1
    broken = table[table["file"].str.endswith("run_broken.h5")]
    assert len(broken) == 1 and broken["error"].iloc[0].startswith("SessionFileError")
    ok = table[table["error"] == ""]
    assert list(ok.columns[:8]) == ["file", "participant", "condition", "shoe", "body_mass_kg",
                                    "treadmill_speed_mps", "start_utc", "foot"]
    metric_cols = [c for c in ok.columns if c.endswith(("_mean", "_sd", "_median", "_n"))]
    assert len(metric_cols) >= 40
    for path, truth in truths.items():
        ref = _reference(path)
        rows = ok[ok["file"] == path].set_index("foot")
        assert list(rows.index) == ["left", "right"]
        assert rows.loc["left", "participant"] == path.split("/")[-2]
        for foot in ("left", "right"):
            for metric, stats in ref["feet"][foot].items():
                if metric in ("steps", "strike_counts"):
                    continue
                for stat, value in stats.items():
                    got = rows.loc[foot, f"{metric}_{stat}"]
                    assert (np.isnan(value) and np.isnan(got)) or got == pytest.approx(value, rel=1e-12), \
                        (path, foot, metric, stat)
            assert rows.loc[foot, "steps"] == ref["feet"][foot]["steps"]
        assert rows.loc["left", "cadence_spm"] == pytest.approx(ref["cadence_spm"], rel=1e-12)
        # and against the simulator's truth
        assert rows.loc["left", "cadence_spm"] == pytest.approx(truth["params"].cadence_spm, rel=0.02)
        assert rows.loc["left", f"strike_counts_{truth['params'].strike_left}"] >= 0.9 * rows.loc["left", "steps"]


def test_lab_batch_cli_writes_the_table_and_reports_failures(study, tmp_path, capsys):
    root, truths = study
    out = tmp_path / "study.csv"
    res = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "batch", str(root / "**" / "*.h5"),
                          "--out", str(out), "--workers", "1", "--no-progress"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    assert "3 of 4 sessions analysed" in res.stderr and "run_broken.h5" in res.stderr
    table = pd.read_csv(out)
    assert len(table) == 7 and table["error"].notna().sum() == 1
    # the same numbers as `lab analyze --json` on one of the files
    one = sorted(truths)[0]
    capsys.readouterr()
    assert cli.main(["analyze", one, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = table[table["file"] == one].set_index("foot")
    for metric in ("avlr_bw_s", "contact_time_ms", "strike_index_pct", "peak_force_bw"):
        for foot in ("left", "right"):
            assert rows.loc[foot, f"{metric}_mean"] == pytest.approx(summary["feet"][foot][metric]["mean"], rel=1e-9)
    assert rows.loc["left", "cadence_spm"] == pytest.approx(summary["cadence_spm"], rel=1e-9)
    assert cli.main(["batch", str(tmp_path / "none*.h5")]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lab batch: error: no session files match")
    assert cli.main(["batch", str(root / "**" / "*.h5"), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
