"""What ``lab record`` adds around a :class:`~treadlab.acquisition.recorder.Recorder`: file naming, storage
checks, markers typed on standard input, the live status lines, and the wait for the end of the capture.

No signals here (the command installs them); :meth:`CaptureSession.run` ends when the duration is over, when
its ``stop_event`` is set (Ctrl-C, SIGTERM) or when writing fails.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import select
import shutil
import threading
import time
from collections.abc import Callable

import numpy as np

from treadlab.acquisition.recorder import Recorder, SessionStatus
from treadlab.drivers import DeviceConfig
from treadlab.errors import StorageError

#: Room assumed for a capture without --duration, in seconds.
DEFAULT_PLANNED_S = 600.0
#: Safety factor on the uncompressed data rate when checking free space.
SPACE_FACTOR = 1.2


def session_path(out: str | None, participant: str | None, condition: str | None,
                 now: _dt.datetime | None = None) -> str:
    """Where a capture goes: ``<out or sessions>/<participant>/<UTC date-time>_<condition>.h5``, or ``out``
    itself when it ends in ``.h5``.

    Raises
    ------
    StorageError
        The path exists already (files are never overwritten).
    """
    if out and out.endswith((".h5", ".hdf5")):
        path = out
    else:
        now = now or _dt.datetime.now(_dt.UTC)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        cond = _safe(condition or "session")
        path = os.path.join(out or "sessions", _safe(participant or "anonymous"), f"{stamp}_{cond}.h5")
    if os.path.exists(path):
        raise StorageError(f"{path}: exists already; session files are never overwritten (choose another --out)")
    return path


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def bytes_per_s(setups: list) -> float:
    """Uncompressed bytes per second written for identified devices (values + seq + 3 times)."""
    total = 0.0
    for dev in setups:
        total += float(dev.rate_hz) * (dev.n_values * np.dtype(dev.dtype).itemsize + 4 + 3 * 8)
    return total


def check_storage(path: str, rate_bytes_per_s: float, planned_s: float | None) -> None:
    """Check that the folder of ``path`` can be created and written, and has room for ``planned_s`` seconds.

    Raises
    ------
    StorageError
        Naming the folder and, for space, how much is needed and free.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"{folder}: cannot create the output folder ({exc.strerror})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"{folder}: output folder is not writable")
    seconds = planned_s if planned_s else DEFAULT_PLANNED_S
    need = rate_bytes_per_s * seconds * SPACE_FACTOR
    free = shutil.disk_usage(folder).free
    if need > free:
        raise StorageError(f"{folder}: not enough free space for {seconds:g} s of capture "
                           f"(needs about {need / 1e6:.0f} MB, {free / 1e6:.0f} MB free)")


class StdinMarkers:
    """Owner of a thread turning lines read from a file descriptor (standard input) into markers.

    Uses ``select`` with a short timeout so the thread stops on its event; end of input just ends the thread.
    """

    def __init__(self, fd: int, on_label: Callable[[str], object]) -> None:
        self.fd = fd
        self.on_label = on_label
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start reading."""
        self._thread = threading.Thread(target=self._run, name="stdin-markers")
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop and join (checked)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError("stdin marker thread did not stop")
            self._thread = None

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(self.fd, 4096)
            except (OSError, ValueError):
                return
            if not chunk:
                if buf.strip():
                    self.on_label(buf.decode("utf-8", "replace").strip())
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                label = line.decode("utf-8", "replace").strip()
                if label:
                    self.on_label(label)


def format_status(st: SessionStatus) -> list[str]:
    """One line per device plus a session line, as ``lab record`` shows them."""
    lines = []
    for d in st.devices:
        drift = "   n/a" if not np.isfinite(d.drift_ppm) else f"{d.drift_ppm:+6.1f}"
        lines.append(f"  {d.name:<14} {d.state:<12} {d.rate_hz:7.1f}/{d.nominal_hz:<5g} Hz  lost {d.lost:<6d} "
                     f"crc {d.crc_errors:<5d} drift {drift} ppm  reconnections {d.reconnections}"
                     + (f"  CLOCK OFF: {d.clock_warning}" if d.clock_warning else ""))
    m, s = divmod(int(st.elapsed_s), 60)
    extra = f"  queue overflow {st.queue_overflow}" if st.queue_overflow else ""
    lines.append(f"  elapsed {m:02d}:{s:02d}  file {st.file_size_bytes / 1e6:.1f} MB{extra}")
    return lines


class CaptureSession:
    """A capture as ``lab record`` runs it.

    Parameters
    ----------
    devices : list of DeviceConfig
    meta : dict
        Session metadata (participant, condition, body_mass_kg, treadmill_speed_mps, shoe, notes).
    path : str
        Output file (from :func:`session_path`).
    rig_text : str
    duration_s : float or None
        Stop after this long (None: until stopped).
    stop_event : threading.Event
        Set it to stop (signal handlers do).
    show : callable or None
        Called with the status lines about once per ``status_every_s``.
    markers_fd : int or None
        File descriptor to read marker lines from (standard input), or None.
    """

    def __init__(self, devices: list[DeviceConfig], meta: dict, path: str, rig_text: str,
                 duration_s: float | None, stop_event: threading.Event,
                 show: Callable[[list[str]], None] | None = None, markers_fd: int | None = None,
                 status_every_s: float = 1.0) -> None:
        self.recorder = Recorder(devices, meta, path, rig_text)
        self.path = path
        self.duration_s = duration_s
        self.stop_event = stop_event
        self.show = show
        self.markers_fd = markers_fd
        self.status_every_s = status_every_s

    def run(self) -> str:
        """Open the devices, check storage, record until the end, stop cleanly; returns the file's path.

        Raises
        ------
        DeviceError
            A device is missing or wrong (nothing was recorded, no file created).
        StorageError
            No room, folder not writable, or writing failed (the file keeps what was written).
        """
        rec = self.recorder
        check_storage(self.path, 0.0, self.duration_s)  # folder writable, before touching any device
        rec.open()
        try:
            check_storage(self.path, bytes_per_s(list(rec.descriptions.values())), self.duration_s)
        except BaseException:
            rec.close()
            raise
        reason = "stopped"
        markers = None
        try:
            rec.start()
            if self.markers_fd is not None:
                markers = StdinMarkers(self.markers_fd, rec.mark)
                markers.start()
            next_show = time.monotonic()
            while True:
                if self.duration_s is not None and rec.elapsed_s >= self.duration_s:
                    reason = "duration"
                    break
                if rec.failed:
                    reason = "storage"
                    break
                if self.show is not None and time.monotonic() >= next_show:
                    self.show(format_status(rec.status()))
                    next_show += self.status_every_s
                left = 0.1 if self.duration_s is None else min(0.1, max(0.0, self.duration_s - rec.elapsed_s))
                if self.stop_event.wait(left):
                    reason = "interrupted"
                    break
        finally:
            if markers is not None:
                markers.stop()
            if self.show is not None and rec.start_ns is not None:
                self.show(format_status(rec.status()))
            rec.stop(reason)
        return self.path
