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

# Root attribute names the code reads or writes by name.
A_FORMAT = "format"
A_FORMAT_VERSION = "format_version"
A_BODY_MASS_KG = "body_mass_kg"
A_TREADMILL_SPEED_MPS = "treadmill_speed_mps"
A_STATE = "state"
A_STOP_UTC = "stop_utc"
A_DURATION_S = "duration_s"
A_STOP_REASON = "stop_reason"
A_CLOCK_MODEL = "clock_model"
A_REPAIRED_FROM = "repaired_from"
#: Root attributes that are text (the reader decodes them).
TEXT_ROOT_ATTRS = ("participant", "condition", "shoe", "notes", "rig", "created", "start_utc", "software_version")

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
A_KIND = "kind"
A_SIDE = "side"
A_PROTOCOL = "protocol"
A_RATE_HZ = "rate_hz"
A_INFO_JSON = "info_json"
A_SERIAL = "serial"
A_CLOCK_HZ = "clock_hz"
A_SHAPE = "shape"
#: Attribute naming the columns of a 2-D table dataset (gaps, clock segments and pings, counters).
A_COLUMNS = "columns"

# ``calibration`` group: ``value = gain * (raw - offset)`` per value, in ``unit`` (attribute).
CAL_GAIN = "gain"
CAL_OFFSET = "offset"
A_CAL_UNIT = "unit"
CAL_UNITS = "units"  # per-channel units (imu, force kinds): fixed-length str, one per value
#: Unit written when a device gives no calibration (identity gain and offset: values are raw counts).
UNIT_RAW = "raw"

# ``layout`` group: sensel centres and areas (insoles, mats); attributes per kind.
LAYOUT_POSITIONS = "positions_mm"
LAYOUT_AREAS = "areas_mm2"
A_FOOT_LENGTH_MM = "foot_length_mm"
A_LAYOUT_NAME = "name"
A_PITCH_MM = "pitch_mm"
A_ROWS = "rows"
A_COLS = "cols"
A_BELT_AXIS = "belt_axis"

# ``clock`` group and the live counters.
CLOCK_SEGMENTS_NAME = "segments"
CLOCK_PINGS_NAME = "pings"
PING_COLUMNS = ("host_send_ns", "host_recv_ns", "device_ticks")
COUNTERS = "counters"
COUNTER_COLUMNS = ("samples", "lost_samples", "crc_errors", "reconnections", "queue_overflow", "flushed_rows")

# Added by the acquisition core (see docs/file-format.md).
STATE_RECORDING = "recording"
STATE_COMPLETE = "complete"
STATE_REPAIRED = "repaired"
FINAL_ROOT_ATTRS = ("state", "stop_utc", "duration_s", "stop_reason", "clock_model")
CLOCK_MODEL = "lower-envelope-linear/1"
CLOCK_SEGMENTS = f"{CLOCK}/{CLOCK_SEGMENTS_NAME}"
CLOCK_PINGS = f"{CLOCK}/{CLOCK_PINGS_NAME}"
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
MARKER_COLUMNS = ("time", "label")
EVENT_COLUMNS = ("time", "source", "level", "text")
MARKER_LABEL_BYTES = 256
EVENT_SOURCE_BYTES = 64
EVENT_TEXT_BYTES = 256
#: Sidecar file that exists (holding the recorder's pid) while a file is being recorded.
RECORDING_SUFFIX = ".recording"
#: Suffix of the original file kept by ``lab repair``.
CRASHED_SUFFIX = ".crashed"
