"""Shared fixtures. Every test fails if it leaves a thread or a child process running."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest
from hypothesis import settings

# CI runs the property tests on a fixed set of examples (HYPOTHESIS_PROFILE=ci, set by `make test`), so a green
# run stays green; a developer's plain `pytest` explores new examples every time.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive() and t is not threading.main_thread()}


@pytest.fixture(autouse=True)
def no_leaked_threads_or_processes():
    """Fail a test that leaves threads or child processes behind (after a 2 s grace period)."""
    threads_before = _live_threads()
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [t for t in _live_threads() - threads_before if not t.name.startswith(("pydevd", "QDBus"))]
        kids = [p for p in me.children(recursive=True) if p.pid not in children_before and p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE]
        if (not leaked and not kids) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for p in kids:
        p.kill()
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"
    assert not kids, f"test left processes running: {[(p.pid, p.cmdline()) for p in kids]}"
