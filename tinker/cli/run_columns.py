"""The columns `tinker run list --columns` can show: name -> header and cell of a run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from tinker.cli.render import format_lora, format_time

__all__ = [
    "COLUMNS",
    "DEFAULT_COLUMNS",
    "Column",
    "columns_argument",
    "latest_checkpoint",
    "run_health",
]

Column = tuple[str, Callable[[Any], str]]  # header, cell of one TrainingRun


def run_health(run: Any) -> str:
    """'Failed' for a corrupted run, else 'OK'."""
    return "Failed" if getattr(run, "corrupted", False) else "OK"


def latest_checkpoint(run: Any) -> Any:
    """The newer of the run's last training and last sampler checkpoint (None: neither)."""
    known = [c for c in (run.last_checkpoint, run.last_sampler_checkpoint) if c is not None]
    return max(known, key=lambda c: c.time, default=None)


def _checkpoint_id(run: Any) -> str:
    latest = latest_checkpoint(run)
    return "-" if latest is None else str(latest.checkpoint_id)


def _checkpoint_time(run: Any) -> str:
    latest = latest_checkpoint(run)
    return "-" if latest is None else format_time(latest.time)


COLUMNS: dict[str, Column] = {
    "id": ("Run ID", lambda run: str(run.training_run_id)),
    "model": ("Base Model", lambda run: str(run.base_model)),
    "owner": ("Owner", lambda run: str(run.model_owner)),
    "lora": ("LoRA", lambda run: format_lora(run.is_lora, run.lora_rank)),
    "updated": ("Last Update", lambda run: format_time(run.last_request_time)),
    "status": ("Status", run_health),
    "checkpoint": ("Last Checkpoint", _checkpoint_id),
    "checkpoint_time": ("Checkpoint Time", _checkpoint_time),
}
DEFAULT_COLUMNS = ("id", "model", "lora", "updated", "status")


def columns_argument(text: str) -> list[str]:
    """argparse type for --columns: comma-separated column names, in the order given."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in COLUMNS]
    if unknown or not names:
        what = "no columns"
        if unknown:
            listed = ", ".join(map(repr, unknown))
            what = f"unknown column{'s' if len(unknown) > 1 else ''} {listed}"
        raise argparse.ArgumentTypeError(f"{what}; choose from {', '.join(COLUMNS)}")
    return list(dict.fromkeys(names))
