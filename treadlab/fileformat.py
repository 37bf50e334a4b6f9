"""Names of the session file format v1 (``docs/file-format.md``), shared by the writer and the readers.

Dependency-free on purpose: :mod:`treadlab.acquisition` writes with these names, :mod:`treadlab.analysis`
reads with them, and neither imports the other.
"""

from __future__ import annotations

FORMAT = "treadlab-session"
FORMAT_VERSION = 1
#: HDF5 format bounds of every file treadlab writes or modifies (``h5py.File(..., libver=LIBVER)``). SWMR needs
#: at least the 1.10 format; ``"latest"`` would let HDF5 2.0 write structures that HDF5 1.10-1.14 cannot read.
LIBVER = ("v110", "v110")

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

# Added by the acquisition core (see docs/file-format.md).
STATE_RECORDING = "recording"
STATE_COMPLETE = "complete"
STATE_REPAIRED = "repaired"
FINAL_ROOT_ATTRS = ("state", "stop_utc", "duration_s", "stop_reason", "clock_model")
CLOCK_MODEL = "lower-envelope-linear/1"
CLOCK_SEGMENTS = "clock/segments"
CLOCK_PINGS = "clock/pings"
SEGMENT_COLUMNS = ("first_index", "n_samples", "ticks0", "time0_s", "s_per_tick", "drift_ppm", "residual_ms")
GAP_COLUMNS = ("time", "first_missing_seq", "count")
FINAL_DEVICE_ATTRS = (
    "n_samples",
    "lost_samples",
    "crc_errors",
    "reconnections",
    "drift_ppm",
    "fit_residual_ms",
    "achieved_rate_hz",
)
MARKER_LABEL_BYTES = 256
EVENT_SOURCE_BYTES = 64
EVENT_TEXT_BYTES = 256
#: Sidecar file that exists (holding the recorder's pid) while a file is being recorded.
RECORDING_SUFFIX = ".recording"
#: Suffix of the original file kept by ``lab repair``.
CRASHED_SUFFIX = ".crashed"
