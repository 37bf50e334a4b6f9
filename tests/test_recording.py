"""The session file as a stream subscriber: stream times moved to the file's clock, counters since the file
started, and a file created in the background whose failure is reported, not lost."""

from __future__ import annotations

import os
import time

import h5py
import numpy as np
import pytest

from treadlab import fileformat as ff
from treadlab.acquisition.recording import SessionRecording
from treadlab.errors import StorageError
from treadlab.kinds import Calibration, DeviceDescription

DESC = DeviceDescription(name="probe", kind="insole", protocol="binary", shape=(2,), dtype=np.dtype("u1"),
                         rate_hz=100.0, clock_hz=1e6, serial="P1", side="left", info={"kind": "insole"},
                         calibration=Calibration("N", np.ones(2, np.float32), np.zeros(2, np.float32)))


def test_stream_times_go_to_the_file_clock_and_counters_start_at_zero(tmp_path):
    origin_ns = time.monotonic_ns() - 5_000_000_000  # the stream started 5 s before the file
    rec = SessionRecording(str(tmp_path / "s.h5"), {"participant": "P"}, "rig", [DESC], clock_origin_ns=origin_ns)
    rec.start()
    off = (rec.start_ns - origin_ns) / 1e9
    assert 4.9 < off < 5.5 and rec.offset_s == off
    rec.set_baseline("probe", {"samples": 700, "lost_samples": 3, "crc_errors": 1, "reconnections": 2})
    rec.put_segment("probe")
    t = off + np.arange(10) / 100.0
    rec.put_samples("probe", np.arange(10, dtype=np.uint32), np.arange(10, dtype=np.uint64) * 10_000, t, t + 0.002,
                    np.zeros((10, 2), np.uint8))
    rec.put_gaps("probe", np.array([[off + 0.05, 5, 1]]))
    rec.put_marker(off + 0.03, "here")
    rec.put_ping("probe", rec.start_ns - origin_ns, rec.start_ns - origin_ns + 1000, 0)
    path = rec.finish("stopped", {"probe": {"samples": 710, "lost_samples": 4, "crc_errors": 1, "reconnections": 2}})
    with h5py.File(path, "r") as f:
        g = f[ff.DEVICES]["probe"]
        np.testing.assert_allclose(g[ff.HOST_TIME][()], np.arange(10) / 100.0 + 0.002, atol=1e-9)
        # the gap's time is refitted at stop (the sample before it on the final clock): near 0.05 s on the file clock
        assert abs(g[ff.GAPS][0, 0] - 0.05) < 1e-3 and g[ff.GAPS][0, 1] == 5 and g[ff.GAPS][0, 2] == 1
        assert f[ff.MARKERS]["time"][0] == pytest.approx(0.03, abs=1e-9)
        assert g[ff.CLOCK_PINGS][0, 0] == 0 and g[ff.CLOCK_PINGS][0, 1] == 1000
        assert g.attrs["reconnections"] == 0 and g.attrs["crc_errors"] == 0 and g.attrs["n_samples"] == 10
    assert not os.path.exists(path + ff.RECORDING_SUFFIX)


def test_a_file_that_cannot_be_created_in_the_background_is_reported(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = blocker / "s.h5"  # its "folder" is a file: h5py cannot create it
    rec = SessionRecording(str(path), {}, "", [DESC], clock_origin_ns=time.monotonic_ns())
    rec.start(background=True)  # returns at once; the writer thread finds out
    rec.put_samples("probe", np.zeros(1, np.uint32), np.zeros(1, np.uint64), np.zeros(1), np.zeros(1),
                    np.zeros((1, 2), np.uint8))
    deadline = time.monotonic() + 5.0
    while not rec.failed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rec.failed
    with pytest.raises(StorageError, match="cannot create the session file"):
        rec.finish("stopped", {})
