"""``lab repair FILE``: make a complete session file out of one left by a crashed recorder.

The original is kept beside it as ``FILE.crashed``; the repaired file (everything up to the recorder's last
flush, clocks refitted from the stored raw pairs) takes its name.
"""

from __future__ import annotations

import argparse

from treadlab.acquisition.repair import repair

NAME = "repair"
HELP = "repair a session file left by a crashed recorder (the original is kept as FILE.crashed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lab repair``."""
    parser.add_argument("file", help="session file (.h5) left by a crashed recorder")


def run(args: argparse.Namespace) -> int:
    """Repair and say where both files are."""
    repaired, original = repair(args.file)
    print(f"repaired: {repaired} (original kept as {original})")
    return 0
