"""The technician's desktop app (``lab gui``): PySide6 + pyqtgraph, the only Qt code in treadlab.

Qt-free: :mod:`.model` (device states, form validation, formatting, sensel raster), :mod:`.live_data`
(calibration, total force and moments, current step, footprints), :mod:`.step_metrics` (live metrics from the
analysis functions), :mod:`.kind_views` (the per-kind live view registry) and :mod:`.source` (one
:class:`~treadlab.acquisition.stream.DeviceStream` for preview and capture). Qt: the kinds' views
(:mod:`.insole_view`, :mod:`.mat_view`), :mod:`.live_views`, :mod:`.devices_panel`, :mod:`.session_panel`,
:mod:`.main_window`, :mod:`.app` (start-up, screenshot). Importing this package does not import Qt; the widget
modules do.
"""
