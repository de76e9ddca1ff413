"""`tinker checkpoint push-hf`: download a checkpoint (as `download` does) into a temporary
directory and upload it to a Hugging Face Hub model repository.

Needs the optional `huggingface_hub` package and a Hub login (`hf auth login`). Without
`--repo` the repository is `<Hub user>/<base model name>-<run id>-<checkpoint name>`: the Hub
user from `HfApi().whoami()`, the base model's part after its last '/' (left out when the run
cannot be read), every run of characters the Hub refuses in a name as one '-', at most 96
characters. A new repository is private unless `--public`; an existing one keeps its
visibility. A README.md model card is added unless `--no-model-card` or the checkpoint has one.
A checkpoint with age-encrypted files (`*.age`) is refused: they must be decrypted first.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import pathlib
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from tinker.cli.context import CliError, Context
from tinker.cli.model_card import CardFacts, lora_config, model_card, module_names

__all__ = [
    "REPO_NAME_LIMIT",
    "add_push_hf_command",
    "push_to_hub",
    "repo_name",
]

REPO_NAME_LIMIT = 96
CARD = "README.md"
MISSING_HUB = (
    "push-hf needs the huggingface_hub package: pip install huggingface_hub "
    "(and log in to the Hub with `hf auth login`)"
)


def add_push_hf_command(sub: Any, leaf: argparse.ArgumentParser) -> None:
    pushing = sub.add_parser(
        "push-hf",
        parents=[leaf],
        help="upload a checkpoint to the Hugging Face Hub",
        description="Download a checkpoint and upload it to a Hugging Face Hub model "
        "repository (needs huggingface_hub and `hf auth login`).",
    )
    pushing.add_argument("tinker_path", metavar="TINKER_PATH")
    pushing.add_argument(
        "-r",
        "--repo",
        metavar="REPO_ID",
        help="the Hub repository (default: <Hub user>/<base model>-<run id>-<checkpoint name>)",
    )
    pushing.add_argument("--public", action="store_true", help="create the repository public")
    pushing.add_argument(
        "--revision", metavar="BRANCH", help="commit to this branch (made from main if missing)"
    )
    pushing.add_argument("--commit-message", metavar="TEXT", help="the commit's message")
    pushing.add_argument("--create-pr", action="store_true", help="open a pull request instead")
    pushing.add_argument(
        "--allow-pattern",
        dest="allow_patterns",
        action="append",
        metavar="GLOB",
        help="upload only files matching a pattern (repeatable)",
    )
    pushing.add_argument(
        "--ignore-pattern",
        dest="ignore_patterns",
        action="append",
        metavar="GLOB",
        help="leave out files matching a pattern (repeatable)",
    )
    pushing.add_argument(
        "--no-model-card", action="store_true", help="do not add a README.md model card"
    )
    pushing.set_defaults(handler=push_to_hub)


def repo_name(base_model: str | None, run_id: str, checkpoint_name: str) -> str:
    """`<base model name>-<run id>-<checkpoint name>` as a valid Hub repository name."""
    parts = ([base_model.rsplit("/", 1)[-1]] if base_model else []) + [run_id, checkpoint_name]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(parts))
    name = re.sub(r"[-.]{2,}", "-", name).strip("-.")
    return name[:REPO_NAME_LIMIT].rstrip("-.")


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise CliError(MISSING_HUB) from None
    return huggingface_hub


def _training_run(ctx: Context, run_id: str) -> Any:
    """The checkpoint's training run, or None when the service will not say (another user's
    published checkpoint, an old service): the card then says less."""
    try:
        return ctx.rest().get_training_run(run_id).result()
    except Exception:
        return None


def _first_line(exc: BaseException) -> str:
    """'<type>: <first line of the message>' (the Hub's messages run to several lines)."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _hub_user(api: Any) -> str:
    try:
        name = api.whoami()["name"]
    except Exception as exc:
        raise CliError(
            "cannot tell who you are on the Hugging Face Hub (log in with `hf auth login`, "
            f"or name the repository with --repo): {_first_line(exc)}"
        ) from None
    return str(name)


def _refuse_encrypted(tinker_path: str, names: Iterable[str]) -> None:
    """CliError naming the age-encrypted files (`*.age`) among the checkpoint's file `names`:
    the Hub would hold ciphertext that PEFT cannot load."""
    encrypted = sorted(name for name in names if name.endswith(".age"))
    if encrypted:
        raise CliError(
            f"{tinker_path} holds age-encrypted files ({', '.join(encrypted)}); nothing was "
            "uploaded. Download it with `tinker checkpoint download`, decrypt each file with "
            "`age --decrypt -i KEY_FILE -o FILE FILE.age` (and remove the .age files), then "
            "upload the folder with `hf upload REPO_ID FOLDER`"
        )


def _write_card(folder: pathlib.Path, facts: CardFacts) -> bool:
    """Add the model card unless the folder has a README.md; whether it was added."""
    card = folder / CARD
    if card.exists():
        return False
    card.write_text(model_card(facts), encoding="utf-8")
    return True


def _facts(
    tinker_path: str, run_id: str, repo_id: str, run: Any, folder: pathlib.Path
) -> CardFacts:
    """What the model card says: the run's base model and rank, refined by the adapter's own
    config where the download has one."""
    adapter = lora_config(folder)
    return CardFacts(
        repo_id=repo_id,
        tinker_path=tinker_path,
        training_run_id=run_id,
        base_model=getattr(run, "base_model", None) or adapter.get("base_model_name_or_path"),
        lora_rank=adapter.get("r", getattr(run, "lora_rank", None)),
        lora_alpha=adapter.get("lora_alpha"),
        target_modules=module_names(adapter.get("target_modules")),
    )


@contextlib.contextmanager
def _hub_errors(repo_id: str) -> Iterator[None]:
    """A failed Hub call as a one-line CliError naming the repository."""
    try:
        yield
    except Exception as exc:
        raise CliError(
            f"the Hugging Face Hub call for {repo_id} failed: {_first_line(exc)}"
        ) from None


def _create_repo(api: Any, args: argparse.Namespace, repo_id: str) -> tuple[str, str]:
    """Create the repository (kept as it is when it exists) and the branch --revision names;
    the full repository id ('name' becomes 'user/name') and its URL."""
    with _hub_errors(repo_id):
        repo_url = api.create_repo(
            repo_id, private=not args.public, repo_type="model", exist_ok=True
        )
        repo_id = str(getattr(repo_url, "repo_id", None) or repo_id)
        if args.revision is not None and not args.revision.startswith("refs/"):
            api.create_branch(repo_id, branch=args.revision, repo_type="model", exist_ok=True)
    return repo_id, str(repo_url)


def _upload(
    api: Any, args: argparse.Namespace, repo_id: str, url: str, folder: pathlib.Path
) -> tuple[str, str | None]:
    """Upload `folder` as one commit (or pull request); the URL to show and the PR's URL."""
    with _hub_errors(repo_id):
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            revision=args.revision,
            commit_message=args.commit_message or f"Upload {args.tinker_path} from Tinker",
            create_pr=args.create_pr,
            allow_patterns=args.allow_patterns,
            ignore_patterns=args.ignore_patterns,
        )
    pr_url = getattr(commit, "pr_url", None) if args.create_pr else None
    if args.revision is not None and pr_url is None:
        url = f"{url}/tree/{args.revision}"
    return url, pr_url


