"""The reference firmware on emulated microcontrollers, through the real driver path.

* ATmega328P in simavr (``firmware/sim/avr_pty.c`` bridges USART0 to a pty and drives ADC0..5 from a waveform
  file): the DATA values are the waveform, read by the firmware's own ADC scan, within 1 LSB.
* Cortex-M3 LM3S6965 in QEMU (``-M lm3s6965evb -serial pty``): a mat and an IMU build, every value checked against
  the Python twin of the synthetic signal.

Built with Debian's gcc-avr/avr-libc/libsimavr-dev and gcc-arm-none-eabi when they are installed (``.ci/run``
installs them when it can); otherwise the tests skip and say which tool is missing. Emulators do not keep real
time, so timing is judged by device ticks only.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from tests.firmware_support import PtyProcess, build, imu_values, insole_values, mat_values, tools_missing
from treadlab.acquisition.clockcheck import estimate_tick_rate
from treadlab.drivers import DeviceConfig, open_device
from treadlab.drivers import protocol as p
from treadlab.errors import CommandRejectedError

AVR_CLOCK_HZ = 2_000_000
CM3_CLOCK_HZ = 12_000_000
WAVE_STEP_S = 0.001
SCAN_S = 0.0015  # six conversions
AVCC_MV = 5000


@pytest.fixture(scope="module")
def avr_build(tmp_path_factory) -> Path:
    missing = tools_missing("avr-gcc", "avr-objcopy", "gcc")
    if not Path("/usr/include/simavr/sim_avr.h").exists():
        missing.append("libsimavr-dev")
    if missing:
        pytest.skip(f"AVR toolchain or simavr not installed ({', '.join(missing)}; apt-get install gcc-avr "
                    "avr-libc libsimavr-dev libelf-dev)")
    out = tmp_path_factory.mktemp("fw-avr")
    build("avr", out)
    return build("simavr-harness", out)


@pytest.fixture(scope="module")
def cm3_build(tmp_path_factory) -> Path:
    missing = tools_missing("arm-none-eabi-gcc", "qemu-system-arm")
    if missing:
        pytest.skip(f"Cortex-M toolchain or QEMU not installed ({', '.join(missing)}; apt-get install "
                    "gcc-arm-none-eabi qemu-system-arm)")
    return build("cm3", tmp_path_factory.mktemp("fw-cm3"))


def _waveform_mv(rows: int = 1000, hold: int = 20) -> np.ndarray:
    """A stride of six FSR voltages, 1 ms per row: the synthetic insole's stance (heel to toe) in millivolts,
    each value held for ``hold`` rows (a gait recording replayed at 50 Hz)."""
    t = (np.arange(rows) // hold * hold).astype(np.uint64) * np.uint64(1000)  # ticks of a 1 MHz clock
    counts = insole_values(t, 1_000_000, 6, 12)
    return (counts * 4500 // 4095 + 150).astype(np.int64)  # 150-4650 mV: never a flat zero


def _collect(dev, min_samples: int, timeout_s: float = 30.0):
    """Read until ``min_samples``; returns (seq, t, values); host receive times (s) go to ``dev.host_s``."""
    seqs, ts, vals, hosts = [], [], [], []
    n, end = 0, time.monotonic() + timeout_s
    while n < min_samples and time.monotonic() < end:
        b = dev.read(0.05)
        if b is not None:
            seqs.append(b.seq)
            ts.append(b.device_time)
            vals.append(b.values)
            hosts.append(b.host_time_ns / 1e9)
            n += len(b)
    assert n >= min_samples, f"only {n} samples in {timeout_s} s"
    dev.host_s = np.concatenate(hosts)
    return np.concatenate(seqs), np.concatenate(ts), np.concatenate(vals)


def test_atmega328p_in_simavr_scans_its_adc_pins(avr_build, tmp_path):
    wave = _waveform_mv()
    np.savetxt(tmp_path / "wave.csv", wave, fmt="%d", delimiter=",")
    argv = [avr_build / "avr_pty", "--firmware", avr_build / "avr" / "insole.elf", "--link", tmp_path / "avr",
            "--waveform", tmp_path / "wave.csv", "--step-us", "1000"]
    with PtyProcess(argv, tmp_path / "avr") as emu:
        dev = open_device(DeviceConfig(name="avr", port=str(emu.link), kind="insole", sensels=6))
        try:
            info = dev.identify(timeout_s=5.0)
            assert (info["clock_hz"], info["adc_bits"], info["sensels"]) == (AVR_CLOCK_HZ, 10, 6)
            with pytest.raises(CommandRejectedError, match="1000 Hz"):
                dev.set_rate(1000)  # a 6-channel scan takes 0.63 ms: not offered
            dev.set_rate(200)
            assert dev.ping(timeout_s=5.0).device_ticks > 0
            wall0 = time.monotonic()
            dev.start()
            seq, t, values = _collect(dev, 500)
            dev.stop(timeout_s=5.0)
            wall_s = time.monotonic() - wall0
            again = p.parse_info(dev._command(p.IDENTIFY, b"", p.INFO, 5.0))
            logs = dev.drain_logs()
        finally:
            dev.close()
        assert emu.stop() == 0
    # The harness holds the MCU while the host does not read, so the firmware never falls behind (no skip) and
    # no byte is lost between the UART and the pty (no gap), however loaded the host is.
    assert again["skipped_samples"] == 0, logs
    assert np.all(np.diff(seq.astype(np.int64)) == 1), f"sequence gap; device logs {logs}"
    assert np.all(np.diff(t.astype(np.int64)) == AVR_CLOCK_HZ // 200)  # the schedule, in device ticks
    assert dev.stats.errors == 0
    # The capture converts the six pins one after another from t on (about 0.2 ms each in simavr): each value is
    # within 1 LSB of what its pin held during [t, t + SCAN_S]; the waveform steps every 20 ms, so for most
    # samples that is a single value, and only a sample whose scan straddles a step may read either side of it.
    sim_s = t.astype(np.float64) / AVR_CLOCK_HZ
    first = np.floor(sim_s / WAVE_STEP_S).astype(np.int64) % len(wave)
    last = np.floor((sim_s + SCAN_S) / WAVE_STEP_S).astype(np.int64) % len(wave)
    expect = wave * 1023 // AVCC_MV  # simavr's converter: mV * 1023 / AVcc
    lo = np.minimum(expect[first], expect[last])
    hi = np.maximum(expect[first], expect[last])
    bad = (values < lo - 1) | (values > hi + 1)
    assert not bad.any(), f"{int(bad.sum())} of {bad.size} values off the waveform by more than 1 LSB"
    one_step = expect[first] == expect[last]
    assert one_step.mean() > 0.8  # the check is tight: most scans fall within one step of the waveform
    assert values.max() > 900 and values.min() < 60  # the whole stance was seen
    print(f"simavr: {len(seq)} samples over {(int(t[-1]) - int(t[0])) / AVR_CLOCK_HZ:.2f} s of device time "
          f"in {wall_s:.2f} s of wall time; host clock check: {_verdict(t, dev.host_s, AVR_CLOCK_HZ)}")


def _verdict(t, host_s, clock_hz) -> str:
    """What the host's clock check makes of an emulated device (printed: emulators do not keep real time)."""
    est = estimate_tick_rate(t, host_s, clock_hz)
    return "span too short" if est is None else est.describe()


