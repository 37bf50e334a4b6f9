"""The board ports' hardware-independent code (``firmware/boards/common``), built with gcc and run on the host
through the portable core against fake hardware (``firmware/host/board_harness.c``), and every board port
compile-checked against the stand-in SDK headers (``make -C firmware board-check``, ``firmware/boards/stubs``).

The fakes model what the ports' sequencing is for (a multiplexer that needs settling, a sample-and-hold that still
holds the previous channel, ghosting through floating rows), so a port that skipped a step would send wrong DATA.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from tests.firmware_support import FIRMWARE, build, tools_missing
from treadlab.drivers import protocol as p
from treadlab.drivers.line import parse_lines
from treadlab.kinds import imu

pytestmark = pytest.mark.skipif(bool(tools_missing("make", "gcc")), reason="the board tests need make and gcc")

COMMANDS = p.encode_message(p.IDENTIFY) + p.encode_message(p.GET_CALIBRATION) + p.encode_message(p.START)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """``board_harness``, built with gcc once for this module."""
    return build("board-harness", tmp_path_factory.mktemp("board-build")) / "board_harness"


def run(harness, *args: str, stdin: bytes = COMMANDS) -> bytes:
    out = subprocess.run([str(harness), *args], input=stdin, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


def stream(harness, *args: str):
    """INFO (dict), CALIBRATION (unit, gain, offset) and DATA (seq, t, values) the board sent after the commands."""
    msgs = p.split_frames(run(harness, *args))
    infos = [p.parse_info(b) for t, b in msgs if t == p.INFO]
    cals = [p.parse_calibration(b) for t, b in msgs if t == p.CALIBRATION]
    assert len(infos) == 1 and len(cals) == 1, [t for t, _ in msgs]
    info = infos[0]
    n = info["rows"] * info["cols"] if info["kind"] == "mat" else len(info.get("channels") or []) or info["sensels"]
    dt = np.dtype([("seq", "<u4"), ("t", "<u8"), ("values", "<u2" if info["dtype"] == "u16" else "<i2", (n,))])
    rec = np.frombuffer(b"".join(b for t, b in msgs if t == p.DATA), dtype=dt)
    return info, cals[0], rec["seq"].astype(np.int64), rec["t"].copy(), rec["values"].astype(np.int64)


def test_insole_mux_settles_discards_and_sends_channels_in_sensel_order(harness):
    info, cal, seq, t, values = stream(harness, "insole", "--samples", "40", "--side", "right")
    assert (info["kind"], info["side"], info["sensels"], info["layout"]) == ("insole", "right", 16, "insole16")
    assert info["dtype"] == "u16" and info["adc_bits"] == 12
    np.testing.assert_array_equal(seq, np.arange(40))
    np.testing.assert_array_equal(t, seq * 2000)  # 500 Hz on the 1 MHz clock, from t = 0
    ch = np.arange(16)
    truth = (seq[:, None] * 37 + ch[None, :] * 251 + 100) % 4096  # the fake mux's channel i = sensel i
    np.testing.assert_array_equal(values, truth)
    assert cal[0] == "N" and cal[1].shape == (16,)


def test_mat_scan_is_row_major_with_other_rows_held_low(harness):
    start_us = 2**32 - 25_000  # micros() wraps during the third sample period
    info, _cal, seq, t, values = stream(harness, "mat", "--samples", "6", "--start-us", str(start_us))
    assert (info["kind"], info["rows"], info["cols"], info["belt_axis"]) == ("mat", 16, 32, "rows")
    r, c = np.meshgrid(np.arange(16), np.arange(32), indexing="ij")
    truth = ((r * 32 + c).ravel()[None, :] * 7 + seq[:, None]) % 4096
    # ghosting (a floating row adds 50 counts) or a row left high (sums two rows) would break the equality
    np.testing.assert_array_equal(values, truth)
    # the 32-bit micros() extended to 64 bits: DATA t runs on past 2**32, on the 100 Hz schedule
    np.testing.assert_array_equal(t.astype(np.int64), start_us + seq * 10_000)
    assert t[-1] > 2**32


def mpu_dumps(rng, n: int) -> bytes:
    """n random 14-byte bursts as an MPU-6050 sends them from ACCEL_XOUT_H (big-endian i16 words)."""
    words = rng.integers(-32768, 32768, size=(n, 7)).astype(">i2")
    words[0] = [32767, -32768, 0, 1234, -1, 1, -32767]  # the extremes and the temperature word
    return words.tobytes()


@pytest.mark.parametrize("range_g, range_dps, placement", [(16, 2000, "pelvis"), (4, 500, "tibia_left"),
                                                           (2, 250, "trunk")])
def test_imu_decodes_the_register_dump_and_its_info_meets_the_imu_contract(harness, tmp_path, range_g, range_dps,
                                                                          placement):
    raw = mpu_dumps(np.random.default_rng(range_g), 64)
    (tmp_path / "dump.bin").write_bytes(raw)
    info, cal, seq, _t, values = stream(harness, "imu", "--samples", "64", "--regdump", str(tmp_path / "dump.bin"),
                                    "--placement", placement, "--range-g", str(range_g), "--range-dps",
                                    str(range_dps), "--fail-seq", "7")
    assert imu.validate_info(info, "board imu") == ("ax", "ay", "az", "gx", "gy", "gz")
    assert (info["kind"], info["placement"], info["range_g"], info["range_dps"]) == ("imu", placement, range_g,
                                                                                    range_dps)
    words = np.frombuffer(raw, ">i2").reshape(-1, 7).astype(np.int64)
    expected = words[seq % 64][:, [0, 1, 2, 4, 5, 6]]  # temperature dropped
    expected[seq == 7] = -32768  # the failed I2C read: visible, never a stale sample
    np.testing.assert_array_equal(values, expected)
    # the port's CALIBRATION is the contract's full-scale scaling (g and deg/s per count)
    gain, offset = imu.physical_scale(list(info["channels"]), info)
    assert cal[0] == imu.UNIT_IMU
    np.testing.assert_allclose(cal[1], gain, rtol=1e-6)
    np.testing.assert_array_equal(cal[2], offset)
    assert gain[0] * 32768 == range_g and gain[3] * 32768 == range_dps


@pytest.mark.parametrize("range_g, afs, range_dps, fs", [(2, 0, 250, 0), (4, 1, 500, 1), (8, 2, 1000, 2),
                                                         (16, 3, 2000, 3)])
def test_mpu6050_full_scale_registers_follow_the_datasheet(harness, range_g, afs, range_dps, fs):
    out = run(harness, "imu", "--print-config", "--range-g", str(range_g), "--range-dps", str(range_dps),
              stdin=b"")
    regs = dict(tuple(int(x, 16) for x in line.split()) for line in out.decode().splitlines())
    assert regs[0x1C] == afs << 3 and regs[0x1B] == fs << 3  # AFS_SEL / FS_SEL, bits 4:3
    assert regs[0x6B] & 0x40 == 0  # not asleep


def test_mpu6050_refuses_a_range_it_does_not_have(harness):
    out = subprocess.run([str(harness), "imu", "--range-g", "6"], input=b"", capture_output=True, timeout=60)
    assert out.returncode == 1 and b"no range 6 g" in out.stderr


@pytest.mark.parametrize("start_us", [0, 2**32 - 50_000, 2**32 * 1000 - 50_000],
                         ids=["power-up", "micros-wrap", "millis-wrap"])
def test_line_sketch_keeps_its_absolute_schedule_and_format_across_the_wraps(harness, start_us):
    step_us, steps, period_us = 337, 3000, 10_000
    out = run(harness, "line", "--start-us", str(start_us), "--step-us", str(step_us), "--steps", str(steps),
              "--period-us", str(period_us), stdin=b"")
    parsed = parse_lines(out, 6)
    assert parsed.bad_lines == 0 and parsed.comment_lines == 0
    # the twin: sample j falls due at start + j * period and is taken by the first loop() at or after it
    loops = start_us + step_us * np.arange(steps, dtype=np.int64)
    due = start_us + period_us * np.arange((loops[-1] - start_us) // period_us + 1, dtype=np.int64)
    taken = loops[np.searchsorted(loops, due)]
    np.testing.assert_array_equal(parsed.t, (taken // 1000) % 2**32)
    k = np.arange(len(due))[:, None]
    np.testing.assert_array_equal(parsed.values, (k * 13 + np.arange(6)[None, :] * 101) % 1024)


def test_board_check_compiles_every_port_against_the_stubs(tmp_path):
    out = subprocess.run(["make", "-C", str(FIRMWARE), "board-check", f"BUILD={tmp_path}"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    ports = ["rp2040_insole_mux16", "rp2040_imu_mpu6050"]
    if shutil.which("g++"):
        ports += ["teensy4_mat", "fsr_line_insole"]
    else:
        assert "g++ not installed" in out.stdout
    for port in ports:
        assert f"board-check {port}" in out.stdout
    if shutil.which("arm-none-eabi-gcc"):
        assert "cortex-m0plus" in out.stdout and "cortex-m7" in out.stdout
        assert (tmp_path / "board-check" / "rp2040_imu_mpu6050-main.o").stat().st_size > 0


def test_board_check_fails_on_a_misused_sdk_call(tmp_path):
    """A copy of the firmware tree whose IMU port calls i2c_read_blocking without its nostop argument."""
    tree = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, tree, ignore=shutil.ignore_patterns("build"))
    main = tree / "boards" / "rp2040_imu_mpu6050" / "main.c"
    text = main.read_text()
    assert "raw, TL_MPU_BURST_BYTES, false)" in text
    main.write_text(text.replace("raw, TL_MPU_BURST_BYTES, false)", "raw, TL_MPU_BURST_BYTES)"))
    out = subprocess.run(["make", "-C", str(tree), "board-check", f"BUILD={tmp_path / 'b'}"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode != 0 and "i2c_read_blocking" in out.stderr
