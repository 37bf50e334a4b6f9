"""The force kind: a force plate or an instrumented treadmill (one belt, or two split belts).

INFO (protocol v1, ``docs/protocol.md``): ``dtype`` ``"i32"`` or ``"f32"``; ``channels`` in wire order;
``belts`` ``"single"`` or ``"split"`` (then every channel name ends in ``_l`` or ``_r`` and both belts carry the
same channels); ``origin_mm`` (x, y, z of each plate's surface centre, in the frame of the COP channels) and
``size_mm`` (length along the forward axis, width across it, of each plate); ``axes`` ``{"vertical": "z",
"forward": "x"}``: which axis of the plate frame points up and which the runner faces, each a letter with an
optional sign (``"-x"``).

Channel names: ``F<a>`` (N) and ``M<a>`` (N·mm) for any axis ``a``; ``COP<a>`` (mm) for the two horizontal axes;
``T<v>`` (N·mm), the free moment about the vertical axis ``v``; ``belt_speed`` (m/s). With the default axes these
are ``Fx Fy Fz Mx My Mz COPx COPy Tz belt_speed``; a file whose vertical axis is ``y`` (a motion-capture lab
frame) has ``COPx COPz Ty``. The vertical force must be there.
"""

from __future__ import annotations

import json

import numpy as np

from treadlab.errors import ConfigError, ProtocolError
from treadlab.kinds.base import Kind, register_kind

__all__ = ["AXES", "BELTS", "DEFAULT_AXES", "DTYPES", "FORCE", "ForceKind", "allowed_channels", "belt_suffixes",
           "channel_unit", "check_force_info", "parse_axis", "right_axis"]

AXES = ("x", "y", "z")
BELTS = ("single", "split")
DTYPES = ("i32", "f32")
DEFAULT_AXES = {"vertical": "z", "forward": "x"}
#: Channel-name suffix of each belt: the split belts' left and right, nothing on a single belt.
BELT_SUFFIXES = {"single": ("",), "split": ("_l", "_r")}
BELT_NAMES = {"": "single", "_l": "left", "_r": "right"}


def parse_axis(text, what: str = "axis") -> tuple[str, float]:
    """``"x"``, ``"+y"``, ``"-z"`` -> ``(letter, sign)``.

    Raises
    ------
    ValueError
        Not one of x, y, z with an optional sign (the message says what was given).
    """
    s = str(text).strip().lower() if isinstance(text, str) else ""
    sign = -1.0 if s.startswith("-") else 1.0
    letter = s[1:] if s[:1] in "+-" and s else s
    if letter not in AXES:
        raise ValueError(f"{what} must be x, y or z with an optional sign (e.g. '-x'), got {text!r}")
    return letter, sign


def right_axis(axes: dict) -> tuple[str, float]:
    """The axis pointing to the runner's right (forward x vertical), as ``(letter, sign)``."""
    v, sv = parse_axis(axes["vertical"])
    f, sf = parse_axis(axes["forward"])
    unit = {a: np.eye(3)[i] for i, a in enumerate(AXES)}
    r = np.cross(sf * unit[f], sv * unit[v])
    i = int(np.argmax(np.abs(r)))
    return AXES[i], float(np.sign(r[i]))


def allowed_channels(axes: dict) -> tuple[str, ...]:
    """Base channel names (no belt suffix) a device with these axes may send, in canonical order."""
    v, _ = parse_axis(axes["vertical"])
    horizontal = [a for a in AXES if a != v]
    return (*(f"F{a}" for a in AXES), *(f"M{a}" for a in AXES), *(f"COP{a}" for a in horizontal), f"T{v}",
            "belt_speed")


def channel_unit(base: str) -> str:
    """The calibrated unit of a base channel name: N, N·mm, mm or m/s."""
    if base == "belt_speed":
        return "m/s"
    if base.startswith("COP"):
        return "mm"
    if base.startswith(("M", "T")):
        return "N·mm"
    return "N"


def belt_suffixes(belts: str) -> tuple[str, ...]:
    """``("",)`` for a single belt, ``("_l", "_r")`` for split belts."""
    return BELT_SUFFIXES[belts]


