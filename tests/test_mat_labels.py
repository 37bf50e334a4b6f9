"""The mat's footprint labelling takes shortcuts for speed (a window of the active rows and columns, runs of empty
frames collapsed, components found on the graph of the active cells); each must give exactly what the plain
computation over the whole mat gives."""

from __future__ import annotations

import types

import numpy as np
import pytest
from scipy import ndimage

from treadlab.analysis.mat import _active_window, _pool2, footprint_records, label_frames

CROSS = ndimage.generate_binary_structure(3, 1)


def _reference_labels(mask: np.ndarray):
    lab, n = ndimage.label(mask, structure=CROSS)
    spans = ndimage.find_objects(lab)
    return lab, np.array([s[0].start for s in spans], dtype=int), np.array([s[0].stop - 1 for s in spans], dtype=int)


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 1, 9), (40, 12, 9), (25, 6, 6), (3, 17, 2)])
@pytest.mark.parametrize("density", [0.0, 0.03, 0.2, 0.45, 1.0])
def test_label_frames_numbers_and_spans_as_ndimage(shape, density):
    rng = np.random.default_rng(int(density * 100) + shape[0])
    mask = rng.random(shape) < density
    lab, first, last = label_frames(mask)
    ref, ref_first, ref_last = _reference_labels(mask)
    assert lab.dtype == np.int32 and lab.shape == mask.shape
    np.testing.assert_array_equal(lab, ref)
    np.testing.assert_array_equal(first, ref_first)
    np.testing.assert_array_equal(last, ref_last)


@pytest.mark.parametrize("shape", [(4, 6, 8), (4, 5, 8), (4, 6, 7), (3, 1, 1), (2, 9, 11)])
def test_pool2_is_the_or_of_each_2x2_block(shape):
    mask = np.random.default_rng(3).random(shape) < 0.3
    t, r, c = shape
    padded = np.zeros((t, r + r % 2, c + c % 2), dtype=bool)
    padded[:, :r, :c] = mask
    ref = padded.reshape(t, padded.shape[1] // 2, 2, padded.shape[2] // 2, 2).any(axis=(2, 4))
    np.testing.assert_array_equal(_pool2(mask), ref)


def _moving_blobs(n_frames: int = 160, rows: int = 40, cols: int = 20) -> np.ndarray:
    """Two 'feet' sliding along the rows with flight phases between them, plus a flickering sensel."""
    frames = np.zeros((n_frames, rows, cols), dtype=np.uint8)
    rng = np.random.default_rng(5)
    for k, (c0, phase) in enumerate(((3, 0), (12, 40))):
        for start in range(phase, n_frames, 80):
            for i in range(30):  # a contact of 30 frames, carried back by the belt
                f = start + i
                if f >= n_frames:
                    break
                r = 30 - i // 2
                frames[f, max(0, r - 6):r, c0 + k:c0 + k + 5] = rng.integers(20, 200, (min(r, 6), 5))
    frames[::7, 1, 18] = 60
    return frames


def test_footprint_records_in_a_window_equal_those_of_the_whole_mat():
    frames = _moving_blobs()
    thr = np.full(frames.shape[1:], 10, dtype=np.uint8)
    mat = types.SimpleNamespace(rows=frames.shape[1], cols=frames.shape[2], pitch_mm=8.0, force_factor=0.064,
                                gain=np.full(frames[0].size, 0.5), offset=np.full(frames[0].size, 2.0))
    t = np.arange(len(frames)) / 120.0
    # the whole mat, every frame, labelled by ndimage
    active = frames > thr
    lab, n = ndimage.label(_pool2(active), structure=CROSS)
    ref = footprint_records(frames, lab, active, np.ones(n, dtype=bool), 100, 7, t, mat)
    # the window of active rows and columns, empty runs of frames collapsed, labelled on the graph
    r0, r1, c0, c1 = _active_window(frames, thr)
    assert r0 % 2 == 0 and c0 % 2 == 0 and (r0, c0) != (0, 0)
    assert not active[:, :r0].any() and not active[:, r1:].any()
    assert not active[:, :, :c0].any() and not active[:, :, c1:].any()
    win = frames[:, r0:r1, c0:c1] > thr[r0:r1, c0:c1]
    busy = win.any(axis=(1, 2))
    kept = busy | np.r_[False, busy[:-1]]
    assert not kept.all()  # the shortcut is exercised
    lab_w, first, _ = label_frames(_pool2(win[np.flatnonzero(kept)]))
    got = footprint_records(frames, lab_w, win, np.ones(len(first), dtype=bool), 100, 7, t, mat, origin=(r0, c0),
                            lab_frames=np.cumsum(kept) - 1)
    assert len(ref) > 8
    assert got.dtype == ref.dtype and got.tobytes() == ref.tobytes()


def test_active_window_of_nothing_is_empty():
    frames = np.zeros((5, 6, 4), dtype=np.uint8)
    r0, r1, _, _ = _active_window(frames, np.full((6, 4), 3, dtype=np.uint8))
    assert r0 == r1
