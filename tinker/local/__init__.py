"""Embedded Tinker-compatible server with a numpy compute backend."""
