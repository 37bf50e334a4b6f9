"""Clock sanity: the host's estimate of a device's true tick rate, and its warning when the rate is off INFO
``clock_hz`` by more than 0.1 %: known answers on synthetic pairs (late, jittery, stalled host times; ticks of
1 us and of 1 ms; an emulator running 7.5 times too fast), then ``lab devices`` and ``lab record`` against
reference-firmware devices (``refdev --clock-error-ppm``): +2000 ppm warns, +50 ppm does not."""

from __future__ import annotations

import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tests.firmware_support import env_with_tree, host_build, insole_values, mat_values, refdevs
from treadlab.acquisition.clockcheck import TOLERANCE_PPM, TickRateCheck, estimate_tick_rate


@pytest.fixture(scope="session")
def firmware_build(tmp_path_factory):
    """``refdev``, built with gcc once per session."""
    return host_build(tmp_path_factory)


def _pairs(ppm: float, seconds: float, rate_hz: float, clock_hz: float, seed: int, stalls: bool = True,
           grid_s: float = 0.0):
    """Samples taken on a device clock ``ppm`` fast and received by the host late (jitter, stalls).

    ``grid_s`` 0: each read returns when a sample arrives (a pty, a UART); otherwise host times fall on a grid
    of that step (USB frames, a reader that pauses between reads).
    """
    rng = np.random.default_rng(seed)
    k = np.arange(int(seconds * rate_hz * (1 + ppm * 1e-6)))
    ticks = (k * clock_hz // rate_hz + 123_456).astype(np.uint64)  # the device's own schedule
    true_s = (ticks - ticks[0]).astype(float) / (clock_hz * (1 + ppm * 1e-6))  # in host seconds
    arrive = true_s + rng.exponential(0.0002, len(k))
    if stalls:
        for start in rng.uniform(0, seconds, int(seconds)):  # one 20-80 ms stall a second
            hit = (arrive > start) & (arrive < start + rng.uniform(0.02, 0.08))
            arrive[hit] += rng.uniform(0.02, 0.08)
    if grid_s:
        arrive = (np.floor(arrive / grid_s) + 1) * grid_s + rng.exponential(0.0001, len(k))
    return ticks, 17.0 + arrive


@pytest.mark.parametrize("ppm", [0.0, 50.0, -50.0, 400.0, 2000.0, -2000.0, 4.1e4, 6.5e6])
@pytest.mark.parametrize("seconds", [1.0, 10.0])
@pytest.mark.parametrize("grid_s", [0.0, 0.001])
def test_the_true_tick_rate_is_recovered_within_its_uncertainty(ppm, seconds, grid_s):
    ticks, host_s = _pairs(ppm, seconds, 500.0, 1e6, seed=int(abs(ppm)) + int(seconds), grid_s=grid_s)
    est = estimate_tick_rate(ticks, host_s, 1e6)
    assert est is not None
    err_ppm = abs(est.error_ppm - ppm * (1 + est.error_ppm * 1e-6) / (1 + est.error_ppm * 1e-6))
    assert err_ppm <= est.uncertainty_ppm + 1e-6 * abs(ppm), est  # honest about what it knows
    if not grid_s:
        assert est.uncertainty_ppm < (1600 if seconds < 2 else 160) * max(1.0, est.measured_hz / 1e6)
    if seconds > 2:
        assert est.off == (abs(ppm) > 1500), est  # decided
    else:
        assert not est.off or abs(ppm) > 1500  # never a false alarm


def test_millisecond_ticks_of_a_line_device_are_not_a_false_alarm():
    ticks, host_s = _pairs(30.0, 1.0, 100.0, 1000.0, seed=4, stalls=False)
    est = estimate_tick_rate(ticks, host_s, 1000.0)
    assert est is not None and not est.off
    assert est.uncertainty_ppm > 1000  # one tick in a second is a 0.1 % question: not decided yet
    ticks, host_s = _pairs(3000.0, 30.0, 100.0, 1000.0, seed=5, stalls=False)
    est = estimate_tick_rate(ticks, host_s, 1000.0)
    assert est.off and abs(est.error_ppm - 3000) < 150


def test_nothing_is_claimed_from_too_short_a_span():
    ticks, host_s = _pairs(5000.0, 0.3, 500.0, 1e6, seed=6)
    assert estimate_tick_rate(ticks, host_s, 1e6) is None


def test_the_online_check_warns_once_and_keeps_its_memory_bounded():
    ticks, host_s = _pairs(2500.0, 60.0, 200.0, 1e6, seed=7)
    check = TickRateCheck(1e6, max_points=100)
    warnings = [w for a in range(0, len(ticks), 7) if (w := check.update(ticks[a:a + 7], host_s[a:a + 7]))]
    assert len(warnings) == 1 and "more than 0.1% off" in warnings[0] and "+2" in warnings[0]
    assert check.n_points <= 100 and check.window_s > 0.05
    assert abs(check.rate.error_ppm - 2500) < 30
    ok = TickRateCheck(1e6)
    t2, h2 = _pairs(-80.0, 20.0, 200.0, 1e6, seed=8)
    assert not any(ok.update(t2[a:a + 5], h2[a:a + 5]) for a in range(0, len(t2), 5))
    assert ok.warning is None and abs(ok.rate.error_ppm + 80) < 30 < TOLERANCE_PPM


def test_a_device_clock_reset_starts_the_check_again():
    ticks, host_s = _pairs(3000.0, 20.0, 200.0, 1e6, seed=9)
    check = TickRateCheck(1e6, 200.0)
    half = len(ticks) // 2
    reset = ticks - ticks[half] + 5  # the device rebooted halfway: its clock starts again near 0
    t = np.r_[ticks[:half], reset[half:]]
    for a in range(0, len(t), 6):
        check.update(t[a:a + 6], host_s[a:a + 6])
    assert check.rate.span_s < 10.5 and abs(check.rate.error_ppm - 3000) < 100
    assert check.warning is not None


def _rig(folder, devices: dict[str, tuple[str, list[str]]]) -> str:
    text = "".join(f'[[device]]\nname = "{name}"\nport = "{folder / name}"\nkind = "{kind}"\n\n'
                   for name, (kind, _) in devices.items())
    path = folder / "rig.toml"
    path.write_text(text)
    return str(path)


def test_lab_devices_warns_about_a_clock_2000_ppm_fast_and_not_50(firmware_build, tmp_path):
    specs = {"fast": ("insole", ["--clock-error-ppm", "2000", "--rate", "500"]),
             "good": ("insole", ["--clock-error-ppm", "50", "--rate", "500", "--side", "right"])}
    with refdevs(firmware_build / "refdev", tmp_path, {k: ["--kind", v[0], *v[1]] for k, v in specs.items()}):
        out = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "devices", "--rig", _rig(tmp_path, specs),
                              "--seconds", "3"], capture_output=True, text=True, timeout=120, env=env_with_tree())
    assert out.returncode == 0, out.stdout + out.stderr
    blocks = out.stdout.split("\n" + "good (")
    fast, good = blocks[0], blocks[1]
    assert "WARNING: device clock ticks at 1.00" in fast and "more than 0.1% off" in fast
    assert 1700 < float(re.search(r"([-+]\d+) ppm \(", fast).group(1)) < 2300
    assert "WARNING" not in good and "within 0.1%" in good
    assert out.stdout.strip().endswith("all 2 devices answered and streamed")


