from __future__ import annotations

import io

from cli_fakes import FakeClients, FakeRest, TtyBuffer, checkpoint

from tinker.cli import main
from tinker.cli.context import Context
from tinker.cli.progress import Progress


def test_bar_with_a_known_total() -> None:
    stream = io.StringIO()
    progress = Progress(stream, "Fetching", enabled=True)
    progress.update(0, 4)
    progress.update(1, 4)
    progress.update(4, 4)
    progress.finish()
    progress.finish()  # a second finish adds nothing
    bar = "#" * 30
    assert stream.getvalue() == (
        f"\rFetching [{'-' * 30}] 0/4\rFetching [{'#' * 7}{'-' * 23}] 1/4\rFetching [{bar}] 4/4\n"
    )


def test_bytes_without_a_total_and_disabled_display() -> None:
    stream = io.StringIO()
    progress = Progress(stream, "Downloading", enabled=True, unit="bytes")
    progress.update(1536, None)
    progress.finish()
    assert stream.getvalue() == "\rDownloading 1.5 KB\n"
    quiet = io.StringIO()
    silent = Progress(quiet, "x", enabled=False)
    silent.update(1, 2)
    silent.finish()
    assert quiet.getvalue() == ""


def test_paging_shows_progress_on_a_terminal_but_not_when_piped(rest: FakeRest) -> None:
    rest.checkpoints = {"r": [checkpoint("r", "training", f"{i}") for i in range(1500)]}
    outputs = []
    for stderr in (TtyBuffer(), io.StringIO()):
        ctx = Context(stdout=io.StringIO(), stderr=stderr, interactive=False)
        assert (
            main(
                ["checkpoint", "list", "--limit", "0"],
                client_factory=FakeClients(rest),
                context=ctx,
            )
            == 0
        )
        outputs.append(stderr.getvalue())
    tty, piped = outputs
    assert tty.endswith(f"\rFetching checkpoints [{'#' * 30}] 1500/1500\n")
    assert "1000/1500" in tty
    assert piped == ""
