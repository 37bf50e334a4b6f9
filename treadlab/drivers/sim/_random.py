"""Counter-based random numbers: a value is a pure function of (seed, stream, counter), vectorised with numpy.

The simulated devices generate samples in small batches and every batch must equal the same samples generated in
one call, so the gait model never draws from a stateful generator: it hashes the step number or the sample
instant with the SplitMix64 finaliser instead.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import ndtri

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_LOW32 = np.uint64(0xFFFFFFFF)
_S48 = np.uint64(48)
#: 2**16 equiprobable quantiles of the standard normal distribution (mean 0, SD 1 to 1e-3).
_NORMAL_QUANTILES = ndtri((np.arange(2**16) + 0.5) / 2**16)
_NORMAL_QUANTILES /= _NORMAL_QUANTILES.std()


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of a uint64 array (wrapping arithmetic, a bijection of 64-bit words)."""
    x = np.asarray(x, dtype=np.uint64)
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


@functools.lru_cache(maxsize=256)
def key(*parts: int) -> np.uint64:
    """Fold small non-negative integers (seed, stream, foot...) into one 64-bit key."""
    h = np.zeros(1, dtype=np.uint64)
    for p in parts:
        h = mix64(h ^ (np.uint64(p & 0xFFFFFFFFFFFFFFFF) + _GOLDEN))
    return h[0]


def uniform(k: np.uint64, counter: np.ndarray) -> np.ndarray:
    """Uniform values in (0, 1), one per counter (int64 or uint64 array), for the stream ``k``."""
    c = np.asarray(counter).astype(np.int64).view(np.uint64)
    x = mix64(c ^ k)
    return ((x >> _S11).astype(np.float64) + 0.5) * 2.0**-53


def normal(k: np.uint64, counter: np.ndarray) -> np.ndarray:
    """Standard normal values, one per counter, for the stream ``k`` (Box-Muller on two hashed uniforms)."""
    c = np.asarray(counter).astype(np.int64).view(np.uint64)
    return _box_muller(mix64(c ^ k))


def normal_grid(k: np.uint64, rows: np.ndarray, cols: int) -> np.ndarray:
    """Standard normal matrix (len(rows), cols): one value per (row counter, column index) pair.

    Built for speed (sensor noise of every sample): the row and column hashes are combined with one xor and
    one multiply, and the top 16 bits pick one of 65536 equiprobable Gaussian quantiles (tails end at 4.3 SD).
    """
    r = mix64(np.asarray(rows).astype(np.int64).view(np.uint64) ^ k)
    x = r[:, None] ^ _column_hashes(cols)[None, :]
    x *= _M2
    x >>= _S48
    return _NORMAL_QUANTILES[x]


@functools.lru_cache(maxsize=8)
def _column_hashes(cols: int) -> np.ndarray:
    return mix64(np.arange(cols, dtype=np.uint64) + _GOLDEN)


def _box_muller(x: np.ndarray) -> np.ndarray:
    u1 = ((x >> _S32).astype(np.float64) + 0.5) * 2.0**-32
    u2 = ((x & _LOW32).astype(np.float64) + 0.5) * 2.0**-32
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
