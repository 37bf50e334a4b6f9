"""The willowec/pressure-mat DIY format (56 x 28 bytes then FF FE FE FF, no seq, no time, no CRC): the framer's
resynchronisation and loss numbering, and the mat through a pty and the recorder against a simulated board."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from treadlab import fileformat as ff
from treadlab.acquisition.recorder import Recorder
from treadlab.drivers import open_device
from treadlab.drivers.adapters.willowec import COLS, FRAME_BYTES, MARKER, ROWS, MarkerFramer, marker_positions
from treadlab.drivers.sim.willowec import WillowecMatSim, encode_frames
from treadlab.errors import ConfigError, DeviceTimeoutError
from treadlab.lab.rig import load_rig


def _frames(k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 208, (k, ROWS, COLS), dtype=np.uint8)


def _feed_in_pieces(framer: MarkerFramer, wire: bytes, seed: int = 1):
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, len(wire), 40))
    seqs, frames = [], []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(wire)]):
        s, f = framer.feed(wire[a:b])
        seqs.append(s)
        frames.append(f)
    return np.concatenate(seqs).astype(np.int64), np.concatenate(frames)


def test_marker_search_is_exact():
    a = np.frombuffer(b"\x00\xff\xfe\xfe\xff\xff\xfe\xfe\xff\x01\xff\xfe\xfe", np.uint8)
    assert marker_positions(a).tolist() == [1, 5]
    assert marker_positions(a[:3]).tolist() == []


def test_clean_stream_in_any_pieces_gives_every_frame_after_the_first_marker():
    frames = _frames(30)
    framer = MarkerFramer()
    seq, got = _feed_in_pieces(framer, b"booting...\r\n" + encode_frames(frames))
    assert np.array_equal(got, frames[1:])  # the first frame only brings the framer in sync
    assert seq.tolist() == list(range(29))
    st = framer.stats
    assert st.malformed == st.resyncs == 0 and st.messages == st.unchecked == 29


def test_damage_is_resynchronised_and_numbered_as_loss():
    frames = _frames(40, seed=2)
    size = FRAME_BYTES + len(MARKER)
    wire = bytearray(encode_frames(frames))
    fake = frames.copy()
    # frame 9: a saturated row that reads like the marker; frames 20 and 21: bytes lost; frame 30: a value 0xFE
    wire[9 * size + 300: 9 * size + 304] = MARKER
    wire[30 * size + 77] = 0xFE
    del wire[21 * size + 100: 21 * size + 180]
    del wire[20 * size + 500: 20 * size + 501]
    framer = MarkerFramer()
    seq, got = _feed_in_pieces(framer, bytes(wire), seed=4)
    broken = {9, 20, 21, 30}
    want_slots = [i for i in range(1, 40) if i not in broken]
    assert (seq + 1).tolist() == want_slots  # numbering follows the frame slots: the damage shows as gaps
    assert np.array_equal(got, fake[want_slots])
    st = framer.stats
    assert st.malformed == 2 + 2 + 1  # fake marker: two runs; lost bytes: two runs; one impossible value
    assert st.resyncs == 2  # two stretches of damage hunted past (the 0xFE frame kept sync)


def test_a_stream_without_markers_is_dropped_and_numbering_resumes():
    frames = _frames(12, seed=5)
    framer = MarkerFramer()
    s1, _ = framer.feed(encode_frames(frames[:3]))
    s2, _ = framer.feed(bytes(np.random.default_rng(3).integers(0, 200, 5 * (FRAME_BYTES + 4), dtype=np.uint8)))
    s3, _ = framer.feed(encode_frames(frames[3:]))
    assert s1.tolist() == [0, 1] and len(s2) == 0
    assert framer.stats.oversize_errors == 1 and framer.stats.resyncs == 1
    # about five frames of junk plus the frame that resynchronised: the numbering jumps past them
    assert s3[0] - 1 >= 5 and np.all(np.diff(s3.astype(np.int64)) == 1) and len(s3) == 8


def _rig(tmp_path, port: str, extra: str = ""):
    path = tmp_path / "rig.toml"
    path.write_text(f'[[device]]\nname = "mat"\nprotocol = "willowec-mat"\nport = "{port}"\nrate_hz = 50\n{extra}')
    return load_rig(path)


def _check_against_truth(sim, seq: np.ndarray, values: np.ndarray) -> int:
    slots = {s: (ok, v) for s, ok, v in sim.sent}
    first_slot = int(seq[0]) + 1  # seq 0 is the slot after the one that synchronised
    span = range(first_slot, int(seq[-1]) + 2)
    intact = [s for s in span if slots[s][0]]
    assert ((seq + 1).tolist()) == intact  # every intact frame, and only those
    assert np.array_equal(values.reshape(-1, ROWS, COLS), np.stack([slots[s][1] for s in intact]))
    return len(span) - len(intact)


def test_mat_through_a_pty_with_a_lossy_link(tmp_path):
    with WillowecMatSim(rate_hz=50, drop_rate=0.05, fake_marker_rate=0.05, seed=9) as sim:
        rig = _rig(tmp_path, sim.path)
        with open_device(rig.devices[0]) as dev:
            info = dev.identify()
            assert (info["rows"], info["cols"], info["kind"]) == (ROWS, COLS, "mat")
            dev.start()
            got = []
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                b = dev.read(0.05)
                if b is not None:
                    got.append(b)
            seq = np.concatenate([b.seq for b in got]).astype(np.int64)
            values = np.concatenate([b.values for b in got])
            t = np.concatenate([b.device_time for b in got]).astype(np.int64)
            lost = _check_against_truth(sim, seq, values)
            assert lost > 2 and dev.stats.lost_samples == lost
            assert dev.stats.unchecked >= len(seq) and dev.stats.malformed > 0
            assert np.all(np.diff(t) > 0)  # arrival times, spread and increasing
    assert b"start_reading\n" in sim.received


def test_recording_the_willowec_mat(tmp_path):
    with WillowecMatSim(rate_hz=50, drop_rate=0.04, seed=11) as sim:
        rig = _rig(tmp_path, sim.path)
        out = tmp_path / "mat.h5"
        with Recorder(list(rig.devices), {"participant": "MAT"}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(2.5)
        with h5py.File(out, "r") as f:
            assert f.attrs["state"] == ff.STATE_COMPLETE
            g = f["devices/mat"]
            assert g.attrs["kind"] == "mat" and g.attrs["protocol"] == "willowec-mat"
            raw = g["raw"][:]
            assert raw.dtype == np.uint8 and raw.shape[1:] == (ROWS, COLS) and len(raw) > 80
            assert g["layout"].attrs["rows"] == ROWS and g["calibration"].attrs["unit"] == "raw"
            lost = _check_against_truth(sim, g["seq"][:].astype(np.int64), raw)
            assert g.attrs["lost_samples"] == lost and int(np.sum(g["gaps"][:, 2])) == lost


def test_willowec_rig_entries_and_a_silent_port(tmp_path):
    with pytest.raises(ConfigError, match=r"'side' do not apply to the willowec mat \(its geometry is fixed"):
        _rig(tmp_path, "/dev/ttyACM0", 'side = "left"\n')
    path = tmp_path / "r.toml"
    path.write_text('[[device]]\nname = "mat"\nprotocol = "willowec-mat"\nport = "/dev/ttyACM0"\n')
    with pytest.raises(ConfigError, match="needs 'rate_hz'"):
        load_rig(path)
    sim = WillowecMatSim(greeting=b"")
    try:  # a pty nobody serves: the mat never answers
        rig = _rig(tmp_path, sim.path)
        with open_device(rig.devices[0]) as dev:
            with pytest.raises(DeviceTimeoutError, match=r"no mat frame \(56 x 28 bytes between FF FE FE FF"):
                dev.identify(timeout_s=0.3)
    finally:
        sim.stop()
