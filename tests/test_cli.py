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
