"""``lab demo``: simulated rig in other processes -> Recorder -> HDF5 -> analysis -> reports, as a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py

from treadlab import fileformat as ff
from treadlab.lab.cli import main


def test_demo_records_analyses_and_reports_the_known_change(tmp_path):
    out = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "demo", "--out", str(tmp_path), "--seconds", "4"],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    paths = [Path(p) for p in re.findall(r"^  (/\S+\.html)$", text, flags=re.M)]
    assert [p.name for p in paths] == ["before.html", "after.html", "compare.html", "feedback.html"]
    for p in paths:
        page = p.read_text()
        assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") >= 4
    assert "Most steps moved from rearfoot to midfoot landing" in text
    assert re.search(r"Cadence rose \d+% .*from 1[56]\d to 1[67]\d steps/min", text)
    assert re.search(r"Left VILR fell \d+%", text) and re.search(r"Right VILR fell \d+%", text)
    # The live-feedback session: cues in the file and the WAV, the retraining section, the runner reached the band.
    assert re.search(r"Live feedback \(strike index >= 34 %\): the runner reached the band after \d+ s", text)
    fb_page = paths[3].read_text()
    assert 'id="retraining"' in fb_page and 'data-metric="time_to_criterion_s"' in fb_page
    with h5py.File(paths[3].with_suffix(".h5"), "r") as f:
        assert f["feedback/cues/time"].shape[0] > 10
        assert [n.decode() for n in f["feedback/phases/name"][()]] == ["baseline", "feedback", "retention"]
    assert (paths[3].parent / "feedback-cues.wav").stat().st_size > 20 * 48_000 * 2
    # The sessions came through the real acquisition path: complete files with every device and no lost samples.
    folder = paths[0].parent
    for name in ("before.h5", "after.h5"):
        with h5py.File(folder / name, "r") as f:
            assert f.attrs["state"] == ff.STATE_COMPLETE
            assert set(f[ff.DEVICES]) == {"insole_left", "insole_right", "mat"}
            for dev in f[ff.DEVICES].values():
                assert dev[ff.TIME].shape[0] > 0.8 * 4 * float(dev.attrs["rate_hz"])
            assert [m.decode().rstrip("\0") for m in f[ff.MARKERS]["label"][()]] == ["start", "end"]


def test_demo_refuses_a_too_short_recording(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seconds" in err and not any(tmp_path.iterdir())
