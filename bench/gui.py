"""Live-view frame rate and CPU cost of the desktop app with the stress rig, while recording.

The stress rig is two 960-sensel insoles at 750 Hz and a 5,376-sensel (48 x 112) mat at 120 Hz, each a simulated
device in its own process on a pseudo-terminal. The app runs offscreen (the same widgets and paint path, no
screen) with its display timer asking for ``--fps`` frames per second, records to a temporary folder for
``--seconds``, and prints:

- frames per second reached by the live view (display refreshes done / wall time) and the median refresh cost;
- CPU of the GUI thread (the live view: polling, derivations, drawing, Qt events), in cores;
- CPU of the whole app process (GUI thread + the acquisition's reader and writer threads), in cores;
- lost samples per device (sequence gaps in the file) and the simulated devices' overruns (samples a device had
  to drop because the host did not read its port in time).

Two captures are made under the same conditions, the first with the live view idle and the second with it
running, so the live view's own effect on losses shows even on a shared, loaded machine.

Targets: >= 30 fps, 0 lost samples, the live view (GUI thread) under one core.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui.py [--seconds 15] [--fps 60]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import h5py  # noqa: E402
import psutil  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

from treadlab import fileformat as ff  # noqa: E402
from treadlab.lab.gui.app import build_window, start_simulated_rig  # noqa: E402


def wait_until(app: QtWidgets.QApplication, cond, timeout_s: float) -> bool:
    """Run the event loop until ``cond()`` or the timeout."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)
    return True


def run_for(app: QtWidgets.QApplication, seconds: float) -> None:
    """Run the real event loop for ``seconds``."""
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def record_phase(app, win, sims, seconds: float, live: bool) -> dict:
    """Record ``seconds`` with the live view running (``live``) or idle; return the figures of that capture."""
    proc = psutil.Process()
    if not live:
        win.timer.stop()
    t_click = time.perf_counter()
    win.session.record_button.click()
    start_s = time.perf_counter() - t_click
    if not win.source.recording:
        raise SystemExit(f"capture did not start: {win.session.message.text()}")
    run_for(app, 1.0)  # the devices stream again under the Recorder
    overrun0 = {n: sims.stats(n)["overrun_n"] for n in win.source.configs}
    frames0, refresh0 = win.frames_n, win.refresh_s_total
    cpu0 = proc.cpu_times()
    gui0 = time.thread_time()
    load0 = os.getloadavg()[0]
    wall0 = time.perf_counter()
    run_for(app, seconds)
    wall = time.perf_counter() - wall0
    gui_cpu = time.thread_time() - gui0
    cpu1 = proc.cpu_times()
    frames = win.frames_n - frames0
    overrun = {n: sims.stats(n)["overrun_n"] - overrun0[n] for n in win.source.configs}
    if not live:
        win.timer.start()
    t_click = time.perf_counter()
    win.session.stop_button.click()
    stop_s = time.perf_counter() - t_click
    lost = {}
    with h5py.File(win.last_path, "r") as f:
        for name in f[ff.DEVICES]:
            g = f[ff.DEVICES][name]
            lost[name] = (int(g.attrs["lost_samples"]), float(g.attrs["achieved_rate_hz"]), overrun[name])
    proc_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {"wall_s": wall, "fps": frames / wall, "refresh_ms": (win.refresh_s_total - refresh0) / max(frames, 1) * 1e3,
            "gui_cores": gui_cpu / wall, "process_cores": proc_cpu / wall,
            "gui_ms_per_frame": gui_cpu / max(frames, 1) * 1e3, "lost": lost,
            "load": (load0 + os.getloadavg()[0]) / 2, "start_s": start_s, "stop_s": stop_s}


def main() -> int:
    """Measure and print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="recording time of each phase (default 15)")
    ap.add_argument("--fps", type=float, default=60.0, help="display timer rate asked for (default 60)")
    ap.add_argument("--default-rig", action="store_true", help="the default simulated rig instead of the stress rig")
    ap.add_argument("--switch-ms", type=float, default=None, help="override the GIL switch interval (ms)")
    args = ap.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench-gui"])
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="treadlab-bench-gui-") as out:
        t0 = time.monotonic()
        rig_path, sims = start_simulated_rig(stack, stress=not args.default_rig)
        win = build_window(stack, rig_path, Path(out), refresh_hz=args.fps, title="bench", confirm=lambda *_: True)
        if args.switch_ms is not None:
            sys.setswitchinterval(args.switch_ms / 1e3)
        win.show()
        names = list(win.source.configs)
        if not wait_until(app, lambda: all(win.devices.state_of(n) == "streaming" for n in names), 60.0):
            raise SystemExit(f"devices did not stream: {[(n, win.devices.state_of(n)) for n in names]}")
        print(f"rig: {', '.join(names)} ({'default' if args.default_rig else 'stress'}), "
              f"streaming after {time.monotonic() - t0:.1f} s; machine: {psutil.cpu_count()} cores")
        win.session.participant.setText("bench")
        phases = {"live view off": record_phase(app, win, sims, args.seconds, live=False),
                  "live view on": record_phase(app, win, sims, args.seconds, live=True)}
        win.close()
    print(f"display timer asked for {args.fps:g} fps; each phase records {args.seconds:g} s")
    for label, r in phases.items():
        lost = r["lost"]
        print(f"[{label}] Record took {r['start_s']:.2f} s, Stop {r['stop_s']:.2f} s (GUI thread busy meanwhile)")
        print(f"[{label}] load average {r['load']:.1f}; process (GUI + acquisition threads) "
              f"{r['process_cores']:.2f} cores; GUI thread {r['gui_cores']:.2f} cores")
        if label == "live view on":
            print(f"[{label}] {r['fps']:.1f} fps reached (target >= 30); refresh {r['refresh_ms']:.1f} ms/frame; "
                  f"GUI thread CPU {r['gui_ms_per_frame']:.1f} ms/frame (-> {1000 / r['gui_ms_per_frame']:.0f} fps "
                  f"on a free core); live view {r['gui_cores']:.2f} cores (target < 1)")
        print(f"[{label}] lost samples {sum(v[0] for v in lost.values())} (target 0): " + ", ".join(
            f"{n} {v[0]} (device overruns {v[2]}, achieved {v[1]:.1f} Hz)" for n, v in lost.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
