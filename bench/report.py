"""How long ``lab report`` and ``lab compare`` take on long sessions (target: a 60-minute session in under 30 s).

Writes session files of simulated runners straight from the gait model (tests/sessionfactory.py: two "insole99"
insoles at 500 Hz, u16, like the default simulated rig; no mat unless ``--mat``), then times, in this process:
the analysis alone, the whole report (analysis + figures + HTML), and the comparison of two sessions.

Usage: ``python bench/report.py [--minutes 60] [--mat] [--keep DIR]``

``--stress`` times the report of a stress-rig session instead (two 960-sensel insoles at 750 Hz and the
5,376-sensel mat: the file of ``bench/analysis.py``, written once from the gait model into ``--cache`` and kept;
1.5 minutes and 3 GB for an hour on a quiet machine). Every figure is printed as wall time and CPU time of this
process: the machine is shared, so compare CPU times, or wall times taken under the same load. The whole report is
broken down into stages (the analysis' passes, the report's views, the rendering: wall and CPU time of each, from
timers put around those functions for the run only). With ``--keep DIR`` the step tables (insoles and mat), the
summary JSON and the report are written there, to compare the results before and after a change.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sessionfactory import InsoleSpec, MatSpec, write_session  # noqa: E402

from treadlab.analysis import analyze, json_clean  # noqa: E402
from treadlab.drivers.sim.gait import RunnerParams  # noqa: E402
from treadlab.lab.commands.compare import compare_files  # noqa: E402
from treadlab.lab.commands.report import write_report  # noqa: E402
from treadlab.lab.report.collect import SegmentSpec  # noqa: E402


class _Stages:
    """Wall and CPU seconds spent in named functions of the report path, while in use (``with``).

    Each stage wraps one function (module or class attribute) for the time of the ``with``: inclusive times, so a
    stage listed under another (indented) is part of it. Nothing in treadlab knows about it.
    """

    #: (label, owner, attribute, depth); owners are imported lazily (see ``_owner``).
    STAGES = (
        ("analysis (whole)", "treadlab.lab.report.collect", "analyze", 0),
        ("insoles: raw pass (inflate + derived)", "treadlab.analysis.insolepass:FootPass", "spill", 1),
        ("insoles: contacts", "treadlab.analysis.insolepass:FootPass", "detect_contacts", 1),
        ("insoles: automatic cutoff", "treadlab.analysis.insolepass:FootPass", "auto_cutoff", 1),
        ("insoles: step table", "treadlab.analysis.insolepass:FootPass", "table", 1),
        ("mat: footprints", "treadlab.analysis.mat:MatAnalysis", "detect", 1),
        ("stored chunks read + inflated (all reads)", "treadlab.analysis.chunkread", "_chunk", 1),
        ("report view (whole)", "treadlab.lab.commands.report", "session_view", 0),
        ("force curves + COP paths", "treadlab.analysis.store:FootSignals", "stance_curves", 1),
        ("insole pressure maps", "treadlab.analysis.insoleviews", "pressure_maps", 1),
        ("insole butterfly", "treadlab.analysis.insoleviews", "insole_cop_trace", 1),
        ("mat mean footprints", "treadlab.analysis.matviews", "mean_footprints", 1),
        ("mat butterfly", "treadlab.analysis.matviews", "cop_trace", 1),
        ("retraining section", "treadlab.lab.report.collect", "retraining_doc", 1),
        ("render HTML (whole)", "treadlab.lab.commands.report", "render_session", 0),
        ("figures: PNG rendering", "treadlab.lab.report.figures", "png_base64", 1),
    )

    def __init__(self) -> None:
        self.totals = {label: [0.0, 0.0, 0] for label, *_ in self.STAGES}
        self._undo: list = []

    @staticmethod
    def _owner(spec: str):
        import importlib

        mod, _, cls = spec.partition(":")
        obj = importlib.import_module(mod)
        return getattr(obj, cls) if cls else obj

    def __enter__(self) -> _Stages:
        import functools

        for label, spec, attr, _ in self.STAGES:
            owner = self._owner(spec)
            orig = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
            acc = self.totals[label]

            def wrapped(*args, _orig=orig, _acc=acc, **kwargs):
                w0, c0 = time.perf_counter(), time.process_time()
                try:
                    return _orig(*args, **kwargs)
                finally:
                    _acc[0] += time.perf_counter() - w0
                    _acc[1] += time.process_time() - c0
                    _acc[2] += 1

            setattr(owner, attr, functools.wraps(orig)(wrapped))
            self._undo.append((owner, attr, orig))
        return self

    def __exit__(self, *exc) -> None:
        for owner, attr, orig in reversed(self._undo):
            setattr(owner, attr, orig)
        self._undo.clear()

    def lines(self) -> list[str]:
        """One line per stage that ran: wall, CPU, calls."""
        out = [f"  {'stage':42s} {'wall s':>7s} {'CPU s':>7s} {'calls':>6s}"]
        for label, _, _, depth in self.STAGES:
            wall, cpu, n = self.totals[label]
            if n:
                out.append(f"  {'  ' * depth + label:42s} {wall:7.2f} {cpu:7.2f} {n:6d}")
        return out


class _Clock:
    """Wall and CPU seconds of this process since it was made."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.wall0

    @property
    def cpu_s(self) -> float:
        return time.process_time() - self.cpu0


