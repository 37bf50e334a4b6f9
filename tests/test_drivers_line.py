"""Line protocol: the vectorised parser on awkward input, and LineDevice through a real pseudo-terminal."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.fake_device import LineSource, PtyFake
from treadlab.drivers import DeviceConfig, LineDevice, open_device
from treadlab.drivers.line import parse_lines
from treadlab.errors import CommandRejectedError, ConfigError, DeviceMismatchError, DeviceTimeoutError

LAYOUT8 = {"foot_length_mm": 260.0, "positions_mm": [[0.0, 20.0 * i] for i in range(8)], "areas_mm2": [300.0] * 8}


def _cfg(path: str, **kw) -> DeviceConfig:
    args = {"name": "insole_right", "port": path, "protocol": "line", "side": "right", "sensels": 8,
            "rate_hz": 200, "time_unit": "ms", "layout": LAYOUT8}
    args.update(kw)
    return DeviceConfig(**args)


def test_parser_counts_bad_lines_and_keeps_good_ones():
    text = (b"# header comment\n"
            b"10,1,2,3\n"
            b"20,1.5,-2.25,3e2\r\n"
            b"\r\n"
            b"30,1,2\n"               # wrong field count
            b"40,1,,3\n"              # empty field
            b"50,1,x,3\n"             # bad character
            b"60,1.2.3,2,3\n"         # does not parse (slow path)
            b"70.5,1,2,3\n"           # time not an integer
            b",1,2,3\n"               # empty time
            b"-80,1,2,3\n"            # negative time
            b" 90 , 4 , 5 , 6 \n")    # spaces are fine
    res = parse_lines(text, 3)
    assert res.t.tolist() == [10, 20, 90] and res.t.dtype == np.int64
    assert res.values.dtype == np.float32
    assert np.array_equal(res.values, np.array([[1, 2, 3], [1.5, -2.25, 300], [4, 5, 6]], np.float32))
    assert res.comment_lines == 1 and res.bad_lines == 7 and res.wrong_fields == 3


def test_parser_bulk_matches_a_reference_on_many_lines():
    rng = np.random.default_rng(4)
    vals = np.round(rng.uniform(-100, 1000, size=(5000, 16)), 3)
    t = np.arange(5000) * 2
    rows = [f"{ti}," + ",".join(f"{v:.3f}" for v in row) for ti, row in zip(t, vals)]
    text = ("\r\n".join(rows) + "\r\n").encode()
    res = parse_lines(text, 16)
    assert res.bad_lines == 0 and np.array_equal(res.t, t)
    assert np.array_equal(res.values, vals.astype(np.float32))


def test_partial_lines_across_reads_through_a_pty():
    src = LineSource(n=8, rate_hz=200, crlf=True)
    with PtyFake(line_source=src) as fake, open_device(_cfg(fake.path)) as dev:
        assert isinstance(dev, LineDevice)
        info = dev.identify()
        assert info["protocol"] == "line" and info["clock_hz"] == 1000 and info["sensels"] == 8
        assert dev.side == "right" and dev.layout["foot_length_mm"] == 260.0
        assert dev.layout["positions_mm"].shape == (8, 2)
        dev.start()
        batches, n = [], 0
        deadline = time.monotonic() + 5
        while n < 150 and time.monotonic() < deadline:
            b = dev.read(0.05)
            if b is not None:
                batches.append(b)
                n += len(b)
        seq = np.concatenate([b.seq for b in batches])
        t = np.concatenate([b.device_time for b in batches]).astype(np.int64)
        vals = np.concatenate([b.values for b in batches])
        assert np.array_equal(seq, np.arange(len(seq)))  # synthesised counter from START
        i = t * 200 // 1000  # the source's sample index, from its time column
        assert np.all(np.diff(i) == 1)
        expected = (i[:, None] + np.arange(8)[None, :] / 4).astype(np.float32)
        assert vals.dtype == np.float32 and np.array_equal(vals, expected)
        assert dev.stats.bad_lines == 0 and dev.stats.seq_gaps == 0


def test_odd_lines_are_counted_never_fatal():
    src = LineSource(n=8, rate_hz=500, odd_every=10)
    with PtyFake(line_source=src) as fake, open_device(_cfg(fake.path, rate_hz=500)) as dev:
        dev.identify()
        dev.start()
        n = 0
        deadline = time.monotonic() + 5
        while n < 200 and time.monotonic() < deadline:
            b = dev.read(0.05)
            n += 0 if b is None else len(b)
        assert n >= 200
        assert dev.stats.bad_lines >= n // 10 - 2


def test_wrong_sensel_count_is_a_mismatch():
    with PtyFake(line_source=LineSource(n=9)) as fake, open_device(_cfg(fake.path)) as dev:
        with pytest.raises(DeviceMismatchError, match="insole_right: .* sends 9 values per line, .* sensels = 8"):
            dev.identify(timeout_s=1.0)


def test_silent_line_device_times_out():
    with PtyFake(line_source=lambda now: b"") as fake, open_device(_cfg(fake.path)) as dev:
        with pytest.raises(DeviceTimeoutError, match="nothing answered"):
            dev.identify(timeout_s=0.3)


def test_rig_supplies_calibration_rate_and_commands_are_refused():
    cal = {"unit": "N", "gain": [2.0] * 8, "offset": 1.5}
    with PtyFake(line_source=LineSource(n=8)) as fake, open_device(_cfg(fake.path, calibration=cal)) as dev:
        c = dev.get_calibration()
        assert c.unit == "N" and np.array_equal(c.gain, np.full(8, 2, np.float32))
        assert np.array_equal(c.offset, np.full(8, 1.5, np.float32))
        dev.set_rate(200)
        with pytest.raises(CommandRejectedError, match="take no commands"):
            dev.set_rate(100)
        with pytest.raises(CommandRejectedError, match="do not answer PING"):
            dev.ping()
        assert dev.send_ping() is None and dev.drain_pongs() == []


def test_line_device_without_sensels_is_a_config_error():
    with PtyFake(line_source=LineSource(n=8)) as fake:
        with pytest.raises(ConfigError, match="need 'sensels'"):
            open_device(_cfg(fake.path, sensels=None))


def test_simulated_line_insole_crlf_decimals_and_corrupted_lines(tmp_path):
    from treadlab.drivers.sim.device import FaultParams, SimDeviceSpec
    from treadlab.drivers.sim.rig import SimulatedRig
    from treadlab.lab.rig import load_rig

    spec = SimDeviceSpec("insole_right", protocol="line", side="right", layout="insole16", rate_hz=200,
                         rates_hz=[200], time_unit="ms", decimals=2, line_ending="\r\n",
                         faults=FaultParams(corrupt_rate=0.05))
    with SimulatedRig([spec], tmp_path / "sim") as sim:
        cfg = load_rig(sim.write_rig(tmp_path / "rig.toml")).device("insole_right")
        with open_device(cfg) as dev:
            info = dev.identify()
            assert info["protocol"] == "line" and info["clock_hz"] == 1000 and dev.layout["name"] == "insole16"
            dev.start()
            bad_at_start = dev.stats.bad_lines
            batches, n = [], 0
            deadline = time.monotonic() + 5
            while n < 300 and time.monotonic() < deadline:
                b = dev.read(0.05)
                if b is not None:
                    batches.append(b)
                    n += len(b)
            bad = dev.stats.bad_lines - bad_at_start
    t = np.concatenate([b.device_time for b in batches]).astype(np.int64)
    vals = np.concatenate([b.values for b in batches])
    assert n >= 300 and vals.dtype == np.float32 and vals.shape[1] == 16
    assert np.any(vals != np.round(vals))  # decimals came through
    steps = np.round(np.diff(t) / 5.0).astype(int)  # 200 Hz: one line every 5 ms
    assert np.all(steps >= 1)
    missing = int(np.sum(steps - 1))  # the lines dropped between the first and the last good one
    assert missing > 0 and missing <= bad <= missing + 2  # each dropped line was counted as a bad line


def test_a_32_bit_time_column_that_wraps_is_unwrapped():
    class Wrapping(LineSource):
        def text(self, i: int) -> bytes:
            t = (2**32 - 1000 + i * 5) % 2**32  # micros() of an Arduino about to wrap
            return f"{t},{i},{i},{i},{i},{i},{i},{i},{i}\n".encode()

    with PtyFake(line_source=Wrapping(n=8, rate_hz=500, header=b"")) as fake, \
            open_device(_cfg(fake.path, time_unit="us", rate_hz=500)) as dev:
        dev.identify()
        got = []
        deadline = time.monotonic() + 5
        while sum(map(len, got)) < 400 and time.monotonic() < deadline:
            b = dev.read(0.05)
            if b is not None:
                got.append(b)
    t = np.concatenate([b.device_time for b in got]).astype(np.int64)
    i = np.concatenate([b.values[:, 0] for b in got]).astype(np.int64)
    assert t.max() > 2**32 and np.array_equal(t, 2**32 - 1000 + i * 5)


@pytest.mark.parametrize("head,kept", [
    (b"12320,1,2,3,4,5,6,7,8\n", True),    # the port opened at a line start: a whole line, kept
    (b"2320,1,2,3,4,5,6,7,8\n", False),    # cut inside the time: the time is far too early, dropped
    (b"3,4,5,6,7,8\n", False),             # cut inside the values: too few fields, dropped
    (b"12310,1,2,3,4,5,6,7,8\n", False),   # two periods early: not the line before, dropped
])
def test_the_first_line_after_the_port_opens_is_kept_only_if_whole(head, kept):
    import serial

    port = serial.serial_for_url("loop://", timeout=0.05)
    dev = LineDevice(port, _cfg("loop://"))
    try:
        rest = b"".join(b"%d,1,2,3,4,5,6,7,8\n" % t for t in range(12325, 12345, 5))
        port.write(head + rest)
        dev.identify(timeout_s=1.0)
        dev.start(keep_received=True)
        batch = dev.read(0.05)
        want = ([12320] if kept else []) + list(range(12325, 12345, 5))
        assert batch.device_time.tolist() == want and batch.seq.tolist() == list(range(len(want)))
        assert dev.stats.bad_lines == 0  # a cut first line is not damage
    finally:
        dev.close()
