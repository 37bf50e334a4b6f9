"""One module per ``lab`` sub-command.

Each module defines ``NAME`` (the sub-command), ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. :mod:`treadlab.lab.cli` finds them here, so adding a command touches no other file.
"""
