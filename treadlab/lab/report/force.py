"""The force plate's own views in a report: the centre-of-pressure butterfly on the belt.

The step table, force curves, strike index and loading rates of a force session come from the "force" analysis
source (:mod:`treadlab.analysis.force`) and are drawn like the insoles'; this module adds what only a plate
measures: the centre of pressure of everything on the belt over time (:func:`treadlab.analysis.forceviews.
force_cop_trace`), in the runner's frame (x to the right, y forward).
"""

from __future__ import annotations

import numpy as np

from treadlab.analysis.api import GaitAnalysis
from treadlab.analysis.forceviews import MIN_LOAD_N, butterfly_arrays, force_cop_trace


def force_butterfly(ga: GaitAnalysis) -> tuple[dict | None, str]:
    """The butterfly of the force device the analysis used (None when the analysis is not a force one, or the
    device gives no COP), and its caption note.
    """
    name = ga.info.get("force_device") if ga.source == "force" else None
    dev = ga.session.devices.get(name) or ga.session.streams.get(name) if name else None
    if dev is None or not hasattr(dev, "plates"):
        return None, ""
    trace = force_cop_trace(dev, ga.segment.start_s, ga.segment.stop_s)
    arrays = butterfly_arrays(trace)
    if not any(np.isfinite(a).any() for a in arrays.values()):
        return None, ""
    belts = "the two belts" if "left" in arrays else "the belt"
    return arrays, (f"Measured by the force plate under {belts} ({dev.name}), where it carries at least "
                    f"{MIN_LOAD_N:.0f} N; centred on the middle of its range.")
