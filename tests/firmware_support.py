"""Shared by the firmware tests: building the reference firmware, running ``refdev``, and the Python twin of its
synthetic signals (``firmware/core/tl_synth.c``), so that tests know what a device must have sent.

The firmware is built once per test session with ``make`` and gcc into a temporary folder (never into the
source tree); every refdev runs as a real subprocess behind a pseudo-terminal and is stopped with SIGTERM, and
its exit code is checked.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"


def tools_missing(*tools: str) -> list[str]:
    """The commands among ``tools`` not on PATH."""
    return [t for t in tools if shutil.which(t) is None]


def build(target: str, build_dir: Path, timeout_s: float = 300.0) -> Path:
    """``make -C firmware TARGET BUILD=build_dir``; fails the test with make's output if the build fails."""
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.fail("the firmware tests need make and gcc")
    out = subprocess.run(["make", "-s", "-C", str(FIRMWARE), target, f"BUILD={build_dir}"], capture_output=True,
                         text=True, timeout=timeout_s)
    assert out.returncode == 0, f"make {target} failed:\n{out.stdout}\n{out.stderr}"
    return build_dir


_BUILT: dict[str, Path] = {}


def host_build(tmp_path_factory) -> Path:
    """The host build (``refdev`` and ``tl_cobs_tool``), made once per test session in a temporary folder.

    Each test module wraps this in its own session fixture ``firmware_build``.
    """
    if "host" not in _BUILT:
        _BUILT["host"] = build("host", tmp_path_factory.mktemp("firmware-build"))
    return _BUILT["host"]


class PtyProcess:
    """A device process that announces its pty on standard output or error; a context manager that stops it.

    The first line naming ``/dev/pts/N`` gives the pty (``PTY /dev/pts/3`` from refdev and the simavr harness,
    ``char device redirected to /dev/pts/3`` from QEMU); ``link`` is made to point at it if the process did not.

    Parameters
    ----------
    argv : list of str
        The command.
    link : Path
        The stable symlink of the port.
    """

    def __init__(self, argv: list[str], link: Path) -> None:
        self.link = Path(link)
        self.args = [str(a) for a in argv]
        self.proc: subprocess.Popen | None = None
        self.pty = ""
        self.returncode: int | None = None
        self.head: list[str] = []

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(50):
            line = self.proc.stdout.readline()
            if not line:
                break
            self.head.append(line.rstrip())
            found = re.search(r"(/dev/pts/\d+)", line)
            if found:
                self.pty = found.group(1)
                break
        if not self.pty:
            self.stop()
            raise AssertionError(f"{self.args[0]} did not start: {self.head!r}")
        if not self.link.is_symlink():
            self.link.symlink_to(self.pty)
        return self

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, wait, return the exit code (the caller checks it)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        self.returncode = self.proc.returncode
        return self.returncode

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.returncode is None:
            self.stop()  # also reaps an ended process and closes its pipes


class RefDev(PtyProcess):
    """A running ``refdev`` (``binary --link LINK *args``), stopped with SIGTERM at the end."""

    def __init__(self, binary: Path, link: Path, *args: str) -> None:
        super().__init__([binary, "--link", link, *args], link)


@contextlib.contextmanager
def refdevs(binary: Path, folder: Path, specs: dict[str, list[str]]):
    """Several refdevs at once, ``{name: [options]}``, each on ``folder/name``; all stopped and checked at the end."""
    with contextlib.ExitStack() as stack:
        devs = {name: stack.enter_context(RefDev(binary, folder / name, *opts)) for name, opts in specs.items()}
        yield devs
        codes = {name: d.stop() for name, d in devs.items()}
        assert all(c == 0 for c in codes.values()), f"refdev exit codes {codes}"


# ------------------------------------------------------------------------------- twin of tl_synth.c


def stride_ms(t: np.ndarray, clock_hz: int, right: bool = False) -> np.ndarray:
    """Milliseconds into the synthetic 1-s stride at device ticks ``t`` (``tl_synth_stride_ms``)."""
    t = np.asarray(t, dtype=np.uint64)
    c = np.uint64(clock_hz)
    ms = ((t % c) * np.uint64(1000) // c).astype(np.int64) % 1000
    return (ms + 500) % 1000 if right else ms


def insole_values(t: np.ndarray, clock_hz: int, sensels: int, adc_bits: int, right: bool = False) -> np.ndarray:
    """What a synthetic refdev insole sends at ticks ``t``: shape (len(t), sensels)."""
    ms = stride_ms(t, clock_hz, right)[:, None]
    i = np.arange(sensels)[None, :]
    offset = i * 200 // (sensels - 1) if sensels > 1 else np.zeros_like(i)
    p = (ms + 1000 - offset) % 1000
    full = (1 << adc_bits) - 1
    return np.where(p < 400, full * 4 * p * (400 - p) // 160000, 0)


def mat_values(t: np.ndarray, clock_hz: int, rows: int, cols: int, adc_bits: int) -> np.ndarray:
    """What a synthetic refdev mat sends: shape (len(t), rows, cols)."""
    ms = stride_ms(t, clock_hz)[:, None, None]
    r = np.arange(rows)[None, :, None]
    c = np.arange(cols)[None, None, :]
    d = np.abs(r - ms * rows // 1000)
    full = (1 << adc_bits) - 1
    return np.where(d < 3, full * (3 - d) * (c + 1) // (3 * cols), 0)


def _tdiv(a: np.ndarray, b: int) -> np.ndarray:
    """C integer division (towards zero)."""
    return np.sign(a) * (np.abs(a) // b)


def _tri(ms: np.ndarray) -> np.ndarray:
    return np.abs((ms * 4) % 4000 - 2000) - 1000


def imu_values(t: np.ndarray, clock_hz: int, channels: list[str], range_g: int = 16, range_dps: int = 2000,
               range_ut: int = 4900) -> np.ndarray:
    """What a synthetic refdev IMU sends: shape (len(t), len(channels)), int16 counts."""
    ms = stride_ms(t, clock_hz)
    per_g, per_dps, per_ut = 32768 // range_g, 32768 // range_dps, 32768 // range_ut
    table = {
        "ax": _tdiv(_tri(ms) * per_g, 2000), "ay": _tdiv(_tri((ms + 250) % 1000) * per_g, 4000),
        "az": per_g + _tdiv(_tri(ms) * per_g, 1000),
        "gx": _tdiv(_tri(ms) * per_dps, 10), "gy": _tdiv(_tri((ms + 500) % 1000) * per_dps, 20),
        "gz": _tdiv(_tri((ms + 100) % 1000) * per_dps, 40),
        "mx": np.full_like(ms, 20 * per_ut), "my": np.full_like(ms, -5 * per_ut), "mz": np.full_like(ms, 40 * per_ut),
    }
    return np.stack([table[c] for c in channels], axis=1)


def refdev_calibration(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset a refdev insole or mat reports (``hal_calibration`` in refdev.c)."""
    i = np.arange(n)
    return (0.01 * (1 + i % 4)).astype(np.float32), (i % 8).astype(np.float32)


def env_with_tree() -> dict:
    """Environment for a ``lab`` subprocess: this tree first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
