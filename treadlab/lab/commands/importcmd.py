"""``lab import FILE``: a C3D file or a text export of force plates -> a session file (``docs/import.md``)."""

from __future__ import annotations

import argparse

from treadlab.acquisition.importer import ImportOptions, describe_result, import_file

NAME = "import"
HELP = "import a C3D file or a force-plate text export into a session file"


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lab import``."""
    parser.add_argument("file", help="C3D file, or a text export with a header (Time Fx Fy Fz COPx COPy COPz Ty)")
    parser.add_argument("--out", help="session file to write (never overwritten), or a folder; "
                        "default: <name>.h5 in the current folder")
    parser.add_argument("--format", choices=("c3d", "text"), help="the file's format (default: from its name)")
    parser.add_argument("--rate-hz", type=_positive, metavar="HZ", help="sampling rate, when Time counts samples")
    parser.add_argument("--vertical", metavar="AXIS", help="the plate axis pointing up: x, y or z with an optional "
                        "sign, e.g. z or --vertical=-y (default: the axis carrying body weight)")
    parser.add_argument("--forward", metavar="AXIS", help="the axis the runner faces, e.g. x or --forward=-x "
                        "(default: against the belt's motion of the centre of pressure)")
    parser.add_argument("--body-mass", type=_positive, metavar="KG", help="participant's body mass")
    parser.add_argument("--speed", type=_positive, metavar="MPS", help="treadmill speed (m/s)")
    parser.add_argument("--foot-length", type=_positive, metavar="MM", help="foot length (mm), for the strike index")
    parser.add_argument("--participant", default="", help="participant ID")
    parser.add_argument("--condition", default="", help="condition (e.g. baseline)")
    parser.add_argument("--split-belts", action="store_true",
                        help="two force plates are the two belts of a split-belt treadmill: one device")


def run(args: argparse.Namespace) -> int:
    """Import and print what was found, then the new file's path."""
    opts = ImportOptions(format=args.format, rate_hz=args.rate_hz, vertical=args.vertical, forward=args.forward,
                         body_mass_kg=args.body_mass, speed_mps=args.speed, foot_length_mm=args.foot_length,
                         participant=args.participant, condition=args.condition, split_belts=args.split_belts)
    print(describe_result(import_file(args.file, args.out, opts)))
    return 0
