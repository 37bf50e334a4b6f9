"""An LSL stream of a force plate or an instrumented treadmill, recorded as a force device (kind "force").

Commercial treadmills and plates reach the lab through Lab Streaming Layer (the AMTI app, community Bertec
bridges, a DAQ publisher); their streams carry the channels in the sender's order, names and units. A rig entry
``protocol = "lsl"``, ``kind = "force"`` names the stream (``stream_name``/``stream_type``/``source_id``, as any LSL
stream) and maps its channels to the force contract (docs/rig.md, "LSL force streams")::

    [[device]]
    name = "treadmill"
    protocol = "lsl"
    kind = "force"
    stream_name = "BertecFIT"
    belts = "split"
    axes = { vertical = "z", forward = "x" }
    origin_mm = [[0.0, 130.0, 0.0], [0.0, -130.0, 0.0]]
    size_mm = [[1800.0, 240.0], [1800.0, 240.0]]
    channels = { Fz_l = "FZL", Mx_l = { stream = "MXL", scale = 1000.0 }, ... }

``origin_mm`` follows the force kind's plate-frame rule (docs/protocol.md, "Plate frames"): each belt's surface
centre in the frame its moments are taken about. Belts streaming moments about one treadmill origin give their
centres in it (as above); belts streaming moments about their own centres (Bertec) give
``origin_mm = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]``.

Each ``channels`` value is the stream channel (its label, or its position counting from 0) or a table
``{stream, scale, offset}``: contract value = ``scale * (stream value - offset)``, in N, N·mm, mm or m/s. The
file keeps what the stream sent for the mapped channels (``raw`` float32, in the contract's order) with that
``scale``/``offset`` as ``calibration/gain``/``offset`` (unit "force"), and the force INFO (``channels``, ``belts``,
``origin_mm``, ``size_mm``, ``axes``) with the stream's own description under ``lsl``; so the force reader and the
force analysis read it like a protocol v1 treadmill. Timing, clocks, gaps and reconnection are those of
:class:`~treadlab.drivers.lsl.LslInletDevice`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from treadlab.drivers.base import Calibration, DeviceConfig, SampleBatch
from treadlab.drivers.lsl import LslInletDevice
from treadlab.errors import ConfigError, DeviceMismatchError, ProtocolError
from treadlab.kinds import shape_from_info

__all__ = ["FORCE_RIG_KEYS", "LslForceDevice", "check_force_entry", "force_map_info"]

#: Rig keys of an LSL force stream beyond the LSL stream's own (``stream_name``...).
FORCE_RIG_KEYS = ("kind", "belts", "axes", "origin_mm", "size_mm", "channels")
_MAP_KEYS = ("stream", "scale", "offset")


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _channel_map(value, where: str) -> list[dict]:
    """``channels`` of a rig entry -> ``[{"name", "stream", "scale", "offset"}]`` in the entry's order."""
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{where}: 'channels' must be a table mapping force channels (Fz, Fz_l...) to stream "
                          "channels, e.g. channels = { Fz = \"FZ\", Mx = { stream = \"MX\", scale = 1000.0 } }")
    out = []
    for name, spec in value.items():
        if not isinstance(spec, dict):
            spec = {"stream": spec}
        unknown = sorted(set(spec) - set(_MAP_KEYS))
        if unknown:
            raise ConfigError(f"{where}: channels.{name}: unknown key {', '.join(map(repr, unknown))}; "
                              f"allowed: {', '.join(_MAP_KEYS)}")
        stream = spec.get("stream")
        if not (isinstance(stream, str) and stream.strip()) and not (isinstance(stream, int)
                                                                      and not isinstance(stream, bool)
                                                                      and stream >= 0):
            raise ConfigError(f"{where}: channels.{name}: the stream channel must be its label or its position "
                              f"counting from 0, got {stream!r}")
        scale, offset = spec.get("scale", 1.0), spec.get("offset", 0.0)
        if not _is_number(scale) or not np.isfinite(scale) or scale == 0:
            raise ConfigError(f"{where}: channels.{name}: scale must be a non-zero number, got {scale!r}")
        if not _is_number(offset) or not np.isfinite(offset):
            raise ConfigError(f"{where}: channels.{name}: offset must be a number, got {offset!r}")
        out.append({"name": str(name), "stream": stream, "scale": float(scale), "offset": float(offset)})
    return out