def push_to_hub(ctx: Context, args: argparse.Namespace) -> None:
    """Download the checkpoint into a temporary directory, add a model card, upload it."""
    from tinker.cli.checkpoint_fetch import fetch_checkpoint
    from tinker.types import ParsedCheckpointTinkerPath

    parsed = ParsedCheckpointTinkerPath.from_tinker_path(args.tinker_path)
    hub = _hub()  # before anything is downloaded
    run = _training_run(ctx, parsed.training_run_id)
    api = hub.HfApi()
    repo_id = args.repo
    if not repo_id:
        name = repo_name(
            getattr(run, "base_model", None),
            parsed.training_run_id,
            parsed.checkpoint_id.split("/", 1)[1],
        )
        repo_id = f"{_hub_user(api)}/{name}"
    refuse = functools.partial(_refuse_encrypted, args.tinker_path)
    with tempfile.TemporaryDirectory(prefix="tinker-push-hf-") as scratch:
        # An external-weights checkpoint's file names are vetted from its listing, before any
        # download; the others' once they are here.
        folder = fetch_checkpoint(
            ctx, args.tinker_path, pathlib.Path(scratch), force=False, check_names=refuse
        )
        root = folder.destination
        if parsed.checkpoint_type != "external":
            refuse(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        repo_id, url = _create_repo(api, args, repo_id)
        card = not args.no_model_card and _write_card(
            folder.destination,
            _facts(args.tinker_path, parsed.training_run_id, repo_id, run, folder.destination),
        )
        url, pr_url = _upload(api, args, repo_id, url, folder.destination)
    if ctx.json:
        ctx.out_json(
            {
                "checkpoint_path": args.tinker_path,
                "repo_id": repo_id,
                "url": url,
                "pr_url": pr_url,
                "model_card": card,
            }
        )
    elif pr_url is not None:
        ctx.out(f"Opened a pull request on {repo_id} with {args.tinker_path}: {pr_url}")
    else:
        ctx.out(f"Pushed {args.tinker_path} to {url}")
