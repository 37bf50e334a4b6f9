"""The Arduino line-protocol sketch (``firmware/arduino/fsr_line_insole``), built with Debian's avr-gcc and
arduino-core-avr (no IDE, no network) and run in simavr with a waveform on its analog pins, read by the real
line-protocol driver: well-formed lines, monotonic time, the waveform's values within 1 LSB. Skips with the
reason when the toolchain, simavr or the Arduino core is missing."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.firmware_support import PtyProcess, build, tools_missing
from tests.test_firmware_targets import AVCC_MV, _waveform_mv
from treadlab.drivers import DeviceConfig, open_device

ARDUINO_CORE = Path("/usr/share/arduino/hardware/arduino/avr/cores/arduino")


@pytest.fixture(scope="module")
def sketch_build(tmp_path_factory) -> Path:
    missing = tools_missing("avr-gcc", "avr-g++", "avr-objcopy", "gcc")
    if not Path("/usr/include/simavr/sim_avr.h").exists():
        missing.append("libsimavr-dev")
    if not ARDUINO_CORE.is_dir():
        missing.append("arduino-core-avr")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install gcc-avr avr-libc arduino-core-avr "
                    "libsimavr-dev libelf-dev)")
    out = tmp_path_factory.mktemp("fw-arduino")
    build("arduino", out)
    return build("simavr-harness", out)


def test_the_line_sketch_streams_its_analog_pins_in_simavr(sketch_build, tmp_path):
    wave = _waveform_mv()
    np.savetxt(tmp_path / "wave.csv", wave, fmt="%d", delimiter=",")
    argv = [sketch_build / "avr_pty", "--firmware", sketch_build / "arduino" / "fsr_line_insole.elf",
            "--link", tmp_path / "uno", "--waveform", tmp_path / "wave.csv"]
    cfg = DeviceConfig(name="uno", port=str(tmp_path / "uno"), protocol="line", baudrate=115200, side="left",
                       sensels=6, rate_hz=100, time_unit="ms")
    with PtyProcess(argv, tmp_path / "uno") as emu:
        dev = open_device(cfg)
        try:
            dev.identify()
            dev.start()
            ts, vals = [], []
            end = time.monotonic() + 30.0
            while sum(map(len, ts)) < 300 and time.monotonic() < end:
                b = dev.read(0.05)
                if b is not None:
                    ts.append(b.device_time)
                    vals.append(b.values)
            stats = dev.stats
        finally:
            dev.close()
        assert emu.stop() == 0
    t_ms = np.concatenate(ts).astype(np.int64)
    values = np.concatenate(vals)
    assert len(t_ms) >= 300
    assert stats.bad_lines <= 1  # at most the partial line the host opened in the middle of
    steps = np.diff(t_ms)
    assert np.all((steps >= 9) & (steps <= 11)) and abs(steps.mean() - 10) < 0.05  # 100 Hz on millis()
    assert np.array_equal(values, np.round(values))
    # millis() is 1 ms coarse and the six conversions take ~1.5 ms: each value is within 1 LSB of what its pin
    # held during [t - 1 ms, t + 2.5 ms] (the waveform steps every 20 ms).
    expect = wave * 1023 // AVCC_MV
    first = (t_ms - 1) % len(wave)
    last = (t_ms + 3) % len(wave)
    lo = np.minimum(expect[first], expect[last])
    hi = np.maximum(expect[first], expect[last])
    bad = (values < lo - 1) | (values > hi + 1)
    assert not bad.any(), f"{int(bad.sum())} of {bad.size} values off the waveform by more than 1 LSB"
    assert values.max() > 900
