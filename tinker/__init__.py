"""tinker-sync: a sync-first SDK for the Tinker fine-tuning API."""

from tinker._version import __version__

__all__ = ["__version__"]
