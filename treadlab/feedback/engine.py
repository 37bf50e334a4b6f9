"""The feedback engine: step events in, cues out, every cue and phase recorded on the session clock.

:class:`FeedbackEngine` owns two threads, a clock thread and a calibration thread. Insole batches are handed to
:meth:`FeedbackEngine.put` by the recorder's reader threads, which turn them into step events
(:class:`~treadlab.analysis.online.OnlineSteps`) right there, under the engine's lock: no hop through a queue to
another thread, whose wake-up and GIL hand-over made the tail of the latency (docs/feedback.md, "Latency"). As
soon as the protocol's target metric of a step is known, the reader thread decides the cue (phase on, off or
faded; in band or not), plays it on the sink and hands a cue row to the ``rows`` callable (the session file's
``/feedback/cues``). The clock thread does what depends on time alone: it starts the phases (a
``/feedback/phases`` row and a ``phase: <name>`` marker each), sets a band taken from the baseline at the end of
the baseline phase, and schedules the metronome's beats ahead of time at their exact instants (so they do not
drift). Cues stop when no step has been seen for ``silence_after_s`` (1.5 s), and :meth:`mute` is honoured. The
detectors' periodic refits run in the calibration thread.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from treadlab.analysis.imu_online import IMU_METRIC_STAGE, ImuChannels, OnlineImuMetrics
from treadlab.analysis.online import METRIC_STAGE, OnlineSteps, StepEvent
from treadlab.feedback import sounds
from treadlab.feedback.protocol import Protocol
from treadlab.feedback.sinks import AudioSink, NullSink

FOOT_CODE = {"left": 0, "right": 1}
NO_FOOT = 255
NOT_APPLICABLE = 255
#: Beats are handed to the sink this long before they are due.
BEAT_LOOKAHEAD_S = 0.25
#: Period of the clock thread (phases, baseline band, metronome beats; steps are handled as their samples come).
TICK_S = 0.005


@dataclass
class FootInput:
    """How one insole's raw values become total force and moment along the foot: ``raw @ weights - const``."""

    device: str
    foot: str
    weights: np.ndarray  # (n_values, 2): total force (N), moment y (N mm)
    const: np.ndarray  # (2,)
    foot_length_mm: float


@dataclass
class Cue:
    """One cue as recorded (see ``docs/file-format.md``, ``/feedback/cues``) plus what the screen needs."""

    time: float
    ic: float
    foot: int
    value: float
    in_band: int
    phase: int
    decided_s: float = float("nan")  # session time the engine decided it
    data_s: float = float("nan")  # newest sample it rests on
    arrived_s: float = float("nan")  # host receive time of the batch that completed it
    sound: bool = False


