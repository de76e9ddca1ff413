"""Unit tests of the public clients."""
