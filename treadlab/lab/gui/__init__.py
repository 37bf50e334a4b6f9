"""The technician's desktop app (``lab gui``): PySide6 + pyqtgraph, the only Qt code in treadlab.

Modules: :mod:`.model` (Qt-free state, validation, image mapping), :mod:`.source` (adapter between the
acquisition's :class:`~treadlab.acquisition.recorder.Recorder` and the widgets), :mod:`.live_views`,
:mod:`.devices_panel`, :mod:`.session_panel`, :mod:`.main_window` and :mod:`.app` (start-up, screenshot).
Importing this package does not import Qt; the widget modules do.
"""
