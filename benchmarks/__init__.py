"""Benchmarks of tinker-sync against the official SDK and raw urllib3, measured in one run."""
