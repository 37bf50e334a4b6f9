"""``lab batch 'study/**/*.h5' [--out study.csv] [--scheduler ADDRESS]``: a whole study analysed on Dask."""

from __future__ import annotations

import argparse
import sys

from treadlab.errors import ConfigError, StorageError
from treadlab.lab.batch import expand_paths, run_batch
from treadlab.lab.commands.analyze import add_analysis_options, filter_cutoff

NAME = "batch"
HELP = "analyse every session of a study in parallel (Dask) into one table: a row per session and foot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lab batch``."""
    parser.add_argument("patterns", nargs="+", metavar="PATTERN",
                        help="session files or quoted globs ('study/**/*.h5' searches folders recursively)")
    parser.add_argument("--out", metavar="CSV", help="write the table here (default: standard output)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="an existing Dask scheduler (tcp://host:8786); default: a local cluster")
    parser.add_argument("--workers", type=int, metavar="N", help="local cluster size (default: the CPU cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = parser.add_argument_group("analysis options (as in lab analyze)")
    add_analysis_options(group)


def run(args: argparse.Namespace) -> int:
    """Analyse, write the table; exit 1 when some sessions failed (their rows carry the error)."""
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    options = {"source": args.source, "normalise": args.normalise, "filter_cutoff_hz": filter_cutoff(args.filter_hz),
               "from_marker": args.from_marker, "to_marker": args.to_marker, "gait": args.gait}
    paths = expand_paths(args.patterns)
    table = run_batch(paths, scheduler=args.scheduler, n_workers=args.workers, progress=not args.no_progress,
                      options=options)
    if args.out:
        try:
            table.to_csv(args.out, index=False)
        except OSError as exc:
            raise StorageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    else:
        table.to_csv(sys.stdout, index=False)
    failed = table.loc[table["error"] != "", "file"].unique()
    where = f" -> {args.out}" if args.out else ""
    print(f"lab batch: {len(paths) - len(failed)} of {len(paths)} sessions analysed{where}", file=sys.stderr)
    if len(failed):
        print(f"lab batch: {len(failed)} failed (see the error column): {', '.join(failed[:5])}"
              f"{' ...' if len(failed) > 5 else ''}", file=sys.stderr)
        return 1
    return 0
