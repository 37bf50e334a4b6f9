"""Gait analysis of force plates and instrumented treadmills: the "force" analysis source.

Modules: :mod:`~treadlab.analysis.force.plate` (channels to vertical force and COP first moments in the runner's
frame), :mod:`~treadlab.analysis.force.events` (contacts, which foot, crossovers),
:mod:`~treadlab.analysis.force.strike` (strike index from the belt-frame COP), :mod:`~treadlab.analysis.force.source`
(the step table and summary). Importing this package registers the source: ``analyze(path, source="force")``.
"""

from __future__ import annotations

from treadlab.analysis.api import AnalysisSource, register_source
from treadlab.analysis.force.events import ForceContacts, assign_feet, crossovers
from treadlab.analysis.force.plate import PlateAxes, PlateSignals, cop_mm, parse_axis, plate_signals
from treadlab.analysis.force.source import ForceBodyMassWarning, force_devices, force_steps, run_force
from treadlab.analysis.force.strike import ANCHOR_FRAC, ForceStrikeIndex

__all__ = ["ANCHOR_FRAC", "ForceBodyMassWarning", "ForceContacts", "ForceStrikeIndex", "PlateAxes", "PlateSignals",
           "assign_feet", "cop_mm", "crossovers", "force_devices", "force_steps", "parse_axis", "plate_signals",
           "run_force"]

register_source(AnalysisSource("force", run_force, lambda s: bool(force_devices(s))))
