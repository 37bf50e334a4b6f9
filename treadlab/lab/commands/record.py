"""``lab record --rig RIG``: capture every device of a rig into one session file.

Opens and identifies every device (refusing to start, naming the device, when one is missing or wrong), checks
the output folder, records until ``--duration`` ends, Ctrl-C or SIGTERM, stops cleanly and prints the file's path
on standard output. While recording, a status line per device goes to standard error, and every line typed on
standard input becomes a marker.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
import threading

from treadlab.acquisition.capture import CaptureSession, session_path
from treadlab.errors import ConfigError, StorageError
from treadlab.lab.rig import load_rig

NAME = "record"
HELP = "record a capture from every device of a rig into a session file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lab record``."""
    parser.add_argument("--rig", required=True, help="rig file (TOML) or the name of a shipped example rig")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    parser.add_argument("--out", metavar="DIR_OR_FILE",
                        help="output folder (default: sessions/) or a .h5 file; never overwritten")
    parser.add_argument("--participant", help="participant id")
    parser.add_argument("--condition", help="condition, e.g. 'baseline' or 'new shoe'")
    parser.add_argument("--body-mass", type=float, metavar="KG", help="body mass in kg")
    parser.add_argument("--speed", type=float, metavar="MPS", help="treadmill speed in m/s")
    parser.add_argument("--shoe", help="shoe")
    parser.add_argument("--note", help="free-text note")
    parser.add_argument("--quiet", action="store_true", help="no live status lines")
    parser.add_argument("--feedback", metavar="PROTOCOL",
                        help="run a feedback protocol (a TOML file or a shipped preset: five-minute, 2x5+5, "
                             "cadence-ramp, faded); the capture ends with it unless --duration says otherwise")
    parser.add_argument("--audio-wav", metavar="CUES.wav",
                        help="with --feedback: render the cue sounds into this WAV file (sample 0 = session time "
                             "0) instead of playing them on the sound device")
    parser.add_argument("--lsl", action="store_true",
                        help="also publish every device and the markers as Lab Streaming Layer outlets")


class _Screen:
    """Status lines on standard error: redrawn in place on a terminal, every 5 s otherwise."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.drawn = 0
        self.calls = 0

    def __call__(self, lines: list[str]) -> None:
        self.calls += 1
        if self.tty:
            if self.drawn:
                self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = len(lines)
        elif self.calls % 5 != 1:
            return
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    """Record; returns 0 after a clean stop (duration, Ctrl-C, SIGTERM)."""
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be positive, got {args.duration:g}")
    rig = load_rig(args.rig)
    meta = dict(rig.session)
    for key, value in (("participant", args.participant), ("condition", args.condition),
                       ("body_mass_kg", args.body_mass), ("treadmill_speed_mps", args.speed),
                       ("shoe", args.shoe), ("notes", args.note)):
        if value is not None:
            meta[key] = value
    companion = None
    if getattr(args, "audio_wav", None) and not getattr(args, "feedback", None):
        raise ConfigError("--audio-wav needs --feedback PROTOCOL")
    if getattr(args, "feedback", None):
        from treadlab.feedback.protocol import load_protocol

        protocol = load_protocol(args.feedback)
        if args.duration is None:
            args.duration = protocol.duration_s
    path = session_path(args.out, meta.get("participant"), meta.get("condition"))
    if getattr(args, "feedback", None):
        from treadlab.feedback.device_sink import open_sink
        from treadlab.feedback.live import FeedbackRun

        sink = open_sink(args.audio_wav, lambda msg: print(f"lab record: {msg}", file=sys.stderr, flush=True))
        companion = FeedbackRun(protocol, sink)
    stop = threading.Event()
    handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handlers[sig] = signal.signal(sig, lambda *_: stop.set())
    markers_fd = None
    try:
        if sys.stdin is not None and not sys.stdin.closed:
            markers_fd = sys.stdin.fileno()
    except (OSError, ValueError):
        markers_fd = None
    try:
        show = None if args.quiet else _Screen(sys.stderr)
        print(f"lab record: opening {len(rig.devices)} device(s), then recording to {path} "
              "(type a line + Enter to add a marker; Ctrl-C to stop)",
              file=sys.stderr, flush=True)
        session = CaptureSession(list(rig.devices), meta, path, rig.text, args.duration, stop, show, markers_fd,
                                 companion=companion)
        try:
            if getattr(args, "lsl", False):
                from treadlab.acquisition.lsl import RecorderLsl

                with RecorderLsl(session.recorder):
                    session.run()
            else:
                session.run()
        except StorageError as exc:
            if session.recorder.write_broken:
                # After a failed write the HDF5 library cannot shut down (it crashes at exit): once the error
                # line is printed, leave at once with the error's exit code.
                atexit.register(os._exit, exc.exit_code)
            raise
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)
        if companion is not None:
            companion.sink.close()  # idempotent: a capture that never started leaves no WAV file open
    print(os.fspath(path), flush=True)
    return 0
