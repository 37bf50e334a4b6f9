"""One contract for every device: the binary and line drivers (fakes on real ptys), the LSL inlet (a real
outlet on loopback), a simulated device in its own process and the adapters (Moticon's UDP stream, the willowec
mat on a pty), all reached through ``drivers.connect``.

The contract is what the acquisition relies on (``treadlab.drivers.base.Device``): ``connect`` returns an
identified device that describes itself with a registered kind; reads return well-formed batches whose sequence
numbers run on without gaps, with the driver's counters agreeing; PING, LOG and PONG calls are always safe;
stopping leaves earlier samples readable, and closing twice is harmless.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import numpy as np
import pytest

from tests.fake_device import FakeSpec, LineSource, PtyFake
from tests.lsl_support import loopback_session
from treadlab.drivers import Device, DeviceConfig, SampleBatch, connect
from treadlab.kinds import DeviceDescription, get_kind
from treadlab.lab.rig import load_rig

LAYOUT8 = {"foot_length_mm": 260.0, "positions_mm": [[0.0, 20.0 * i] for i in range(8)], "areas_mm2": [300.0] * 8}


def check_device_contract(cfg: DeviceConfig, feed: Callable[[], None] = lambda: None,
                          n: int = 100) -> DeviceDescription:
    """Connect ``cfg``, read ``n`` samples and check everything a :class:`Device` promises; returns the
    description."""
    dev = connect(cfg, timeout_s=5.0)
    try:
        assert isinstance(dev, Device)
        desc = dev.describe()
        assert isinstance(desc, DeviceDescription) and desc.name == cfg.name and desc.protocol == cfg.protocol
        kind = get_kind(desc.kind)
        assert desc.shape == kind.shape(desc.info) and desc.n_values == int(np.prod(desc.shape))
        assert len(desc.channel_labels) == desc.n_values and desc.rate_hz > 0 and desc.clock_hz > 0
        cal = desc.calibration
        assert cal is not None and np.shape(cal.gain) == np.shape(cal.offset) == (desc.n_values,)
        assert dev.drain_logs() is not None and isinstance(dev.drain_pongs(), list)
        dev.start()
        t_start = time.monotonic_ns()
        batches: list[SampleBatch] = []
        got = 0
        deadline = time.monotonic() + 10.0
        while got < n and time.monotonic() < deadline:
            feed()
            if desc.supports_ping:
                dev.send_ping()
            b = dev.read(0.05)
            if b is not None:
                assert len(b) > 0
                batches.append(b)
                got += len(b)
        assert got >= n, f"{cfg.name}: {got} samples in 10 s"
        pongs = dev.drain_pongs()
        assert not desc.supports_ping or pongs
        assert all(p.host_send_ns <= p.host_recv_ns for p in pongs)
        dev.stop()
        while dev.read(0.0) is not None:  # samples sent before STOP stay readable
            pass
        seq = np.concatenate([b.seq for b in batches])
        ticks = np.concatenate([b.device_time for b in batches])
        host = np.concatenate([b.host_time_ns for b in batches])
        values = np.concatenate([b.values for b in batches])
        assert seq.dtype == np.uint32 and ticks.dtype == np.uint64 and host.dtype == np.int64
        assert np.all(np.diff(seq.astype(np.int64)) == 1), f"{cfg.name}: sequence gaps"
        assert np.all(np.diff(ticks.astype(np.int64)) >= 0) and np.all(np.diff(host) >= 0)
        assert host[0] >= t_start - 1_000_000_000 and host[-1] <= time.monotonic_ns()
        assert values.shape == (len(seq), desc.n_values) and values.dtype == desc.dtype
        st = dev.stats
        assert st.samples >= len(seq) and st.seq_gaps == 0 and st.lost_samples == 0 and st.errors == 0
    finally:
        dev.close()
        dev.close()  # twice: harmless
    return desc


def test_binary_driver_contract():
    with PtyFake(FakeSpec(sensels=16, dtype="u16", rate_hz=500)) as fake:
        check_device_contract(DeviceConfig(name="insole_left", port=fake.path, kind="insole", side="left",
                                           rate_hz=1000))


def test_binary_mat_contract():
    with PtyFake(FakeSpec(kind="mat", rows=4, cols=6, rate_hz=200)) as fake:
        check_device_contract(DeviceConfig(name="mat", port=fake.path, kind="mat"))


def test_line_driver_contract():
    with PtyFake(line_source=LineSource(n=8, rate_hz=200)) as fake:
        check_device_contract(DeviceConfig(name="insole_right", port=fake.path, protocol="line", side="right",
                                           sensels=8, rate_hz=200, time_unit="ms", layout=LAYOUT8,
                                           calibration={"unit": "N", "gain": 2.0, "offset": 0.0}))


def test_lsl_inlet_contract(tmp_path_factory):
    pylsl = pytest.importorskip("pylsl")
    loopback_session(tmp_path_factory, "contract")
    from treadlab.acquisition import lsl

    sid = f"contract-{os.getpid()}"
    state = {"k": 0, "t0": pylsl.local_clock(),
             "outlet": pylsl.StreamOutlet(pylsl.StreamInfo("contract", "EMG", 3, 500.0, "float32", sid))}

    def feed() -> None:  # the samples due by now, on a 500 Hz grid
        k = int((pylsl.local_clock() - state["t0"]) * 500.0)
        if k > state["k"]:
            idx = np.arange(state["k"], k)
            lsl.push_stamped(state["outlet"], np.column_stack([idx, idx, idx]).astype(np.float32),
                             state["t0"] + idx / 500.0)
            state["k"] = k

    check_device_contract(DeviceConfig(name="emg", port="", protocol="lsl", extra={"source_id": sid}), feed)
    state.clear()  # drops the outlet


def test_simulated_device_contract(tmp_path):
    from treadlab.drivers.sim.rig import SimulatedRig

    default = SimulatedRig.default(tmp_path / "sim")
    with SimulatedRig(default.devices[:1], tmp_path / "sim", seed=4) as sim:
        cfg = load_rig(sim.write_rig(tmp_path / "rig.toml")).devices[0]
        check_device_contract(cfg, n=300)


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_moticon_adapter_contract(tmp_path):
    from treadlab.drivers.sim.moticon import MoticonSim

    port = _free_udp_port()
    rig = tmp_path / "rig.toml"
    rig.write_text(f'[[device]]\nname = "insole_left"\nprotocol = "moticon"\nport = "udp://127.0.0.1:{port}"\n'
                   'side = "left"\nrate_hz = 100\n')
    with MoticonSim(("127.0.0.1", port), rate_hz=100, seed=6):
        desc = check_device_contract(load_rig(rig).devices[0])
    assert (desc.kind, desc.side, desc.shape, desc.dtype) == ("insole", "left", (16,), np.dtype(np.float32))
    assert desc.unit == "kPa" and np.all(desc.calibration.gain == 10.0) and not desc.supports_ping
    assert desc.layout["name"] == "insole16" and desc.layout["positions_mm"].shape == (16, 2)


def test_willowec_adapter_contract(tmp_path):
    from treadlab.drivers.adapters.willowec import COLS, ROWS
    from treadlab.drivers.sim.willowec import WillowecMatSim

    with WillowecMatSim(rate_hz=50, seed=7) as sim:
        desc = check_device_contract(DeviceConfig(name="mat", port=sim.path, protocol="willowec-mat", rate_hz=50,
                                                  kind="mat", sensels=ROWS * COLS, baudrate=115200))
    assert (desc.kind, desc.shape, desc.dtype, desc.unit) == ("mat", (ROWS, COLS), np.dtype(np.uint8), "raw")
    assert desc.layout is None and desc.layout_attrs["rows"] == ROWS and desc.layout_attrs["cols"] == COLS
    assert desc.layout_data["positions_mm"].shape == (ROWS * COLS, 2) and len(desc.channel_labels) == ROWS * COLS
