"""The top layer: the ``lab`` command line, the desktop app and rig loading."""
