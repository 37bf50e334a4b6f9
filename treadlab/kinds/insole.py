"""The insole kind: a row of force sensels under one foot (INFO ``sensels``, ``side``; a sensel layout)."""

from __future__ import annotations

from treadlab.kinds.base import Kind, register_kind


class InsoleKind(Kind):
    """Force-sensing insoles: shape ``(sensels,)``, labels ``s01``..., LSL type ``Force``."""

    name = "insole"
    info_keys = ("sensels", "side")
    lsl_type = "Force"
    line_protocol = True
    sensel_layout = True

    def shape(self, info: dict) -> tuple[int, ...]:
        """``(sensels,)``."""
        return (int(info["sensels"]),)

    def summary(self, desc) -> str:
        """``insole left 16 sensels``."""
        return f"insole {desc.side} {desc.n_values} sensels"

    def channel_labels(self, shape: tuple[int, ...], info: dict) -> tuple[str, ...]:
        """``s01``, ``s02``..."""
        return tuple(f"s{i + 1:02d}" for i in range(int(shape[0])))


INSOLE = register_kind(InsoleKind())
