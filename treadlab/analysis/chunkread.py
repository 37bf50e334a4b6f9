"""Row blocks of a gzip-compressed chunked dataset, inflated by libdeflate instead of HDF5's zlib filter.

Session files store every per-sample dataset in chunks of whole rows, compressed with gzip level 1 after HDF5's
byte shuffle (``docs/file-format.md``). Inflating them is most of the cost of reading an insole's ``raw``: its
noisy 8-bit values barely compress, and zlib inflates them at about 250 MB/s. :func:`read_rows` reads the stored
chunks as they are (``read_direct_chunk``), inflates them with libdeflate (the ``deflate`` package, about twice as
fast) and undoes the shuffle with numpy. The bytes are the same as h5py's ``ds[start:stop]``, which is used instead
for any dataset outside that layout (other filters, chunks that do not hold whole rows, no ``deflate`` package)
and whenever a chunk cannot be read directly (one never written, a file still growing, a damaged chunk), so that
errors and fill values are HDF5's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import h5py
import numpy as np

try:
    import deflate
except ImportError:  # pragma: no cover - the package is a dependency; h5py reads alike, only slower
    deflate = None

#: What a direct chunk read raises for a chunk that HDF5 must read itself (never written, damaged, growing file).
_READ_ERRORS = (OSError, ValueError, KeyError, RuntimeError) + ((deflate.DeflateError,) if deflate else ())

_SHUFFLE = h5py.h5z.FILTER_SHUFFLE
_DEFLATE = h5py.h5z.FILTER_DEFLATE


def _layout(ds: h5py.Dataset) -> tuple[int, bool, bool] | None:
    """``(rows per chunk, shuffled, filter index of deflate)`` when the fast path applies, else None."""
    if deflate is None or ds.chunks is None or ds.ndim == 0 or tuple(ds.chunks[1:]) != tuple(ds.shape[1:]):
        return None
    if ds.dtype.kind not in "uif" or ds.dtype.subdtype is not None:
        return None
    plist = ds.id.get_create_plist()
    codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if codes == [_DEFLATE]:
        return ds.chunks[0], False, 0
    if codes == [_SHUFFLE, _DEFLATE]:
        return ds.chunks[0], True, 1
    return None


def _chunk(dsid: h5py.h5d.DatasetID, offset: tuple[int, ...], chunk_bytes: int, itemsize: int, shuffled: bool,
           deflate_index: int) -> np.ndarray:
    """The bytes of the chunk at ``offset``, as HDF5 would return them (one flat uint8 array)."""
    mask, data = dsid.read_direct_chunk(offset)
    if not mask & (1 << deflate_index):  # a set bit: the filter was skipped for this chunk
        data = deflate.zlib_decompress(data, chunk_bytes)
    flat = np.frombuffer(data, dtype=np.uint8)
    if len(flat) != chunk_bytes:
        raise ValueError(f"chunk at {offset}: {len(flat)} bytes, expected {chunk_bytes}")
    if shuffled and itemsize > 1 and not mask & 1:  # the shuffle stored byte k of every value together
        flat = flat.reshape(itemsize, -1).T.ravel()
    return flat


class RowReader:
    """Rows of one chunked dataset, read as :func:`read_rows` does; the dataset's layout is looked up once.

    Parameters
    ----------
    ds : h5py.Dataset
    """

    def __init__(self, ds: h5py.Dataset):
        self.ds = ds
        self.layout = _layout(ds)  # h5py's property-list calls cost a fraction of a millisecond: once per dataset

    def read(self, start: int, stop: int) -> np.ndarray:
        """``ds[start:stop]`` (see :func:`read_rows`)."""
        ds = self.ds
        shape = ds.shape
        stop = min(int(stop), shape[0])
        if self.layout is None or stop <= start:
            return ds[start:stop]
        out = np.empty((stop - start, *shape[1:]), dtype=ds.dtype)
        for a, rows in self.iter(start, stop):  # one iteration per stored chunk
            out[a - start:a - start + len(rows)] = rows
        return out

    def iter(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """``ds[start:stop]`` in order, as ``(first_row, rows)`` pieces of at most one stored chunk each.

        The pieces are read-only views of the inflated chunks (no copy). A chunk that cannot be read directly (one
        never written, a file still growing, a damaged chunk) is read by h5py, so that its fill values and errors
        are HDF5's own.
        """
        ds = self.ds
        shape = ds.shape
        stop = min(int(stop), shape[0])
        if stop <= start:
            return
        if self.layout is None:
            yield start, ds[start:stop]
            return
        rows_per_chunk, shuffled, deflate_index = self.layout
        dtype, dsid, row_shape = ds.dtype, ds.id, shape[1:]  # h5py properties cost microseconds: read them once
        chunk_shape = (rows_per_chunk, *row_shape)
        chunk_bytes = dtype.itemsize * int(np.prod(chunk_shape, dtype=np.int64))
        zeros = (0,) * len(row_shape)
        for c0 in range(start // rows_per_chunk * rows_per_chunk, stop, rows_per_chunk):  # one pass per chunk
            a, b = max(start, c0), min(stop, c0 + rows_per_chunk)
            try:
                flat = _chunk(dsid, (c0, *zeros), chunk_bytes, dtype.itemsize, shuffled, deflate_index)
            except _READ_ERRORS:
                yield a, ds[a:b]
                continue
            yield a, flat.view(dtype).reshape(chunk_shape)[a - c0:b - c0]


def read_rows(ds: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    """``ds[start:stop]`` of a chunked dataset (see the module docstring).

    Parameters
    ----------
    ds : h5py.Dataset
    start, stop : int
        Rows, ``0 <= start <= stop``; ``stop`` is clipped to the dataset's length.

    Returns
    -------
    ndarray
        Shape ``(stop - start, *ds.shape[1:])``, ``ds.dtype``.
    """
    return RowReader(ds).read(start, stop)
