"""``lab import``: real Fukuchi files (C3D and the authors' text export) and synthetic C3D/text files with known
content; the file layout of the contract; axes found from the data; body weight from the force; C3D events as
markers; every bad input one clear line, a non-zero exit and nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from force_support import DATA, RBDS001_TEXT, RBDS017_C3D, Gait, rbds_mass_kg, write_c3d, write_text

from treadlab import fileformat as ff
from treadlab.acquisition.importer import ImportOptions, import_file
from treadlab.acquisition.session import summary
from treadlab.analysis import ForceData, read_session
from treadlab.analysis.session import StreamData
from treadlab.lab.cli import main
from treadlab.vocabulary import G_MPS2


def _lab(*args) -> int:
    return main(["import", *map(str, args)])


def _mean_vertical(f: ForceData) -> float:
    name, sign = f.channel("F", "vertical")
    return float(sign * f.read_channels([name])[name].astype(np.float64).mean())


# ---------------------------------------------------------------------------------------------- real data


def test_rbds001_text_export(tmp_path, capsys):
    out = tmp_path / "rbds001.h5"
    assert _lab(RBDS001_TEXT, "--out", out, "--rate-hz", 300, "--body-mass", 62, "--speed", 2.5,
                "--participant", "RBDS001", "--condition", "2.5 m/s", "--foot-length", 255) == 0
    printed = capsys.readouterr().out
    assert "vertical axis y" in printed and "forward axis x" in printed and printed.strip().endswith(str(out))
    with read_session(out) as s:
        assert (s.participant, s.condition, s.body_mass_kg, s.treadmill_speed_mps) == ("RBDS001", "2.5 m/s", 62, 2.5)
        assert s.attrs["foot_length_mm"] == 255 and s.attrs["protocol"] == "import"
        f = s.devices["force"]
        assert isinstance(f, ForceData) and f.imported and f.source_format == "text"
        assert f.source_file == str(RBDS001_TEXT.resolve())
        # axes as the file has them (Y up, X along the belt, runner facing +X), named in `axes`
        assert f.axes == {"vertical": "y", "forward": "x"} and f.axis("right") == ("z", 1.0)
        assert f.channels == ["Fx", "Fy", "Fz", "COPx", "COPz", "Ty"]
        assert f.channel_units() == ["N", "N", "N", "mm", "mm", "N·mm"]
        assert f.rate_hz == 300 and f.n_samples == 9000
        np.testing.assert_array_equal(f.read_time(), np.arange(9000) / 300.0)
        # stored calibrated float32, gain 1, offset 0: the values of the file
        raw = np.loadtxt(RBDS001_TEXT, skiprows=1)
        np.testing.assert_array_equal(f.read_channels(["Fy"])["Fy"], raw[:, 2].astype(np.float32))
        np.testing.assert_array_equal(f.read_channels(["COPz"])["COPz"], raw[:, 6].astype(np.float32))
        assert f.gain.tolist() == [1.0] * 6 and f.offset.tolist() == [0.0] * 6 and f.unit == "force"
        # body weight from the force: the mean vertical force over the whole trial within 5% of RBDSinfo's mass
        assert _mean_vertical(f) / G_MPS2 == pytest.approx(rbds_mass_kg("RBDS001"), rel=0.05)
        assert np.isnan(f.size_mm).all()  # a text export gives no plate geometry


def test_rbds017_c3d(tmp_path, capsys):
    out = tmp_path / "rbds017.h5"
    assert _lab(RBDS017_C3D, "--out", out, "--body-mass", 82.15, "--speed", 3.5) == 0
    printed = capsys.readouterr().out
    assert "not trusted" in printed and "forces checked in newtons" in printed
    assert "10 marker trajectories stay in the source file" in printed
    import ezc3d

    pf = ezc3d.c3d(str(RBDS017_C3D), extract_forceplat_data=True)["data"]["platform"][0]
    with read_session(out) as s:
        f = s.devices["force"]
        assert f.source_format == "c3d" and f.protocol == "import" and f.rate_hz == 300 and f.n_samples == 3000
        assert f.axes == {"vertical": "y", "forward": "x"}
        assert f.channels == ["Fx", "Fy", "Fz", "Mx", "My", "Mz", "COPx", "COPz", "Ty"]
        d = f.read_channels()
        np.testing.assert_allclose(d["Fy"], pf["force"][1], rtol=1e-6, atol=1e-3)
        np.testing.assert_allclose(d["COPx"], pf["center_of_pressure"][0], rtol=1e-6, atol=1e-2)
        np.testing.assert_allclose(d["Ty"], pf["Tz"][1], rtol=1e-6, atol=1e-1)
        # the plate from FORCE_PLATFORM:CORNERS: 1800 mm along the belt, 486 mm across, centred at (2149, 0, 976.7)
        np.testing.assert_allclose(f.size_mm[0], [1800.0, 486.0], atol=0.1)
        np.testing.assert_allclose(f.origin_mm[0], [2149.0, 0.0, 976.7], atol=0.1)
        assert _mean_vertical(f) / G_MPS2 == pytest.approx(rbds_mass_kg("RBDS017"), rel=0.05)
        assert len(s.markers) == 0 and not s.streams  # no EVENT in the file, every analog channel is a platform's
    info = summary(str(out))
    assert info["devices"]["force"]["samples"] == 3000 and info["metadata"]["state"] == "complete"


def test_committed_imported_file_matches_a_fresh_import(tmp_path):
    fresh = import_file(str(RBDS001_TEXT), str(tmp_path / "x.h5"), ImportOptions(rate_hz=300, body_mass_kg=62))
    with read_session(DATA / "fukuchi_RBDS001runT25_imported.h5") as a, read_session(fresh.path) as b:
        fa, fb = a.devices["force"], b.devices["force"]
        assert fa.channels == fb.channels and fa.axes == fb.axes
        np.testing.assert_array_equal(fa.read_calibrated(), fb.read_calibrated())
        np.testing.assert_array_equal(fa.read_time(), fb.read_time())


# ---------------------------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("plate_type", [2, 4])
def test_synthetic_c3d_known_content_events_and_analog(tmp_path, plate_type):
    g = Gait()
    src = write_c3d(tmp_path / "run.c3d", g, plate_type=plate_type, extra_analog=True,
                    events=[(1.3, "Right", "Foot Off"), (1.0, "Left", "Foot Strike"), (99.0, "Left", "Foot Strike")])
    res = import_file(str(src), str(tmp_path / "run.h5"), ImportOptions(body_mass_kg=g.mass_kg))
    assert res.axes == {"vertical": "z", "forward": "x"}
    s_true = g.signals()
    with read_session(res.path) as s:
        f = s.devices["force"]
        d = f.read_channels()
        np.testing.assert_allclose(d["Fz"], s_true["Fz"], atol=0.05)
        loaded = s_true["Fz"] > 50
        # COP in the lab frame: plate centre (1000, 0) + the runner's COP
        np.testing.assert_allclose(d["COPx"][loaded], 1000 + s_true["COPx"][loaded], atol=0.05)
        np.testing.assert_allclose(d["COPy"][loaded], s_true["COPy"][loaded], atol=0.05)
        np.testing.assert_allclose(f.size_mm[0], [1800, 500])
        assert f.axis("right") == ("y", -1.0)
        # C3D events become markers on the session clock, in time order; one outside the trial is left out
        assert s.markers["label"].tolist() == ["Left Foot Strike", "Right Foot Off"]
        np.testing.assert_allclose(s.markers["time"], [1.0, 1.3], atol=1e-6)
        # the analog channel no platform uses is kept as it is
        emg = s.streams["analog"]
        assert isinstance(emg, StreamData) and emg.channel_labels() == ["EMG1"] and emg.channel_units() == ["V"]
        np.testing.assert_allclose(emg.values()[:, 0], np.sin(2 * np.pi * 5 * s_true["t"]), atol=1e-6)
        assert any("forces checked in newtons" in t for t in s.events["text"])


def test_two_plates_two_devices_or_one_split_belt_device(tmp_path):
    src = write_c3d(tmp_path / "two.c3d", plates=2)
    res = import_file(str(src), str(tmp_path / "two.h5"))
    assert res.devices == ["force1", "force2"]
    res = import_file(str(src), str(tmp_path / "split.h5"), ImportOptions(split_belts=True))
    with read_session(res.path) as s:
        f = s.devices["force"]
        assert f.belts == "split" and f.channels[:3] == ["Fx_l", "Fy_l", "Fz_l"] and f.channels[-1] == "Tz_r"
        left, right = f.plates()
        # +y is left (facing +x, z up): the plate at y = 0 is the left belt, the one at y = -600 the right
        np.testing.assert_allclose(left.origin_mm, [1000, 0, 0])
        np.testing.assert_allclose(right.origin_mm, [1000, -600, 0])
        assert f.read_channels(["Fz_l"])["Fz_l"].max() > 1000 and f.read_channels(["Fz_r"])["Fz_r"].max() < 1e-3
    with pytest.raises(Exception, match="--split-belts needs two force plates"):
        import_file(str(write_c3d(tmp_path / "one.c3d")), str(tmp_path / "bad.h5"), ImportOptions(split_belts=True))


@pytest.mark.parametrize("sep, time", [("\t", "index"), (",", "s"), (" ", "s")])
def test_synthetic_text_exports(tmp_path, sep, time):
    g = Gait(rate_hz=500.0)
    src = write_text(tmp_path / "run.txt", g, sep=sep, time=time)
    opts = ImportOptions(rate_hz=500.0) if time == "index" else ImportOptions()
    res = import_file(str(src), str(tmp_path / "run.h5"), opts)
    assert res.rate_hz == 500.0 and res.axes == {"vertical": "z", "forward": "x"}
    with read_session(res.path) as s:
        f = s.devices["force"]
        assert f.channels == ["Fx", "Fy", "Fz", "COPx", "COPy", "Tz"]
        np.testing.assert_allclose(f.read_channels(["Fz"])["Fz"], g.signals()["Fz"], atol=1e-3)


def test_text_units_and_given_axes(tmp_path):
    g = Gait()
    s = g.signals()
    n = len(s["t"])
    # a lab whose z points down and whose runner faces -x; COP in metres, forces in kN
    cols = np.column_stack([np.arange(n) / g.rate_hz, -s["Fx"] / 1000, np.zeros(n), -s["Fz"] / 1000,
                            -s["COPx"] / 1000, s["COPy"] / 1000])
    src = tmp_path / "down.csv"
    np.savetxt(src, cols, delimiter=",", header="Time [s],Fx [kN],Fy [kN],Fz [kN],COPx (m),COPy (m)", comments="")
    res = import_file(str(src), str(tmp_path / "found.h5"))
    assert res.axes == {"vertical": "-z", "forward": "-x"}
    with read_session(res.path) as ss:
        f = ss.devices["force"]
        name, sign = f.channel("F", "vertical")
        np.testing.assert_allclose(sign * f.read_channels([name])[name], s["Fz"], atol=1e-2)
        np.testing.assert_allclose(f.read_channels(["COPx"])["COPx"], -s["COPx"], atol=1e-3)
    res = import_file(str(src), str(tmp_path / "given.h5"), ImportOptions(vertical="-z", forward="-x"))
    assert res.axes == {"vertical": "-z", "forward": "-x"}


def test_big_text_file_is_read_in_blocks(tmp_path, monkeypatch):
    from treadlab.acquisition import import_text

    g = Gait(seconds=20.0)
    src = write_text(tmp_path / "long.txt", g)
    calls = []
    real = import_text._blocks

    def counting(*a, **k):
        for block in real(*a, **k):
            calls.append(len(block[0]))
            yield block

    monkeypatch.setattr(import_text, "_blocks", counting)
    res = import_file(str(src), str(tmp_path / "long.h5"), ImportOptions(rate_hz=1000))
    assert res.n_samples == 20000 and len(calls) == 1  # default blocks of 2**18 rows
    src2 = write_text(tmp_path / "long2.txt", g)
    ftext = import_text.read_text(str(src2), 1000.0, block_rows=3000)
    rows = [len(next(iter(ftext.plates[0].first.values())))] + [len(b[0]["Fz"]) for b in ftext.rest]
    assert rows == [3000] * 6 + [2000]


# ---------------------------------------------------------------------------------------------- bad input


def _bad_c3d(tmp_path, what):
    p = tmp_path / f"{what}.c3d"
    if what == "no-platform":
        write_c3d(p, used=0)
    elif what == "type-7":
        write_c3d(p, plate_type=7)
    elif what == "damaged":
        good = write_c3d(tmp_path / "good.c3d").read_bytes()
        p.write_bytes(good[: len(good) // 3])
    elif what == "volts":
        write_c3d(p, volts=True)
    elif what == "not-c3d":
        p.write_bytes(b"\x00\x17" + bytes(range(256)) * 8)
    return p


BAD = [
    ("empty.txt", lambda p: p.write_text(""), [], "the file is empty"),
    ("blank-first-line.txt", lambda p: p.write_text("\n1\t2\t3\n"), [], "the first line is empty"),
    ("no-fy.txt", lambda p: p.write_text("Time\tFx\tFz\tCOPx\n1\t0\t700\t10\n"), [],
     r"names no Fy column \(it has Time Fx Fz COPx\)"),
    ("header-only.txt", lambda p: p.write_text("Time\tFx\tFy\tFz\n"), ["--rate-hz", "300"], "no data rows"),
    ("index-no-rate.txt", lambda p: p.write_text("Time\tFx\tFy\tFz\n1\t0\t0\t700\n2\t0\t0\t700\n"), [],
     "Time counts samples .* --rate-hz"),
    ("not-a-number.txt", lambda p: p.write_text("Time\tFx\tFy\tFz\n" + "1\t0\t0\t700\n" * 3 + "2\tx\t0\t700\n"),
     ["--rate-hz", "300"], "every value must be a number"),
    ("missing-row.csv", lambda p: p.write_text("Time,Fx,Fy,Fz\n" + "".join(
        f"{i / 100:.2f},0,0,700\n" for i in range(50) if i != 20)), [], "line 22: Time 0.21 where 0.2 was expected"),
    ("bad-unit.csv", lambda p: p.write_text("Time,Fx [lbf],Fy,Fz\n0,0,0,700\n"), [], "'Fx \\[lbf\\]' is in 'lbf'"),
    ("no-weight.txt", lambda p: p.write_text("Time\tFx\tFy\tFz\n" + "".join(f"{i}\t0\t0\t0\n" for i in range(1, 300))),
     ["--rate-hz", "100"], "neither the vertical axis nor the forward axis can be found"),
]


@pytest.mark.parametrize("name, make, extra, message", BAD, ids=[b[0] for b in BAD])
def test_bad_text_is_one_line_and_nothing_written(tmp_path, capsys, name, make, extra, message):
    src = tmp_path / name
    make(src)
    out = tmp_path / "out.h5"
    assert _lab(src, "--out", out, *extra) == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith("lab import: error: ") and len(err.splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err
    assert os.listdir(tmp_path) == [name]


@pytest.mark.parametrize("what, message", [
    ("no-platform", "has no force platform"),
    ("type-7", "force platform 1 has type 7; lab import reads platform types 1-4"),
    ("damaged", r"the C3D file is truncated \(54954 bytes; its header announces 600 frames"),
    ("not-c3d", "not a readable C3D file"),
    ("volts", r"reaches 1.72 N \(99th percentile\), no person's weight .* not in newtons"),
])
def test_bad_c3d_is_one_line_and_nothing_written(tmp_path, capsys, what, message):
    src = _bad_c3d(tmp_path, what)
    before = set(os.listdir(tmp_path))
    out = tmp_path / "out.h5"
    assert _lab(src, "--out", out) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and pytest.importorskip("re").search(message, err), err
    assert set(os.listdir(tmp_path)) == before


def test_bad_axes(tmp_path, capsys):
    src = write_c3d(tmp_path / "run.c3d")
    assert _lab(src, "--out", tmp_path / "a.h5", "--vertical", "w") == 4
    assert "--vertical must be x, y or z with an optional sign (e.g. '-x'), got 'w'" in capsys.readouterr().err
    assert _lab(src, "--out", tmp_path / "a.h5", "--vertical=-z") == 4
    assert "averages -699 N: with --vertical -z the runner would pull on the plate (--vertical z?)" in \
        capsys.readouterr().err
    assert _lab(src, "--out", tmp_path / "a.h5", "--vertical", "z", "--forward", "z") == 4
    assert "vertical and forward are the same axis" in capsys.readouterr().err
    # a plate nobody runs on with the belt: the vertical is found, the forward axis is not
    g = Gait(speed_mps=0.0, roll_mm=0.0)
    still = write_c3d(tmp_path / "still.c3d", g)
    assert _lab(still, "--out", tmp_path / "a.h5") == 4
    assert "the forward axis cannot be found from the data" in capsys.readouterr().err
    assert _lab(still, "--out", tmp_path / "a.h5", "--forward", "x") == 0
    assert sorted(os.listdir(tmp_path)) == ["a.h5", "run.c3d", "still.c3d"]


def test_existing_output_is_never_overwritten(tmp_path, capsys):
    src = write_c3d(tmp_path / "run.c3d")
    out = tmp_path / "run.h5"
    out.write_bytes(b"precious")
    assert _lab(src, "--out", out) == 5
    assert "exists already" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert _lab(src, "--out", tmp_path) == 5  # a folder: <stem>.h5 in it, which exists


def test_killed_import_leaves_no_output(tmp_path, monkeypatch):
    from treadlab.acquisition import importer

    src = write_c3d(tmp_path / "run.c3d")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(importer, "finalize", boom)
    with pytest.raises(KeyboardInterrupt):
        import_file(str(src), str(tmp_path / "run.h5"))
    assert sorted(os.listdir(tmp_path)) == ["run.c3d"]


def test_subprocess_exit_code_info_and_repair(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(DATA.parent.parent), os.environ.get("PYTHONPATH", "")])}
    src = write_c3d(tmp_path / "run.c3d", events=[(0.5, "Left", "Foot Strike")])
    bad = tmp_path / "empty.c3d"
    bad.write_bytes(b"")
    r = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "import", str(bad)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 4 and r.stderr.strip() == f"lab import: error: {bad}: the file is empty" and not r.stdout
    r = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "import", str(src)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run.h5"  # default: <stem>.h5 in the current folder
    r = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "info", str(out), "--json"], env=env,
                       capture_output=True, text=True, timeout=120)
    info = json.loads(r.stdout)
    assert info["devices"]["force"]["kind"] == "force" and info["markers"][0]["label"] == "Left Foot Strike"
    with h5py.File(out) as f:
        g = f[ff.DEVICES]["force"]
        for key in ("channels", "belts", "origin_mm", "size_mm", "axes", "source_file", "source_format"):
            assert key in g.attrs, key
        assert g.attrs["protocol"] == "import" and g[ff.RAW].dtype == np.float32
        for key in (ff.SEQ, ff.DEVICE_TIME, ff.TIME, ff.HOST_TIME, ff.GAPS, ff.CLOCK_SEGMENTS, ff.CLOCK_PINGS,
                    f"{ff.CALIBRATION}/{ff.CAL_UNITS}"):
            assert key in g, key
    # lab repair treats it as any finished session file (nothing to repair, the file untouched)
    before = out.read_bytes()
    r = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "repair", str(out)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and out.read_bytes() == before


def test_body_mass_far_from_the_force_is_a_warning_in_the_output_and_the_events(tmp_path, capsys):
    src = write_c3d(tmp_path / "run.c3d", Gait(mass_kg=70.0))
    assert _lab(src, "--out", tmp_path / "run.h5", "--body-mass", 90) == 0
    assert "WARNING: that is -21% from --body-mass 90 kg" in capsys.readouterr().out
    with read_session(tmp_path / "run.h5") as s:
        warn = s.events[s.events["level"] == 30]
        assert len(warn) == 1 and warn["source"].iloc[0] == "import" and "-21%" in warn["text"].iloc[0]
    assert _lab(src, "--out", tmp_path / "ok.h5", "--body-mass", 71) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_split_belt_text_export(tmp_path):
    g = Gait()
    s = g.signals()
    n = len(s["t"])
    # the synthetic runner's left steps land on the left belt, the right steps on the right one
    k = np.searchsorted(g.ics(), s["t"], side="right") - 1
    left = (k >= 0) & (k % 2 == 0)
    cols = {"Time": s["t"]}
    for b, m in (("_l", left), ("_r", ~left)):
        cols.update({f"Fx{b}": s["Fx"] * m, f"Fy{b}": np.zeros(n), f"Fz{b}": s["Fz"] * m,
                     f"COPx{b}": s["COPx"] * m, f"COPy{b}": s["COPy"] * m})
    src = tmp_path / "split.csv"
    np.savetxt(src, np.column_stack(list(cols.values())), delimiter=",", header=",".join(cols), comments="")
    res = import_file(str(src), str(tmp_path / "split.h5"))
    with read_session(res.path) as ss:
        f = ss.devices["force"]
        assert f.belts == "split" and f.channels == ["Fx_l", "Fy_l", "Fz_l", "COPx_l", "COPy_l", "Fx_r", "Fy_r",
                                                     "Fz_r", "COPx_r", "COPy_r"]
        left_plate, right_plate = f.plates()
        np.testing.assert_allclose(f.read_channels([left_plate.channels["Fz"]])["Fz_l"], s["Fz"] * left, atol=1e-3)
    bad = tmp_path / "half.csv"
    bad.write_text("Time,Fx_l,Fy_l,Fz_l,Fz\n0,0,0,700,700\n")
    with pytest.raises(Exception, match="some force columns name a belt"):
        import_file(str(bad), str(tmp_path / "half.h5"))
    bad.write_text("Time,Fx_l,Fy_l,Fz_l\n0,0,0,700\n")
    with pytest.raises(Exception, match="names no Fx_r, Fy_r, Fz_r column"):
        import_file(str(bad), str(tmp_path / "half.h5"))


def test_metadata_lines_above_the_header_are_skipped(tmp_path):
    g = Gait(rate_hz=500.0)
    plain = write_text(tmp_path / "plain.txt", g, time="s")
    src = tmp_path / "vendor.txt"
    src.write_text("Exported by TreadmillSoft 3.1\nSubject: P07\tDate: 2026-05-01\n\n" + plain.read_text())
    res = import_file(str(src), str(tmp_path / "vendor.h5"))
    with read_session(res.path) as s:
        np.testing.assert_allclose(s.devices["force"].read_channels(["Fz"])["Fz"], g.signals()["Fz"], atol=1e-3)
    lines = src.read_text().splitlines()
    del lines[3 + 1 + 100]  # a missing data row: the message names the file's own line number
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception, match="line 105: Time 0.202 where 0.2"):
        import_file(str(src), str(tmp_path / "bad.h5"))
