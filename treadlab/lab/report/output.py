"""Writing report files and parsing the options shared by ``lab report`` and ``lab compare``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from treadlab.errors import ConfigError, StorageError
from treadlab.lab.report.page import DEFAULT_BANDS_PCT


def parse_bands(text: str | None) -> tuple[float, float]:
    """``"5,10"`` -> (5.0, 10.0): the asymmetry bands in % of |SI| (fine below the first, flag above the second)."""
    if text is None:
        return DEFAULT_BANDS_PCT
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"invalid --bands {text!r}: give two numbers, e.g. 5,10") from None
    if not 0 < lo < hi:
        raise ConfigError(f"invalid --bands {text!r}: need 0 < fine limit < flag limit")
    return lo, hi


def add_band_argument(parser) -> None:
    """The ``--bands`` option."""
    parser.add_argument("--bands", metavar="FINE,FLAG", default=None,
                        help="asymmetry colour bands in %% of |SI| (default 5,10: under 5 fine, 5-10 watch, "
                             "over 10 flag)")


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, then a rename).

    Raises
    ------
    StorageError
        When the folder does not exist or cannot be written.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise StorageError(f"cannot write {path}: folder {folder} does not exist")
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


@contextmanager
def analysis_warnings(prefix: str, stream) -> Iterator[list[str]]:
    """Collect the analysis' warnings (e.g. insole scale against body mass) and print each once as one line."""
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        yield seen
    for w in caught:
        if issubclass(w.category, UserWarning):
            seen.append(str(w.message))
    for text in dict.fromkeys(seen):
        print(f"{prefix}: warning: {text}", file=stream)
