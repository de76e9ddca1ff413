"""Testing programs built on tinker: a pytest plugin and an assertion for training curves.

The plugin (`tinker.testing.plugin`) is registered with pytest when tinker-sync is installed;
its fixtures (`tinker_server`, `tinker_shared_server`, `tinker_server_factory`,
`tinker_faults`, `tinker_service_client`) run a `tinker.local` server for a test. See
docs/testing.md.
"""

from __future__ import annotations

from tinker.testing.losses import LossTrend, assert_loss_decreases

__all__ = ["LossTrend", "assert_loss_decreases"]
