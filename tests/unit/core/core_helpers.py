"""Helpers of the core tests: a transport with its runner, and the fixture types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tinker._calls import ApiCall, CallRunner
from tinker._retry import RetryEnv, RetryExecutor, RetryPolicy
from tinker._runtime import Runtime
from tinker._transport import Reply, Traffic, Transport
from tinker.config import ClientConfig

# Signature of the `make_runtime` fixture: keyword config overrides -> a started Runtime.
RuntimeFactory = Callable[..., Runtime]


PATH = "/api/v1/forward"


class Made:
    """A transport and the runner that sends through it, with every retry pause recorded."""

    def __init__(self, config: ClientConfig) -> None:
        self.sleeps: list[float] = []
        self.transport = Transport(config)
        self.runner = CallRunner(
            self.transport,
            executor=RetryExecutor(sleep=self.sleeps.append),
            env=RetryEnv(
                uniform=lambda: 0.0, wall_clock=lambda: 1e9, max_retries=config.max_retries
            ),
        )

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        max_retries: int | None = None,
        **fields: Any,
    ) -> Reply:
        """One call (retried by the transport layer) answered by a raw Reply."""
        call = ApiCall(
            traffic=Traffic.TRAIN,
            method=method,
            path=path,
            body=body,
            result=Reply,
            retry=RetryPolicy(max_retries=max_retries),
            **fields,
        )
        reply: Reply = self.runner.call(call)
        return reply

    def post(self, **fields: Any) -> Reply:
        return self.send("POST", PATH, body={"a": 1}, **fields)