class FeedbackEngine:
    """Owner of the feedback thread of one capture.

    Parameters
    ----------
    protocol : Protocol
    feet : list of FootInput
        The two insoles (their contacts are the steps of every target metric).
    imus : list of ImuChannels, optional
        The rig's IMUs, for an IMU target metric (``pelvic_drop_deg``: the pelvis; ``pta_g``: the tibiae):
        :class:`~treadlab.analysis.imu_online.OnlineImuMetrics` evaluates it at the insoles' step events.
    norm_n : float
        Body weight (N) for the loading metrics.
    clock : callable
        Session time now (s), e.g. ``Recorder.elapsed_s``.
    sink : AudioSink, optional
        Default: no audio (screen cues only).
    rows : callable, optional
        ``rows(group, columns)`` appends rows to ``feedback/cues``, ``feedback/phases`` or ``feedback/band``.
    marker : callable, optional
        ``marker(label, time_s)`` adds a session marker.
    silence_after_s : float
        No cue (and no beat) once no step was seen for this long.

    Attributes
    ----------
    cues_ : list of Cue
        Every cue emitted.
    steps_ : list of (phase, foot, ic_s, value, in_band)
        Every step whose target value was evaluated.
    errors_ : int
        Exceptions caught in the thread (each is also kept in :attr:`last_error_`).
    """

    def __init__(self, protocol: Protocol, feet: list[FootInput], norm_n: float, clock: Callable[[], float],
                 sink: AudioSink | None = None, rows: Callable[[str, dict], object] | None = None,
                 marker: Callable[[str, float], object] | None = None, silence_after_s: float = 1.5,
                 imus: list[ImuChannels] | None = None) -> None:
        self.protocol = protocol
        self.feet = {f.device: f for f in feet}
        self.clock = clock
        self.sink = sink or NullSink()
        self.rows = rows
        self.marker = marker
        self.silence_after_s = silence_after_s
        # an IMU target: its values come from the IMUs at the insoles' step events (contact or toe-off)
        self.imu = OnlineImuMetrics(protocol.metric, imus or []) if protocol.metric in IMU_METRIC_STAGE else None
        self.stage = "imu" if self.imu is not None else METRIC_STAGE[protocol.metric]
        # only the target's stage is computed (contact events are always given: the cadence and the silence)
        stages = {IMU_METRIC_STAGE[protocol.metric]} - {"contact"} if self.imu is not None else {self.stage}
        self.online = {f.foot: OnlineSteps(f.foot, f.foot_length_mm, norm_n, stages=stages)
                       for f in feet}
        if "left" in self.online and "right" in self.online:
            OnlineSteps.pair(self.online["left"], self.online["right"])
        self.cues_: list[Cue] = []
        self.steps_: list[tuple] = []
        self.errors_ = 0
        self.last_error_: BaseException | None = None
        #: Called (from the engine's thread) with the :class:`Cue` of every step the runner may see (cued phases,
        #: not paused): the runner screen.
        self.listeners: list[Callable[[Cue], None]] = []
        self._work = threading.Lock()  # the detectors and the cue state: reader threads and the clock thread
        self._cal_q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._cal_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._muted = threading.Event()
        self._paused = threading.Event()
        self._started_phase = -1
        self._count: dict[tuple[int, str], int] = {}
        self._last_ic = -math.inf
        self._beat_k: dict[int, int] = {}
        self._baseline_done = protocol.baseline_phase is None
        self._baseline_cadence = math.nan
        self._contacts: list[float] = []
        self._lock = threading.Lock()
        self.cpu_s_ = 0.0

    # ------------------------------------------------------------------ control (any thread)

    def put(self, batch) -> None:
        """Take a recorder batch (``name``, ``time_s``, ``values``); others than the insoles (and the IMUs of an IMU
        target) are ignored.

        Called from a reader thread, it does the batch's work at once (a few hundred microseconds: the force map
        and the detector's new samples; a step's metric when it becomes known, and its cue), so a cue leaves in
        the thread that read the sample completing its metric. Errors are counted, never raised.
        """
        if (batch.name not in self.feet and (self.imu is None or batch.name not in self.imu.devices)) \
                or not len(batch.time_s):
            return
        host = getattr(batch, "host_time_s", None)
        arrived_s = float(host[-1]) if host is not None and len(host) else self.clock()
        c0 = time.thread_time()
        with self._work:
            try:
                self._feed(batch.name, batch.time_s, batch.values, arrived_s)
            except Exception as exc:  # noqa: BLE001 - a bug in feedback must not stop the recording
                self.errors_ += 1
                self.last_error_ = exc
            self.cpu_s_ += time.thread_time() - c0

    def notify_contact(self, ic_s: float) -> None:
        """A contact was seen (the engine calls it for every live contact; a step source of its own may too)."""
        self._last_ic = max(self._last_ic, ic_s)
        self._contacts.append(ic_s)

    def tick(self) -> None:
        """Start due phases, set a baseline band when due, schedule metronome beats (the thread calls it)."""
        self._tick()

    def mute(self, on: bool = True) -> None:
        """The technician's mute: no sound while on (screen cues go on); a sound playing stops at once when the
        sink can drop what it has queued (``clear``).
        """
        if on:
            self._muted.set()
            clear = getattr(self.sink, "clear", None)
            if clear is not None:
                clear()
        else:
            self._muted.clear()

    @property
    def muted(self) -> bool:
        """True while muted."""
        return self._muted.is_set()

    def pause(self, on: bool = True) -> None:
        """Pause cueing (steps are still evaluated and recorded in the status, no cue is emitted)."""
        if on:
            self._paused.set()
        else:
            self._paused.clear()

    def start(self) -> None:
        """Start the engine's clock thread and its calibration thread (the detectors' periodic refits run there, off the
        path from a sample to its cue).
        """
        for o in self.online.values():
            o.calibrator = self._request_calibration
        self._cal_thread = threading.Thread(target=self._run_calibrations, name="feedback-calibration")
        self._cal_thread.start()
        self._thread = threading.Thread(target=self._run, name="feedback-engine")
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop and join both threads (checked); the sink is not closed (its owner closes it)."""
        self._stop.set()
        for attr, what in (("_thread", "feedback engine"), ("_cal_thread", "feedback calibration")):
            th = getattr(self, attr, None)
            if th is not None:
                th.join(timeout_s)
                if th.is_alive():
                    raise RuntimeError(f"{what} thread did not stop")
                setattr(self, attr, None)

    def _request_calibration(self, foot: OnlineSteps, t: np.ndarray, f: np.ndarray, with_cutoff: bool) -> None:
        self._cal_q.put((foot, t, f, with_cutoff))

    def _run_calibrations(self) -> None:
        while not self._stop.is_set():
            try:
                foot, t, f, with_cutoff = self._cal_q.get(timeout=0.05)
            except queue.Empty:
                continue
            c0 = time.thread_time()
            try:
                foot.apply(foot.calibration(t, f, with_cutoff))
            except Exception as exc:  # noqa: BLE001 - a failed refit keeps the previous parameters
                self.errors_ += 1
                self.last_error_ = exc
            self.cpu_s_ += time.thread_time() - c0

    # ------------------------------------------------------------------ status

    def phase_index(self, now_s: float | None = None) -> int:
        """Current phase (-1 after the protocol's end)."""
        return self.protocol.phase_at(self.clock() if now_s is None else now_s)

    def in_band_share(self, phase: int) -> float:
        """Share of the phase's evaluated steps in band (NaN without any)."""
        with self._lock:
            flags = [s[4] for s in self.steps_ if s[0] == phase and s[4] != NOT_APPLICABLE]
        return float(np.mean(flags)) if flags else float("nan")

    def status_line(self) -> str:
        """``phase feedback (on)  1:23 left  in band 64 % of 80 steps  target strike_index_pct >= 34``."""
        now = self.clock()
        i = self.phase_index(now)
        p = self.protocol
        if i < 0:
            return f"  feedback: protocol {p.name} finished"
        ph = p.phases[i]
        left = max(0.0, ph.stop_s - now)
        on = "on" if ph.share >= 1 else ("off" if ph.share <= 0 else f"{ph.share:.0%}")
        share = self.in_band_share(i)
        n = sum(1 for s in self.steps_ if s[0] == i)
        band = f"in band {share:.0%} of {n} steps" if math.isfinite(share) else f"{n} steps"
        mute = "  MUTED" if self.muted else ""
        return (f"  feedback: phase {ph.name} ({on})  {int(left // 60)}:{int(left % 60):02d} left  {band}  "
                f"target {p.metric} {p.band_text()}{mute}{self._imu_status()}")

    def _imu_status(self) -> str:
        """``  imu: pelvis_imu stand still`` while an IMU of the target is not aligned yet (no values until then)."""
        if self.imu is None:
            return ""
        waiting = [f"{d} {self.imu.sensor_state(d)}" for d in sorted(self.imu.devices)
                   if self.imu.sensor_state(d) != "ready"]
        return f"  imu: {', '.join(waiting)}" if waiting else ""

    # ------------------------------------------------------------------ thread

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            c0 = time.thread_time()
            with self._work:
                try:
                    self._tick()
                except Exception as exc:  # noqa: BLE001 - a bug in feedback must not stop the recording
                    self.errors_ += 1
                    self.last_error_ = exc
                self.cpu_s_ += time.thread_time() - c0

    def _feed(self, device: str, time_s: np.ndarray, values: np.ndarray, arrived_s: float) -> None:
        if self.imu is not None and device in self.imu.devices:
            for ev in self.imu.feed(device, time_s, values):  # a few per second
                self._on_step(ev, arrived_s)
            return
        fi = self.feet[device]
        raw = np.asarray(values, dtype=np.float64).reshape(len(time_s), -1)
        d = raw @ fi.weights - fi.const
        for ev in self.online[fi.foot].feed(time_s, d[:, 0], d[:, 1]):  # a few per second
            if ev.stage == "contact":
                self.notify_contact(ev.ic_s)
            if self.imu is not None:
                for done in self.imu.step(ev):
                    self._on_step(done, arrived_s)
            elif ev.stage == self.stage:
                self._on_step(ev, arrived_s)

    def _tick(self) -> None:
        now = self.clock()
        i = self.protocol.phase_at(now)
        while self._started_phase < (i if i >= 0 else len(self.protocol.phases) - 1):
            self._start_phase(self._started_phase + 1)
        if not self._baseline_done:
            self._maybe_set_baseline(now)
        if self.protocol.cue_kind == "metronome" and i >= 0:
            self._schedule_beats(i, now)

    def _start_phase(self, i: int) -> None:
        self._started_phase = i
        ph = self.protocol.phases[i]
        if self.rows is not None:
            self.rows("feedback/phases", {"start": np.array([ph.start_s]), "stop": np.array([ph.stop_s]),
                                          "name": np.array([ph.name.encode("utf-8")], dtype="S64")})
        if self.marker is not None:
            self.marker(f"phase: {ph.name}", ph.start_s)

    def _maybe_set_baseline(self, now: float) -> None:
        p = self.protocol
        bi = [ph.name for ph in p.phases].index(p.baseline_phase)
        if now < p.phases[bi].stop_s:
            return
        self._baseline_done = True
        with self._lock:
            vals = [s[3] for s in self.steps_ if s[0] == bi and math.isfinite(s[3])]
        if vals and p.relative:
            p.set_baseline(float(np.median(vals)))
            if self.rows is not None:
                self.rows("feedback/band", {"time": np.array([now]), "low": np.array([_f(p.low)]),
                                            "high": np.array([_f(p.high)])})
        cad = self._baseline_cadence_spm(bi)
        self._baseline_cadence = cad

    def _baseline_cadence_spm(self, bi: int) -> float:
        ph = self.protocol.phases[bi]
        ics = np.sort(np.array(self._contacts))
        ics = ics[(ics >= ph.start_s) & (ics < ph.stop_s)]
        return float(60.0 * (len(ics) - 1) / (ics[-1] - ics[0])) if len(ics) >= 4 else math.nan

    def _on_step(self, ev: StepEvent, arrived_s: float = math.nan) -> None:
        p = self.protocol
        i = p.phase_at(ev.ic_s)
        if i < 0:
            return
        value = float(ev.values.get(p.metric, math.nan))
        flag = p.in_band(value)
        with self._lock:
            self.steps_.append((i, ev.foot, ev.ic_s, value, flag))
        n = self._count.get((i, ev.foot), 0)
        self._count[(i, ev.foot)] = n + 1
        ph = p.phases[i]
        now = self.clock()
        cue = Cue(math.nan, ev.ic_s, FOOT_CODE.get(ev.foot, NO_FOOT), value, flag, i, now, ev.data_s, arrived_s)
        show = ph.cued(n) and not self._paused.is_set()  # the runner sees this step's value
        emit = show and p.cue_kind != "metronome"
        if emit and p.cue_kind == "bandwidth" and flag != 0:
            emit = False
        if emit:
            pcm = None
            if p.cue_kind == "step-tone" and flag != NOT_APPLICABLE:
                pcm = sounds.step_tone(flag == 1, p.tone_ms, p.volume)
            elif p.cue_kind == "bandwidth":
                pcm = sounds.bandwidth_tone(sounds.excess_level(value, p.low, p.high), p.tone_ms, p.volume)
            cue.time = now
            if pcm is not None and not self.muted:
                t_sound = self.sink.play(now, pcm)
                if math.isfinite(t_sound):
                    cue.time = t_sound + (0.0 if not math.isfinite(self.sink.latency_ms) else
                                          self.sink.latency_ms * 1e-3)
                    cue.sound = True
            self._emit(cue)
        if show:
            for cb in list(self.listeners):
                cb(cue)

    def _emit(self, cue: Cue) -> None:
        self.cues_.append(cue)
        if self.rows is not None:
            self.rows("feedback/cues", {"time": np.array([cue.time]), "ic": np.array([cue.ic]),
                                        "foot": np.array([cue.foot], np.uint8),
                                        "value": np.array([cue.value]),
                                        "in_band": np.array([cue.in_band], np.uint8),
                                        "phase": np.array([cue.phase], np.uint8)})

    # ------------------------------------------------------------------ metronome

    def metronome_spm(self, i: int) -> float:
        """Beat rate at the start of phase ``i`` (NaN while it depends on a baseline not measured yet)."""
        p = self.protocol
        ph = p.phases[i]
        if ph.metronome_spm is not None:
            return ph.metronome_spm
        pct = ph.metronome_pct_of_baseline or (p.metronome_pct_of_baseline if p.metronome_spm is None else None)
        if pct is not None:
            return self._baseline_cadence * pct / 100.0
        return p.metronome_spm if p.metronome_spm is not None else math.nan

    def beat_time(self, i: int, k: int) -> float:
        """Session time of beat ``k`` (from 0) of phase ``i``: closed form, so beats never drift.

        With a ramp ``r`` (steps/min per min) the rate is ``spm0 + r tau / 60`` at ``tau`` s into the phase and
        beat ``k`` falls where the beats counted so far, ``(spm0 tau + r tau^2 / 120) / 60``, equal ``k``.
        """
        spm0 = self.metronome_spm(i)
        r = self.protocol.ramp_spm_per_min
        start = self.protocol.phases[i].start_s
        if r == 0.0:
            return start + 60.0 * k / spm0
        a = r / 120.0
        return start + (-spm0 + math.sqrt(spm0 * spm0 + 4.0 * a * 60.0 * k)) / (2.0 * a)

    def _schedule_beats(self, i: int, now: float) -> None:
        ph = self.protocol.phases[i]
        if not ph.feedback or self._paused.is_set() or not math.isfinite(self.metronome_spm(i)):
            return
        k = self._beat_k.get(i, 0)
        while True:  # one iteration per beat (a few per second)
            t = self.beat_time(i, k)
            if t >= ph.stop_s or t > now + BEAT_LOOKAHEAD_S:
                break
            self._beat_k[i] = k + 1
            # no beat once the runner has stopped (no contact for silence_after_s before the beat)
            if t >= now - 0.05 and t - self._last_ic < self.silence_after_s and ph.cued(k) and not self.muted:
                t_sound = self.sink.play(t, sounds.beat(self.protocol.volume))
                lat = self.sink.latency_ms * 1e-3 if math.isfinite(self.sink.latency_ms) else 0.0
                cue = Cue(t_sound + lat if math.isfinite(t_sound) else t, math.nan, NO_FOOT, math.nan,
                          NOT_APPLICABLE, i, now, sound=math.isfinite(t_sound))
                self._emit(cue)
            k += 1


def _f(x: float | None) -> float:
    return math.nan if x is None else float(x)
