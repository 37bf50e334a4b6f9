"""Start-up of the desktop app: the rig (or the simulated rig), the live source, the window; screenshot mode.

Ownership, innermost last: the simulated rig's device processes (if ``--sim``), the :class:`LiveSource` (reader
and connector threads), the window (its timer). They are torn down in reverse order by one
:class:`contextlib.ExitStack`, also when start-up fails half way.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import signal
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from treadlab.errors import ConfigError, StorageError


def report_function():
    """``report_fn(session_path) -> report path`` from the reports module, or None when it is not installed."""
    if importlib.util.find_spec("treadlab.lab.commands.report") is None:
        return None

    def make_report(path: Path) -> Path:
        from treadlab.lab.commands.report import write_report
        from treadlab.lab.report.collect import parse_segment

        return Path(write_report(parse_segment(str(path))))

    return make_report


def has_display() -> bool:
    """Whether Qt can open a window here (always on Windows and macOS; on Linux a display server or an explicit
    ``QT_QPA_PLATFORM`` such as ``offscreen``).
    """
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _qt_message(mode, context, message: str) -> None:
    """Qt's messages on stderr, without the offscreen plugin's harmless 'propagateSizeHints' notices."""
    if "propagateSizeHints" not in message:
        print(f"qt: {message}", file=sys.stderr)


def _qapp(offscreen: bool):
    if offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6 import QtCore, QtWidgets

    QtCore.qInstallMessageHandler(_qt_message)
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(["lab"])
        app.setApplicationName("treadlab")
    return app


def start_simulated_rig(stack: ExitStack, stress: bool = False):
    """Start the simulated rig (two insoles and a mat) in a temporary folder.

    Returns ``(rig_file, simulated_rig)``. The device processes are stopped and the folder removed when
    ``stack`` closes.
    """
    from treadlab.drivers.sim.rig import SimulatedRig

    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="treadlab-sim-")))
    sim = (SimulatedRig.stress if stress else SimulatedRig.default)(work)
    sim.start()
    stack.callback(sim.stop, check=False)
    return sim.write_rig(work / "rig.toml"), sim


def build_window(stack: ExitStack, rig_path: Path, folder: Path, refresh_hz: float = 30.0, title: str = "",
                 confirm=None, lsl: bool = False):
    """Load the rig and make the live source and the main window (not shown); closed with ``stack``.

    The devices are opened when the window is first shown (after its first paint), and the start-up heap is
    frozen before that, so no start-up work competes with the reader threads.
    """
    from treadlab.lab.gui.main_window import MainWindow
    from treadlab.lab.gui.source import LiveSource
    from treadlab.lab.rig import load_rig

    rig = load_rig(rig_path)
    source = LiveSource(rig, title=title or str(rig_path), lsl=lsl)  # opened by the window once it is shown
    stack.callback(source.close)
    win = MainWindow(source, folder, refresh_hz=refresh_hz, confirm=confirm, report_fn=report_function())
    session = getattr(rig, "session", {}) or {}
    win.session.apply_defaults(session)
    quiet_garbage_collector()
    return win


def quiet_garbage_collector() -> None:
    """Keep Python's full garbage collections short, so the reader threads are never starved of the GIL.

    A full (generation 2) collection walks every tracked object while holding the GIL; with Qt, pyqtgraph, pandas
    and scipy loaded that took about 90 ms on the lab machine, long enough for a 750 Hz, 960-sensel insole to
    overrun its USB buffer. :func:`gc.freeze` moves everything that exists once the window is built (modules,
    widgets, layouts) out of the collector's sight, so later collections only walk what the live view allocates.
    """
    gc.collect()
    gc.freeze()


def run_app(rig_path: Path | None, sim: bool, stress: bool, folder: Path, screenshot: Path | None = None,
            seconds: float = 4.0, refresh_hz: float = 30.0, lsl: bool = False) -> int:
    """Run the app until its window closes (or, with ``screenshot``, for ``seconds`` and save a picture).

    Raises
    ------
    ConfigError, DeviceError, StorageError
        Bad rig file, folder or screenshot path (before any window opens).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise StorageError(f"output folder {folder} does not exist")
    if screenshot is not None and not Path(screenshot).parent.expanduser().resolve().is_dir():
        raise StorageError(f"--screenshot {screenshot}: its folder does not exist")
    if not sim and rig_path is None:
        raise ConfigError("give a rig file (--rig RIG.toml) or --sim for the simulated rig")
    if screenshot is None and not has_display():
        raise ConfigError("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set); "
                          "run it in a desktop session, or use --screenshot OUT.png to run offscreen")
    app = _qapp(offscreen=screenshot is not None)
    from PySide6 import QtCore

    saved: list[bool] = []
    with ExitStack() as stack:
        title = ""
        if sim:
            rig_path, _sim = start_simulated_rig(stack, stress)
            title = "simulated rig" + (" (stress)" if stress else "")
        win = build_window(stack, Path(rig_path), folder, refresh_hz, title, lsl=lsl)
        win.show()
        if screenshot is not None:
            def shoot() -> None:
                saved.append(win.grab().save(str(screenshot)))
                win.close()

            QtCore.QTimer.singleShot(int(seconds * 1000), shoot)
        # Ctrl-C in the terminal closes the window like the close button (with the same confirmation).
        signal.signal(signal.SIGINT, lambda *_: win.close())
        tick = QtCore.QTimer(win)
        tick.timeout.connect(lambda: None)  # lets Python run its signal handlers while Qt waits
        tick.start(200)
        app.exec()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if screenshot is not None:
        if not saved or not saved[0]:
            raise StorageError(f"{screenshot}: the screenshot could not be written")
        print(screenshot)
    return 0
