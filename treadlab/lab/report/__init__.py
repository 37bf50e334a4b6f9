"""Coach reports: one session (``lab report``) and before versus after (``lab compare``), as self-contained HTML.

Figures are made with matplotlib (Agg, no display); the numbers come from :mod:`treadlab.analysis` unchanged.
"""
