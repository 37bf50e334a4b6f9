"""``lab compare BEFORE AFTER [--out compare.html] [--json]`` and ``lab compare FILE --split MARK``."""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from treadlab.analysis.api import SOURCES
from treadlab.analysis.compare import Comparison, compare_steps
from treadlab.errors import ConfigError
from treadlab.lab.report.collect import SegmentSpec, open_analysis, parse_segment, session_view
from treadlab.lab.report.html import render_compare
from treadlab.lab.report.output import add_band_argument, analysis_warnings, parse_bands, write_text
from treadlab.lab.report.page import DEFAULT_BANDS_PCT, clean_json

NAME = "compare"
HELP = "compare two sessions (or two parts of one) before versus after, as an HTML report or JSON"


def add_arguments(parser) -> None:
    """Options of ``lab compare``."""
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="BEFORE AFTER session files (each may be FILE:MARK1..MARK2), or one FILE with --split")
    parser.add_argument("--split", metavar="MARK",
                        help="compare the part of one session before MARK with the part after it")
    parser.add_argument("--out", metavar="HTML", help="report file (default: AFTER's name with .compare.html)")
    parser.add_argument("--json", action="store_true",
                        help="print the numbers as JSON on standard output (the HTML is written only with --out)")
    parser.add_argument("--source", choices=tuple(SOURCES),
                        help="insoles, mat or force (default: the first of these the file has)")
    add_band_argument(parser)


def segments(files: list[str], split: str | None) -> tuple[SegmentSpec, SegmentSpec]:
    """BEFORE and AFTER from the command line (two files or segments, or one file split at a marker)."""
    if split:
        if len(files) != 1:
            raise ConfigError("--split compares two parts of ONE session: give one FILE")
        spec = parse_segment(files[0])
        return (SegmentSpec(spec.path, spec.from_marker, split), SegmentSpec(spec.path, split, spec.to_marker))
    if len(files) != 2:
        raise ConfigError(f"give BEFORE and AFTER (got {len(files)} file(s)), or one FILE with --split MARK")
    return parse_segment(files[0]), parse_segment(files[1])


def default_out(after: SegmentSpec) -> Path:
    """``after.h5`` -> ``after.compare.html`` beside it."""
    return after.path.with_name(after.path.stem + ".compare.html")


def compare_files(before: SegmentSpec, after: SegmentSpec, out: Path | None = None, *, html: bool = True,
                  bands_pct: tuple[float, float] = DEFAULT_BANDS_PCT,
                  source: str | None = None) -> tuple[Comparison, dict, Path | None]:
    """Analyse both, compare them, write the HTML report when ``html``.

    Returns
    -------
    comparison : Comparison
    doc : dict
        The JSON document of ``--json``: both summaries and the comparison.
    path : Path or None
        The report written.
    """
    with analysis_warnings("lab compare", sys.stderr), ExitStack() as stack:
        if before.path.resolve() == after.path.resolve():  # one file: analyse once, select both parts
            whole = stack.enter_context(open_analysis(SegmentSpec(before.path), source))
            ga_b = whole.select(from_marker=before.from_marker, to_marker=before.to_marker)
            ga_a = whole.select(from_marker=after.from_marker, to_marker=after.to_marker)
        else:
            ga_b = stack.enter_context(open_analysis(before, source))
            ga_a = stack.enter_context(open_analysis(after, source))
        comp = compare_steps(ga_b.steps, ga_a.steps, summaries=(ga_b.summary, ga_a.summary))
        text = None
        if html:
            text = render_compare(session_view(ga_b, before.label), session_view(ga_a, after.label), comp, bands_pct)
        doc = clean_json({"before": {"source": before.label, "summary": ga_b.summary},
                          "after": {"source": after.label, "summary": ga_a.summary}, "comparison": comp.to_dict()})
    path = write_text(out or default_out(after), text) if text is not None else None
    return comp, doc, path


def run(args) -> int:
    """Analyse both, compare, write the report and/or print JSON."""
    bands = parse_bands(args.bands)
    before, after = segments(args.files, args.split)
    t0 = time.perf_counter()
    html = args.out is not None or not args.json
    comp, doc, path = compare_files(before, after, Path(args.out) if args.out else None, html=html, bands_pct=bands,
                                    source=args.source)
    if args.json:
        json.dump(doc, sys.stdout, indent=1, allow_nan=False)
        print()
    if path is not None:
        print(path, file=sys.stderr if args.json else sys.stdout)
    if not args.json:
        for line in comp.summary:
            print(f"  {line}")
    print(f"comparison of {before.label} and {after.label} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