def stress(minutes: float, cache: Path, keep: Path | None = None) -> int:
    """Time the analysis and the whole report of the stress-rig session of ``minutes`` (written once)."""
    from analysis import make_file  # bench/analysis.py (beside this file): the stress-rig session file

    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"stress-{minutes:g}min.h5"
    if not path.exists():
        clock, part = _Clock(), path.with_suffix(".part")
        make_file(part, minutes)
        part.rename(path)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in {clock.wall_s:.0f} s", flush=True)
    warnings.simplefilter("ignore", UserWarning)
    with tempfile.TemporaryDirectory(prefix="treadlab-bench-report-") as tmp:
        clock = _Clock()
        with analyze(path) as ga:
            steps_n = len(ga.steps)
            analysis = (clock.wall_s, clock.cpu_s)
            if keep:  # the results, to compare before and after a change
                keep.mkdir(parents=True, exist_ok=True)
                ga.all_steps.to_csv(keep / "steps.csv", index=False, float_format="%.17g")
                if ga.mat_result is not None:
                    ga.mat_result.steps_.to_csv(keep / "mat_steps.csv", index=False, float_format="%.17g")
                (keep / "summary.json").write_text(json.dumps(json_clean(ga.summary), indent=1, sort_keys=True))
        clock = _Clock()
        with _Stages() as stages:
            out = write_report(SegmentSpec(path), Path(tmp) / "report.html")
        report = (clock.wall_s, clock.cpu_s)
        size_mb = out.stat().st_size / 1e6
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / "report.html").write_bytes(out.read_bytes())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"stress-rig session: {minutes:g} min, 2 insoles x 960 sensels at 750 Hz + mat 112 x 48 at 120 Hz, "
          f"{steps_n} steps")
    print(f"analysis alone        {analysis[0]:6.1f} s wall  {analysis[1]:6.1f} s CPU")
    print(f"lab report (whole)    {report[0]:6.1f} s wall  {report[1]:6.1f} s CPU   (target < 30 s)   "
          f"{size_mb:.2f} MB HTML")
    print(f"peak memory (RSS)     {peak_mb:6.0f} MB")
    print("breakdown of the whole report (inclusive; indented stages are part of the one above):")
    print("\n".join(stages.lines()))
    return 0


def main() -> int:
    """Print the timings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--mat", action="store_true", help="add the 112 x 48 mat at 120 Hz (large files)")
    ap.add_argument("--keep", metavar="DIR", help="write the files here and keep them (with --stress: the steps "
                    "tables, summary JSON and report, to compare before and after a change)")
    ap.add_argument("--stress", action="store_true", help="the stress-rig session instead (see above)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "treadlab-bench"),
                    help="with --stress: folder of the kept session file")
    args = ap.parse_args()
    if args.stress:
        return stress(args.minutes, Path(args.cache), Path(args.keep) if args.keep else None)
    with tempfile.TemporaryDirectory(prefix="treadlab-bench-report-") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        duration_s = args.minutes * 60.0
        runners = {"before": RunnerParams(cadence_spm=160.0, loading_rate_asym_pct=12.0, seed=1),
                   "after": RunnerParams(cadence_spm=172.0, strike_left="midfoot", strike_right="midfoot", seed=2)}
        paths = {}
        for name, runner in runners.items():
            paths[name] = folder / f"{name}-{args.minutes:g}min.h5"
            if not paths[name].exists():
                t0 = time.perf_counter()
                write_session(paths[name], runner, duration_s=duration_s, insoles=InsoleSpec(layout="insole99"),
                              mat=MatSpec(rows=112, cols=48) if args.mat else None,
                              markers=[(duration_s / 2, "half")])
                print(f"wrote {paths[name].name}: {paths[name].stat().st_size / 1e6:.0f} MB in "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
        warnings.simplefilter("ignore", UserWarning)
        t0 = time.perf_counter()
        with analyze(paths["before"]) as ga:
            steps_n = len(ga.steps)
        t_analysis = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = write_report(SegmentSpec(paths["before"]), folder / "report.html")
        t_report = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, _, cmp_out = compare_files(SegmentSpec(paths["before"]), SegmentSpec(paths["after"]),
                                      folder / "compare.html")
        t_compare = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"session: {args.minutes:g} min, 2 insoles x 99 sensels at 500 Hz{' + mat' if args.mat else ''}, "
              f"{steps_n} steps")
        print(f"analysis alone        {t_analysis:6.1f} s")
        print(f"lab report (whole)    {t_report:6.1f} s   (target < 30 s)   {out.stat().st_size / 1e6:.2f} MB HTML")
        print(f"  of which figures+HTML {t_report - t_analysis:4.1f} s")
        print(f"lab compare (whole)   {t_compare:6.1f} s   {cmp_out.stat().st_size / 1e6:.2f} MB HTML")
        print(f"peak memory (RSS)     {peak_mb:6.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