def test_lab_record_warns_in_the_status_line_and_in_events(firmware_build, tmp_path):
    specs = {"insole_left": ("insole", ["--clock-error-ppm", "2000", "--rate", "200"]),
             "mat": ("mat", ["--clock-error-ppm", "50", "--rows", "16", "--cols", "24", "--rate", "100"])}
    out_file = tmp_path / "s.h5"
    with refdevs(firmware_build / "refdev", tmp_path, {k: ["--kind", v[0], *v[1]] for k, v in specs.items()}):
        out = subprocess.run([sys.executable, "-m", "treadlab.lab.cli", "record", "--rig", _rig(tmp_path, specs),
                              "--duration", "11", "--out", str(out_file)], capture_output=True, text=True,
                             timeout=120, env=env_with_tree(), stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    status = [ln for ln in out.stderr.splitlines() if ln.strip().startswith(("insole_left", "mat "))]
    off = [ln for ln in status if "insole_left" in ln and "CLOCK OFF" in ln]
    assert off, out.stderr
    assert 1700 < float(re.search(r"([-+]\d+) ppm \(", off[-1]).group(1)) < 2300
    assert not any("CLOCK OFF" in ln for ln in status if ln.strip().startswith("mat"))
    with h5py.File(out_file, "r") as f:
        src = [s.decode() if isinstance(s, bytes) else s for s in f["events/source"][:]]
        text = [s.decode() if isinstance(s, bytes) else s for s in f["events/text"][:]]
        level = f["events/level"][:]
        clock = [(s, lv) for s, t, lv in zip(src, text, level) if t.startswith("clock check")]
        assert clock == [("insole_left", 30)]
        for name, check in (("insole_left", lambda t, v: insole_values(t, 1_000_000, 16, 12)),
                            ("mat", lambda t, v: mat_values(t, 1_000_000, 16, 24, 12))):
            g = f[f"devices/{name}"]
            seq, t, raw = g["seq"][:], g["device_time"][:], g["raw"][:]
            assert len(seq) > 400 and np.all(np.diff(seq.astype(np.int64)) == 1)
            assert np.array_equal(raw.reshape(len(seq), *raw.shape[1:]), check(t, raw).reshape(raw.shape))