def test_atmega328p_in_simavr_survives_junk(avr_build, tmp_path):
    argv = [avr_build / "avr_pty", "--firmware", avr_build / "avr" / "insole.elf", "--link", tmp_path / "avr"]
    rng = np.random.default_rng(2)
    with PtyProcess(argv, tmp_path / "avr") as emu:
        dev = open_device(DeviceConfig(name="avr", port=str(emu.link)))
        try:
            dev.identify(timeout_s=5.0)
            for _ in range(10):
                dev.port.write(rng.integers(0, 256, 100, dtype=np.uint8).tobytes() + b"\x00")
                assert dev.ping(timeout_s=5.0).device_ticks > 0
        finally:
            dev.close()
        assert emu.stop() == 0


def _qemu(elf: Path) -> list:
    """QEMU with instruction counting: the virtual clock follows the emulated CPU, so a CPU stalled on the pty
    (QEMU writes the UART a byte at a time) does not make the firmware late and skip samples."""
    return ["qemu-system-arm", "-M", "lm3s6965evb", "-display", "none", "-monitor", "none", "-serial", "pty",
            "-icount", "shift=4,sleep=on",
            "-kernel", elf]


def test_cortex_m3_mat_in_qemu(cm3_build, tmp_path):
    with PtyProcess(_qemu(cm3_build / "cm3" / "mat.elf"), tmp_path / "mat") as emu:
        dev = open_device(DeviceConfig(name="cm3", port=str(emu.link), kind="mat"))
        try:
            info = dev.identify(timeout_s=5.0)
            assert info["clock_hz"] == CM3_CLOCK_HZ and dev.shape == (16, 24)
            assert dev.get_calibration().unit == "kPa"
            dev.set_rate(200)
            assert dev.info["rate_hz"] == 200
            wall0 = time.monotonic()
            dev.start()
            seq, t, values = _collect(dev, 300)
            dev.stop(timeout_s=5.0)
            wall_s = time.monotonic() - wall0
            again = p.parse_info(dev._command(p.IDENTIFY, b"", p.INFO, 5.0))
        finally:
            dev.close()
        assert emu.stop() == 0
    assert again["rate_hz"] == 200 and again["skipped_samples"] == 0
    assert np.all(np.diff(seq.astype(np.int64)) == 1)
    assert np.all(np.diff(t.astype(np.int64)) == CM3_CLOCK_HZ // 200)
    assert np.array_equal(values.reshape(-1, 16, 24), mat_values(t, CM3_CLOCK_HZ, 16, 24, 12))
    print(f"qemu: {len(seq)} samples over {(int(t[-1]) - int(t[0])) / CM3_CLOCK_HZ:.2f} s of device time "
          f"in {wall_s:.2f} s of wall time; host clock check: {_verdict(t, dev.host_s, CM3_CLOCK_HZ)}")


def test_cortex_m3_imu_in_qemu(cm3_build, tmp_path):
    channels = ["ax", "ay", "az", "gx", "gy", "gz"]
    with PtyProcess(_qemu(cm3_build / "cm3" / "imu.elf"), tmp_path / "imu") as emu:
        port = serial.Serial(str(emu.link), timeout=0.05)
        dec = p.FrameDecoder()
        try:
            info = p.parse_info(_ask(port, dec, p.IDENTIFY, b"", p.INFO))
            _ask(port, dec, p.SET_RATE, struct.pack("<H", 1000), p.ACK)
            _ask(port, dec, p.START, b"", p.ACK)
            raws: list[bytes] = []
            end = time.monotonic() + 20.0
            while len(raws) < 1000 and time.monotonic() < end:
                raws += dec.feed(port.read(port.in_waiting or 1))[0]
            _ask(port, dec, p.STOP, b"", p.ACK)
        finally:
            port.close()
        assert emu.stop() == 0
    assert info["kind"] == "imu" and info["channels"] == channels and info["placement"] == "pelvis"
    assert "range_ut" not in info  # no magnetometer channel
    rec = np.frombuffer(b"".join(raws), np.dtype([("type", "u1"), ("seq", "<u4"), ("t", "<u8"),
                                                   ("v", "<i2", (6,)), ("crc", "<u4")]))
    assert len(rec) >= 1000 and np.all(np.diff(rec["seq"].astype(np.int64)) == 1)
    assert np.all(np.diff(rec["t"].astype(np.int64)) == CM3_CLOCK_HZ // 1000)
    assert np.array_equal(rec["v"], imu_values(rec["t"], CM3_CLOCK_HZ, channels))


def _ask(port, dec, command, body, answer, tries: int = 5):
    """Send a command and wait for its answer; resent every second (QEMU drops bytes until it sees the pty open)."""
    for _ in range(tries):
        port.write(b"\x00" + p.encode_message(command, body))
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            for msg_type, reply in dec.feed(port.read(port.in_waiting or 1))[1]:
                if msg_type == answer:
                    return reply
    raise AssertionError(f"no {p.describe(answer)} to {p.describe(command)}")
