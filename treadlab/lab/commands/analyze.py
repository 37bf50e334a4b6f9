"""``lab analyze FILE``: steps, foot strike, loading rates and asymmetry of a session file.

Prints a short table, or the summary as JSON (``--json``); writes one row per step to a CSV (``--steps``).
A segment can be chosen between two markers (``--from``/``--to``) or by time (``--start``/``--stop``).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from treadlab.analysis import SUMMARY_METRICS, analyze, json_clean
from treadlab.analysis.api import SOURCES
from treadlab.errors import StorageError
from treadlab.vocabulary import METRIC_LABELS, metric_table_label

NAME = "analyze"
HELP = "analyse a session file: steps, foot strike, loading rates, contact times, left-right asymmetry"

#: The metrics of the text summary, in its order; labels and decimals from the one table (treadlab.vocabulary).
_TABLE = tuple((m, metric_table_label(m), METRIC_LABELS[m][2]) for m in (
    "strike_index_pct", "avlr_bw_s", "vilr_bw_s", "impact_peak_bw", "peak_force_bw", "contact_time_ms",
    "flight_time_ms", "step_time_ms"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lab analyze``."""
    parser.add_argument("file", help="session file (.h5), also one still being recorded")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--steps", metavar="STEPS.csv", help="write one row per step to this CSV file")
    add_analysis_options(parser)
    parser.add_argument("--start", type=float, metavar="S", help="start at this session time (s)")
    parser.add_argument("--stop", type=float, metavar="S", help="stop at this session time (s)")


def add_analysis_options(parser) -> None:
    """The analysis options shared by ``lab analyze`` and ``lab batch`` (a parser or an argument group)."""
    parser.add_argument("--from", dest="from_marker", metavar="MARK", help="start at this marker")
    parser.add_argument("--to", dest="to_marker", metavar="MARK", help="stop at this marker")
    parser.add_argument("--source", choices=(*SOURCES, "auto"), default="insoles",
                        help="steps from (default insoles; auto: the first of insoles, mat, force the file has)")
    parser.add_argument("--normalise", choices=("body_mass", "insole"), default="body_mass",
                        help="1 BW = body mass x g (default) or the insoles' whole-stride mean force")
    parser.add_argument("--filter-hz", default="auto", metavar="HZ",
                        help="low-pass cutoff for force metrics: 'auto' (default), a number, or 'none'")
    parser.add_argument("--foot-length", type=float, metavar="MM", dest="foot_length_mm",
                        help="foot length for the force source's strike index (default: the file's)")
    parser.add_argument("--gait", choices=("auto", "running", "walking", "all"), default="auto",
                        help="steps the summary averages: running when there are any, else walking (auto, the "
                             "default), one gait, or all (walking and running); standing is never a step")


def filter_cutoff(text: str):
    """``--filter-hz`` as :func:`treadlab.analysis.analyze` takes it: ``"auto"``, ``None`` or a float."""
    if text == "auto":
        return "auto"
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        from treadlab.errors import ConfigError

        raise ConfigError(f"invalid --filter-hz {text!r}: give 'auto', 'none' or a number of Hz") from None


def _fmt(v: float, decimals: int) -> str:
    return "-" if v is None or v != v else f"{v:.{decimals}f}"


def _table(summary: dict) -> str:
    feet = summary["feet"]
    g = summary.get("gaits", {})
    other = [f"{k} {g[k]['steps']} steps" for k in ("walking", "running") if k != summary.get("gait") and
             g.get(k, {}).get("steps")]
    if g.get("standing", {}).get("periods"):
        other.append(f"standing {g['standing']['duration_s']:.1f} s")
    flagged = summary.get("quality", {}).get("short_contact", 0)
    if flagged:
        other.append(f"{flagged} short contacts flagged")
    lines = [f"{summary['file']}  ({summary['source']}, {summary['duration_s']:.1f} s, "
             f"{summary['step_count']} {summary.get('gait', '')} steps, cadence {_fmt(summary['cadence_spm'], 1)} "
             f"steps/min)" + (f"; not in the means: {', '.join(other)}" if other else ""),
             f"body weight {_fmt(summary['body_weight_n'], 0)} N, insole scale {_fmt(summary.get('insole_scale'), 2)}, "
             f"forces normalised by {summary['normalised_by']}",
             f"{'':20s}{'left':>16s}{'right':>16s}{'SI %':>8s}"]
    for key in ("left", "right"):
        c = feet[key]["strike_counts"]
        counts = f"rearfoot {c['rearfoot']}, midfoot {c['midfoot']}, forefoot {c['forefoot']}"
        lines.append(f"{key + ' strikes':20s}{counts}")
    for m, label, d in _TABLE:
        cells = []
        for foot in ("left", "right"):
            s = feet[foot][m]
            cells.append(f"{_fmt(s['mean'], d)} ± {_fmt(s['sd'], d)}" if s["n"] else "-")
        lines.append(f"{label:20s}{cells[0]:>16s}{cells[1]:>16s}{_fmt(summary['asymmetry_si_pct'][m], 1):>8s}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Analyse, print, write the CSV."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strike = None
        if args.source == "force" and getattr(args, "foot_length_mm", None):
            from treadlab.analysis.force import ForceStrikeIndex

            strike = ForceStrikeIndex(foot_length_mm=args.foot_length_mm)
        ga = analyze(args.file, source=args.source, normalise=args.normalise, strike=strike,
                     filter_cutoff_hz=filter_cutoff(args.filter_hz),
                     start_s=args.start, stop_s=args.stop, from_marker=args.from_marker, to_marker=args.to_marker,
                     gait=args.gait)
    with ga:
        for w in caught:
            print(f"lab analyze: warning: {w.message}", file=sys.stderr)
        if args.steps:
            internal = ("first_sample", "stop_sample", "first_frame", "last_frame")
            cols = [c for c in ga.steps.columns if c not in internal]
            try:
                ga.steps[cols].to_csv(args.steps, index=False, float_format="%.6g")
            except OSError as exc:
                raise StorageError(f"cannot write steps CSV {args.steps}: {exc.strerror or exc}") from None
        if args.json:
            print(json.dumps(json_clean(ga.summary), indent=2))
        else:
            print(_table(ga.summary))
    return 0


__all__ = ["NAME", "HELP", "SUMMARY_METRICS", "add_arguments", "run"]
