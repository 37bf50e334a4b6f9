"""Device kinds: one registry and one device description, shared by every layer (dependency-free).

A kind of device (insole, mat, an external LSL stream, a thermometer...) is described once, in its own module,
by a :class:`Kind` registered with :func:`register_kind`. Drivers map INFO to a sample shape through it and
return a :class:`DeviceDescription` from ``describe()``; the writer stores that description; the rig loader
accepts the registered kinds; LSL outlets take their type and channel labels from it; the GUI and the analysis
keep their own per-kind tables (live views, readers) keyed by the kind's name. See docs/design.md,
"Adding a device kind".
"""

from __future__ import annotations

from treadlab.kinds import force, imu, insole, mat, stream  # noqa: F401 - the built-in kinds register themselves
from treadlab.kinds.base import (
    Calibration,
    DeviceDescription,
    Kind,
    UnknownKindError,
    get_kind,
    kind_names,
    register_kind,
    shape_from_info,
    unregister_kind,
)

__all__ = ["Calibration", "DeviceDescription", "Kind", "UnknownKindError", "get_kind", "kind_names",
           "register_kind", "shape_from_info", "unregister_kind"]
