"""``lab info`` shows an imu's placement in the side column (issue #14)."""

from __future__ import annotations

import subprocess
import sys

from imu_files import runner_session
from imu_synth import Runner

from treadlab.acquisition.session import summary


def test_info_shows_imu_placement(tmp_path):
    path = tmp_path / "imu.h5"
    runner_session(path, Runner(rate_hz=100.0, stand_s=4.0, run_s=4.0), placements=("pelvis", "tibia_right"))
    s = summary(str(path))
    assert {d["placement"] for d in s["devices"].values()} == {"pelvis", "tibia_right"}
    out = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "info", str(path)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0].endswith("_imu")]
    rows = {r[0]: r for r in rows}
    assert sorted(r[2] for r in rows.values()) == ["pelvis", "tibia_right"]
    assert all(r[3].isdigit() for r in rows.values())  # the columns after it stay aligned
