"""Real insole data through the real acquisition path: PhysioNet walking replayed over the line protocol.

Two pseudo-terminals play the part of two line-protocol insoles (``t_ms,v1,...,v8`` at 100 Hz, in real time);
the Recorder captures them from a rig file into a session file, which is then analysed. Data source and licence:
``tests/data/README.md``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from treadlab.acquisition.recorder import Recorder
from treadlab.analysis import InsoleScaleWarning, analyze
from treadlab.lab.rig import load_rig

DATA = Path(__file__).parent / "data" / "gaitpdb_GaCo01_01_first40s.txt"
REPLAY_S = 10.0
FIRST_S = 4.0  # skip the standing at the start of the recording
#: PhysioNet sensor positions (format.txt) mapped onto a 260 mm foot: x lateral, y from the heel.
_XY = np.array([[-500, -800], [-700, -400], [-300, -400], [-700, 0], [-300, 0], [-700, 400], [-300, 400],
                [-500, 800]], dtype=float)


def _layout(side: str) -> str:
    # x: lateral from the heel sensor's axis (narrower scale: the sensors sit inside the foot outline)
    x = (_XY[:, 0] - _XY[0, 0]) * (-1 if side == "left" else 1) / 2600 * 260
    y = (_XY[:, 1] + 900) / 1800 * 260
    pos = ", ".join(f"[{a:.1f}, {b:.1f}]" for a, b in zip(x, y))
    return f"{{ foot_length_mm = 260.0, positions_mm = [{pos}], areas_mm2 = [{', '.join(['300.0'] * 8)}] }}"


class LineReplayer:
    """Writes recorded samples as protocol lines to pseudo-terminal masters, in real time (one owned thread)."""

    def __init__(self, masters: dict[str, int], lines: dict[str, list[bytes]], rate_hz: float = 100.0):
        self.masters = masters
        self.lines = lines
        self.rate_hz = rate_hz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="line-replayer", daemon=True)

    def start(self) -> LineReplayer:
        """Start the writer thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the writer thread and check that it ended."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        assert not self._thread.is_alive(), "line replayer did not stop"

    def _run(self) -> None:
        t0 = time.monotonic()
        sent = 0
        n = min(len(v) for v in self.lines.values())
        while not self._stop.is_set() and sent < n:
            due = min(n, int((time.monotonic() - t0) * self.rate_hz) + 1)
            for side, fd in self.masters.items():
                chunk = b"".join(self.lines[side][sent:due])
                try:
                    os.write(fd, chunk)
                except BlockingIOError:  # nobody reading yet: the device drops the samples
                    pass
            sent = due
            self._stop.wait(0.02)


@pytest.fixture
def replayed_session(tmp_path):
    return _replay(tmp_path)


def _replay(tmp_path) -> Path:
    """Replay ~10 s of the walk into two pseudo-terminals while the Recorder captures them; the session file."""
    data = np.loadtxt(DATA)
    data = data[data[:, 0] >= FIRST_S - 1.0]
    t_ms = np.round((data[:, 0] - data[0, 0]) * 1000).astype(int) + 5000
    lines = {}
    for side, cols in (("left", slice(1, 9)), ("right", slice(9, 17))):
        lines[side] = [(f"{t}," + ",".join(f"{v:.2f}" for v in row) + "\n").encode() for t, row in
                       zip(t_ms, data[:, cols])]
    masters, slaves, ports = {}, {}, {}
    for side in ("left", "right"):
        m, s = os.openpty()
        os.set_blocking(m, False)
        masters[side], slaves[side], ports[side] = m, s, os.ttyname(s)
    rig_text = "[session]\nbody_mass_kg = 83.0\ntreadmill_speed_mps = 1.075\n"
    for side in ("left", "right"):
        rig_text += (f'\n[[device]]\nname = "insole_{side}"\nport = "{ports[side]}"\nprotocol = "line"\n'
                     f'side = "{side}"\nsensels = 8\nrate_hz = 100\ntime_unit = "ms"\n'
                     f"layout = {_layout(side)}\ncalibration = {{ unit = \"N\", gain = 1.0, offset = 0.0 }}\n")
    rig_path = tmp_path / "replay.toml"
    rig_path.write_text(rig_text)
    rig = load_rig(rig_path)
    out = tmp_path / "replay.h5"
    replayer = LineReplayer(masters, lines).start()
    try:
        with Recorder(list(rig.devices), {"participant": "GaCo01", "body_mass_kg": 83.0,
                                          "treadmill_speed_mps": 1.075}, str(out), rig.text) as rec:
            rec.start()
            time.sleep(REPLAY_S)
    finally:
        replayer.stop()
        for fd in (*masters.values(), *slaves.values()):
            os.close(fd)
    return out


def test_replayed_physionet_walk(replayed_session):
    with pytest.warns(InsoleScaleWarning), analyze(replayed_session) as ga:
        s = ga.summary
        for foot in ("left", "right"):
            f = s["feet"][foot]
            assert f["steps"] >= 5  # ~0.75 strides/s
            assert f["strike_counts"]["rearfoot"] >= 0.8 * f["steps"]  # heel strikes
        step_length_m = 1.075 / (s["cadence_spm"] / 60.0)
        assert 0.55 <= step_length_m <= 0.8  # consistent with walking at 1.075 m/s
        assert s["insole_scale"] == pytest.approx(1.3, abs=0.25)
