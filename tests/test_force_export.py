"""C3D export of force devices with FORCE_PLATFORM parameters (type 2): ``lab import`` of the export round-trips.

import -> export -> import gives the same forces, centre of pressure and free moment (float32 rounding), for the
real Fukuchi C3D (type 4, y vertical: the export's plate frame is the file's axes permuted so that z is vertical)
and for a split-belt device (two plates, one device). The data: tests/data (CC BY 4.0, Fukuchi et al. 2017) and
the synthetic runner of tests/force_support.py.
"""

from __future__ import annotations

import ezc3d
import numpy as np
import pytest
from force_support import RBDS017_C3D, write_c3d

from treadlab.acquisition.importer import ImportOptions, import_file
from treadlab.analysis import read_session
from treadlab.analysis.export import export_c3d
from treadlab.analysis.force_export import plate_frame
from treadlab.lab.cli import main


def _channels(path):
    with read_session(path) as s:
        d = s.of_kind("force")[0]
        vertical = [d.channel("F", "vertical", p)[0] for p in d.plates()]
        return d.read_channels(list(d.channels)), vertical, d.axes, np.asarray(d.origin_mm)


def _same(a_path, b_path) -> int:
    """Assert the two files' force devices agree; returns how many loaded samples the COP was compared on."""
    a, vert, axes, origin = _channels(a_path)
    b, vert_b, axes_b, origin_b = _channels(b_path)
    assert list(a) == list(b) and vert == vert_b and axes == axes_b
    np.testing.assert_allclose(origin_b, origin)
    compared = 0
    for v in vert:  # per plate: forces exactly, COP and free moment where its vertical force carries load
        suffix = v[-2:] if v.endswith(("_l", "_r")) else ""
        loaded = np.abs(a[v]) > 50.0
        for name in (n for n in a if n.endswith(suffix) and (not suffix) == (not n.endswith(("_l", "_r")))):
            x, y = a[name].astype(np.float64), b[name].astype(np.float64)
            if name.startswith("F"):
                np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-3, err_msg=name)
            elif name.startswith(("COP", "T")):
                tol = 0.5 if name.startswith("T") else 0.01
                np.testing.assert_allclose(y[loaded], x[loaded], rtol=1e-5, atol=tol, err_msg=name)
                compared += int(loaded.sum())
    return compared


def test_real_c3d_round_trips(tmp_path, capsys):
    first = tmp_path / "a.h5"
    assert main(["import", str(RBDS017_C3D), "--out", str(first)]) == 0
    c3d_path = tmp_path / "a.c3d"
    assert main(["export", str(first), "--to", "c3d", "--out", str(c3d_path)]) == 0
    c = ezc3d.c3d(str(c3d_path))
    fp = c["parameters"]["FORCE_PLATFORM"]
    assert int(fp["USED"]["value"][0]) == 1 and fp["TYPE"]["value"].tolist() == [2]
    labels = c["parameters"]["ANALOG"]["LABELS"]["value"]
    assert [labels[i - 1] for i in fp["CHANNEL"]["value"][:, 0]] == ["Fx1", "Fy1", "Fz1", "Mx1", "My1", "Mz1"]
    np.testing.assert_allclose(fp["CORNERS"]["value"][:, :, 0].mean(axis=1), [2149.0, 0.0, 976.7], atol=0.01)
    second = tmp_path / "b.h5"
    assert main(["import", str(c3d_path), "--out", str(second)]) == 0
    capsys.readouterr()
    assert _same(first, second) > 1000


def test_split_belts_round_trip(tmp_path):
    src = write_c3d(tmp_path / "two.c3d", plates=2)
    first = import_file(str(src), str(tmp_path / "a.h5"), ImportOptions(split_belts=True)).path
    out = export_c3d(first, tmp_path / "a.c3d")
    c = ezc3d.c3d(str(out))
    fp = c["parameters"]["FORCE_PLATFORM"]
    labels = c["parameters"]["ANALOG"]["LABELS"]["value"]
    assert int(fp["USED"]["value"][0]) == 2
    assert [labels[i - 1] for i in fp["CHANNEL"]["value"][:, 1]] == ["Fx2", "Fy2", "Fz2", "Mx2", "My2", "Mz2"]
    second = import_file(str(out), str(tmp_path / "b.h5"), ImportOptions(split_belts=True)).path
    assert _same(first, second) > 1000  # the left belt carries the runner (the right one is unloaded)


@pytest.mark.parametrize("vertical,rows", [("z", [0, 1, 2]), ("-z", [0, 1, 2]), ("y", [2, 0, 1]), ("x", [1, 2, 0])])
def test_plate_frame_puts_the_vertical_axis_last_right_handed(vertical, rows):
    r = plate_frame({"vertical": vertical, "forward": "x" if "x" not in vertical else "y"})
    np.testing.assert_array_equal(r, np.eye(3)[rows])
    assert np.linalg.det(r) == pytest.approx(1.0)
