"""Fixtures of the CLI tests: the CLI run in-process on real clients of the shared fake."""

from __future__ import annotations

import io
from collections.abc import Iterator

import attrs
import pytest
from cli_fakes import FakeAdmin, FakeClients, FakeRest, SdkSession
from support.fake_service import FakeService

from tinker.cli import main
from tinker.cli.context import Context


@attrs.define
class Result:
    code: int
    out: str
    err: str


@attrs.define
class Cli:
    """Runs `tinker ...` in-process against the fakes, capturing output."""

    clients: FakeClients
    prompts: list[str] = attrs.field(factory=list)

    @property
    def rest(self) -> FakeRest:
        return self.clients.rest

    @property
    def admin(self) -> FakeAdmin:
        return self.clients.admin

    def __call__(
        self, *argv: str, interactive: bool = False, answer: str | BaseException = "y"
    ) -> Result:
        out, err = io.StringIO(), io.StringIO()

        def prompt(text: str) -> str:
            self.prompts.append(text)
            if isinstance(answer, BaseException):
                raise answer
            return answer

        ctx = Context(stdout=out, stderr=err, prompt=prompt, interactive=interactive)
        code = main(list(argv), client_factory=self.clients, context=ctx)
        return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def sdk() -> Iterator[SdkSession]:
    """A ServiceClient (made on first use) on a fresh fake service."""
    with FakeService() as http:
        session = SdkSession(http)
        yield session
        session.close()


@pytest.fixture
def rest(sdk: SdkSession) -> FakeRest:
    return FakeRest(sdk)


@pytest.fixture
def cli(rest: FakeRest) -> Cli:
    return Cli(FakeClients(rest))
