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
        flat_out = out.reshape(-1).view(np.uint8)
        row_bytes = out.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        try:
            for a, b, flat in self._pieces(start, stop):  # one iteration per stored chunk
                flat_out[(a - start) * row_bytes:(b - start) * row_bytes] = flat
        except _READ_ERRORS:
            return ds[start:stop]  # HDF5 reads it (fill values, errors) as it always has
        return out

    def iter(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """``ds[start:stop]`` in order, as ``(first_row, rows)`` pieces of at most one stored chunk each.

        The pieces are read-only views of the inflated chunks (no copy). A chunk that cannot be read directly is
        read by h5py (fill values, errors), as :func:`read_rows` does.
        """
        ds = self.ds
        shape = ds.shape
        stop = min(int(stop), shape[0])
        if stop <= start:
            return
        if self.layout is None:
            yield start, ds[start:stop]
            return
        rows_per_chunk = self.layout[0]
        dtype, row_shape = ds.dtype, shape[1:]
        pieces = self._pieces(start, stop)
        a = start
        while a < stop:  # one iteration per stored chunk
            try:
                a, b, flat = next(pieces)
            except _READ_ERRORS:
                b = min(stop, (a // rows_per_chunk + 1) * rows_per_chunk)
                pieces = self._pieces(b, stop)
                yield a, ds[a:b]
                a = b
                continue
            yield a, flat.view(dtype).reshape(b - a, *row_shape)
            a = b

    def _pieces(self, start: int, stop: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(a, b, bytes of rows a:b)`` of each stored chunk over ``start:stop`` (``0 <= start < stop <= len``)."""
        rows_per_chunk, shuffled, deflate_index = self.layout
        ds = self.ds
        shape, dtype, dsid = ds.shape, ds.dtype, ds.id  # h5py properties cost microseconds each: read them once
        row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        zeros = (0,) * (len(shape) - 1)
        for c0 in range(start // rows_per_chunk * rows_per_chunk, stop, rows_per_chunk):  # one pass per chunk
            flat = _chunk(dsid, (c0, *zeros), rows_per_chunk * row_bytes, dtype.itemsize, shuffled, deflate_index)
            a, b = max(start, c0), min(stop, c0 + rows_per_chunk)
            yield a, b, flat[(a - c0) * row_bytes:(b - c0) * row_bytes]


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