def force_map_info(entry: dict) -> dict:
    """The force INFO keys an entry gives (``channels`` names, ``belts``, ``axes``, ``origin_mm``, ``size_mm``;
    NaN geometry when the entry gives none), ``dtype`` "f32".
    """
    belts = entry.get("belts", "single")
    n = 2 if belts == "split" else 1
    origin = entry.get("origin_mm", [[float("nan")] * 3] * n)
    size = entry.get("size_mm", [[float("nan")] * 2] * n)
    return {"kind": "force", "dtype": "f32", "channels": [c["name"] for c in entry["_map"]], "belts": belts,
            "axes": dict(entry.get("axes", {"vertical": "z", "forward": "x"})), "origin_mm": origin, "size_mm": size}


def check_force_entry(entry: dict, where: str) -> dict:
    """Check the force keys of an LSL rig entry; returns them for ``DeviceConfig.extra`` (``force_map``,
    ``force_info``).

    Raises
    ------
    ConfigError
        A bad channel map, or force INFO the force kind refuses (names outside ``Fx Fy Fz Mx My Mz COPx COPy Tz
        belt_speed``, missing ``_l``/``_r`` on split belts, no vertical force, plate geometry of the wrong shape).
    """
    mapping = _channel_map(entry.get("channels"), where)
    info = force_map_info({**entry, "_map": mapping})
    try:
        shape_from_info(info, where)  # the force kind checks its INFO keys
    except ProtocolError as exc:
        raise ConfigError(str(exc).replace("INFO ", "")) from None
    return {"force_map": mapping, "force_info": info}


class LslForceDevice(LslInletDevice):
    """An LSL stream recorded as a force device: the mapped channels, float32, calibrated by the map.

    Parameters
    ----------
    cfg : DeviceConfig
        A ``protocol = "lsl"``, ``kind = "force"`` entry (``extra`` holds ``force_map`` and ``force_info`` from
        :func:`check_force_entry`).
    """

    def __init__(self, cfg: DeviceConfig) -> None:
        super().__init__(cfg)
        if "force_map" not in cfg.extra:
            raise ConfigError(f"{cfg.name}: an LSL force stream needs a channel map ('channels')")
        self.force_map: list[dict] = list(cfg.extra["force_map"])
        self._columns = np.zeros(0, np.int64)

    def _open(self, stream_info, timeout_s: float) -> None:
        super()._open(stream_info, timeout_s)
        if self.markers:
            self.close()
            raise DeviceMismatchError(f"{self.name}: LSL stream {stream_info.name()!r} carries strings, not forces")
        cols = []
        for c in self.force_map:
            s = c["stream"]
            if isinstance(s, int):
                if s >= self.n_values:
                    self.close()
                    raise DeviceMismatchError(f"{self.name}: channels.{c['name']} is stream channel {s}, but the "
                                              f"stream has {self.n_values} channels (counting from 0)")
                cols.append(s)
            elif s in self.labels:
                cols.append(self.labels.index(s))
            else:
                self.close()
                raise DeviceMismatchError(f"{self.name}: channels.{c['name']}: the LSL stream has no channel "
                                          f"{s!r}; its channels are {', '.join(self.labels)}")
        self._columns = np.asarray(cols, np.int64)
        stream = {k: self.info[k] for k in ("name", "type", "source_id", "uid", "hostname", "session_id",
                                            "channel_format", "labels", "units")}
        self.info = {**self.cfg.extra["force_info"], "protocol": self.protocol, "rate_hz": self.rate_hz,
                     "clock_hz": self.clock_hz, "serial": self.serial, "lsl": stream,
                     "channel_map": {c["name"]: self.labels[i] for c, i in zip(self.force_map, cols)},
                     "xml": self.info.get("xml", "")}
        self.kind = "force"
        self.shape = (len(cols),)

    def describe(self):
        """As :meth:`LslInletDevice.describe`, with the mapped channels' shape and float32 values."""
        return dataclasses.replace(super().describe(), dtype=np.dtype(np.float32))

    def get_calibration(self, timeout_s: float = 0.0) -> Calibration:
        """The channel map's ``scale``/``offset`` per channel, unit "force" (N, N·mm, mm, m/s by channel name)."""
        self.calibration = Calibration(unit="force",
                                       gain=np.array([c["scale"] for c in self.force_map], np.float32),
                                       offset=np.array([c["offset"] for c in self.force_map], np.float32))
        return self.calibration

    def _batch(self, seq: np.ndarray, t: np.ndarray, values: np.ndarray, host_ns: np.ndarray) -> SampleBatch:
        mapped = np.ascontiguousarray(values[:, self._columns], dtype=np.float32)
        return super()._batch(seq, t, mapped, host_ns)
