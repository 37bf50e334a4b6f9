"""Study-wide analysis on Dask: every session of a study analysed in parallel into one tidy table.

One row per session and foot with every metric of ``lab analyze`` (mean, sd, median and n of each step metric,
strike counts, cadence, asymmetry) and the session metadata. A session that cannot be analysed gets one row with its
``error`` and does not stop the others.

By default the work runs on a local Dask cluster of this machine's cores (one single-threaded worker process per
core: the analysis holds the GIL); with ``scheduler="tcp://host:8786"`` it runs unchanged on an existing Dask
distributed cluster, whose workers must have treadlab installed and see the files at the same paths.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from treadlab.errors import ConfigError, LabError, SessionFileError
from treadlab.vocabulary import FEET

__all__ = ["META_COLUMNS", "analyse_session", "expand_paths", "run_batch", "summary_rows"]

META_COLUMNS = ("file", "participant", "condition", "shoe", "body_mass_kg", "treadmill_speed_mps", "start_utc")
"""Session metadata columns, first in the table (``file`` is the path as given)."""
#: Summary keys left out of the table: the analysis parameters (the same for every session of a batch) and the
#: marker list (its length is kept as ``n_markers``).
SKIPPED_KEYS = ("parameters", "markers", "feet")


def expand_paths(patterns: Iterable[str]) -> list[Path]:
    """Session files matching shell-style patterns (``**`` recursive), sorted, each once.

    Parameters
    ----------
    patterns : iterable of str
        Globs or plain paths.

    Returns
    -------
    list of Path

    Raises
    ------
    SessionFileError
        A pattern matches nothing.
    """
    out: dict[str, None] = {}
    for pat in patterns:
        hits = sorted(glob.glob(os.path.expanduser(pat), recursive=True))
        hits = [h for h in hits if os.path.isfile(h)]
        if not hits:
            raise SessionFileError(f"no session files match {pat!r}")
        out.update(dict.fromkeys(hits))
    return [Path(p) for p in out]


def _flatten(prefix: str, obj, into: dict) -> None:
    """``{"a": {"b": 1}}`` -> ``{"<prefix>a_b": 1}``; lists become one "; "-joined text cell.

    The summary holds a few hundred values and is flattened once per session, not per sample.
    """
    if isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(f"{prefix}{key}_", value, into)
    elif isinstance(obj, (list, tuple)):
        into[prefix[:-1]] = "; ".join(str(x) for x in obj)
    else:
        into[prefix[:-1]] = obj


def summary_rows(summary: dict, meta: dict) -> list[dict]:
    """The table rows of one session: one per foot.

    Parameters
    ----------
    summary : dict
        What ``lab analyze --json`` prints (:attr:`treadlab.analysis.GaitAnalysis.summary`).
    meta : dict
        Session metadata (:data:`META_COLUMNS`).

    Returns
    -------
    list of dict
        Keys: metadata, ``foot``, the session-level values (``duration_s``, ``cadence_spm``, ``step_count``,
        ``asymmetry_si_pct_<metric>``, ``segment_*``, ``gaps_<device>``, ``warnings``...), ``n_markers``, then the
        foot's ``steps``, ``strike_counts_<class>`` and ``<metric>_<mean|sd|median|n>``, and ``error`` (empty).
    """
    session_level: dict = {}
    for key, value in summary.items():
        if key not in SKIPPED_KEYS:
            _flatten(f"{key}_", value, session_level)
    session_level["n_markers"] = len(summary.get("markers", []))
    rows = []
    for foot in FEET:
        row = dict(meta)
        row["foot"] = foot
        row.update(session_level)
        _flatten("", summary.get("feet", {}).get(foot, {}), row)
        row["error"] = ""
        rows.append(row)
    return rows


def analyse_session(path: str | Path, **options) -> list[dict]:
    """Analyse one session as ``lab analyze`` does and return its table rows (runs on a Dask worker).

    Parameters
    ----------
    path : str or Path
        A session file.
    **options
        Passed to :func:`treadlab.analysis.analyze` (``source``, ``normalise``, ``filter_cutoff_hz``,
        ``from_marker``, ``to_marker``...); its defaults are those of ``lab analyze``.

    Returns
    -------
    list of dict
        :func:`summary_rows` of :func:`treadlab.analysis.analyze` with its defaults, or one row with ``error``
        set when the file cannot be analysed (a :class:`~treadlab.errors.LabError`); any other exception
        propagates to the client, which reports it in the same way.
    """
    from treadlab.analysis import analyze

    meta: dict = {"file": str(path)}
    try:
        with warnings.catch_warnings():
            # analyze() warns and also lists the warning in summary["warnings"], which the table keeps.
            warnings.simplefilter("ignore")
            with analyze(path, **options) as ga:
                s = ga.session
                meta.update({"participant": s.participant, "condition": s.condition, "shoe": s.shoe,
                             "body_mass_kg": s.body_mass_kg, "treadmill_speed_mps": s.treadmill_speed_mps,
                             "start_utc": s.start_utc})
                summary = ga.summary
    except LabError as exc:
        return [dict(meta, foot="", error=f"{type(exc).__name__}: {exc}")]
    return summary_rows(summary, meta)


def _tidy(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    front = [c for c in (*META_COLUMNS, "foot") if c in df]
    rest = [c for c in df.columns if c not in front and c != "error"]
    if "error" not in df:
        df["error"] = ""
    df["error"] = df["error"].fillna("")
    return df[front + rest + ["error"]]


def _client(scheduler: str | None, n_workers: int | None):
    """A Dask client and, for a local cluster, the cluster it owns (closed by the caller)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler {scheduler!r}: {exc}") from None
    workers = n_workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    try:
        return Client(cluster), cluster
    except (OSError, TimeoutError) as exc:
        cluster.close()
        raise ConfigError(f"cannot start a local Dask cluster: {exc}") from None


