"""The desktop app's view of the acquisition: preview streaming, capture control, polled live data (no Qt).

Two modes, one interface:

* **preview** (nothing recorded): every device streams through the acquisition's own
  :class:`~treadlab.acquisition.worker.DeviceWorker` (reader thread, session clock, reconnection, ring buffer)
  into a :class:`PreviewSink` that writes nothing, so the technician sees every device before pressing Record;
* **recording**: a :class:`~treadlab.acquisition.recorder.Recorder` owns the devices and writes the session file.

Switching stops one and starts the other (the devices are re-identified; the live view blinks for well under a
second). :meth:`LiveSource.poll` is called by the GUI timer: it takes only the samples that arrived since the
previous poll from the acquisition's ring buffers, turns them into total force and moments (one matrix product)
and keeps them in small rings of its own, so a frame costs the same whatever the sensel count.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from treadlab.acquisition.recorder import Recorder
from treadlab.acquisition.ring import RingBuffer
from treadlab.acquisition.worker import DeviceWorker, connect
from treadlab.errors import DeviceError, LabError, StorageError
from treadlab.lab.gui import model
from treadlab.lab.gui.device_view import DeviceView, PreviewSink, view_of
from treadlab.lab.gui.live_data import cop_from_sums, current_step_slice, step_threshold_n

#: Worker states mapped to what the devices panel shows.
_STATE_NAMES = {"connected": "connecting", "failed": "lost", "stopped": "disconnected"}
STATUS_EVERY_S = 1.0  # Recorder.status() copies 2 s of every ring: once a second is enough for counters


class LiveSource:
    """Devices of a rig for the desktop app: preview, capture, markers and polled live data.

    Parameters
    ----------
    rig : treadlab.lab.rig.Rig
        The validated rig (devices and the text stored in session files).
    title : str
        Shown in the window title.
    ring_s : float
        Seconds of live data kept (the force view shows 5).

    Notes
    -----
    Threads: the acquisition's reader threads (one per device, owned by the preview workers or by the
    :class:`Recorder`) and short-lived connector threads (one per connect request, joined by :meth:`close`).
    Nothing here runs on the GUI thread except :meth:`poll` and the capture control calls.
    """

    def __init__(self, rig, title: str = "", ring_s: float = 10.0, lsl: bool = False) -> None:
        self.rig = rig
        self.lsl = lsl  # publish captures on Lab Streaming Layer (``lab gui --lsl``)
        self._lsl_pub = None
        self.title = title or str(getattr(rig, "path", "rig"))
        self.ring_s = ring_s
        self.configs = {cfg.name: cfg for cfg in rig.devices}
        self.views: dict[str, DeviceView] = {}  # devices with samples (not the string streams: nothing to draw)
        self.marker_streams: set[str] = set()  # external LSL string streams: their samples are session markers
        self.layouts_version = 0
        self.recorder: Recorder | None = None
        self.recorder_options: dict = {}  # extra Recorder arguments (ping_interval_s, min_free_bytes, ...)
        self.last_path: Path | None = None  # the file of the last capture, also when stopping it failed
        self.recording_started_s = 0.0
        self.sink = PreviewSink()
        self._workers: dict[str, DeviceWorker] = {}
        self._errors: dict[str, str] = {}
        self._user_off: set[str] = set()
        self._connectors: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._preview_stop = threading.Event()  # ends the connector threads (capture starting, app closing)
        self.retry_s = 1.0
        self._epoch_ns = time.monotonic_ns()
        self._status_cache = None
        self._status_due = 0.0

    # ------------------------------------------------------------------------------------------------ lifecycle

    def open(self) -> LiveSource:
        """Start connecting every device of the rig in the background (preview); nothing once closed."""
        if not self._closing.is_set():
            self._spawn_connect(list(self.configs))
        return self

    def close(self, timeout_s: float = 15.0) -> None:
        """Stop a running capture cleanly, stop the preview, join every thread (checked)."""
        self._closing.set()
        self._preview_stop.set()
        try:
            if self.recorder is not None:
                self.stop_recording()
        finally:
            self._join_connectors(timeout_s)
            self._stop_preview()

    def _join_connectors(self, timeout_s: float) -> None:
        for th in list(self._connectors):
            th.join(timeout_s)
            if th.is_alive():
                raise RuntimeError(f"{th.name} did not finish within {timeout_s} s")
        self._connectors.clear()

    def __enter__(self) -> LiveSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------- preview

    def _spawn_connect(self, names: list[str]) -> None:
        self._connectors = [t for t in self._connectors if t.is_alive()]
        th = threading.Thread(target=self._connect_all, args=(names,), name=f"connect:{','.join(names)}")
        self._connectors.append(th)
        th.start()

    def _connect_all(self, names: list[str]) -> None:
        """Connect each device and start its preview worker; retry the ones that fail every ``retry_s``
        (a device plugged in after the app started appears by itself) until the preview stops."""
        pending = list(names)
        while pending and not self._preview_stop.is_set():
            for name in list(pending):
                if self._preview_stop.is_set():
                    return
                if name in self._user_off or name in self._workers:
                    pending.remove(name)
                    continue
                try:
                    dev = connect(self.configs[name])
                except LabError as exc:
                    self._errors[name] = str(exc)
                    continue
                pending.remove(name)
                worker = DeviceWorker(self.configs[name], dev, self._epoch_ns, self.sink, [], self.ring_s)
                with self._lock:
                    if self._preview_stop.is_set() or name in self._user_off or name in self._workers:
                        dev.close()
                        continue
                    if worker.markers:  # another program's markers: recorded as markers, no live view
                        self.marker_streams.add(name)
                    else:
                        self.views[name] = view_of(name, dev, self.ring_s)
                    self._errors.pop(name, None)
                    self._workers[name] = worker
                    self.layouts_version += 1
                worker.start()
            if pending:
                self._preview_stop.wait(self.retry_s)

    def _stop_preview(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, {}
        problems = []
        for w in workers.values():
            try:
                w.stop()
            except RuntimeError as exc:
                problems.append(str(exc))
        if problems:
            raise RuntimeError("; ".join(problems))

    def connect(self, name: str) -> None:
        """Connect a device the technician disconnected (in the background)."""
        if self.recorder is not None:
            raise DeviceError(f"{name}: devices cannot be switched during a capture; stop it first")
        self._user_off.discard(name)
        if name not in self._workers:
            self._spawn_connect([name])

    def disconnect(self, name: str) -> None:
        """Stop streaming from one device and release its port (preview only)."""
        if self.recorder is not None:
            raise DeviceError(f"{name}: devices cannot be switched during a capture; stop it first")
        self._user_off.add(name)
        with self._lock:
            worker = self._workers.pop(name, None)
        if worker is not None:
            worker.stop()

    # ---------------------------------------------------------------------------------------------- capture

    @property
    def recording(self) -> bool:
        """True while a capture is being written."""
        return self.recorder is not None

    def start_recording(self, path: str | Path, metadata: dict) -> None:
        """Stop the preview and start a capture of every connected device into ``path``.

        Raises
        ------
        StorageError, DeviceError
            The file cannot be created or a device refused; the preview is restarted.
        """
        if self.recorder is not None:
            raise StorageError("a capture is already running")
        path = Path(path)
        if not path.parent.is_dir():
            raise StorageError(f"output folder {path.parent} does not exist")
        names = [n for n in self.configs if n not in self._user_off]
        if not names:
            raise DeviceError("no device is connected")
        self._preview_stop.set()
        self._join_connectors(15.0)
        self._stop_preview()
        rec = Recorder([self.configs[n] for n in names], metadata, str(path), self.rig.text, ring_s=self.ring_s,
                       **self.recorder_options)
        try:
            if self.lsl:
                from treadlab.acquisition.lsl import RecorderLsl

                self._lsl_pub = RecorderLsl(rec).start()
            rec.open()
            rec.start()
        except LabError:
            self._stop_lsl()
            self._restart_preview()
            raise
        self.recorder = rec
        self._reset_time_base(rec.start_ns)
        self.recording_started_s = 0.0

    def stop_recording(self) -> Path:
        """Stop the capture (the file is finished by the recorder) and go back to preview; returns the file."""
        rec = self.recorder
        if rec is None:
            raise StorageError("no capture is running")
        self.recorder = None
        self.last_path = Path(rec.path)
        try:
            path = Path(rec.stop())
        finally:
            self._stop_lsl()
            if not self._closing.is_set():
                self._restart_preview()
        return path

    def _stop_lsl(self) -> None:
        if self._lsl_pub is not None:
            pub, self._lsl_pub = self._lsl_pub, None
            pub.stop()

    def mark(self, label: str) -> float:
        """Marker at the current session time; returns that time (s)."""
        if self.recorder is None:
            raise StorageError("markers need a running capture")
        return self.recorder.mark(label)

    def elapsed_s(self) -> float:
        """Seconds since the capture started."""
        return self.recorder.elapsed_s if self.recorder is not None else 0.0

    def file_bytes(self) -> int:
        """Size of the session file being written."""
        st = self._status()
        return st.file_size_bytes if st is not None else 0

    def capture_failed(self) -> bool:
        """True when the recorder could not write (full disk, failed write): the capture must be stopped."""
        return self.recorder is not None and self.recorder.failed

    def capture_error(self) -> str | None:
        """The recorder's write error, if writing failed."""
        st = self._status()
        return st.error if st is not None else None

    def _restart_preview(self) -> None:
        self._preview_stop.clear()
        self._reset_time_base(time.monotonic_ns())
        self._spawn_connect([n for n in self.configs if n not in self._user_off])

    def _reset_time_base(self, epoch_ns: int) -> None:
        with self._lock:
            self._epoch_ns = epoch_ns
            for v in self.views.values():
                if v.derived is not None:
                    v.derived = RingBuffer(*v.derived_spec)
                v.recent = RingBuffer(*v.recent_spec)
                v.latest = None
                v.last_t_s = -np.inf
                v.rate_marks.clear()
                v.seen_n = 0
            self._status_cache = None

    def _status(self):
        rec = self.recorder
        if rec is None:
            return None
        now = time.monotonic()
        if self._status_cache is None or now >= self._status_due:
            self._status_cache = rec.status()
            self._status_due = now + STATUS_EVERY_S
        return self._status_cache

    # ---------------------------------------------------------------------------------------------- polling

    def now_s(self) -> float:
        """Current time on the session clock of the running preview or capture."""
        return (time.monotonic_ns() - self._epoch_ns) / 1e9

    def _ring(self, name: str) -> RingBuffer | None:
        if self.recorder is not None:
            return self.recorder.ring(name) if name in self.recorder.names else None
        w = self._workers.get(name)
        return w.ring if w is not None else None

    def poll(self) -> None:
        """Take the samples that arrived since the last poll from every ring buffer into the live caches."""
        mono = time.monotonic()
        for name, v in list(self.views.items()):
            ring = self._ring(name)
            if ring is None or ring.total_n == 0:
                continue
            since_s = self.now_s() - v.last_t_s + 0.25 if np.isfinite(v.last_t_s) else self.ring_s
            t, values = ring.snapshot(last_s=min(since_s, self.ring_s))
            new = t > v.last_t_s
            t, values = t[new], values[new]
            if len(t) == 0:
                continue
            v.last_t_s = float(t[-1])
            v.latest = values[-1]
            v.seen_n += len(t)
            v.rate_marks.append((mono, v.seen_n))
            while len(v.rate_marks) > 2 and mono - v.rate_marks[1][0] >= 1.0:
                v.rate_marks.pop(0)
            if v.geometry is not None:
                v.derived.append(t, np.column_stack([t, v.geometry.sums(values)]))
            v.recent.append(t[-v.recent.capacity_n:], values[-v.recent.capacity_n:])

    def _measured_rate_hz(self, v: DeviceView, mono: float) -> float:
        if len(v.rate_marks) < 2 or mono - v.rate_marks[-1][0] > model.STALL_AFTER_S:
            return 0.0
        (t0, n0), (t1, n1) = v.rate_marks[0], v.rate_marks[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def device_rows(self) -> list[model.DeviceRow]:
        """One :class:`~treadlab.lab.gui.model.DeviceRow` per rig device."""
        mono = time.monotonic()
        now_s = self.now_s()
        st = self._status()
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
            elif name in self._workers:
                w = self._workers[name]
                reported, lost, crc = w.state, w.lost_n, w.crc_errors
                fit = w.clock.fit
                drift = fit.drift_ppm if fit is not None and fit.n_points > 2 else None
            elif name in self._user_off or (st is not None):
                reported = "disconnected"
            elif name in self._errors:
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
        return self._errors.get(name)

    def _insole(self, side: str) -> DeviceView | None:
        for v in list(self.views.values()):  # a connector thread may add one meanwhile
            if v.kind == "insole" and v.side == side:
                return v
        return None

    def insole_layouts(self) -> dict[str, np.ndarray]:
        """Sensel positions (mm) of the left and right insole, as far as they are connected."""
        return {s: v.geometry.positions_mm for s in ("left", "right") if (v := self._insole(s)) is not None}

    def foot_length_mm(self, side: str) -> float:
        """Insole length of one side (NaN when not connected)."""
        v = self._insole(side)
        return v.foot_length_mm if v is not None else float("nan")

    def insole_window(self, side: str, last_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The last seconds of one foot: time (s), total force (N), moment along the foot (N mm)."""
        v = self._insole(side)
        if v is None or v.derived.total_n == 0:
            return None
        _, d = v.derived.snapshot(last_s=last_s)
        return d[:, 0], d[:, 1], d[:, 3]

    def force_trace(self, side: str, window_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Time (s) and total force (N) of one foot over the last ``window_s``."""
        w = self.insole_window(side, window_s)
        return None if w is None else (w[0], w[1])

    def insole_frame(self, side: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray] | None:
        """Newest calibrated sensel values of one foot, the COP trace (mm) of its current step, and the peak
        of each sensel over the last half second (the current step's footprint)."""
        v = self._insole(side)
        if v is None or v.latest is None:
            return None
        _, d = v.derived.snapshot(last_s=1.0)
        s = current_step_slice(d[:, 1], step_threshold_n(d[:, 1]))
        cop = None if s is None else cop_from_sums(d[s, 1:4])
        _, recent = v.recent.snapshot()
        peak = recent.max(axis=0) if len(recent) else v.latest
        return v.geometry.calibrated(v.latest), cop, v.geometry.calibrated(peak)

    def mat_frames(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Newest mat frame and the footprints of the last seconds, both calibrated, shape (rows, cols)."""
        v = next((v for v in list(self.views.values()) if v.kind == "mat"), None)
        if v is None or v.latest is None:
            return None
        _, recent = v.recent.snapshot()
        peak = recent.max(axis=0) if len(recent) else v.latest

        def cal(raw: np.ndarray) -> np.ndarray:
            out = (raw.astype(np.float32) - v.mat_offset) * v.mat_gain
            np.maximum(out, 0.0, out=out)
            return out.reshape(v.shape[-2:]) if len(v.shape) >= 2 else out.reshape(1, -1)

        return cal(v.latest), cal(peak)
