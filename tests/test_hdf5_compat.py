"""Session files are readable by HDF5 1.10-1.14: Debian's ``h5dump``/``h5ls`` (hdf5-tools) read what h5py wrote.

h5py carries HDF5 2.0, which writes structures older libraries cannot read unless the file's format bounds say
otherwise (``fileformat.LIBVER``). These tests dump a recorded, a crashed and a repaired file completely with the
system's HDF5 tools and compare every dataset's values (binary dump) with what h5py reads.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from treadlab import fileformat as ff
from treadlab.drivers.sim.rig import SimulatedRig

H5DUMP, H5LS = shutil.which("h5dump"), shutil.which("h5ls")
pytestmark = pytest.mark.skipif(
    H5DUMP is None or H5LS is None,
    reason="h5dump/h5ls not installed (Debian package hdf5-tools; .ci/run installs it when it can)")

LAB = [sys.executable, "-m", "treadlab.lab.cli"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    work = tmp_path_factory.mktemp("h5sim")
    with SimulatedRig.default(work / "devices", seed=3) as rig:
        rig.rig_path = rig.write_rig(work / "rig.toml")
        yield rig


def _record(sim, out, *extra) -> subprocess.Popen:
    return subprocess.Popen([*LAB, "record", "--rig", str(sim.rig_path), "--out", str(out), "--quiet", *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc, path) -> None:
    end = time.monotonic() + 60
    while not os.path.exists(path):
        assert time.monotonic() < end and proc.poll() is None, "the recording never started"
        time.sleep(0.05)


def _tools_version() -> str:
    return subprocess.run([H5DUMP, "--version"], capture_output=True, text=True).stdout.strip()


def _datasets(path) -> dict[str, np.ndarray]:
    """Every dataset of the file as h5py reads it."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__("/" + name, obj[()]) if isinstance(obj, h5py.Dataset)
                     else None)
    return out


_OCTAL = re.compile(r"\\(37777777[0-7]{3}|[0-7]{3})")


def _dumped_strings(text: str, size: int) -> list[bytes]:
    """The elements of a fixed-length string dataset as ``h5dump -y`` prints them.

    Each element is ``"`` + ``size`` bytes + ``"``: bytes outside printable ASCII (the NUL padding, UTF-8) as octal
    escapes (``\\303`` or, sign-extended, ``\\37777777703``), the others as they are (quotes and backslashes are not
    escaped: the caller checks that no stored text holds a backslash, the one ambiguous case).
    """
    body = text[text.index("DATA {") + len("DATA {"):]
    out, i = [], 0
    while True:
        start = body.find('"', i)
        if start < 0 or body.find("}", i) < start:
            return out
        i, value = start + 1, bytearray()
        while len(value) < size:
            m = _OCTAL.match(body, i)
            if m:
                value.append(int(m.group(1), 8) & 0xFF)
                i = m.end()
            else:
                value += body[i].encode("latin-1")
                i += 1
        assert body[i] == '"', body[start:i + 1]
        out.append(bytes(value))
        i += 1


def _assert_readable_by_system_hdf5(path, tmp_path) -> None:
    """``h5ls -r`` lists no error, ``h5dump`` dumps the whole file, and each dataset's bytes equal h5py's values."""
    version = _tools_version()
    ls = subprocess.run([H5LS, "-r", str(path)], capture_output=True, text=True, timeout=120)
    assert ls.returncode == 0 and "*ERROR*" not in ls.stdout, (version, ls.stdout, ls.stderr)
    full = subprocess.run([H5DUMP, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          timeout=300)
    assert full.returncode == 0 and not full.stderr, (version, full.stderr)
    state = subprocess.run([H5DUMP, "-a", "/state", str(path)], capture_output=True, text=True, timeout=60)
    with h5py.File(path, "r") as f:
        assert f'"{f.attrs["state"]}"' in state.stdout, state.stdout
    datasets = _datasets(path)
    assert "/devices/mat/raw" in datasets and "/devices/insole_left/raw" in datasets
    for name, values in datasets.items():
        binary = tmp_path / "dataset.bin"
        if binary.exists():
            binary.unlink()
        run = subprocess.run([H5DUMP, "-d", name, "-b", "LE", "-o", str(binary), str(path)],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (name, version, run.stderr)
        if values.dtype.kind == "S":
            assert not any(b"\\" in v or b"\n" in v for v in values.tolist()), name
            text = subprocess.run([H5DUMP, "-y", "-w", "0", "-d", name, str(path)], capture_output=True,
                                  text=True, encoding="latin-1", timeout=120)
            printed = _dumped_strings(text.stdout, values.dtype.itemsize)
            assert printed == [v.ljust(values.dtype.itemsize, b"\0") for v in values.tolist()], name
            continue
        raw = binary.read_bytes() if binary.exists() else b""
        expect = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
        assert raw == expect.tobytes(), (name, len(raw), expect.nbytes)
        if values.size and values.dtype.kind in "fiu":
            got = np.frombuffer(raw, dtype=expect.dtype).reshape(values.shape)
            np.testing.assert_array_equal(got, values)


def test_a_recorded_session_is_dumped_completely_by_hdf5_1_10_tools(sim, tmp_path):
    out = tmp_path / "rec.h5"
    proc = _record(sim, out, "--duration", "3")
    _wait_for(proc, out)
    _, err = proc.communicate("pied gauche é\n", timeout=90)
    assert proc.returncode == 0, err
    with h5py.File(out, "r") as f:
        assert f.attrs["state"] == ff.STATE_COMPLETE
        assert [x.decode() for x in f["markers/label"][:]] == ["pied gauche é"]
        assert f["devices/mat/raw"].shape[0] > 100 and f["devices/insole_left/clock/segments"].shape[0] >= 1
    _assert_readable_by_system_hdf5(out, tmp_path)


def test_a_crashed_and_its_repaired_session_are_dumped_completely_by_hdf5_1_10_tools(sim, tmp_path):
    out = tmp_path / "killed.h5"
    proc = _record(sim, out)
    try:
        _wait_for(proc, out)
        time.sleep(2.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    rep = subprocess.run([*LAB, "repair", str(out)], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    crashed = tmp_path / (out.name + ff.CRASHED_SUFFIX)
    with h5py.File(out, "r") as f:
        assert f.attrs["state"] == ff.STATE_REPAIRED and f["devices/insole_left/seq"].shape[0] > 200
    _assert_readable_by_system_hdf5(out, tmp_path)
    # The original as the killed recorder left it: its superblock still says "open for SWMR writing", so a
    # reader other than a SWMR one refuses it until h5clear (same library generation) marks it closed.
    copy = tmp_path / "crashed-copy.h5"
    shutil.copyfile(crashed, copy)
    h5clear = shutil.which("h5clear")
    if h5clear is not None:
        subprocess.run([h5clear, "-s", str(copy)], check=True, capture_output=True, timeout=60)
        _assert_readable_by_system_hdf5(copy, tmp_path)
