"""Adapters for devices that do not speak protocol v1 but have a public interface (rig ``protocol`` values).

Each adapter is one module with ``check_rig_entry(entry, where, get) -> DeviceConfig`` (the rig file's validation
of its ``[[device]]`` entry) and ``open_<name>(cfg, timeout_s)`` (its driver, not yet identified). The rig loader
and :func:`treadlab.drivers.open_device` look them up here, so adding an adapter is one line in
:data:`ADAPTERS` (``docs/adapters.md``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Adapter:
    """Where an adapter lives and how the rig treats its entries.

    Attributes
    ----------
    module : str
        Module with ``check_rig_entry`` and the ``opener`` function.
    opener : str
        Name of the function that opens a device of a rig entry.
    shared_port : bool
        Several rig entries may name the same port (one stream carries several devices; they differ by side).
    """

    module: str
    opener: str
    shared_port: bool = False

    def load(self):
        """The adapter's module (imported on first use)."""
        return importlib.import_module(self.module)

    def check_rig_entry(self, entry: dict, where: str, get):
        """Validate a rig entry of this adapter's protocol (the module's ``check_rig_entry``)."""
        return self.load().check_rig_entry(entry, where, get)

    def open(self, cfg, timeout_s: float = 0.05):
        """The driver of a rig entry of this adapter's protocol, not yet identified."""
        return getattr(self.load(), self.opener)(cfg, timeout_s)


#: rig ``protocol`` value -> adapter.
ADAPTERS: dict[str, Adapter] = {
    "moticon": Adapter("treadlab.drivers.adapters.moticon", "open_moticon", shared_port=True),
    "willowec-mat": Adapter("treadlab.drivers.adapters.willowec", "open_willowec"),
}
