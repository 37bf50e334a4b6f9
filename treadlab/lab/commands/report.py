"""``lab report FILE [--out report.html] [--from MARK --to MARK]``: a coach's report of one session."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from treadlab.analysis.api import SOURCES
from treadlab.lab.report.collect import SegmentSpec, open_analysis, parse_segment, session_view
from treadlab.lab.report.html import render_session
from treadlab.lab.report.output import add_band_argument, analysis_warnings, parse_bands, write_text
from treadlab.lab.report.page import DEFAULT_BANDS_PCT

NAME = "report"
HELP = "write a self-contained HTML coach report of a session (or of the part between two markers)"


def add_arguments(parser) -> None:
    """Options of ``lab report``."""
    parser.add_argument("file", metavar="FILE", help="session file (.h5), or FILE:MARK1..MARK2 for a segment")
    parser.add_argument("--out", metavar="HTML", help="report file (default: FILE with .report.html beside it)")
    parser.add_argument("--from", dest="from_marker", metavar="MARK", help="start at this marker")
    parser.add_argument("--to", dest="to_marker", metavar="MARK", help="end at this marker")
    parser.add_argument("--source", choices=tuple(SOURCES),
                        help="insoles, mat or force (default: the first of these the file has)")
    add_band_argument(parser)


def default_out(path: Path) -> Path:
    """``run.h5`` -> ``run.report.html`` in the same folder."""
    return path.with_name(path.stem + ".report.html")


def write_report(spec: SegmentSpec, out: Path | None = None,
                 bands_pct: tuple[float, float] = DEFAULT_BANDS_PCT, source: str | None = None) -> Path:
    """Analyse ``spec``, render its report and write it to ``out`` (default beside the file); return the path."""
    with analysis_warnings("lab report", sys.stderr), open_analysis(spec, source) as ga:
        text = render_session(session_view(ga, spec.label), bands_pct)
    return write_text(out or default_out(spec.path), text)


def run(args) -> int:
    """Analyse, render, write; print the report's path."""
    bands = parse_bands(args.bands)
    spec = parse_segment(args.file)
    if args.from_marker or args.to_marker:
        spec = SegmentSpec(spec.path, args.from_marker or spec.from_marker, args.to_marker or spec.to_marker)
    t0 = time.perf_counter()
    out = write_report(spec, Path(args.out) if args.out else None, bands, args.source)
    print(out)
    print(f"report of {spec.label} written in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
