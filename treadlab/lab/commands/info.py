"""``lab info FILE [--json]``: summary of a session file (also of one still being recorded)."""

from __future__ import annotations

import argparse
import json

from treadlab.acquisition.session import summary

NAME = "info"
HELP = "summary of a session file: metadata, devices (samples, rate, lost, gaps, errors, clock), markers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lab info``."""
    parser.add_argument("file", help="session file (.h5)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _fmt(v, spec: str, none: str = "n/a") -> str:
    return none if v is None else format(v, spec)


def render(s: dict) -> str:
    """The text form of :func:`treadlab.acquisition.session.summary`."""
    m = s["metadata"]
    out = [f"{s['path']}  ({s['status']}, {s['file_size_bytes'] / 1e6:.1f} MB)"]
    out.append(f"  participant {m.get('participant') or '-'}  condition {m.get('condition') or '-'}  "
               f"shoe {m.get('shoe') or '-'}  body mass {_fmt(m.get('body_mass_kg'), '.1f')} kg  "
               f"speed {_fmt(m.get('treadmill_speed_mps'), '.2f')} m/s")
    out.append(f"  started {m.get('start_utc')}  duration {_fmt(m.get('duration_s'), '.1f')} s  "
               f"stopped by {m.get('stop_reason') or '-'}  treadlab {m.get('software_version')}")
    if m.get("notes"):
        out.append(f"  notes: {m['notes']}")
    where = {name: d["side"] or d.get("placement") or "-" for name, d in s["devices"].items()}  # imu: placement
    w = max([6, *(len(v) + 1 for v in where.values())])
    out.append(f"  device          kind    {'side':<{w}} samples  duration  rate (nominal)   lost  gaps  crc  "
               "reconn  drift ppm  fit ms")
    for name, d in s["devices"].items():
        out.append(f"  {name:<15} {d['kind']:<7} {where[name]:<{w}} {d['samples']:>7}  {d['duration_s']:7.1f}s  "
                   f"{_fmt(d['achieved_rate_hz'], '7.1f')} ({d['rate_hz']:g})  {d['lost_samples']:>6} "
                   f"{d['gaps']:>5} {d['crc_errors']:>4}  {d['reconnections']:>6}  "
                   f"{_fmt(d['drift_ppm'], '+9.1f'):>9}  {_fmt(d['fit_residual_ms'], '6.3f'):>6}")
    out.append(f"  markers: {len(s['markers'])}")
    for mk in s["markers"]:
        out.append(f"    {mk['time_s']:9.3f} s  {mk['label']}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Print the summary."""
    s = summary(args.file)
    print(json.dumps(s, indent=2) if args.json else render(s))
    return 0
