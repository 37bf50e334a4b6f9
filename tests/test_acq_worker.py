"""Sequence-gap bookkeeping of the reader threads (pure function, known answers)."""

from __future__ import annotations

import numpy as np

from treadlab.acquisition.worker import seq_gaps


def test_seq_gaps_known_answers_with_wrap_and_restart():
    t = np.arange(6) / 100.0 + 1.0
    # continuous across the 2**32 wrap: no gap
    seq = np.array([2**32 - 2, 2**32 - 1, 0, 1, 2, 3], dtype=np.uint32)
    assert seq_gaps(2**32 - 3, seq, t, 0.99, 100.0).shape == (0, 3)
    # a jump of 3 (samples 5, 6, 7 missing) inside the batch, and one of 1 from the previous batch
    seq = np.array([3, 4, 8, 9, 10, 11], dtype=np.uint32)
    rows = seq_gaps(1, seq, t, 0.99, 100.0)
    assert rows.tolist() == [[0.99, 2, 1], [t[1], 5, 3]]
    # a lost sample right at the wrap
    rows = seq_gaps(2**32 - 2, np.array([0, 1], dtype=np.uint32), t[:2], 0.99, 100.0)
    assert rows.tolist() == [[0.99, 2**32 - 1, 1]]
    # the device restarted its numbering (replug): the loss is estimated from the time gap at 100 Hz
    rows = seq_gaps(500, np.array([0, 1], dtype=np.uint32), np.array([2.0, 2.01]), 1.5, 100.0)
    assert rows.tolist() == [[1.5, 501, 49]]
