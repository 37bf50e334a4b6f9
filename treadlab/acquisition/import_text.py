"""Text exports of force plates for ``lab import``: a header naming the columns, then one row per sample.

``Time Fx Fy Fz COPx COPy COPz Ty`` (any order, more or fewer COP/moment columns), separated by tabs, commas or
spaces; units N, mm and N·mm unless a column says otherwise (``Fx [kN]``, ``COPx (m)``, ``Mx [N.m]``). ``Time`` in
seconds, or a sample index (1, 2, 3...: then ``--rate-hz`` gives the rate). Read with pandas' C parser in blocks,
so that a long export never sits in memory whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from treadlab.acquisition.importsource import BLOCK_ROWS, ForceSource, PlateSource
from treadlab.errors import ImportFileError

__all__ = ["read_text"]

_NAME = re.compile(r"^\s*(?P<name>[^\[\(]+?)\s*(?:[\[\(]\s*(?P<unit>[^\]\)]*?)\s*[\]\)])?\s*$")
_QUANTITY = re.compile(r"^(?:(?P<time>time|frame|sample)|(?P<q>f|m|cop|t)(?P<a>[xyz])(?P<b>_[lr])?)$", re.IGNORECASE)
#: Factor to N, N·mm or mm of the units a column header may name.
UNIT_FACTORS = {
    "F": {"n": 1.0, "newton": 1.0, "kn": 1000.0},
    "M": {"nmm": 1.0, "n.mm": 1.0, "n·mm": 1.0, "n*mm": 1.0, "nm": 1000.0, "n.m": 1000.0, "n·m": 1000.0,
          "n*m": 1000.0},
    "COP": {"mm": 1.0, "cm": 10.0, "m": 1000.0},
}
UNIT_FACTORS["T"] = UNIT_FACTORS["M"]
TIME_FACTORS = {"s": 1.0, "ms": 1e-3}
#: Lines searched for the header (lines above it, a vendor's metadata, are skipped).
HEADER_SEARCH_LINES = 50


def _separator(header: str) -> str:
    if "\t" in header:
        return "\t"
    if "," in header:
        return ","
    if ";" in header:
        return ";"
    return r"\s+"


def _columns(tokens: list[str], where: str) -> tuple[dict, dict, list[str]]:
    """Header tokens -> ``({canonical name: column index}, {canonical name: factor}, ignored names)``."""
    found: dict[str, int] = {}
    factor: dict[str, float] = {}
    ignored = []
    for i, tok in enumerate(tokens):
        m = _NAME.match(tok)
        q = _QUANTITY.match(m.group("name")) if m else None
        if q is None:
            ignored.append(tok.strip())
            continue
        unit = (m.group("unit") or "").strip().lower().replace(" ", "")
        if q.group("time"):
            name, kind = "Time", "time"
        else:
            kind = {"f": "F", "m": "M", "cop": "COP", "t": "T"}[q.group("q").lower()]
            name = f"{kind}{q.group('a').lower()}{(q.group('b') or '').lower()}"
        if name in found:
            raise ImportFileError(f"{where}: the header names {name} twice")
        table = TIME_FACTORS if kind == "time" else UNIT_FACTORS[kind]
        if unit and unit not in table:
            raise ImportFileError(f"{where}: column {tok.strip()!r} is in {unit!r}; treadlab reads "
                                  f"{', '.join(table)} for it")
        found[name] = i
        factor[name] = table.get(unit, 1.0)
        if kind == "time":
            factor["_time_is_index"] = float(q.group("time").lower() in ("frame", "sample"))
    return found, factor, ignored


def read_text(path: str, rate_hz: float | None = None, block_rows: int = BLOCK_ROWS) -> ForceSource:
    """Open a text export: check its header and first block; the rest is read block by block when written.

    Raises
    ------
    ImportFileError
        Not text, no header naming the columns, no Time or Fx/Fy/Fz column, no data rows, a value that is not a
        number, a Time column that does not increase uniformly, sample indices without ``rate_hz``.
    """
    where = path
    skip, header = _find_header(path, where)
    sep = _separator(header)
    tokens = _tokens(header, sep)
    cols, factor, ignored = _columns(tokens, where)
    belts = sorted({n[-2:] for n in cols if n[-2:] in ("_l", "_r")}) or [""]
    if belts != [""] and any(n[-2:] not in ("_l", "_r") for n in cols if n != "Time"):
        raise ImportFileError(f"{where}: some force columns name a belt (_l, _r) and some do not; a split-belt "
                              "export names the belt of every column")
    if belts == ["_l"] or belts == ["_r"]:
        belts = ["_l", "_r"]  # the missing belt's columns are reported below
    missing = [c + b for b in belts for c in ("Fx", "Fy", "Fz") if c + b not in cols]
    missing = (["Time"] if "Time" not in cols else []) + missing
    if missing:
        raise ImportFileError(f"{where}: the header names no {', '.join(missing)} column (it has "
                              f"{' '.join(t.strip() for t in tokens)}); a force export needs Time Fx Fy Fz and "
                              "the centre of pressure (COPx COPy COPz) or the moments")
    names = list(cols)
    usecols = [cols[n] for n in names]
    reader = _blocks(path, sep, usecols, names, factor, block_rows, where, skip)
    try:
        first_time, first = next(reader)
    except StopIteration:
        raise ImportFileError(f"{where}: the header is there but no data rows follow") from None
    time_is_index = bool(factor.get("_time_is_index")) or _counts_samples(first_time)
    rate = _rate(first_time, time_is_index, rate_hz, where)
    checker = _TimeCheck(first_time[0], rate, time_is_index, where, skip)
    checker(first_time)

    def per_belt(block: dict) -> list[dict]:
        if belts == [""]:
            return [block]
        return [{n[:-2]: v for n, v in block.items() if n.endswith(b)} for b in belts]

    def rest() -> Iterator[list[dict]]:
        for t, block in reader:  # one iteration per block of rows
            checker(t)
            yield per_belt(block)

    notes = [f"text export, {len(names) - 1} force columns ({' '.join(n for n in names if n != 'Time')}), "
             f"{rate:g} Hz" + (" (Time counts samples; --rate-hz)" if time_is_index else " (from Time)")]
    if ignored:
        notes.append(f"columns not imported: {' '.join(ignored)}")
    belt_name = {"": "", "_l": "left", "_r": "right"}
    plates = [PlateSource(first=f, corners_mm=None, belt=belt_name[b]) for f, b in zip(per_belt(first), belts)]
    return ForceSource(path=path, format="text", rate_hz=rate, plates=plates, rest=rest(), notes=notes)


def _tokens(line: str, sep: str) -> list[str]:
    return re.split(sep, line.strip()) if sep == r"\s+" else line.rstrip("\r\n").split(sep)


def _find_header(path: str, where: str) -> tuple[int, str]:
    """``(index, text)`` of the header line: the first of the first HEADER_SEARCH_LINES lines naming Time and a
    force column (vendor exports put metadata lines above it); the first line when none does.
    """
    try:
        with open(path, encoding="utf-8-sig") as fh:
            lines = [fh.readline() for _ in range(HEADER_SEARCH_LINES)]
    except UnicodeDecodeError:
        raise ImportFileError(f"{where}: not a text export (not UTF-8 text)") from None
    for i, line in enumerate(lines):  # one iteration per line of the file's head
        names = {m.group("name").lower() for tok in _tokens(line, _separator(line)) if (m := _NAME.match(tok))}
        if names & {"time", "frame", "sample"} and any(re.fullmatch(r"f[xyz](_[lr])?", n) for n in names):
            return i, line
    if not lines[0].strip():
        raise ImportFileError(f"{where}: the first line is empty; a text export starts with a header naming its "
                              "columns (Time Fx Fy Fz COPx COPy COPz Ty)")
    return 0, lines[0]


def _counts_samples(t: np.ndarray) -> bool:
    """True when Time is a sample index: whole numbers that step by exactly 1."""
    if len(t) < 2:
        return bool(len(t) and float(t[0]).is_integer())
    d = np.diff(t)
    return bool(np.all(d == 1.0) and float(t[0]).is_integer())


def _rate(t: np.ndarray, time_is_index: bool, rate_hz: float | None, where: str) -> float:
    if time_is_index:
        if not rate_hz:
            raise ImportFileError(f"{where}: Time counts samples ({t[0]:g}, {t[0] + 1:g}, ...), it gives no rate; "
                                  "say it with --rate-hz")
        return float(rate_hz)
    if len(t) < 2 or not t[-1] > t[0]:
        if rate_hz:
            return float(rate_hz)
        raise ImportFileError(f"{where}: Time does not increase over the first rows; give --rate-hz")
    step = float(np.median(np.diff(t)))
    if not step > 0:
        raise ImportFileError(f"{where}: Time does not increase over the first rows")
    est = (len(t) - 1) / float(t[-1] - t[0])  # more precise than one rounded step, unless rows are missing
    if abs(est * step - 1.0) > 0.01:
        est = 1.0 / step
    if rate_hz:
        if abs(est / rate_hz - 1.0) > 0.01:
            raise ImportFileError(f"{where}: Time steps at {est:.6g} Hz, not at --rate-hz {rate_hz:g}")
        return float(rate_hz)
    return float(np.round(est, 3))


class _TimeCheck:
    """Every Time value within half a sample of ``t0 + index / rate`` (no missing or repeated rows)."""

    def __init__(self, t0: float, rate_hz: float, time_is_index: bool, where: str, header_line: int = 0):
        self.t0, self.step = float(t0), (1.0 if time_is_index else 1.0 / rate_hz)
        self.exact = time_is_index
        self.where = where
        self.row = 0
        self.first_line = header_line + 2  # 1-based line of the first data row

    def __call__(self, t: np.ndarray) -> None:
        expect = self.t0 + (self.row + np.arange(len(t))) * self.step
        err = np.abs(t - expect)
        bad = np.flatnonzero(~(err <= (0.0 if self.exact else 0.5 * self.step)))
        if len(bad):
            i = int(bad[0])
            line = self.row + i + self.first_line
            raise ImportFileError(f"{self.where}: line {line}: Time {t[i]:g} where {expect[i]:g} was expected "
                                  "(missing, repeated or unordered rows: the import needs one row per sample)")
        self.row += len(t)


def _blocks(path: str, sep: str, usecols: list[int], names: list[str], factor: dict, block_rows: int,
            where: str, skip: int = 0) -> Iterator[tuple[np.ndarray, dict]]:
    """``(time, {name: float32 values})`` blocks of the file, values in N, N·mm and mm."""
    try:
        reader = pd.read_csv(path, sep=sep, header=0, skiprows=skip, usecols=usecols, names=None, dtype=np.float64,
                             chunksize=block_rows, engine="c", encoding="utf-8-sig", skip_blank_lines=True)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"{where}: cannot be read as a text export ({_first_line(exc)})") from None
    name_at = dict(zip(usecols, names))
    file_order = [name_at[pos] for pos in sorted(usecols)]  # pandas returns the columns in file order
    row = 0
    with reader:
        while True:
            try:
                df = next(reader)
            except StopIteration:
                return
            except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
                raise ImportFileError(f"{where}: after line {row + skip + 1}: {_first_line(exc)} (every value must "
                                      "be a number)") from None
            if df.empty:
                continue
            arr = df.to_numpy(dtype=np.float64)
            cols = dict(zip(file_order, arr.T))
            t = cols.pop("Time") * factor.get("Time", 1.0)
            yield t, {n: (v * factor.get(n, 1.0)).astype(np.float32) for n, v in cols.items()}
            row += len(t)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
