"""Live retraining: runner feedback driven by step events, protocols as data, audio sinks (no Qt).

Layers: above :mod:`treadlab.acquisition` (it subscribes to a :class:`~treadlab.acquisition.recorder.Recorder`
and writes the ``/feedback`` group through it) and :mod:`treadlab.analysis` (step events and metrics from
:mod:`treadlab.analysis.online`); below :mod:`treadlab.lab`. See ``docs/feedback.md``.
"""

from treadlab.feedback.protocol import Phase, Protocol, load_protocol, parse_protocol, preset_names

__all__ = ["Phase", "Protocol", "load_protocol", "parse_protocol", "preset_names"]
