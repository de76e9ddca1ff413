"""Fetch a checkpoint's files into a directory: what `tinker checkpoint download` does, and what
`push-hf` does into a temporary directory before uploading.

An external-weights checkpoint comes file by file from its signed URLs; any other as an archive
that is safely extracted; a training checkpoint on a service without archives (a 0.38 service)
through a temporary external-weights export. A 0.38 service downloads no sampler checkpoint
(it has no archives, and a sampler checkpoint cannot be exported): that is said plainly.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tinker import errors
from tinker.cli.checkpoint_lookup import find_checkpoint
from tinker.cli.context import CliError, Context

__all__ = ["Fetched", "fetch_checkpoint"]


@dataclass(frozen=True)
class Fetched:
    """Where the files landed, how many bytes came, and whether they came as an archive."""

    destination: pathlib.Path
    received: int
    archived: bool


def fetch_checkpoint(
    ctx: Context,
    tinker_path: str,
    parent: pathlib.Path,
    *,
    force: bool,
    check_names: Callable[[Iterable[str]], None] | None = None,
) -> Fetched:
    """Download the checkpoint at `tinker_path` into `parent/<checkpoint_dir_name>`, with a
    progress bar on a terminal. FileExistsError when that exists and `force` is false.
    `check_names` may refuse an external-weights checkpoint's file names before its download."""
    from tinker.checkpoints import checkpoint_dir_name, download_checkpoint
    from tinker.cli.external_download import (
        download_external_weights,
        download_training_checkpoint,
    )
    from tinker.training_client import TrainingClient
    from tinker.types import ParsedCheckpointTinkerPath

    parsed = ParsedCheckpointTinkerPath.from_tinker_path(tinker_path)
    progress = ctx.progress("Downloading", unit="bytes")
    received = [0]

    def report(done: int, total: int | None = None) -> None:
        received[0] = done
        progress.update(done, total)

    destination = parent / checkpoint_dir_name(tinker_path)
    # A 0.38 service has no archives: it exports a training checkpoint instead (when this
    # SDK can ask for that); older services and tinker.local serve archives.
    exportable = parsed.checkpoint_type == "training" and hasattr(
        TrainingClient, "save_weights_external"
    )
    archived = parsed.checkpoint_type != "external"
    try:
        if not archived:
            download_external_weights(
                ctx.rest(),
                tinker_path,
                destination,
                force=force,
                progress=report,
                check_names=check_names,
            )
        else:
            try:
                download_checkpoint(ctx.rest(), tinker_path, parent, force=force, progress=report)
            except errors.NotFoundError:
                if parsed.checkpoint_type == "sampler" and _listed(ctx, tinker_path):
                    raise CliError(_sampler_refusal(tinker_path, parsed.training_run_id)) from None
                if not exportable:
                    raise
                archived = False
                download_training_checkpoint(
                    ctx.clients.service_client(),
                    ctx.rest(),
                    tinker_path,
                    destination,
                    force=force,
                    progress=report,
                )
    finally:
        progress.finish()
    return Fetched(destination, received[0], archived)


def _sampler_refusal(tinker_path: str, run_id: str) -> str:
    """Why a sampler checkpoint the service has cannot be downloaded, and what to download."""
    return (
        f"{tinker_path} cannot be downloaded: this service does not download sampler checkpoints "
        f"(sampler_weights/). Download the training checkpoint of the same step instead "
        f"(tinker://{run_id}/weights/NAME, or an external_weights/ path)"
    )


def _listed(ctx: Context, tinker_path: str) -> bool:
    """Whether the service may have the checkpoint: false when its run's listing leaves it out
    or the run is not found (then the plain 'not found' is the right answer)."""
    try:
        find_checkpoint(ctx.rest(), tinker_path)
    except (CliError, errors.NotFoundError):
        return False
    except Exception:  # the listing cannot be read (another user's run): it may well be there
        return True
    return True
