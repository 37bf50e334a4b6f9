"""Gait analysis from session files. Never imports drivers: it reads files through its own reader."""
