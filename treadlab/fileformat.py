"""Names of the session file format v1 (``docs/file-format.md``), shared by the writer and the readers.

Dependency-free on purpose: :mod:`treadlab.acquisition` writes with these names, :mod:`treadlab.analysis`
reads with them, and neither imports the other.
"""

from __future__ import annotations

FORMAT = "treadlab-session"
FORMAT_VERSION = 1

# Root attributes.
ROOT_ATTRS = (
    "format",
    "format_version",
    "created",
    "software_version",
    "start_monotonic_ns",
    "start_utc",
    "participant",
    "condition",
    "body_mass_kg",
    "treadmill_speed_mps",
    "shoe",
    "notes",
    "rig",
)

DEVICES = "devices"
MARKERS = "markers"
EVENTS = "events"
ANALYSIS = "analysis"

# Per device (``/devices/<name>/...``).
RAW = "raw"
SEQ = "seq"
DEVICE_TIME = "device_time"
TIME = "time"
HOST_TIME = "host_time"
GAPS = "gaps"
CALIBRATION = "calibration"
LAYOUT = "layout"
CLOCK = "clock"
DEVICE_ATTRS = ("kind", "side", "protocol", "rate_hz", "info_json")
