"""The technician's desktop app (``lab gui``): PySide6 + pyqtgraph, the only Qt code in treadlab.

Qt-free: :mod:`.model` (device states, form validation, formatting, sensel raster), :mod:`.live_data`
(calibration, total force and moments, current step, footprints), :mod:`.step_metrics` (live metrics from the
analysis functions), :mod:`.device_view` (per-device live caches, preview sink) and :mod:`.source` (the
acquisition behind one interface: preview workers or the :class:`~treadlab.acquisition.recorder.Recorder`).
Qt: :mod:`.live_views`, :mod:`.devices_panel`, :mod:`.session_panel`, :mod:`.main_window`, :mod:`.app`
(start-up, screenshot). Importing this package does not import Qt; the widget modules do.
"""
