"""Download an external-weights checkpoint (`tinker://<run>/external_weights/<name>`), a
training checkpoint by way of a temporary one, and single files behind signed URLs.

`RestClient.get_external_weights_urls` names the checkpoint's files (relative paths) with a
signed URL each; the files are fetched one by one into a staging directory beside the target,
which is renamed into place once every file is complete, so the target never holds a partial
download. Age-encrypted files keep their `.age` suffix. Signed URLs never appear in messages.
A training checkpoint is loaded into a new training run, exported from there with
`save_weights_external` (kept one hour), downloaded, and the export deleted.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tinker._file_modes import usual_mode
from tinker.checkpoints import publish_folder
from tinker.cli.context import CliError

__all__ = [
    "CHUNK_BYTES",
    "EXPORT_NAME",
    "EXPORT_TTL_SECONDS",
    "TIMEOUT",
    "download_external_weights",
    "download_file",
    "download_training_checkpoint",
    "file_parts",
    "refuse_existing",
]

CHUNK_BYTES = 1 << 20
EXPORT_NAME = "download"
EXPORT_TTL_SECONDS = 3600  # a temporary export outlives an interrupted download by an hour
TIMEOUT = (10.0, 120.0)  # connect, and the longest pause between two chunks (seconds)


def file_parts(name: str) -> list[str]:
    """The path parts of one file name the service listed; CliError when it could leave the
    target directory (absolute, '..', empty parts, backslashes, NUL)."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        raise CliError(f"the service listed an unsafe file name {name!r}; nothing was written")
    return parts


def download_external_weights(
    rest: Any,
    tinker_path: str,
    destination: pathlib.Path,
    *,
    force: bool,
    progress: Callable[[int], None],
    check_names: Callable[[Iterable[str]], None] | None = None,
) -> int:
    """Download every file of the checkpoint into `destination`; returns the bytes received.

    FileExistsError when `destination` exists and `force` is false (with `force`, it is
    replaced only once the new copy is complete). `check_names(names)` may refuse the listed
    file names before anything is downloaded.
    """
    get_urls = getattr(rest, "get_external_weights_urls", None)
    if get_urls is None:
        raise CliError("this SDK's RestClient has no get_external_weights_urls() (0.38)")
    refuse_existing(destination, force)
    urls: Mapping[str, str] = get_urls(tinker_path).result().urls
    if not urls:
        raise CliError(f"{tinker_path} has no files to download")
    if check_names is not None:
        check_names(urls)
    targets = {name: file_parts(name) for name in urls}  # all checked before any download
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    received = 0
    try:
        import requests

        with requests.Session() as http:
            for name in sorted(urls):
                target = staging.joinpath(*targets[name])
                target.parent.mkdir(parents=True, exist_ok=True)
                received = _fetch(http, name, urls[name], target, received, progress)
        publish_folder(staging, destination, force=force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return received


def download_training_checkpoint(
    service: Any,
    rest: Any,
    tinker_path: str,
    destination: pathlib.Path,
    *,
    force: bool,
    progress: Callable[[int], None],
) -> int:
    """Export the training checkpoint at `tinker_path` as external weights from a temporary
    training run, download the export into `destination`, then delete the export."""
    refuse_existing(destination, force)  # before the export, which takes a while
    trainer = service.create_training_client_from_state(tinker_path)
    export = trainer.save_weights_external(EXPORT_NAME, ttl_seconds=EXPORT_TTL_SECONDS).result()
    try:
        return download_external_weights(
            rest, export.path, destination, force=force, progress=progress
        )
    finally:
        rest.delete_checkpoint_from_tinker_path(export.path).result()


def download_file(
    url: str,
    destination: pathlib.Path,
    *,
    name: str,
    force: bool,
    progress: Callable[[int], None],
) -> int:
    """Download one signed URL into the file `destination`; returns the bytes received.

    The bytes go to a temporary file beside it that is renamed into place once complete, so
    `destination` never holds a partial download; `force` as for download_external_weights.
    """
    refuse_existing(destination, force)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, staging_name = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    os.close(handle)
    staging = pathlib.Path(staging_name)
    try:
        import requests

        with requests.Session() as http:
            received = _fetch(http, name, url, staging, 0, progress)
        refuse_existing(destination, force)  # made while the download ran
        os.chmod(staging, usual_mode(0o666))  # mkstemp's 0600 is for the partial file only
        os.replace(staging, destination)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return received


def refuse_existing(destination: pathlib.Path, force: bool) -> None:
    """FileExistsError when `destination` exists and `force` is false."""
    if destination.exists() and not force:
        raise FileExistsError(f"{destination} already exists (use --force to replace it)")


def _fetch(
    http: Any,
    name: str,
    url: str,
    target: pathlib.Path,
    received: int,
    progress: Callable[[int], None],
) -> int:
    """Stream one file to `target`; the running byte count after it."""
    import requests

    try:
        with http.get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code != 200:
                raise CliError(f"downloading {name} failed: HTTP {response.status_code}")
            with open(target, "wb") as handle:
                for chunk in response.iter_content(CHUNK_BYTES):
                    handle.write(chunk)
                    received += len(chunk)
                    progress(received)
    except requests.RequestException as exc:  # the message would carry the signed URL
        raise CliError(f"downloading {name} failed: {type(exc).__name__}") from None
    return received
