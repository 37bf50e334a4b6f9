"""The ``lab`` command: dispatches to the sub-command modules in :mod:`treadlab.lab.commands`.

Every :class:`~treadlab.errors.LabError` becomes one line on standard error and a non-zero exit code;
Ctrl-C ends with exit code 130. Tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from treadlab import __version__
from treadlab.errors import LabError
from treadlab.lab import commands


def _command_modules() -> list:
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return mods


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lab`` with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="lab", description="treadlab: treadmill gait capture and analysis (insoles and pressure mat)."
    )
    parser.add_argument("--version", action="version", version=f"treadlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--log", metavar="FILE",
                        help="append a log (connections, refusals, reconnections, drops) to FILE")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(run_command=mod.run)
    return parser


def _log_to(path: str) -> None:
    """Send treadlab's module loggers (INFO and above) to ``path``."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("treadlab")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lab`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run_command", None):
        parser.print_help()
        return 2
    if args.log:
        _log_to(args.log)
    try:
        return int(args.run_command(args) or 0)
    except LabError as exc:
        if args.debug:
            raise
        print(f"lab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # A folder that vanished, a full disk: one line. (The readers turn HDF5's errors into SessionFileError
        # where they read, so a damaged file is a LabError above; any other exception is a bug.)
        if args.debug:
            raise
        target = getattr(args, "file", None) or getattr(exc, "filename", None)
        where = f"{target}: " if target else ""
        print(f"lab {args.command}: error: {where}I/O error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
