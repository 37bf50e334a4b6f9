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

import h5py
import numpy as np

try:
    import deflate
except ImportError:  # pragma: no cover - the package is a dependency; h5py reads alike, only slower
    deflate = None

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
    layout = _layout(ds)
    if layout is None or min(int(stop), ds.shape[0]) <= start:
        return ds[start:stop]
    stop = min(int(stop), ds.shape[0])
    rows_per_chunk, shuffled, deflate_index = layout
    shape, dtype, dsid = ds.shape, ds.dtype, ds.id  # h5py properties cost microseconds each: read them once
    row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
    out = np.empty((stop - start, *shape[1:]), dtype=dtype)
    flat_out = out.reshape(-1).view(np.uint8)
    zeros = (0,) * (len(shape) - 1)
    try:
        for c0 in range(start // rows_per_chunk * rows_per_chunk, stop, rows_per_chunk):  # one pass per chunk
            flat = _chunk(dsid, (c0, *zeros), rows_per_chunk * row_bytes, dtype.itemsize, shuffled, deflate_index)
            a, b = max(start, c0), min(stop, c0 + rows_per_chunk)
            flat_out[(a - start) * row_bytes:(b - start) * row_bytes] = flat[(a - c0) * row_bytes:(b - c0) * row_bytes]
    except (OSError, ValueError, KeyError, RuntimeError, deflate.DeflateError):
        return ds[start:stop]  # HDF5 reads it (fill values, errors) as it always has
    return out
