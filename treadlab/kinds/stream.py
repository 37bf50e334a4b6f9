"""The external-stream kind ("lsl"): another program's Lab Streaming Layer stream recorded like a device.

Its channels and units come from the stream's own description (INFO ``sensels``, ``labels``); it is never
published on LSL again.
"""

from __future__ import annotations

from treadlab.kinds.base import Kind, register_kind


class StreamKind(Kind):
    """A numeric or string LSL stream: shape ``(channels,)``, the stream's own channel labels."""

    name = "lsl"
    info_keys = ("sensels",)
    lsl_outlet = False  # never re-published
    rig_kind = False  # rig entries name it by protocol = "lsl"

    def shape(self, info: dict) -> tuple[int, ...]:
        """``(channels,)``."""
        return (int(info["sensels"]),)

    def summary(self, desc) -> str:
        """``lsl stream 'EMG', 8 channels``."""
        return f"lsl stream {desc.info.get('name', '')!r}, {desc.n_values} channels"

    def channel_labels(self, shape: tuple[int, ...], info: dict) -> tuple[str, ...]:
        """The stream's labels (``ch01``... where it has none)."""
        labels = list(info.get("labels") or [])
        n = int(shape[0])
        return tuple((labels[i] if i < len(labels) and labels[i] else f"ch{i + 1:02d}") for i in range(n))


STREAM = register_kind(StreamKind())
