"""The ``lab`` command line: help, version, and one-line errors."""

from __future__ import annotations

import subprocess
import sys


def test_lab_version_and_help_run_as_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "--version"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("treadlab ")
    out = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "COMMAND" in out.stdout


def test_log_option_records_a_refused_device(tmp_path):
    import logging

    from treadlab.lab.cli import main

    rig = tmp_path / "rig.toml"
    rig.write_text('[[device]]\nname = "insole_left"\nport = "/dev/no-such-port"\n')
    log = tmp_path / "lab.log"
    try:
        assert main(["--log", str(log), "devices", "--rig", str(rig), "--seconds", "0.1"]) != 0
    finally:
        for h in list(logging.getLogger("treadlab").handlers):
            if isinstance(h, logging.FileHandler):
                logging.getLogger("treadlab").removeHandler(h)
                h.close()
    text = log.read_text()
    assert "treadlab.drivers: insole_left: not connected" in text and "/dev/no-such-port" in text
