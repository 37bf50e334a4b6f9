"""Rig files: which devices a lab has, on which ports, and the session defaults (``docs/rig.md``).

:func:`load_rig` reads and validates a TOML rig file into a frozen :class:`Rig`; every problem is a
:class:`~treadlab.errors.ConfigError` naming the file, the device (number and name) and the key, e.g.
``rig.toml: device 2 ('insole_right'): line-protocol devices need 'sensels'``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treadlab.config import RIGS_DIR
from treadlab.drivers import protocol_names
from treadlab.drivers.adapters import ADAPTERS
from treadlab.drivers.base import DeviceConfig
from treadlab.errors import ConfigError
from treadlab.kinds import get_kind, kind_names

SESSION_KEYS = {
    "body_mass_kg": (int, float),
    "treadmill_speed_mps": (int, float),
    "foot_length_mm": (int, float),  # the strike index of force plates needs it (insoles know their own)
    "participant": str,
    "condition": str,
    "shoe": str,
    "notes": str,
}
#: ``protocol = "lsl"``, ``kind = "force"``: the stream's channel map and plate geometry (drivers/lsl_force.py).
LSL_FORCE_KEYS = ("belts", "axes", "origin_mm", "size_mm", "channels")
DEVICE_KEYS = ("name", "port", "protocol", "baudrate", "rate_hz", "kind", "side", "sensels", "serial",
               "time_unit", "layout", "calibration", "required", "stream_name", "stream_type", "source_id",
               *LSL_FORCE_KEYS)
#: ``protocol = "lsl"``: an external Lab Streaming Layer stream, named by any of these (docs/integration.md).
LSL_KEYS = ("stream_name", "stream_type", "source_id")
LINE_ONLY_KEYS = ("time_unit", "layout", "calibration")
LINE_REQUIRED_KEYS = ("side", "sensels", "rate_hz", "time_unit", "layout")
CALIBRATION_KEYS = ("unit", "gain", "offset")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Rig:
    """A validated rig file.

    Attributes
    ----------
    path : Path
        Where it was read from.
    text : str
        The file verbatim (stored in every session file recorded with it).
    session : dict
        ``[session]`` defaults (``body_mass_kg``, ``treadmill_speed_mps``...); the command line overrides them.
    devices : tuple of DeviceConfig
        The ``[[device]]`` entries in file order.
    """

    path: Path
    text: str
    session: dict
    devices: tuple[DeviceConfig, ...]

    def device(self, name: str) -> DeviceConfig:
        """The device called ``name``; raises :class:`ConfigError` listing the names if there is none."""
        for d in self.devices:
            if d.name == name:
                return d
        raise ConfigError(f"{self.path.name}: no device {name!r}; devices: {', '.join(d.name for d in self.devices)}")


def example_rigs() -> list[Path]:
    """The example rig files shipped with treadlab (``treadlab/config/rigs/*.toml``)."""
    return sorted(RIGS_DIR.glob("*.toml"))


def find_rig(name_or_path: str | Path) -> Path:
    """A rig file path, or the name of a shipped example (``usb-two-insoles-mat``) resolved to its path."""
    path = Path(name_or_path)
    if path.exists() or path.suffix == ".toml" or "/" in str(name_or_path):
        return path
    shipped = RIGS_DIR / f"{name_or_path}.toml"
    return shipped if shipped.exists() else path


def load_rig(path: str | Path) -> Rig:
    """Read and validate a rig file.

    Parameters
    ----------
    path : str or Path
        The rig file, or the name of a shipped example rig.

    Returns
    -------
    Rig

    Raises
    ------
    ConfigError
        The file is missing, not valid TOML (with the line number), or has an unknown, missing or invalid key,
        or two devices with the same name.
    """
    path = find_rig(path)
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"rig file {label} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"rig file {label} cannot be read: {exc}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - {"session", "device"})
    if unknown:
        raise ConfigError(f"{label}: unknown table or key {', '.join(map(repr, unknown))}; "
                          "allowed: [session], [[device]]")
    session = _check_session(doc.get("session", {}), label)
    entries = doc.get("device", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{label}: no [[device]] entries (a rig needs at least one device)")
    devices = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries, start=1):
        cfg = _check_device(entry, f"{label}: device {i}", i)
        if cfg.name in seen:
            raise ConfigError(f"{label}: device {i} ({cfg.name!r}): name already used by device {seen[cfg.name]}")
        seen[cfg.name] = i
        same_port = [j for j, d in enumerate(devices, start=1) if d.port == cfg.port and "loop://" not in d.port
                     and not _may_share_port(d, cfg)]
        if same_port:
            j = same_port[0]
            raise ConfigError(f"{label}: device {i} ({cfg.name!r}): port {cfg.port} already used by device {j} "
                              f"({devices[j - 1].name!r})")
        devices.append(cfg)
    return Rig(path=path, text=text, session=session, devices=tuple(devices))


def _may_share_port(a: DeviceConfig, b: DeviceConfig) -> bool:
    """Two entries of an adapter whose one stream carries several devices (insoles, imus: by kind and side)."""
    adapter = ADAPTERS.get(a.protocol)
    return (a.protocol == b.protocol and adapter is not None and adapter.shared_port
            and (a.kind, a.side) != (b.kind, b.side))


def _check_session(table: Any, label: str) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"{label}: [session] must be a table")
    out = {}
    for key, value in table.items():
        if key not in SESSION_KEYS:
            raise ConfigError(f"{label}: [session]: unknown key {key!r}; allowed: {', '.join(SESSION_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, SESSION_KEYS[key]):
            raise ConfigError(f"{label}: [session]: {key} must be a {_type_name(SESSION_KEYS[key])}, got {value!r}")
        if key.endswith(("_kg", "_mps", "_mm")) and not value > 0:
            raise ConfigError(f"{label}: [session]: {key} must be positive, got {value!r}")
        out[key] = float(value) if key.endswith(("_kg", "_mps", "_mm")) else value
    return out


def _type_name(t: Any) -> str:
    return "number" if t == (int, float) else {str: "string", int: "integer", bool: "boolean"}.get(t, str(t))


def _check_device(entry: Any, where: str, index: int) -> DeviceConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{where}: 'name' must be a name of letters, digits, '_' or '-' starting with a letter "
                          f"(it becomes /devices/<name> in the session file), got {name!r}")
    where = f"{where} ({name!r})"
    unknown = sorted(set(entry) - set(DEVICE_KEYS) - set(_kind_rig_keys(entry.get("kind"))))
    owners = {k: [n for n in kind_names() if k in get_kind(n).rig_keys] for k in unknown}
    if unknown and all(owners.values()):  # keys of another kind (an imu's placement without kind = "imu")
        raise ConfigError(f"{where}: {', '.join(map(repr, unknown))} only appl{'ies' if len(unknown) == 1 else 'y'} "
                          f"to kind = {' or '.join(repr(n) for n in sorted({n for v in owners.values() for n in v}))} "
                          "entries (say the entry's kind)")
    if unknown:
        raise ConfigError(f"{where}: unknown key {', '.join(map(repr, unknown))}; allowed: {', '.join(DEVICE_KEYS)}")

    def get(key: str, types: Any, check=None, what: str = "") -> Any:
        if key not in entry:
            return None
        value = entry[key]
        if isinstance(value, bool) and types is not bool or not isinstance(value, types):
            raise ConfigError(f"{where}: {key!r} must be {what or 'a ' + _type_name(types)}, got {value!r}")
        if check is not None and not check(value):
            raise ConfigError(f"{where}: {key!r} must be {what}, got {value!r}")
        return value

    protocol = get("protocol", str, lambda v: v in protocol_names(),
                   "'binary' or 'line' (serial devices), or 'lsl' (a Lab Streaming Layer stream)"
                   + "".join(f", or {p!r}" for p in protocol_names() if p not in ("binary", "line", "lsl"))) \
        or "binary"
    if protocol in ADAPTERS:  # devices with a public interface of their own (docs/adapters.md)
        return ADAPTERS[protocol].check_rig_entry(entry, where, get)
    if protocol == "lsl":
        return _check_lsl_device(entry, where, name, get)
    misplaced = [k for k in LSL_KEYS + LSL_FORCE_KEYS if k in entry]
    if misplaced:
        raise ConfigError(f"{where}: {', '.join(map(repr, misplaced))} only apply to protocol = 'lsl'"
                          + (" (a force device on protocol v1 describes itself in INFO)"
                             if set(misplaced) & set(LSL_FORCE_KEYS) else ""))
    port = get("port", str, lambda v: bool(v.strip()), "a non-empty string (a port or URL)")
    if port is None:
        raise ConfigError(f"{where}: missing 'port' (a serial port such as /dev/ttyACM0 or COM3, or a URL)")
    baudrate = get("baudrate", int, lambda v: v > 0, "a positive integer")
    rate_hz = get("rate_hz", int, lambda v: 0 < v < 65536, "an integer 1-65535")
    device_kinds = [k for k in kind_names() if get_kind(k).rig_kind]
    kind = get("kind", str, lambda v: v in device_kinds, " or ".join(map(repr, device_kinds)))
    side = get("side", str, lambda v: v in ("left", "right"), "'left' or 'right'")
    sensels = get("sensels", int, lambda v: v > 0, "a positive integer")
    serial = get("serial", str)
    time_unit = get("time_unit", str, lambda v: v in ("ms", "us"), "'ms' or 'us'")
    layout = get("layout", (str, dict), None, "a layout name or table")
    calibration = get("calibration", dict, None, "a table {unit, gain, offset}")
    required = get("required", bool)
    if protocol == "binary":
        misplaced = [k for k in LINE_ONLY_KEYS if k in entry]
        if misplaced:
            raise ConfigError(f"{where}: {', '.join(map(repr, misplaced))} only apply to line-protocol devices "
                              "(binary devices describe themselves in INFO)")
    else:
        for key in LINE_REQUIRED_KEYS:
            if key not in entry:
                raise ConfigError(f"{where}: line-protocol devices need {key!r}")
        line_kinds = [k for k in kind_names() if get_kind(k).line_protocol]
        if kind is not None and kind not in line_kinds:
            allowed = " or ".join(k + "s" for k in line_kinds)
            raise ConfigError(f"{where}: line-protocol devices are {allowed}, not {kind}s")
        kind = kind or "insole"
        layout = _check_layout(layout, sensels, where)
        calibration = _check_calibration(calibration, sensels, where)
    expect = {}
    if kind is not None:
        get_kind(kind).check_rig(entry, where)
        expect = {k: entry[k] for k in get_kind(kind).rig_keys if k in entry}  # checked against INFO, like side
    return DeviceConfig(
        name=name, port=port, protocol=protocol, baudrate=baudrate or 921600, rate_hz=rate_hz, kind=kind,
        side=side, sensels=sensels, serial=serial, time_unit=time_unit, layout=layout, calibration=calibration,
        required=True if required is None else required, expect=expect,
    )


def _kind_rig_keys(kind: Any) -> tuple[str, ...]:
    """The rig keys of a registered kind (none for anything else: the kind check names the problem)."""
    return get_kind(kind).rig_keys if isinstance(kind, str) and kind in kind_names() else ()


def _check_lsl_device(entry: dict, where: str, name: str, get) -> DeviceConfig:
    """An external LSL stream: named by stream_name, stream_type and/or source_id; optional ``required``."""
    allowed = ("name", "protocol", "required", *LSL_KEYS)
    kind = entry.get("kind")
    if kind is not None:  # a force plate or treadmill on LSL, with its channel map (drivers/lsl_force.py)
        from treadlab.drivers.lsl_force import FORCE_RIG_KEYS

        if kind != "force":
            raise ConfigError(f"{where}: an LSL stream is recorded as kind 'force' (with a channel map) or "
                              f"without a kind, not as {kind!r}")
        allowed += FORCE_RIG_KEYS
    misplaced = sorted(set(entry) - set(allowed))
    if misplaced:
        raise ConfigError(f"{where}: {', '.join(map(repr, misplaced))} do not apply to LSL streams; "
                          f"allowed: {', '.join(allowed)}")
    query = {k: get(k, str, lambda v: bool(v.strip()), "a non-empty string") for k in LSL_KEYS if k in entry}
    if not query:
        raise ConfigError(f"{where}: an LSL stream needs stream_name, stream_type or source_id")
    required = get("required", bool)
    port = "lsl:" + ";".join(f"{k}={v}" for k, v in query.items())
    extra = dict(query)
    if kind is not None:
        from treadlab.drivers.lsl_force import check_force_entry

        extra.update(check_force_entry(entry, where))
    return DeviceConfig(name=name, port=port, protocol="lsl", required=True if required is None else required,
                        kind=kind, extra=extra)


def _check_layout(layout: Any, sensels: int, where: str) -> Any:
    """Check a line device's layout (a known name, or a table with one position and area per sensel)."""
    from treadlab.drivers.layouts import load_layout

    try:
        lay = load_layout(layout)
    except ConfigError as exc:
        raise ConfigError(f"{where}: layout: {exc}") from exc
    n = len(lay.positions_mm)
    if n != sensels:
        raise ConfigError(f"{where}: layout has {n} sensels, but 'sensels' is {sensels}")
    return layout


def _check_calibration(cal: dict | None, sensels: int, where: str) -> dict:
    if cal is None:
        return {"unit": "N", "gain": 1.0, "offset": 0.0}
    unknown = sorted(set(cal) - set(CALIBRATION_KEYS))
    if unknown:
        raise ConfigError(f"{where}: calibration: unknown key {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(CALIBRATION_KEYS)}")
    out = {"unit": cal.get("unit", "N"), "gain": cal.get("gain", 1.0), "offset": cal.get("offset", 0.0)}
    if out["unit"] not in ("N", "kPa"):
        raise ConfigError(f"{where}: calibration: unit must be 'N' or 'kPa', got {out['unit']!r}")
    for key in ("gain", "offset"):
        v = out[key]
        if isinstance(v, list):
            if len(v) != sensels or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
                raise ConfigError(f"{where}: calibration: {key} must be a number or a list of {sensels} numbers")
        elif isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfigError(f"{where}: calibration: {key} must be a number or a list of {sensels} numbers")
    return out
