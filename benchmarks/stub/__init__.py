"""Instant-answer stub of the Tinker wire protocol, for measuring client overhead alone."""

from benchmarks.stub.http import start_stub
from benchmarks.stub.protocol import StubConfig, StubState

__all__ = ["StubConfig", "StubState", "start_stub"]
