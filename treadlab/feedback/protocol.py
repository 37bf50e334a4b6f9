"""Feedback protocols as data: a TOML file (``docs/feedback.md``) or a shipped preset named without a path.

A protocol has one target metric with a band (absolute bounds, or bounds in % of the median of a baseline
phase), one cue kind, and phases that follow each other from session time 0, each with feedback "on", "off" or a
fraction (faded: that share of each foot's steps gets its cue, chosen deterministically, see
:meth:`Phase.cued`).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from treadlab.errors import ConfigError

METRICS = ("strike_index_pct", "cadence_spm", "vilr_bw_s", "avlr_bw_s", "impact_peak_bw", "contact_time_ms",
           "pelvic_drop_deg", "pta_g")
CUE_KINDS = ("step-tone", "bandwidth", "metronome", "screen")
_TARGET_KEYS = {"metric", "low", "high", "low_pct_of_baseline", "high_pct_of_baseline", "baseline_phase"}
_CUE_KEYS = {"kind", "metronome_spm", "metronome_pct_of_baseline", "ramp_spm_per_min", "tone_ms", "volume"}
_PHASE_KEYS = {"name", "duration_s", "feedback", "metronome_spm", "metronome_pct_of_baseline"}
PHASE_NAME_BYTES = 64


@dataclass(frozen=True)
class Phase:
    """One phase: ``name``, ``start_s``, ``duration_s``, the cued share (0 off, 1 on, between: faded)."""

    name: str
    start_s: float
    duration_s: float
    share: float
    metronome_spm: float | None = None
    metronome_pct_of_baseline: float | None = None

    @property
    def stop_s(self) -> float:
        """End of the phase (session s)."""
        return self.start_s + self.duration_s

    @property
    def feedback(self) -> bool:
        """True when some steps are cued."""
        return self.share > 0

    def cued(self, step_n: int) -> bool:
        """Whether the foot's ``step_n``-th step of this phase (from 0) gets its cue.

        Exact share: step n is cued when ``floor((n + 1) s)`` exceeds ``floor(n s)`` (for 0.5 every other step of
        each foot, the 2nd, 4th...; for 0.25 every 4th).
        """
        s = self.share
        if s >= 1.0:
            return True
        if s <= 0.0:
            return False
        return math.floor((step_n + 1) * s + 1e-9) > math.floor(step_n * s + 1e-9)


@dataclass
class Protocol:
    """A parsed protocol (see :func:`parse_protocol`).

    Attributes
    ----------
    metric : str
    low, high : float or None
        The band (either may be None: unbounded); None until set from the baseline when relative.
    low_pct, high_pct : float or None
        Bounds in % of the baseline median (when given, ``low``/``high`` are set by :meth:`set_baseline`).
    baseline_phase : str or None
    cue_kind : str
    metronome_spm, metronome_pct_of_baseline, ramp_spm_per_min : float or None
    tone_ms, volume : float
    phases : list of Phase
    text : str
        The TOML text (stored in the session file).
    name : str
    """

    metric: str
    low: float | None
    high: float | None
    low_pct: float | None
    high_pct: float | None
    baseline_phase: str | None
    cue_kind: str
    metronome_spm: float | None
    metronome_pct_of_baseline: float | None
    ramp_spm_per_min: float
    tone_ms: float
    volume: float
    phases: list[Phase] = field(default_factory=list)
    text: str = ""
    name: str = ""

    @property
    def duration_s(self) -> float:
        """Sum of the phases."""
        return self.phases[-1].stop_s if self.phases else 0.0

    @property
    def relative(self) -> bool:
        """True when the band comes from the baseline."""
        return self.low_pct is not None or self.high_pct is not None

    def phase_at(self, time_s: float) -> int:
        """Index of the phase at ``time_s`` (-1 after the last one)."""
        for i, p in enumerate(self.phases):
            if p.start_s <= time_s < p.stop_s:
                return i
        return -1

    def to_toml(self) -> str:
        """The protocol as TOML text (what :func:`parse_protocol` reads back), e.g. after the GUI changed it."""
        def q(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = ["[target]", f"metric = {q(self.metric)}"]
        for key, v in (("low", self.low if self.low_pct is None else None),
                       ("high", self.high if self.high_pct is None else None),
                       ("low_pct_of_baseline", self.low_pct), ("high_pct_of_baseline", self.high_pct)):
            if v is not None:
                lines.append(f"{key} = {v!r}")
        if self.baseline_phase is not None and self.relative:
            lines.append(f"baseline_phase = {q(self.baseline_phase)}")
        lines += ["", "[cue]", f"kind = {q(self.cue_kind)}"]
        for key, v in (("metronome_spm", self.metronome_spm),
                       ("metronome_pct_of_baseline", self.metronome_pct_of_baseline),
                       ("ramp_spm_per_min", self.ramp_spm_per_min or None), ("tone_ms", self.tone_ms),
                       ("volume", self.volume)):
            if v is not None:
                lines.append(f"{key} = {float(v)!r}")
        for p in self.phases:
            fb = '"on"' if p.share >= 1 else ('"off"' if p.share <= 0 else repr(p.share))
            lines += ["", "[[phase]]", f"name = {q(p.name)}", f"duration_s = {p.duration_s!r}", f"feedback = {fb}"]
            for key, v in (("metronome_spm", p.metronome_spm), ("metronome_pct_of_baseline",
                                                                 p.metronome_pct_of_baseline)):
                if v is not None:
                    lines.append(f"{key} = {float(v)!r}")
        return "\n".join(lines) + "\n"

    def set_baseline(self, median: float) -> None:
        """Set the relative band (and nothing else) from the baseline median of the target metric."""
        if self.low_pct is not None:
            self.low = median * self.low_pct / 100.0
        if self.high_pct is not None:
            self.high = median * self.high_pct / 100.0

    def in_band(self, value: float) -> int:
        """1 in band, 0 outside, 255 not applicable (NaN value, or a relative band not set yet)."""
        if not math.isfinite(value) or (self.relative and self.low is None and self.high is None):
            return 255
        if self.low is not None and value < self.low:
            return 0
        if self.high is not None and value > self.high:
            return 0
        return 1

    def band_text(self) -> str:
        """The band for people: "34-100 %", ">= 34", "<= 80 BW/s"..."""
        if self.relative and self.low is None and self.high is None:
            parts = []
            if self.low_pct is not None:
                parts.append(f">= {self.low_pct:g} %")
            if self.high_pct is not None:
                parts.append(f"<= {self.high_pct:g} %")
            return " and ".join(parts) + f" of the {self.baseline_phase} median"
        if self.low is not None and self.high is not None:
            return f"{self.low:.4g}-{self.high:.4g}"
        if self.low is not None:
            return f">= {self.low:.4g}"
        return f"<= {self.high:.4g}" if self.high is not None else "any"


def preset_names() -> list[str]:
    """Names of the shipped protocols."""
    folder = resources.files("treadlab.config") / "protocols"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_protocol(name_or_path: str | Path) -> Protocol:
    """A protocol from a TOML file, or a shipped preset by name (``five-minute``, ``2x5+5``, ``cadence-ramp``...).

    Raises
    ------
    ConfigError
        Missing file, bad TOML (with its line), unknown or invalid keys.
    """
    p = Path(name_or_path)
    if not p.exists() and p.suffix != ".toml" and "/" not in str(name_or_path):
        res = resources.files("treadlab.config") / "protocols" / f"{name_or_path}.toml"
        if not res.is_file():
            raise ConfigError(f"protocol {name_or_path!r} not found: not a file, and not a shipped preset "
                              f"({', '.join(preset_names())})")
        return parse_protocol(res.read_text(encoding="utf-8"), str(name_or_path))
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"protocol file {p} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"protocol file {p} cannot be read: {exc}") from exc
    return parse_protocol(text, p.stem)


def _num(table: dict, key: str, where: str, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    v = table.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise ConfigError(f"{where}: {key} must be a number in {lo:g}..{hi:g}, got {v!r}")
    return float(v)


def _unknown(table: dict, allowed: set, where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}; known: {', '.join(sorted(allowed))}")


def parse_protocol(text: str, name: str = "protocol") -> Protocol:
    """Parse and validate a protocol's TOML text.

    Raises
    ------
    ConfigError
        One message naming the file and the key.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"protocol {name}: not valid TOML: {exc}") from exc
    _unknown(doc, {"target", "cue", "phase"}, f"protocol {name}")
    target, cue, phases = doc.get("target"), doc.get("cue", {}), doc.get("phase")
    if not isinstance(target, dict):
        raise ConfigError(f"protocol {name}: a [target] table is required")
    if not isinstance(cue, dict):
        raise ConfigError(f"protocol {name}: [cue] must be a table")
    if not isinstance(phases, list) or not phases:
        raise ConfigError(f"protocol {name}: at least one [[phase]] is required")
    where = f"protocol {name} [target]"
    _unknown(target, _TARGET_KEYS, where)
    metric = target.get("metric")
    if metric not in METRICS:
        raise ConfigError(f"{where}: metric must be one of {', '.join(METRICS)}, got {metric!r}")
    low, high = _num(target, "low", where), _num(target, "high", where)
    low_pct = _num(target, "low_pct_of_baseline", where, 0.0, 1000.0)
    high_pct = _num(target, "high_pct_of_baseline", where, 0.0, 1000.0)
    if (low_pct is not None or high_pct is not None) and (low is not None or high is not None):
        raise ConfigError(f"{where}: give the band either as low/high or in % of the baseline, not both")
    if low is None and high is None and low_pct is None and high_pct is None:
        raise ConfigError(f"{where}: the band needs low, high, low_pct_of_baseline or high_pct_of_baseline")
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{where}: low ({low:g}) is above high ({high:g})")
    where_c = f"protocol {name} [cue]"
    _unknown(cue, _CUE_KEYS, where_c)
    kind = cue.get("kind", "step-tone")
    if kind not in CUE_KINDS:
        raise ConfigError(f"{where_c}: kind must be one of {', '.join(CUE_KINDS)}, got {kind!r}")
    proto = Protocol(metric, low, high, low_pct, high_pct, None, kind,
                     _num(cue, "metronome_spm", where_c, 30.0, 300.0),
                     _num(cue, "metronome_pct_of_baseline", where_c, 50.0, 200.0),
                     _num(cue, "ramp_spm_per_min", where_c, -60.0, 60.0) or 0.0,
                     _num(cue, "tone_ms", where_c, 5.0, 500.0) or 60.0,
                     _num(cue, "volume", where_c, 0.0, 1.0) or 0.5, text=text, name=name)
    start = 0.0
    names = set()
    for i, ph in enumerate(phases):  # once per phase
        wp = f"protocol {name} phase {i + 1}"
        if not isinstance(ph, dict):
            raise ConfigError(f"{wp}: must be a table")
        _unknown(ph, _PHASE_KEYS, wp)
        pname = ph.get("name")
        if not isinstance(pname, str) or not pname.strip() or len(pname.encode()) > PHASE_NAME_BYTES:
            raise ConfigError(f"{wp}: name must be a text of 1-{PHASE_NAME_BYTES} bytes")
        if pname in names:
            raise ConfigError(f"{wp}: the name {pname!r} is used twice")
        names.add(pname)
        dur = _num(ph, "duration_s", wp, 1.0, 86400.0)
        if dur is None:
            raise ConfigError(f"{wp}: duration_s is required")
        fb = ph.get("feedback", "on")
        if fb == "on":
            share = 1.0
        elif fb == "off":
            share = 0.0
        elif isinstance(fb, int | float) and not isinstance(fb, bool) and 0.0 <= fb <= 1.0:
            share = float(fb)
        else:
            raise ConfigError(f"{wp}: feedback must be \"on\", \"off\" or a fraction 0..1, got {fb!r}")
        proto.phases.append(Phase(pname, start, dur, share, _num(ph, "metronome_spm", wp, 30.0, 300.0),
                                  _num(ph, "metronome_pct_of_baseline", wp, 50.0, 200.0)))
        start += dur
    base = target.get("baseline_phase")
    if proto.relative or base is not None:
        base = base if base is not None else proto.phases[0].name
        if base not in names:
            raise ConfigError(f"{where}: baseline_phase {base!r} is not a phase")
        bi = [p.name for p in proto.phases].index(base)
        if proto.phases[bi].feedback:
            raise ConfigError(f"{where}: the baseline phase {base!r} must have feedback = \"off\"")
        if any(p.feedback for p in proto.phases[:bi]):
            raise ConfigError(f"{where}: the baseline phase {base!r} must come before every feedback phase")
        proto.baseline_phase = base
    if kind == "metronome":
        needs = [p for p in proto.phases if p.feedback]
        for p in needs:
            if (p.metronome_spm or proto.metronome_spm) is None and \
                    (p.metronome_pct_of_baseline or proto.metronome_pct_of_baseline) is None:
                raise ConfigError(f"protocol {name}: metronome phase {p.name!r} needs metronome_spm or "
                                  "metronome_pct_of_baseline (in [cue] or the phase)")
            if (p.metronome_pct_of_baseline or (p.metronome_spm is None and proto.metronome_pct_of_baseline)) \
                    and proto.baseline_phase is None:
                proto.baseline_phase = proto.phases[0].name
                if proto.phases[0].feedback:
                    raise ConfigError(f"protocol {name}: a metronome in % of the baseline needs a first phase "
                                      "without feedback")
    return proto
