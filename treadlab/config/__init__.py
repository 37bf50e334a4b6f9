"""Data shipped with treadlab: sensor layouts (``layouts/*.toml``) and example rig files (``rigs/*.toml``)."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
LAYOUTS_DIR = CONFIG_DIR / "layouts"
RIGS_DIR = CONFIG_DIR / "rigs"
