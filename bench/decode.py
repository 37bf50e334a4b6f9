"""Decoder throughput: the full receive path against two floors over the same bytes.

For each stream (a 16-sensel insole, a 960-sensel insole, a 64 x 176 mat) this prints MB/s and samples/s of:

- full: ``FrameDecoder.feed`` on 64 KiB reads plus ``decode_data`` (numpy arrays out), as the drivers run it;
- (a) splitting on 0x00 alone (``bytes.split`` with the carry-over of a partial frame);
- (b) the bare C primitives alone: ``cobs.decode`` and ``zlib.crc32`` of every message, nothing else;

and the ratio full / (b) (the median of per-round ratios; the three run in turn each round). Target: full within
1.5x of (b) for every stream. Throughputs are the best of several rounds.
It also prints the line-protocol parser's throughput (``parse_lines`` on 64 KiB reads) next to a bare split on
newlines.

Run: ``.venv/bin/python bench/decode.py [--mb 8] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import time
import zlib

import numpy as np
from cobs import cobs

from treadlab.drivers import protocol as p
from treadlab.drivers.line import parse_lines

STREAMS = [("insole 16 sensels u16", 16, "u16"), ("insole 960 sensels u8", 960, "u8"),
           ("mat 64 x 176 u16", 64 * 176, "u16")]
READ_BYTES = 64 * 1024


def make_stream(n: int, dtype: str, target_bytes: int, seed: int = 0) -> tuple[bytes, int]:
    """Plausible pressure data (about half the sensels unloaded, i.e. zero) framed as DATA messages."""
    rng = np.random.default_rng(seed)
    size = p.data_message_size(n, dtype)
    k = max(1, target_bytes // size)
    top = 255 if dtype == "u8" else 4095
    vals = rng.integers(0, top, size=(k, n))
    vals[rng.random((k, n)) < 0.5] = 0
    seq = np.arange(k, dtype=np.uint32)
    t = np.arange(k, dtype=np.uint64) * 2000
    return p.encode_data_block(seq, t, vals.astype(p.DTYPES[dtype]), dtype), k


def run_full(stream: bytes, n: int, dtype: str) -> int:
    dec = p.FrameDecoder(data_size=p.data_message_size(n, dtype))
    samples = 0
    for a in range(0, len(stream), READ_BYTES):
        data, _ = dec.feed(stream[a : a + READ_BYTES])
        if data:
            seq, t, values = p.decode_data(data, n, dtype)
            samples += len(seq)
    return samples


def run_split(stream: bytes, sep: bytes = b"\x00") -> int:
    """Floor (a): split the stream read by read on ``sep`` (0x00 frames, or newline-ended lines), nothing else."""
    rest = b""
    parts_n = 0
    for a in range(0, len(stream), READ_BYTES):
        parts = (rest + stream[a : a + READ_BYTES]).split(sep)
        rest = parts.pop()
        parts_n += len(parts)
    return parts_n


def run_primitives(frames: list[bytes]) -> int:
    decode = cobs.decode
    crc32 = zlib.crc32
    ok = 0
    for f in frames:
        ok += crc32(decode(f)) == 0x2144DF1C
    return ok


def timed_rounds(fns: list, repeats: int) -> np.ndarray:
    """Times of each function (columns) over ``repeats`` rounds (rows), run in turn within each round.

    Running them in turn makes a busy spell on a shared machine hit all of them alike; ratios are then taken
    per round and their median reported, which is far steadier than a ratio of two separate best times.
    """
    times = np.empty((repeats, len(fns)))
    for r in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[r, i] = time.perf_counter() - t0
    return times


def make_lines(n: int, target_bytes: int, seed: int = 0) -> tuple[bytes, int]:
    """Line-protocol text: ``t,v1,...,vn\r\n`` with values in newton with two decimals (as the simulator sends)."""
    rng = np.random.default_rng(seed)
    k = max(1, target_bytes // (8 * n + 10))
    vals = np.round(rng.uniform(0, 300, size=(k, n)), 2)
    vals[rng.random((k, n)) < 0.5] = 0
    t = np.arange(k) * 5
    table = np.column_stack([t, vals])
    fmt = ",".join(["%d"] + ["%.2f"] * n)
    text = "\r\n".join(fmt % tuple(row) for row in table) + "\r\n"
    return text.encode(), k


def run_lines(text: bytes, n: int) -> int:
    """The line driver's receive path: carry the partial line over, parse the complete ones in bulk."""
    rest = b""
    got = 0
    for a in range(0, len(text), READ_BYTES):
        buf = rest + text[a : a + READ_BYTES]
        cut = buf.rfind(b"\n") + 1
        rest = buf[cut:]
        got += len(parse_lines(buf[:cut], n).t)
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=8.0, help="stream size per case in MB (default 8)")
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    print(f"decoder throughput, {args.mb:g} MB per stream, {READ_BYTES // 1024} KiB reads, best of {args.repeats} "
          "rounds (full/(b): median of the per-round ratios)")
    print(f"{'stream':24s} {'msg B':>6s} {'full MB/s':>10s} {'full samp/s':>12s} {'(a) split':>10s} "
          f"{'(b) C prims':>11s} {'full/(b)':>9s}")
    worst = 0.0
    for label, n, dtype in STREAMS:
        stream, k = make_stream(n, dtype, int(args.mb * 1e6))
        frames = stream.split(b"\x00")[:-1]
        assert run_full(stream, n, dtype) == k and run_primitives(frames) == k
        mb = len(stream) / 1e6
        times = timed_rounds([lambda s=stream, n=n, d=dtype: run_full(s, n, d), lambda s=stream: run_split(s),
                              lambda f=frames: run_primitives(f)], args.repeats)
        t_full, t_split, t_prim = times.min(axis=0)
        ratio = float(np.median(times[:, 0] / times[:, 2]))
        worst = max(worst, ratio)
        print(f"{label:24s} {len(stream) // k:6d} {mb / t_full:10.1f} {k / t_full:12.0f} {mb / t_split:10.1f} "
              f"{mb / t_prim:11.1f} {ratio:9.2f}")
    verdict = "met" if worst <= 1.5 else "MISSED"
    print(f"target full <= 1.5 x (b) for every stream: {verdict} (worst {worst:.2f})")
    print()
    print(f"{'line protocol':24s} {'line B':>6s} {'parse MB/s':>10s} {'lines/s':>12s} {'split MB/s':>10s}")
    for n in (8, 16):
        text, k = make_lines(n, int(args.mb * 1e6) // 4)
        assert run_lines(text, n) == k
        t_parse, t_split = timed_rounds([lambda x=text, n=n: run_lines(x, n), lambda x=text: run_split(x, b"\n")],
                                        args.repeats).min(axis=0)
        mb = len(text) / 1e6
        print(f"{f'{n} sensels, 2 decimals':24s} {len(text) // k:6d} {mb / t_parse:10.1f} {k / t_parse:12.0f} "
              f"{mb / t_split:10.1f}")


if __name__ == "__main__":
    main()
