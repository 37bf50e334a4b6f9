"""The one exception hierarchy for errors a user can act on.

Every error meant for a person derives from :class:`LabError`; the ``lab`` command prints it as one line
(``lab: error: <message>``) and exits with :attr:`LabError.exit_code`. Messages name the thing that is
wrong (the device, the file, the key) and, where there is one, what to do about it.
"""

from __future__ import annotations


class LabError(Exception):
    """Base class of every user-facing treadlab error."""

    exit_code = 1


class ConfigError(LabError):
    """A rig file, sensor layout or option is invalid."""

    exit_code = 2


class DeviceError(LabError):
    """A device or its port cannot be used."""

    exit_code = 3


class PortNotFoundError(DeviceError):
    """The port does not exist (unplugged, wrong path)."""


class PortBusyError(DeviceError):
    """Another program holds the port."""


class PortPermissionError(DeviceError):
    """The user may not open the port (not in the ``dialout`` group)."""


class DeviceTimeoutError(DeviceError):
    """Nothing answered on the port in time."""


class DeviceMismatchError(DeviceError):
    """The device is not what the rig file says (kind, side, sensel count, serial number)."""


class DeviceDisconnectedError(DeviceError):
    """The port vanished while in use."""


class CommandRejectedError(DeviceError):
    """The device answered a command with NAK."""


class ProtocolError(DeviceError):
    """A device sent something that breaks the protocol in a way that cannot be skipped."""


class UnknownKindError(ProtocolError):
    """A device or rig entry names a kind of device no module registered (``treadlab.kinds``)."""


class SessionFileError(LabError):
    """A session file is missing, damaged, truncated or not a treadlab session."""

    exit_code = 4


class ImportFileError(LabError):
    """A file given to ``lab import`` cannot be imported: empty, damaged, unsupported, without the needed columns
    or force platforms, axes that cannot be found, forces not in newtons.
    """

    exit_code = 4


class StorageError(LabError):
    """The capture cannot be written: path exists, folder not writable, disk full, write failed."""

    exit_code = 5


class AnalysisError(LabError):
    """The data cannot be analysed as asked (no steps, unknown marker, empty segment)."""

    exit_code = 6
