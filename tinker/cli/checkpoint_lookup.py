"""Finding checkpoints for the checkpoint commands: path parsing, one checkpoint by path, and
the user's checkpoints page by page."""

from __future__ import annotations

from typing import Any

from tinker.cli.context import CliError, Context, RestClientLike
from tinker.cli.paging import collect

__all__ = [
    "CHECKPOINT_PAGE_SIZE",
    "checkpoint_count",
    "find_checkpoint",
    "parse_tinker_path",
    "user_checkpoints",
]

CHECKPOINT_PAGE_SIZE = 1000


def checkpoint_count(n: int) -> str:
    """ "1 checkpoint", "2 checkpoints"."""
    return f"{n} checkpoint{'' if n == 1 else 's'}"


def parse_tinker_path(path: str) -> tuple[str, str]:
    """(training_run_id, checkpoint_id) of `tinker://<run>/<weights|sampler_weights>/<name>`."""
    from tinker.types import ParsedCheckpointTinkerPath

    parsed = ParsedCheckpointTinkerPath.from_tinker_path(path)  # ValueError says what is wrong
    return parsed.training_run_id, parsed.checkpoint_id


def find_checkpoint(rest: RestClientLike, tinker_path: str) -> Any:
    """The Checkpoint at `tinker_path`, found by listing its run's checkpoints."""
    run_id, _ = parse_tinker_path(tinker_path)
    for checkpoint in rest.list_checkpoints(run_id).result().checkpoints:
        if checkpoint.tinker_path == tinker_path:
            return checkpoint
    raise CliError(f"checkpoint not found: {tinker_path}")


def user_checkpoints(ctx: Context, limit: int) -> tuple[list[Any], int | None]:
    """Up to `limit` (0 = all) of the user's checkpoints, newest first, fetched in pages of
    CHECKPOINT_PAGE_SIZE; and the service's total count (None when it gives none)."""
    rest = ctx.rest()

    def fetch(size: int, offset: int) -> tuple[list[Any], int | None]:
        response = rest.list_user_checkpoints(limit=size, offset=offset).result()
        cursor = getattr(response, "cursor", None)
        return list(response.checkpoints), getattr(cursor, "total_count", None)

    return collect(fetch, limit, CHECKPOINT_PAGE_SIZE, ctx.progress("Fetching checkpoints"))
