"""One simulated device in its own process, on a pseudo-terminal: ``python -m treadlab.drivers.sim.serve``.

The process creates a pty (raw mode, slave kept open so the master never reads EIO), points the stable symlink
``<workdir>/<name>`` at it, prints ``READY <port>`` and serves the device logic of
:mod:`treadlab.drivers.sim.device` with real timing:

* samples fall due on the device's own clock (absolute schedule, never from wake-up times);
* bytes leave in USB-like 1 ms frames with occasional stalls (:class:`~treadlab.drivers.sim.clock.UsbDelivery`),
  written non-blocking; on EAGAIN they wait in a bounded FIFO, and DATA that does not fit is dropped and counted
  (an overrun LOG goes out, as firmware would);
* the greeting (``garbage_at_start`` random bytes, then a LOG or a ``#`` line) goes out when the host opens the
  port (seen as a change of the slave's termios speed from a sentinel), 0.1 s later so that pyserial's flush on
  open does not eat it, or at once if the host sends a command first;
* a self-powered device (``spec.self_powered``) goes on sampling while its cable is out: those samples are taken
  and thrown away, and after a replug its output (DATA included) waits in the FIFO until the greeting's moment
  (the host opened the port, or sent a command), then goes at once;
* every sample taken is appended to ``<workdir>/<name>.truth`` as little-endian ``(u4 seq, i8 true_time_ns)``
  records, written at least every 0.25 s, and those thrown away while unplugged to ``<workdir>/<name>.offline``
  as well; with ``--steps-horizon-s`` > 0 the runner's steps (``GaitModel.steps``
  plus true ``ic_ns``/``to_ns``) go to ``<workdir>/<name>.steps.csv`` before the first ``READY``.

Control lines on stdin (one per line; each answered ``OK ...`` or ``ERR ...`` on stdout)::

    quit | unplug SECONDS | unplug | replug | corrupt RATE | loss RATE | garbage NBYTES
    stall RATE_HZ MAX_MS | stats

Events on stdout: ``READY <port>`` (also after a replug), ``UNPLUGGED``, ``BYE``. The process exits 0 on
``quit``, SIGTERM, or end of stdin (the parent died), so it never outlives its parent. SIGINT is ignored: the
parent decides when simulators stop.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import termios
import time
import tty
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from treadlab.drivers.sim.clock import UsbDelivery
from treadlab.drivers.sim.device import LOG_WARNING, SimDevice, SimDeviceSpec, make_device
from treadlab.drivers.sim.signals import load_runner, steps_table

MAX_WAIT_NS = 50_000_000
GREETING_DELAY_NS = 100_000_000
SENTINEL_SPEED = termios.B50  # nobody opens a port at 50 baud: a change means the host opened it
TRUTH_FLUSH_NS = 250_000_000
OVERRUN_LOG_NS = 1_000_000_000


class DeviceServer:
    """Serves one :class:`~treadlab.drivers.sim.device.SimDevice` on a pty until told to quit.

    Parameters
    ----------
    spec : SimDeviceSpec
    workdir : Path
        Holds the port symlink, the truth file and the steps CSV.
    t_epoch_ns : int
        Common epoch of the rig (``time.monotonic_ns`` domain).
    runner : RunnerParams or None
        Gait parameters shared by the rig's devices.
    steps_horizon_s : float
        The steps CSV covers this long after the epoch (0: no steps CSV).
    """

    def __init__(self, spec: SimDeviceSpec, workdir: Path, t_epoch_ns: int, runner: Any = None,
                 steps_horizon_s: float = 300.0) -> None:
        self.steps_horizon_s = steps_horizon_s
        self.spec = spec
        self.workdir = Path(workdir)
        self.device: SimDevice = make_device(spec, t_epoch_ns, runner)
        self.link = self.workdir / spec.name
        d = spec.delivery
        rng = np.random.default_rng([spec.seed, 11])
        frame_ns = int(d.usb_frame_ms * 1e6)
        self.usb = UsbDelivery(frame_ns, int(rng.integers(0, frame_ns)), d.stall_rate_hz, d.stall_max_ms, rng)
        self.queue = bytearray()
        self.fifo_bytes = spec.fifo_bytes
        self.ready_ns: int | None = None
        self.master: int | None = None
        self.slave: int | None = None
        self.quit = False
        self.plugs_n = 0
        self.unplug_at_ns: int | None = None
        self.replug_at_ns: int | None = None
        self.overrun_unlogged = 0
        self.greeting_at_ns: int | None = None
        self.greeted = False
        self.last_overrun_log_ns = 0
        self._ctl = b""
        self._truth_fd: int | None = None
        self._offline_fd: int | None = None

    # ----------------------------------------------------------------------------------- plug and unplug

    def plug(self, now_ns: int) -> None:
        """Power up: new pty, raw mode, symlink swapped atomically, device state reset, ``READY`` printed."""
        master, slave = os.openpty()
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[4] = attrs[5] = SENTINEL_SPEED
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        tmp = self.workdir / f".{self.spec.name}.{os.getpid()}.tmp"
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.link)
        self.master, self.slave = master, slave
        self.queue.clear()
        self.ready_ns = None
        self.greeting_at_ns = None
        self.greeted = False
        if self.spec.self_powered and self.plugs_n > 0:
            self.device.reset_link()  # the firmware kept running: no power-up, only a new link
        else:
            self._enqueue(self.device.power_up(now_ns, reset_clock=self.plugs_n > 0), now_ns, data=False)
        self.plugs_n += 1
        self.replug_at_ns = None
        self.say(f"READY {self.link}")

    def unplug(self, now_ns: int, replug_after_s: float | None) -> None:
        """Vanish like a pulled USB cable: close the pty, remove the symlink; replug later if asked."""
        if self.master is None:
            return
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = None
        if self.link.is_symlink():
            self.link.unlink()
        self.queue.clear()
        self.ready_ns = None
        self.unplug_at_ns = None
        self.replug_at_ns = None if replug_after_s is None else now_ns + int(replug_after_s * 1e9)
        self.say("UNPLUGGED")

    # ----------------------------------------------------------------------------------- output path

    def _enqueue(self, out: bytes, ready_ns: int, data: bool = True) -> None:
        """Hand bytes to the USB FIFO; DATA that does not fit is dropped whole and counted as overrun."""
        if not out:
            return
        if data and len(self.queue) + len(out) > self.fifo_bytes:
            delim = 0 if self.spec.protocol == "binary" else ord("\n")
            dropped = out.count(bytes((delim,)))
            self.device.stats.overrun_n += dropped
            self.overrun_unlogged += dropped
            now = time.monotonic_ns()
            if now - self.last_overrun_log_ns >= OVERRUN_LOG_NS:
                log = self.device.log(LOG_WARNING, f"overrun: {self.overrun_unlogged} samples dropped, link not read")
                self.overrun_unlogged = 0
                self.last_overrun_log_ns = now
                self._enqueue(log, now, False)
            return
        if not self.queue:
            self.ready_ns = ready_ns
        self.queue += out

    def _pump(self, now: int) -> None:
        """Write the FIFO to the pty if a USB frame has come since the bytes were ready and the link is not stalled.

        A self-powered device holds its output until the greeting's moment (nobody reads the link before).
        """
        if not self.queue or now < self.usb.next_frame_ns(self.ready_ns) or not self.usb.may_send(now):
            return
        if self.spec.self_powered and not self.greeted:
            return
        try:
            n = os.write(self.master, self.queue)
        except BlockingIOError:
            n = 0
        del self.queue[:n]
        if not self.queue:
            self.ready_ns = None

    def say(self, text: str) -> None:
        """One event or answer line on stdout for the parent."""
        try:
            print(text, flush=True)
        except BrokenPipeError:
            self.quit = True

    # ----------------------------------------------------------------------------------- main loop

    def run(self) -> int:
        """Serve until ``quit``, SIGTERM or end of stdin; returns the exit code (0)."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        t_start = time.monotonic_ns()
        f = self.spec.faults
        if f.unplug_at_s is not None:
            self.unplug_at_ns = t_start + int(f.unplug_at_s * 1e9)
        if self.steps_horizon_s > 0:
            steps = steps_table(self.device.source.gait, self.device.t_epoch_ns, self.steps_horizon_s)
            tmp = self.workdir / f".{self.spec.name}.steps.csv.tmp"
            steps.to_csv(tmp, index=False)
            tmp.replace(self.workdir / f"{self.spec.name}.steps.csv")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        self._truth_fd = os.open(self.workdir / f"{self.spec.name}.truth", flags, 0o644)
        self._offline_fd = os.open(self.workdir / f"{self.spec.name}.offline", flags, 0o644)
        next_truth_ns = t_start + TRUTH_FLUSH_NS
        try:
            self.plug(time.monotonic_ns())
            while not self.quit:
                now = time.monotonic_ns()
                self._timers(now)
                if now >= next_truth_ns:
                    self._flush_truth()
                    next_truth_ns = now + TRUTH_FLUSH_NS
                if self.master is not None:
                    self._greet_when_opened(now)
                    due = self.device.next_due_ns()
                    self._enqueue(self.device.take(now), due if due is not None else now)
                    self._pump(now)
                    self.device.prefetch(now)
                elif self.spec.self_powered:
                    self.device.drop(now)  # sampling on with the cable out: lost for real
                self._wait(min(self._next_wake(now), next_truth_ns))
        finally:
            if self.master is not None:
                self.unplug(time.monotonic_ns(), None)
            self._flush_truth()
            os.close(self._truth_fd)
            os.close(self._offline_fd)
        self.say("BYE")
        return 0

    def _greet_when_opened(self, now: int) -> None:
        if self.greeted:
            return
        if self.greeting_at_ns is None:
            if termios.tcgetattr(self.slave)[4] != SENTINEL_SPEED:
                self.greeting_at_ns = now + GREETING_DELAY_NS
        elif now >= self.greeting_at_ns:
            self._greet(now)

    def _greet(self, now: int) -> None:
        self.greeted = True
        due = self.device.next_due_ns()
        self._enqueue(self.device.greeting(now), due if due is not None and due <= now else now, data=False)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.quit = True

    def _timers(self, now: int) -> None:
        if self.master is not None and self.unplug_at_ns is not None and now >= self.unplug_at_ns:
            self.unplug(now, self.spec.faults.replug_after_s)
        if self.master is None and self.replug_at_ns is not None and now >= self.replug_at_ns:
            self.plug(now)

    def _next_wake(self, now: int) -> int:
        wake = now + MAX_WAIT_NS
        for t in (self.unplug_at_ns, self.replug_at_ns, self.greeting_at_ns if not self.greeted else None):
            if t is not None:
                wake = min(wake, t)
        if self.master is not None:
            if self.queue:
                wake = min(wake, self.usb.next_send_ns(max(self.ready_ns, now + 1)))
            due = self.device.next_due_ns()
            if due is not None:
                wake = min(wake, self.usb.next_send_ns(due))
        return wake

    def _wait(self, until_ns: int) -> None:
        timeout_s = max(0.0, (until_ns - time.monotonic_ns()) / 1e9)
        fds = [0] if self.master is None else [0, self.master]
        try:
            readable, _, _ = select.select(fds, [], [], timeout_s)
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for safety
            return
        if 0 in readable:
            self._read_control()
        if self.master is not None and self.master in readable:
            try:
                data = os.read(self.master, 65536)
            except (BlockingIOError, InterruptedError):
                data = b""
            except OSError:  # EIO: nobody has the port open any more; keep serving
                data = b""
            if data:
                now = time.monotonic_ns()
                if not self.greeted:
                    self._greet(now)
                due = self.device.next_due_ns()
                self._enqueue(self.device.receive(data, now), due if due is not None and due <= now else now,
                              data=False)

    def _flush_truth(self) -> None:
        rec = self.device.pop_truth()
        if len(rec):
            os.write(self._truth_fd, rec.tobytes())
        rec = self.device.pop_offline()
        if len(rec):
            os.write(self._offline_fd, rec.tobytes())

    # ----------------------------------------------------------------------------------- control lines

    def _read_control(self) -> None:
        try:
            chunk = os.read(0, 4096)
        except BlockingIOError:
            return
        if not chunk:
            self.quit = True  # stdin closed: the parent is gone
            return
        self._ctl += chunk
        *lines, self._ctl = self._ctl.split(b"\n")
        for line in lines:
            self.control(line.decode("utf-8", errors="replace").strip())

    def control(self, line: str) -> None:
        """Apply one control line (see the module docstring)."""
        if not line:
            return
        cmd, *args = line.split()
        now = time.monotonic_ns()
        try:
            if cmd == "quit":
                self.quit = True
            elif cmd == "unplug":
                self.unplug(now, float(args[0]) if args else None)
            elif cmd == "replug":
                if self.master is None:
                    self.plug(now)
            elif cmd in ("corrupt", "loss", "garbage"):
                key = {"corrupt": "corrupt_rate", "loss": "loss_rate", "garbage": "garbage_at_start"}[cmd]
                log = self.device.set_fault(key, float(args[0]))
                if self.master is not None:
                    self._enqueue(log, now, data=False)
            elif cmd == "stall":
                self.usb.stall_rate_hz = float(args[0])
                self.usb.stall_max_ms = float(args[1])
                self.usb.next_stall_ns = None
            elif cmd == "stats":
                self.say("STATS " + json.dumps({**asdict(self.device.stats), "stalls_n": self.usb.stalls_n}))
                return
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except (ValueError, IndexError) as exc:
            self.say(f"ERR {line}: {exc}")
            return
        self.say(f"OK {line}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the device process."""
    ap = argparse.ArgumentParser(prog="python -m treadlab.drivers.sim.serve", description=__doc__.splitlines()[0])
    ap.add_argument("--spec", required=True, help="JSON file with the SimDeviceSpec")
    ap.add_argument("--workdir", required=True, help="folder for the port symlink and the truth files")
    ap.add_argument("--t-epoch-ns", type=int, default=None, help="rig epoch (time.monotonic_ns); default: now")
    ap.add_argument("--runner", default=None, help="JSON file with the RunnerParams")
    ap.add_argument("--steps-horizon-s", type=float, default=300.0, help="length of the steps CSV in s (0: none)")
    args = ap.parse_args(argv)
    spec = SimDeviceSpec.from_json(Path(args.spec).read_text())
    runner = load_runner(json.loads(Path(args.runner).read_text())) if args.runner else None
    epoch = args.t_epoch_ns if args.t_epoch_ns is not None else time.monotonic_ns()
    return DeviceServer(spec, Path(args.workdir), epoch, runner, args.steps_horizon_s).run()


if __name__ == "__main__":
    sys.exit(main())
