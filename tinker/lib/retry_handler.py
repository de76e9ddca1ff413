"""Sample-level retry settings under their official module path."""

from tinker._retry import RetryConfig

__all__ = ["RetryConfig"]
