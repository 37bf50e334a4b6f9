"""``lab gui``: the technician's desktop app (live view and capture control)."""

from __future__ import annotations

import argparse
from pathlib import Path

from treadlab.errors import ConfigError

NAME = "gui"
HELP = "desktop app: live view of every device, capture control, markers (--sim to try it without hardware)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lab gui``."""
    parser.add_argument("--rig", type=Path, help="rig file (TOML) describing the devices")
    parser.add_argument("--sim", action="store_true",
                        help="start the simulated rig (two insoles and a mat) instead of real devices")
    parser.add_argument("--stress", action="store_true",
                        help="with --sim: the stress rig (two 960-sensel insoles at 750 Hz, 5,376-sensel mat)")
    parser.add_argument("--out", type=Path, default=Path.cwd(), help="default output folder (default: here)")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png",
                        help="run offscreen on the simulated rig for --seconds, save a screenshot, exit")
    parser.add_argument("--seconds", type=float, default=4.0, help="with --screenshot: seconds to run (default 4)")
    parser.add_argument("--fps", type=float, default=30.0, help="display refresh rate, 30-60 Hz (default 30)")
    parser.add_argument("--lsl", action="store_true",
                        help="publish captures (every device and the markers) as Lab Streaming Layer outlets")


def run(args: argparse.Namespace) -> int:
    """Start the app; returns when the window is closed (or after the screenshot)."""
    if args.screenshot is None and not args.sim and args.rig is None:
        raise ConfigError("give a rig file (--rig RIG.toml) or --sim for the simulated rig")
    if args.screenshot is not None and args.seconds <= 0:
        raise ConfigError(f"--seconds must be positive, got {args.seconds:g}")
    if not 1.0 <= args.fps <= 120.0:
        raise ConfigError(f"--fps must be within 1-120, got {args.fps:g}")
    if args.screenshot is not None and args.screenshot.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ConfigError(f"--screenshot {args.screenshot}: give a .png (or .jpg) file name")
    from treadlab.lab.gui.app import run_app  # Qt is imported only here, not by `lab --help`

    return run_app(rig_path=args.rig, sim=args.sim or args.screenshot is not None and args.rig is None,
                   stress=args.stress, folder=args.out, screenshot=args.screenshot, seconds=args.seconds,
                   refresh_hz=args.fps, lsl=getattr(args, "lsl", False))
