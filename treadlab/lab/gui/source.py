"""The desktop app's view of the acquisition: one device stream, capture control, polled live data (no Qt).

The devices stream from the moment they are connected (:class:`~treadlab.acquisition.stream.DeviceStream`,
connecting in the background and retrying the missing ones); the live view polls their ring buffers. Record
attaches a session file to that same stream (:meth:`DeviceStream.record`) and Stop detaches it: the devices are
not re-identified and the live view does not pause. :meth:`LiveSource.poll` is called by the GUI timer: it takes
only the samples that arrived since the previous poll from the ring buffers and hands them to each device's
:class:`~treadlab.lab.gui.kind_views.KindView` (chosen by kind), so a frame costs the same whatever the sensel
count.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from treadlab.acquisition.recorder import stream_status
from treadlab.acquisition.recording import SessionRecording
from treadlab.acquisition.stream import DeviceStream
from treadlab.errors import DeviceError, LabError, StorageError
from treadlab.lab.gui import model
from treadlab.lab.gui.kind_views import KindView, view_for

#: Worker states mapped to what the devices panel shows.
_STATE_NAMES = {"connected": "connecting", "failed": "lost", "stopped": "disconnected"}
STATUS_EVERY_S = 1.0  # status() copies 2 s of every ring: once a second is enough for counters


class LiveSource:
    """Devices of a rig for the desktop app: streaming, capture, markers and polled live data.

    Parameters
    ----------
    rig : treadlab.lab.rig.Rig
        The validated rig (devices and the text stored in session files).
    title : str
        Shown in the window title.
    ring_s : float
        Seconds of live data kept (the force view shows 5).
    lsl : bool
        Publish captures on Lab Streaming Layer (``lab gui --lsl``).

    Notes
    -----
    Threads: the stream's (one reader per device, one background connector), joined by :meth:`close`. Nothing
    here runs on the GUI thread except :meth:`poll` and the capture control calls.
    """

    def __init__(self, rig, title: str = "", ring_s: float = 10.0, lsl: bool = False) -> None:
        self.rig = rig
        self.lsl = lsl
        self._lsl_pub = None
        self.companion = None
        self.title = title or str(rig.path or "rig")
        self.ring_s = ring_s
        self.configs = {cfg.name: cfg for cfg in rig.devices}
        self.stream = DeviceStream(rig.devices, ring_s=ring_s, retry_s=1.0)
        self.views: dict[str, KindView] = {}  # devices with samples (not the string streams: nothing to draw)
        self.marker_streams: set[str] = set()  # external LSL string streams: their samples are session markers
        self.layouts_version = 0
        self.recorder_options: dict = {}  # extra recording arguments (min_free_bytes)
        self.last_path: Path | None = None  # the file of the last capture, also when stopping it failed
        self.recording_started_s = 0.0
        self._user_off: set[str] = set()
        self._closing = False
        self._status_cache = None
        self._status_due = 0.0

    @property
    def retry_s(self) -> float:
        """How often missing devices are tried again."""
        return self.stream.retry_s

    @retry_s.setter
    def retry_s(self, value: float) -> None:
        self.stream.retry_s = value

    @property
    def _workers(self) -> dict:
        return self.stream.workers

    @property
    def recorder(self) -> SessionRecording | None:
        """The session file being written (None in preview)."""
        return self.stream.recording

    # ------------------------------------------------------------------------------------------------ lifecycle

    def open(self) -> LiveSource:
        """Start connecting every device of the rig in the background; nothing once closed."""
        if not self._closing:
            self.stream.connect_in_background([n for n in self.configs if n not in self._user_off])
        return self

    def close(self, timeout_s: float = 15.0) -> None:
        """Stop a running capture cleanly, stop the stream, join every thread (checked)."""
        self._closing = True
        try:
            if self.recording:
                self.stop_recording()
        finally:
            self.stream.close()

    def __enter__(self) -> LiveSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self, name: str) -> None:
        """Connect a device the technician disconnected (in the background)."""
        if self.recording:
            raise DeviceError(f"{name}: devices cannot be switched during a capture; stop it first")
        self._user_off.discard(name)
        self.stream.connect_in_background([name])

    def disconnect(self, name: str) -> None:
        """Stop streaming from one device and release its port (not during a capture)."""
        if self.recording:
            raise DeviceError(f"{name}: devices cannot be switched during a capture; stop it first")
        self._user_off.add(name)
        self.stream.remove(name)

    # ---------------------------------------------------------------------------------------------- capture

    @property
    def recording(self) -> bool:
        """True while a capture is being written."""
        return self.stream.recording is not None

    def start_recording(self, path: str | Path, metadata: dict, companion=None) -> None:
        """Attach a session file to the running stream (every streaming device); the live view goes on.

        ``companion`` (e.g. a :class:`~treadlab.feedback.live.FeedbackRun`) is attached to the stream's recording
        before the file exists (through a :class:`~treadlab.feedback.live.StreamTarget`), started with it and
        stopped before it.

        Raises
        ------
        StorageError, DeviceError
            A capture runs already, the file cannot be created, or a required device is not streaming.
        """
        if self.recording:
            raise StorageError("a capture is already running")
        path = Path(path)
        if not path.parent.is_dir():
            raise StorageError(f"output folder {path.parent} does not exist")
        if not os.access(path.parent, os.W_OK):
            raise StorageError(f"output folder {path.parent} is not writable")
        streaming = set(self.stream.names)
        missing = [n for n, cfg in self.configs.items()
                   if n not in self._user_off and n not in streaming and cfg.required]
        if missing:
            why = self.stream.errors.get(missing[0])
            raise DeviceError(f"{missing[0]}: not connected" + (f" ({why})" if why else "")
                              + "; connect it or disconnect it before recording")
        if not streaming:
            raise DeviceError("no device is connected")
        if self.lsl:
            from treadlab.acquisition.lsl import RecorderLsl

            self._lsl_pub = RecorderLsl(self.stream).start()
        target = None
        try:
            if companion is not None:
                from treadlab.feedback.live import StreamTarget

                target = StreamTarget(self.stream, metadata)
                companion.attach(target)
            # the file is created by the writer thread: the click returns at once, nothing is missed meanwhile
            rec = self.stream.record(path, metadata, self.rig.text, background=True,
                                     tables=target.tables if target is not None else (), **self.recorder_options)
        except LabError:
            self._stop_lsl()
            raise
        if target is not None:
            target.recording = rec
            try:
                companion.start()
            except BaseException:
                self.stream.stop_recording("start-failed")
                self._stop_lsl()
                raise
        self.companion = companion
        self._status_cache = None
        self.recording_started_s = 0.0  # marker times are on the file's clock (zero at Record)

    def stop_recording(self) -> Path:
        """Detach the session file from the stream and finish it; returns the file. The stream goes on."""
        rec = self.stream.recording
        if rec is None:
            raise StorageError("no capture is running")
        self.last_path = Path(rec.path)
        companion, self.companion = self.companion, None
        try:
            if companion is not None:
                try:
                    companion.stop()
                finally:
                    path = Path(self.stream.stop_recording())
            else:
                path = Path(self.stream.stop_recording())
        finally:
            self._stop_lsl()
            self._status_cache = None
        return path

    def _stop_lsl(self) -> None:
        if self._lsl_pub is not None:
            pub, self._lsl_pub = self._lsl_pub, None
            pub.stop()

    def mark(self, label: str) -> float:
        """Marker at the current session time; returns that time (s, on the file's clock)."""
        return self.stream.mark(label)

    def elapsed_s(self) -> float:
        """Seconds since the capture started."""
        rec = self.stream.recording
        return rec.elapsed_s if rec is not None else 0.0

    def file_bytes(self) -> int:
        """Size of the session file being written."""
        st = self._status()
        return st.file_size_bytes if st is not None else 0

    def capture_failed(self) -> bool:
        """True when the recording could not write (full disk, failed write): the capture must be stopped."""
        rec = self.stream.recording
        return rec is not None and rec.failed

    def capture_error(self) -> str | None:
        """The recording's write error, if writing failed."""
        st = self._status()
        return st.error if st is not None else None

    def _status(self):
        rec = self.stream.recording
        if rec is None:
            return None
        now = time.monotonic()
        if self._status_cache is None or now >= self._status_due:
            self._status_cache = stream_status(self.stream, rec)
            self._status_due = now + STATUS_EVERY_S
        return self._status_cache

    # ---------------------------------------------------------------------------------------------- polling

    def now_s(self) -> float:
        """Current time on the stream clock."""
        return self.stream.now_s()

    def views_of_kind(self, kind: str) -> list[KindView]:
        """The live views of the devices of one kind (for that kind's panel)."""
        return [v for v in list(self.views.values()) if v.kind == kind]

    def poll(self) -> None:
        """Take the samples that arrived since the last poll from every ring buffer into the live views."""
        mono = time.monotonic()
        workers = self.stream.workers
        for name, w in workers.items():
            if w.markers:  # another program's markers: recorded as markers, no live view
                self.marker_streams.add(name)
                continue
            v = self.views.get(name)
            if v is None or v.desc is not w.desc:  # a device that came (or came back): its view from its kind
                self.views[name] = v = view_for(w.desc, self.ring_s)
                self.layouts_version += 1
            ring = w.ring
            if ring.total_n == 0:
                continue
            since_s = self.now_s() - v.last_t_s + 0.25 if np.isfinite(v.last_t_s) else self.ring_s
            t, values = ring.snapshot(last_s=min(since_s, self.ring_s))
            new = t > v.last_t_s
            t, values = t[new], values[new]
            if len(t) == 0:
                continue
            v.last_t_s = float(t[-1])
            v.seen_n += len(t)
            v.rate_marks.append((mono, v.seen_n))
            while len(v.rate_marks) > 2 and mono - v.rate_marks[1][0] >= 1.0:
                v.rate_marks.pop(0)
            v.take(t, values)

    def _measured_rate_hz(self, v: KindView, mono: float) -> float:
        if len(v.rate_marks) < 2 or mono - v.rate_marks[-1][0] > model.STALL_AFTER_S:
            return 0.0
        (t0, n0), (t1, n1) = v.rate_marks[0], v.rate_marks[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def device_rows(self) -> list[model.DeviceRow]:
        """One :class:`~treadlab.lab.gui.model.DeviceRow` per rig device."""
        mono = time.monotonic()
        now_s = self.now_s()
        st = self._status()
        workers = self.stream.workers
        by_name = {d.name: d for d in st.devices} if st is not None else {}
        rows = []
        for name, cfg in self.configs.items():
            v = self.views.get(name)
            nominal = float(v.rate_hz if v is not None else (cfg.rate_hz or 0))
            kind = "markers" if name in self.marker_streams else v.kind if v is not None else (cfg.kind or "")
            side = v.side if v is not None else cfg.side
            lost = crc = 0
            drift = None
            if st is not None and name in by_name:
                d = by_name[name]
                reported, lost, crc = d.state, d.lost, d.crc_errors
                drift = d.drift_ppm if np.isfinite(d.drift_ppm) else None
            elif name in workers:
                w = workers[name]
                reported, lost, crc = w.state, w.lost_n, w.crc_errors
                fit = w.clock.fit
                drift = fit.drift_ppm if fit is not None and fit.n_points > 2 else None
            elif name in self._user_off or (st is not None):
                reported = "disconnected"
            elif name in self.stream.errors:
                reported = "lost"
            else:
                reported = "connecting"
            reported = _STATE_NAMES.get(reported, reported)
            age_s = now_s - v.last_t_s if v is not None and np.isfinite(v.last_t_s) else np.inf
            if reported == "streaming" and v is not None and not np.isfinite(v.last_t_s):
                age_s = 0.0  # just started: no verdict before the first poll saw samples
            if name in self.marker_streams:
                age_s = 0.0  # markers come when they come: silence is no stall
            state = model.classify_state(reported, age_s)
            rate = self._measured_rate_hz(v, mono) if v is not None else 0.0
            rows.append(model.DeviceRow(name, kind, side, state, rate, nominal, int(lost), int(crc), drift,
                                        float(age_s) if np.isfinite(age_s) else 0.0))
        return rows

    def device_error(self, name: str) -> str | None:
        """Why a device could not be connected (None when it is fine)."""
        return self.stream.errors.get(name)
