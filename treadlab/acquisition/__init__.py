"""Acquisition: every device on one session clock, streamed to HDF5 without losing a sample. No Qt here."""
