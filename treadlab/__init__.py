"""treadlab: data acquisition and gait analysis for treadmill running labs.

Packages, from the top layer down: :mod:`treadlab.lab` (command line, desktop app, rig loading),
:mod:`treadlab.acquisition` and :mod:`treadlab.analysis`, :mod:`treadlab.drivers`; :mod:`treadlab.config`
holds data (rig files, sensor layouts). :mod:`treadlab.errors` is the one exception hierarchy.
"""

import logging
from importlib.metadata import PackageNotFoundError, version

# Module loggers (treadlab.drivers, treadlab.acquisition...) log connections, refusals, reconnections and drops;
# nothing is printed unless the application configures logging (``lab --log FILE``).
logging.getLogger(__name__).addHandler(logging.NullHandler())

try:
    __version__ = version("treadlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
