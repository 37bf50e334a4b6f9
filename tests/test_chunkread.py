"""analysis.chunkread.read_rows returns exactly h5py's ``ds[start:stop]`` (real HDF5 files, every layout treadlab
writes, and the cases it must leave to HDF5)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from treadlab import fileformat as ff
from treadlab.analysis.chunkread import _layout, read_rows

GZIP = {"compression": "gzip", "compression_opts": 1}


def _ranges(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    cuts = [(0, n), (0, 0), (n, n), (n, n + 7), (0, n + 100), (1, 2)]
    return cuts + [tuple(sorted(int(v) for v in rng.integers(0, n + 1, 2))) for _ in range(12)]


@pytest.mark.parametrize(("dtype", "row_shape", "chunk_rows", "shuffle"), [
    ("<u2", (99,), 64, True),  # the default rig's insoles
    ("u1", (960,), 273, True),  # the stress rig's insoles (shuffle of 1-byte values is no shuffle)
    ("u1", (48, 112), 48, True),  # mat frames
    ("<f8", (), 4096, True),  # times
    ("<f8", (3,), 256, True),  # gaps
    (">i4", (5,), 10, False),  # big-endian, deflate only
])
def test_every_row_range_reads_as_h5py_reads_it(tmp_path, monkeypatch, dtype, row_shape, chunk_rows, shuffle):
    rng = np.random.default_rng(1)
    n = 5 * chunk_rows + 17  # a partial last chunk
    data = rng.integers(0, 200, size=(n, *row_shape)).astype(dtype)
    if np.dtype(dtype).kind == "f":
        data = data + rng.random(data.shape)
    with h5py.File(tmp_path / "s.h5", "w", libver=ff.LIBVER) as f:
        ds = f.create_dataset("d", data=data, chunks=(chunk_rows, *row_shape), maxshape=(None, *row_shape),
                              shuffle=shuffle, **GZIP)
        assert _layout(ds) is not None
        for a, b in _ranges(n, rng):
            ref = ds[a:b]
            with monkeypatch.context() as m:
                if min(b, n) > a:  # rows to read: the chunks are inflated here, not by h5py
                    m.setattr(h5py.Dataset, "__getitem__", lambda *_: pytest.fail("read by h5py"))
                got = read_rows(ds, a, b)
            assert got.dtype == ref.dtype and got.shape == ref.shape, (a, b)
            assert got.tobytes() == ref.tobytes(), (a, b)


def test_unwritten_and_uncompressed_chunks_and_other_layouts(tmp_path):
    rng = np.random.default_rng(2)
    with h5py.File(tmp_path / "s.h5", "w", libver=ff.LIBVER) as f:
        # rows allocated but never written read as the fill value (HDF5 reads them)
        grown = f.create_dataset("grown", shape=(0,), maxshape=(None,), chunks=(100,), dtype="f8", fillvalue=np.nan,
                                 shuffle=True, **GZIP)
        grown.resize(450, axis=0)
        grown[:120] = np.arange(120.0)
        ref = grown[0:450]
        assert np.isnan(ref[120:]).all()
        np.testing.assert_array_equal(read_rows(grown, 0, 450), ref)
        np.testing.assert_array_equal(read_rows(grown, 50, 130), grown[50:130])
        # a chunk stored with its deflate filter skipped (filter mask bit 1), as HDF5 does when deflating fails
        skipped = f.create_dataset("skipped", shape=(200, 4), chunks=(100, 4), dtype="<u2", shuffle=True, **GZIP)
        first = rng.integers(0, 60000, (100, 4)).astype("<u2")
        shuffled = first.view(np.uint8).reshape(-1, 2).T.copy()  # the shuffle filter's byte planes
        skipped.id.write_direct_chunk((0, 0), shuffled.tobytes(), filter_mask=2)
        skipped[100:] = first[::-1]
        np.testing.assert_array_equal(skipped[:100], first)
        np.testing.assert_array_equal(read_rows(skipped, 0, 200), skipped[:])
        # layouts left to h5py: no compression, another filter, chunks not holding whole rows, strings
        plain = f.create_dataset("plain", data=np.arange(50), chunks=(8,))
        lzf = f.create_dataset("lzf", data=np.arange(50.0), chunks=(8,), compression="lzf")
        split = f.create_dataset("split", data=rng.random((40, 6)), chunks=(8, 3), **GZIP)
        text = f.create_dataset("text", data=np.array([b"a", b"bc"] * 9, dtype="S4"), chunks=(4,), **GZIP)
        for ds in (plain, lzf, split, text):
            assert _layout(ds) is None
            assert read_rows(ds, 3, 30).tobytes() == ds[3:30].tobytes()


def test_a_file_being_written_reads_the_same_through_swmr(tmp_path):
    path = tmp_path / "live.h5"
    f = h5py.File(path, "w", libver=ff.LIBVER)
    ds = f.create_dataset("raw", shape=(0, 16), maxshape=(None, 16), chunks=(32, 16), dtype="<u2", shuffle=True,
                          **GZIP)
    f.swmr_mode = True
    values = np.arange(16 * 100, dtype="<u2").reshape(100, 16)
    ds.resize(100, axis=0)
    ds[:] = values
    ds.flush()
    try:
        with h5py.File(path, "r", swmr=True) as r:
            live = r["raw"]
            np.testing.assert_array_equal(read_rows(live, 0, 100), values)
            ds.resize(140, axis=0)
            ds[100:] = values[:40]
            ds.flush()
            live.refresh()
            np.testing.assert_array_equal(read_rows(live, 90, 140), live[90:140])
    finally:
        f.close()
