"""Building blocks of a self-contained HTML report: page shell with print CSS, numbers, cards, figures, tables.

Every number shown that comes from an analysis result is written as
``<span class="num" data-metric="PATH" data-value="REPR">TEXT</span>``, where ``PATH`` is a dotted path into the
JSON document embedded in the same page (``<script type="application/json" id="treadlab-data">``) and ``REPR``
its full-precision value; tests (and any script) can check the page against the analysis output.
"""

from __future__ import annotations

import html
import json
import math

from treadlab import __version__

#: Default asymmetry bands: |SI| below the first is fine, up to the second is "watch", above is "flag".
DEFAULT_BANDS_PCT = (5.0, 10.0)

CSS = """
:root { --left: #0072B2; --right: #D55E00; --fine: #1b7837; --watch: #b8860b; --flag: #b2182b; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 10.5pt; color: #222; margin: 0 auto;
       max-width: 190mm; padding: 8mm 4mm; line-height: 1.35; }
h1 { font-size: 17pt; margin: 0 0 2mm 0; } h2 { font-size: 13pt; margin: 6mm 0 2mm 0; border-bottom: 1px solid #ccc; }
.meta { display: grid; grid-template-columns: repeat(4, auto); gap: 0.5mm 4mm; font-size: 9.5pt; margin: 0; }
.meta dt { color: #666; } .meta dd { margin: 0; font-weight: 600; }
.quality { font-size: 9pt; color: #444; margin: 2mm 0; padding: 1.5mm 2mm; background: #f4f4f4; }
.quality.warning { background: #fdf0d5; color: #5a3d00; }
.cards { display: flex; flex-wrap: wrap; gap: 2mm; }
.card { flex: 1 1 42mm; border: 1px solid #ccc; border-radius: 2mm; padding: 2mm 3mm; break-inside: avoid;
        page-break-inside: avoid; }
.card h3 { font-size: 9pt; color: #555; margin: 0 0 1mm 0; font-weight: 600; }
.card .big { font-size: 14pt; font-weight: 700; }
.left { color: var(--left); } .right { color: var(--right); }
.si { font-size: 9pt; padding: 0 1.5mm; border-radius: 1mm; color: #fff; white-space: nowrap; }
.si.fine { background: var(--fine); } .si.watch { background: var(--watch); } .si.flag { background: var(--flag); }
.si.none { background: #999; }
figure { margin: 4mm 0; break-inside: avoid; page-break-inside: avoid; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: 9pt; color: #444; margin-top: 1mm; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; break-inside: auto; }
th, td { border-bottom: 1px solid #ddd; padding: 1mm 1.5mm; text-align: right; }
th:first-child, td:first-child { text-align: left; } thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
.summary li { margin-bottom: 1mm; } .summary { font-size: 11pt; }
.yes { color: var(--flag); font-weight: 700; } .no { color: #777; } .few { color: var(--watch); }
footer { font-size: 8pt; color: #777; margin-top: 6mm; }
@page { margin: 12mm; }
@media print { body { padding: 0; max-width: none; } h2 { break-after: avoid; page-break-after: avoid; } }
"""


def esc(text) -> str:
    """HTML-escape any value's text."""
    return html.escape(str(text), quote=True)


def fmt(value, decimals: int) -> str:
    """A number as shown in reports (``–`` when missing or not finite)."""
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if not math.isfinite(v):
        return "–"
    return f"{v:,.{decimals}f}".replace("-", "−") if decimals else f"{v:,.0f}".replace("-", "−")


def num(path: str, value, decimals: int, extra_class: str = "") -> str:
    """One analysis number, traceable to ``path`` in the embedded JSON."""
    rep = "null" if value is None or not _finite(value) else repr(float(value))
    cls = f"num {extra_class}".strip()
    return f'<span class="{cls}" data-metric="{esc(path)}" data-value="{rep}">{fmt(value, decimals)}</span>'


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def band(si_pct, bands_pct: tuple[float, float] = DEFAULT_BANDS_PCT) -> str:
    """Band name of a symmetry index: "fine", "watch", "flag" (or "none" when missing)."""
    if not _finite(si_pct):
        return "none"
    a = abs(float(si_pct))
    return "fine" if a < bands_pct[0] else ("watch" if a <= bands_pct[1] else "flag")


def si_badge(path: str, si_pct, bands_pct: tuple[float, float]) -> str:
    """A coloured SI badge (``SI +4.2%``), positive meaning the right side is larger."""
    b = band(si_pct, bands_pct)
    sign = "+" if _finite(si_pct) and float(si_pct) > 0 else ""
    title = {"fine": "fine", "watch": "watch", "flag": "flag", "none": "no value"}[b]
    return (f'<span class="si {b}" title="asymmetry: {title}">SI {sign}{num(path, si_pct, 1)}%</span>')


def figure(name: str, png_b64: str, caption: str, alt: str) -> str:
    """An embedded PNG figure with its one-line caption."""
    return (f'<figure id="fig-{esc(name)}"><img alt="{esc(alt)}" src="data:image/png;base64,{png_b64}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def json_block(doc: dict) -> str:
    """The page's machine-readable numbers (NaN written as null)."""
    text = json.dumps(clean_json(doc), allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="treadlab-data">{text}</script>'


def clean_json(obj):
    """A copy of ``obj`` that :func:`json.dumps` accepts with ``allow_nan=False`` (NaN and inf become None)."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "item"):  # numpy scalars
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def page(title: str, body: str, doc: dict) -> str:
    """The whole self-contained document."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"generator\" content=\"treadlab {esc(__version__)}\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n{body}\n"
        f"<footer>Made by treadlab {esc(__version__)}. Numbers: mean over steps; SI = (R − L) / mean(R, L) × 100, "
        "positive when the right side is larger.</footer>\n"
        f"{json_block(doc)}\n</body></html>\n"
    )


def meta_list(items: list[tuple[str, str]]) -> str:
    """A header definition list (already-escaped values)."""
    return '<dl class="meta">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"