def run_batch(paths: Sequence[str | Path], *, scheduler: str | None = None, n_workers: int | None = None,
              progress: bool = True, analyse: Callable[..., list[dict]] = analyse_session,
              client=None, options: dict | None = None) -> pd.DataFrame:
    """Analyse every session in parallel on Dask and return the tidy table.

    Parameters
    ----------
    paths : sequence of str or Path
        Session files.
    scheduler : str or None
        Address of an existing Dask scheduler (``tcp://host:8786``); None starts a local cluster of
        ``n_workers`` single-threaded worker processes and closes it afterwards.
    n_workers : int or None
        Local cluster size; default the machine's cores.
    progress : bool
        Show a progress bar of sessions done on standard error.
    analyse : callable
        ``analyse(path) -> rows``; :func:`analyse_session` (picklable, module level).
    client : dask.distributed.Client or None
        Use this client instead (neither ``scheduler`` nor a local cluster); left open.
    options : dict or None
        Keyword arguments of ``analyse`` for every session (analysis options, see :func:`analyse_session`).

    Returns
    -------
    DataFrame
        One row per session and foot in the order of ``paths``; ``error`` is non-empty for sessions that failed.
    """
    from dask.distributed import as_completed
    from tqdm import tqdm

    class _Bar(tqdm):
        monitor_interval = 0  # no tqdm monitor thread: nobody would own and join it

    paths = [str(p) for p in paths]
    if not paths:
        raise SessionFileError("no session files to analyse")
    cluster = None
    if client is None:
        client, cluster = _client(scheduler, n_workers)
        own_client = True
    else:
        own_client = False
    results: dict[str, list[dict]] = {}
    try:
        futures = client.map(analyse, paths, pure=False, **(options or {}))
        index = {f.key: p for f, p in zip(futures, paths)}
        bar = _Bar(total=len(paths), unit="session", desc="sessions", disable=not progress, file=sys.stderr,
                   leave=True)
        with bar:
            for fut in as_completed(futures):
                path = index[fut.key]
                if fut.status == "error":
                    exc = fut.exception()
                    results[path] = [{"file": path, "foot": "", "error": f"{type(exc).__name__}: {exc}"}]
                else:
                    results[path] = fut.result()
                fut.release()
                bar.update(1)
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
    rows = [row for p in paths for row in results[p]]
    return _tidy(rows)
