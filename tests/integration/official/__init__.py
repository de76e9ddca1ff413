"""Tests and harness around the unmodified official SDKs (opt-in)."""