def split_name(name: str, belts: str) -> tuple[str, str]:
    """A channel name -> ``(base, suffix)``; the suffix is "" on a single belt."""
    if belts == "split" and name[-2:] in ("_l", "_r"):
        return name[:-2], name[-2:]
    return name, ""


def _pfx(where: str) -> str:
    return f"{where}: " if where else ""


def _plates(value, n_plates: int, n_values: int, key: str, where: str, positive: bool) -> np.ndarray:
    """``origin_mm`` / ``size_mm`` -> float array (n_plates, n_values); a single plate may give one flat list."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is not None and arr.ndim == 1 and n_plates == 1:
        arr = arr[None, :]
    shape = "[" + ", ".join(["n"] * n_values) + "]"
    if arr is None or arr.shape != (n_plates, n_values):
        per = "one list" if n_plates == 1 else "a list per belt (left, right)"
        raise ProtocolError(f"{_pfx(where)}INFO {key} must be {per} {shape} of numbers, got {value!r}")
    if np.isinf(arr).any() or (positive and (arr[np.isfinite(arr)] <= 0).any()):
        raise ProtocolError(f"{_pfx(where)}INFO {key} must be {'positive ' if positive else ''}finite numbers "
                            f"(NaN when unknown), got {value!r}")
    return arr


def check_force_info(info: dict, where: str = "") -> dict:
    """Validate the force kind's INFO keys; returns them normalised.

    Returns
    -------
    dict
        ``channels`` (tuple of str), ``belts``, ``axes`` (dict with ``vertical``, ``forward``), ``origin_mm``
        (ndarray (plates, 3)), ``size_mm`` (ndarray (plates, 2)).

    Raises
    ------
    ProtocolError
        One message per defect: an unknown dtype, belts or axis, a channel outside the vocabulary, a duplicate,
        a missing belt suffix, belts with different channels, no vertical force, plate geometry of the wrong shape.
    """
    dtype = info.get("dtype")
    if dtype is not None and dtype not in DTYPES:
        raise ProtocolError(f"{_pfx(where)}INFO dtype {dtype!r} of a force device must be 'i32' or 'f32'")
    belts = info.get("belts")
    if belts not in BELTS:
        raise ProtocolError(f"{_pfx(where)}INFO belts must be 'single' or 'split', got {belts!r}")
    axes = info.get("axes")
    if not isinstance(axes, dict) or set(axes) != {"vertical", "forward"}:
        raise ProtocolError(f"{_pfx(where)}INFO axes must be {{\"vertical\": ..., \"forward\": ...}} "
                            f"(e.g. {json.dumps(DEFAULT_AXES)}), got {axes!r}")
    try:
        v, _ = parse_axis(axes["vertical"], "axes.vertical")
        f, _ = parse_axis(axes["forward"], "axes.forward")
    except ValueError as exc:
        raise ProtocolError(f"{_pfx(where)}INFO {exc}") from None
    if v == f:
        raise ProtocolError(f"{_pfx(where)}INFO axes: vertical and forward are both {v!r}")
    channels = info.get("channels")
    if (not isinstance(channels, (list, tuple)) or not channels
            or not all(isinstance(c, str) and c for c in channels)):
        raise ProtocolError(f"{_pfx(where)}INFO channels must be a non-empty list of channel names, got {channels!r}")
    dup = sorted({c for c in channels if list(channels).count(c) > 1})
    if dup:
        raise ProtocolError(f"{_pfx(where)}INFO channels name {', '.join(dup)} more than once")
    allowed = allowed_channels(axes)
    per_belt: dict[str, list[str]] = {s: [] for s in belt_suffixes(belts)}
    for c in channels:
        base, suffix = split_name(c, belts)
        if suffix not in per_belt:
            raise ProtocolError(f"{_pfx(where)}INFO channel {c!r} of a split-belt device must end in _l or _r")
        if base not in allowed:
            raise ProtocolError(f"{_pfx(where)}INFO channel {c!r} is not a force channel; with vertical axis {v!r} "
                                f"they are {' '.join(allowed)}" + (" with _l/_r" if belts == "split" else ""))
        per_belt[suffix].append(base)
    sets = [set(b) for b in per_belt.values()]
    if any(s != sets[0] for s in sets):
        raise ProtocolError(f"{_pfx(where)}INFO channels: the left belt has {' '.join(per_belt['_l'])}, the right "
                            f"{' '.join(per_belt['_r'])}; both belts need the same channels")
    if f"F{v}" not in sets[0]:
        raise ProtocolError(f"{_pfx(where)}INFO channels lack the vertical force F{v}"
                            + (f" (F{v}_l, F{v}_r)" if belts == "split" else ""))
    n = len(per_belt)
    return {"channels": tuple(channels), "belts": belts, "axes": {"vertical": str(axes["vertical"]).strip().lower(),
                                                                   "forward": str(axes["forward"]).strip().lower()},
            "origin_mm": _plates(info.get("origin_mm"), n, 3, "origin_mm", where, positive=False),
            "size_mm": _plates(info.get("size_mm"), n, 2, "size_mm", where, positive=True)}


class ForceKind(Kind):
    """Force plates and instrumented treadmills: shape ``(n_channels,)``, labels = channel names, units per
    channel (N, N·mm, mm, m/s) with CALIBRATION unit "force"; LSL type ``ForcePlate``.
    """

    name = "force"
    info_keys = ("dtype", "channels", "belts", "origin_mm", "size_mm", "axes")
    lsl_type = "ForcePlate"

    signed = True  # forces along the belt, moments and COP have a sign

    def check_info(self, info: dict, where: str) -> None:
        """Every force INFO key (:func:`check_force_info`): one :class:`ProtocolError` per defect."""
        check_force_info(info, where)

    def shape(self, info: dict) -> tuple[int, ...]:
        """``(n_channels,)``."""
        return (len(info["channels"]),)

    def channel_labels(self, shape: tuple[int, ...], info: dict) -> tuple[str, ...]:
        """The channel names, in wire order."""
        return tuple(str(c) for c in info["channels"])

    def channel_units(self, shape: tuple[int, ...], info: dict, unit: str) -> tuple[str, ...]:
        """N, N·mm, mm or m/s per channel when calibrated (unit "force"); none for raw counts."""
        if unit != "force":
            return ()
        return tuple(channel_unit(split_name(str(c), info.get("belts", "single"))[0]) for c in info["channels"])

    def device_attrs(self, info: dict, shape: tuple[int, ...]) -> dict:
        """``channels``, ``belts``, ``origin_mm``, ``size_mm``, ``axes`` (JSON text) of ``/devices/<name>``;
        ``source_file`` and ``source_format`` of an imported file.
        """
        chk = check_force_info(info)
        attrs = {"channels": list(chk["channels"]), "belts": chk["belts"], "origin_mm": chk["origin_mm"],
                 "size_mm": chk["size_mm"], "axes": json.dumps(chk["axes"])}
        for key in ("source_file", "source_format"):
            if key in info:
                attrs[key] = str(info[key])
        return attrs

    def summary(self, desc) -> str:
        """``force single belt, 7 channels (Fx Fy Fz COPx COPy Tz belt_speed), 1800 x 500 mm``."""
        info = desc.info
        belts = info.get("belts", "single")
        size = np.asarray(info.get("size_mm", []), dtype=float).reshape(-1, 2) if info.get("size_mm") else None
        plate = ""
        if size is not None and len(size) and np.isfinite(size).all():
            plate = ", " + " | ".join(f"{a:g} x {b:g} mm" for a, b in size)
        what = "split belts (left, right)" if belts == "split" else "single belt"
        return f"force {what}, {desc.n_values} channels ({' '.join(desc.channel_labels)}){plate}"

    def check_rig(self, entry: dict, where: str) -> None:
        """A force device describes itself in INFO: no ``side``, ``sensels`` or ``layout``."""
        misplaced = [k for k in ("side", "sensels", "layout") if k in entry]
        if misplaced:
            raise ConfigError(f"{where}: {', '.join(map(repr, misplaced))} do not apply to a force device "
                              "(it describes its channels, belts and axes in INFO)")


FORCE = register_kind(ForceKind())
