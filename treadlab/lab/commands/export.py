"""``lab export FILE --to csv|c3d [--out DIR]``: a session as CSV per device or as C3D."""

from __future__ import annotations

import argparse

from treadlab.analysis.export import FORMATS, export_c3d, export_csv

NAME = "export"
HELP = "export a session file as CSV (one file per device, README of units) or C3D (force and COP as analogs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lab export``."""
    parser.add_argument("file", metavar="FILE", help="session file (.h5)")
    parser.add_argument("--to", choices=FORMATS, required=True, help="target format")
    parser.add_argument("--out", metavar="DIR", help="target folder (default: beside FILE)")
    parser.add_argument("--rate", type=float, metavar="HZ", help="C3D analog rate (default: the insoles' rate)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")


def run(args: argparse.Namespace) -> int:
    """Export and print the files written, one a line."""
    if args.to == "csv":
        paths = export_csv(args.file, args.out, force=args.force)
    else:
        paths = [export_c3d(args.file, args.out, rate_hz=args.rate, force=args.force)]
    for p in paths:
        print(p)
    return 0
