"""Shared set-up of the LSL tests: liblsl restricted to this machine's loopback, or a skip with the reason."""

from __future__ import annotations

import os

import pytest

from treadlab.acquisition import lsl


def loopback_session(tmp_path_factory, tag: str) -> str:
    """Configure liblsl for 127.0.0.1 with a session id of this test process; skip if it cannot resolve.

    Returns
    -------
    str
        The LSL session id the configuration uses.
    """
    pylsl = pytest.importorskip("pylsl")
    folder = tmp_path_factory.mktemp("lsl")
    session = f"treadlab-test-{os.getpid()}"
    lsl.configure_loopback(folder, session)
    sid = f"probe-{tag}-{os.getpid()}"
    probe = pylsl.StreamOutlet(pylsl.StreamInfo("probe", "probe", 1, 10.0, "float32", sid))
    found = pylsl.resolve_byprop("source_id", sid, timeout=3.0)
    del probe
    if not found:
        pytest.skip("liblsl cannot publish and resolve a stream on the loopback interface")
    return session
