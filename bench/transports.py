"""Transports and adapters: what each receive path sustains on this machine.

Prints:

- ``socket://`` reads from a local TCP sender that streams as fast as it can: MB/s and bytes per read of the old
  ``read(in_waiting or 1)`` (pyserial's socket handler reports ``in_waiting`` as 0 or 1) against
  :func:`treadlab.drivers.transport.read_chunk` (one ``recv`` of everything queued), both for ``--seconds``;
- ``rfc2217://`` through the simulated RFC 2217 bridge (``treadlab.drivers.sim.bridges``): MB/s;
- protocol v1 over UDP: datagrams/s received by ``UdpPort.recv_messages`` and checked by ``MessageDecoder`` from a
  local sender of 16-sensel u16 DATA (and the share the sender got through);
- the Moticon OpenGo text parser (``parse_datagrams``) and the willowec mat framer (``MarkerFramer``) on
  prepared input: samples/s.

Run: ``.venv/bin/python bench/transports.py [--seconds 2]``
"""

from __future__ import annotations

import argparse
import socket
import struct
import threading
import time
import zlib

import numpy as np

from treadlab.drivers import protocol as p
from treadlab.drivers.adapters.moticon import parse_datagrams
from treadlab.drivers.adapters.willowec import MarkerFramer
from treadlab.drivers.message import MessageDecoder, UdpPort
from treadlab.drivers.sim.moticon import encode_datagrams, side_channels
from treadlab.drivers.sim.signals import make_gait
from treadlab.drivers.sim.willowec import encode_frames
from treadlab.drivers.transport import open_port, read_chunk


class _TcpBlaster:
    """Accept one connection and send ``block`` in a loop until stopped."""

    def __init__(self, block: bytes) -> None:
        self.block = block
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-blaster")

    def _run(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            try:
                while not self._stop.is_set():
                    conn.sendall(self.block)
            except OSError:
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.server.close()


def bench_socket(seconds: float) -> None:
    block = bytes(np.random.default_rng(0).integers(1, 256, 64 * 1024, dtype=np.uint8))
    for label in ("read(in_waiting or 1)", "read_chunk"):
        with _TcpBlaster(block) as tx:
            port = open_port(tx.url, timeout_s=0.05)
            n = reads = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                if label == "read_chunk":
                    chunk = read_chunk(port, "bench")
                else:
                    chunk = port.read(port.in_waiting or 1)
                    more = port.in_waiting
                    if more:
                        chunk += port.read(more)
                n += len(chunk)
                reads += 1
            dt = time.perf_counter() - t0
            port.close()
        print(f"socket://  {label:<24} {n / dt / 1e6:9.2f} MB/s  {n / max(reads, 1):9.1f} bytes/read")


def bench_rfc2217(seconds: float) -> None:
    """A pty fed as fast as it takes, behind the simulated RFC 2217 bridge, read through ``rfc2217://``."""
    import os
    import tty

    from treadlab.drivers.sim.bridges import Rfc2217Bridge

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    stop = threading.Event()

    def feed() -> None:
        block = b"\x55" * 4096
        while not stop.is_set():
            try:
                os.write(master, block)
            except BlockingIOError:
                time.sleep(0.0005)

    with Rfc2217Bridge(os.ttyname(slave)) as bridge:
        port = open_port(bridge.url)
        th = threading.Thread(target=feed, name="pty-feeder")
        th.start()
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            n += len(read_chunk(port, "bench"))
        dt = time.perf_counter() - t0
        stop.set()
        th.join(5.0)
        port.close()
    os.close(master)
    os.close(slave)
    print(f"rfc2217:// read_chunk (server in-process) {n / dt / 1e6:9.3f} MB/s  (pyserial queues each byte)")


def bench_udp(seconds: float) -> None:
    n_values = 16
    raws = []
    for i in range(1000):
        body = struct.pack("<IQ", i, i * 1000) + np.arange(n_values, dtype="<u2").tobytes()
        raw = bytes((p.DATA,)) + body
        raws.append(raw + struct.pack("<I", zlib.crc32(raw)))
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    addr = rx.getsockname()
    rx.close()
    port = UdpPort(f"udp://127.0.0.1:{addr[1]}", listen=True)
    dec = MessageDecoder(data_size=p.data_message_size(n_values, "u16"))
    stop = threading.Event()
    sent = [0]

    def blast() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while not stop.is_set():
            for raw in raws:
                s.sendto(raw, addr)
            sent[0] += len(raws)
        s.close()

    th = threading.Thread(target=blast, name="udp-blaster")
    th.start()
    got = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        data, _ = dec.feed(port.recv_messages(0.05))
        if data:
            p.decode_data(data, n_values, "u16")
        got += len(data)
    dt = time.perf_counter() - t0
    stop.set()
    th.join(5.0)
    port.close()
    print(f"udp://     16-sensel DATA datagrams  {got / dt:11.0f} received+decoded/s  "
          f"({100 * got / max(sent[0], 1):.0f} % of those sent; crc errors {dec.stats.crc_errors})")


def bench_parsers() -> None:
    gait = make_gait(None)
    from treadlab.drivers.layouts import load_layout

    layout = load_layout("insole16")
    t = 5.0 + np.arange(20_000) / 100
    left = side_channels(gait, layout, "left", t)
    right = side_channels(gait, layout, "right", t)
    grams = encode_datagrams(t, left, right)
    best = min(_timed(lambda: [parse_datagrams(grams[i:i + 500]) for i in range(0, len(grams), 500)])
               for _ in range(3))
    print(f"moticon    parse_datagrams (500/read)  {len(grams) / best:11.0f} samples/s (x2 insoles)")
    frames = np.random.default_rng(1).integers(0, 200, (2000, 56, 28), dtype=np.uint8)
    wire = encode_frames(frames)
    step = 64 * 1024

    def run():
        f = MarkerFramer()
        for i in range(0, len(wire), step):
            f.feed(wire[i:i + step])

    best = min(_timed(run) for _ in range(3))
    print(f"willowec   MarkerFramer (64 KiB/read)   {len(frames) / best:11.0f} frames/s  "
          f"{len(wire) / best / 1e6:6.1f} MB/s")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    bench_socket(args.seconds)
    bench_rfc2217(args.seconds)
    bench_udp(args.seconds)
    bench_parsers()


if __name__ == "__main__":
    main()
