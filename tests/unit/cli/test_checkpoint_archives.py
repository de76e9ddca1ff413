"""safe_extract refuses hostile members; download_checkpoint streams, extracts and cleans up."""

from __future__ import annotations

import http.server
import io
import json
import os
import pathlib
import tarfile
import threading
from collections.abc import Iterator

import pytest
from cli_fakes import Cli, FakeClients, FakeRest, SdkSession, TtyBuffer

from tinker.checkpoints import (
    CheckpointDownloadError,
    UnsafeArchiveError,
    checkpoint_dir_name,
    download_checkpoint,
    safe_extract,
)
from tinker.cli import main
from tinker.cli.context import Context

PATH = "tinker://run-123/weights/final"
FILES = {"adapter_model.safetensors": b"\x00\x01" * 5000, "adapter_config.json": b'{"r": 8}'}


def _add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def build_tar(
    files: dict[str, bytes], *, gzip: bool = False, extra: list[tarfile.TarInfo] = ()
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzip else "w") as archive:
        for name, data in files.items():
            _add_file(archive, name, data)
        for info in extra:
            archive.addfile(info)
    return buffer.getvalue()


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def _write(tmp_path: pathlib.Path, payload: bytes) -> pathlib.Path:
    path = tmp_path / "archive.tar"
    path.write_bytes(payload)
    return path


def test_safe_extract_writes_files_and_directories(tmp_path: pathlib.Path) -> None:
    payload = build_tar({"a.txt": b"A", "sub/b.bin": b"\x00B"}, gzip=True)
    safe_extract(_write(tmp_path, payload), tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"A"
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == b"\x00B"


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_special("/etc/evil", tarfile.REGTYPE), "absolute path"),
        (_special("../evil", tarfile.REGTYPE), "path contains '..'"),
        (_special("sub/../../evil", tarfile.REGTYPE), "path contains '..'"),
        (_special("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link to '/etc/passwd'"),
        (_special("inside-link", tarfile.SYMTYPE, "a.txt"), "symbolic link to 'a.txt'"),
        (_special("hard", tarfile.LNKTYPE, "a.txt"), "hard link to 'a.txt'"),
        (_special("tty", tarfile.CHRTYPE), "device file"),
        (_special("disk", tarfile.BLKTYPE), "device file"),
        (_special("pipe", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_safe_extract_refuses_hostile_members(
    tmp_path: pathlib.Path, member: tarfile.TarInfo, reason: str
) -> None:
    archive = _write(tmp_path, build_tar({"a.txt": b"A"}, extra=[member]))
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as error:
        safe_extract(archive, dest)
    assert str(error.value) == f"refusing to extract {member.name!r}: {reason}"
    assert list(dest.iterdir()) == []  # checked before anything was written


def test_safe_extract_refuses_a_path_through_a_preexisting_symlink(tmp_path: pathlib.Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "escape").symlink_to(outside)
    archive = _write(tmp_path, build_tar({"escape/evil.txt": b"x"}))
    with pytest.raises(UnsafeArchiveError, match=r"'escape/evil\.txt': resolves outside"):
        safe_extract(archive, dest)
    assert list(outside.iterdir()) == []


def test_checkpoint_dir_name() -> None:
    assert checkpoint_dir_name(PATH) == "run-123_weights_final"
    # No ':' (0.38 run ids hold them; Windows and some tools refuse them in file names).
    assert checkpoint_dir_name("tinker://s:train:0/sampler_weights/a b") == (
        "s_train_0_sampler_weights_a_b"
    )
    for bad in ("run-123/weights/final", "tinker://", "tinker://a/../b", "tinker://a/weights/"):
        with pytest.raises(ValueError):
            checkpoint_dir_name(bad)


class _ArchiveServer:
    """Serves one payload over HTTP on loopback; can announce a longer length than it sends."""

    def __init__(self) -> None:
        self.payload = b""
        self.status = 200
        self.claimed_length: int | None = None
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                self.send_response(owner.status)
                length = owner.claimed_length or len(owner.payload)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(owner.payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive?sig=SECRET"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_ArchiveServer]:
    srv = _ArchiveServer()
    yield srv
    srv.close()


@pytest.fixture
def rest(sdk: SdkSession, server: _ArchiveServer) -> FakeRest:
    fake = FakeRest(sdk)
    fake.archive_url = server.url
    return fake


def test_download_streams_extracts_and_removes_the_archive(
    tmp_path: pathlib.Path, server: _ArchiveServer, rest: FakeRest
) -> None:
    server.payload = build_tar(FILES, gzip=True)
    seen: list[tuple[int, int | None]] = []
    out = tmp_path / "new" / "parent"
    dest = download_checkpoint(rest, PATH, out, progress=lambda d, t: seen.append((d, t)))
    assert dest == out / "run-123_weights_final"
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == FILES
    assert sorted(p.name for p in out.iterdir()) == ["run-123_weights_final"]  # no leftovers
    assert seen[0] == (0, len(server.payload))
    assert seen[-1] == (len(server.payload), len(server.payload))
    assert rest.calls == [("get_checkpoint_archive_url_from_tinker_path", PATH)]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_the_checkpoint_folder_gets_the_mode_the_umask_gives(
    tmp_path: pathlib.Path, server: _ArchiveServer, rest: FakeRest, umask: int
) -> None:
    server.payload = build_tar(FILES)
    previous = os.umask(umask)
    try:
        dest = download_checkpoint(rest, PATH, tmp_path)
    finally:
        os.umask(previous)
    assert dest.stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_folder_made_while_the_download_ran_is_kept_without_force(
    tmp_path: pathlib.Path, server: _ArchiveServer, rest: FakeRest
) -> None:
    server.payload = build_tar(FILES)
    target = tmp_path / "run-123_weights_final"

    def user_writes_there(_done: int, _total: int | None) -> None:
        target.mkdir(exist_ok=True)
        (target / "notes.txt").write_text("mine")

    with pytest.raises(FileExistsError, match="already exists"):
        download_checkpoint(rest, PATH, tmp_path, progress=user_writes_there)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no staging left
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_download_refuses_an_existing_target_unless_forced(
    tmp_path: pathlib.Path, server: _ArchiveServer, rest: FakeRest
) -> None:
    server.payload = build_tar(FILES)
    existing = tmp_path / "run-123_weights_final"
    existing.mkdir()
    (existing / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="run-123_weights_final already exists"):
        download_checkpoint(rest, PATH, tmp_path)
    assert server.requests == 0 and rest.calls == []
    download_checkpoint(rest, PATH, tmp_path, force=True)
    assert sorted(p.name for p in existing.iterdir()) == sorted(FILES)


def test_a_failed_forced_download_keeps_the_old_directory(
    tmp_path: pathlib.Path, server: _ArchiveServer, rest: FakeRest
) -> None:
    server.payload = build_tar({"ok": b"1"}, extra=[_special("../x", tarfile.REGTYPE)])
    existing = tmp_path / "run-123_weights_final"
    existing.mkdir()
    (existing / "old.txt").write_text("old")
    with pytest.raises(UnsafeArchiveError):
        download_checkpoint(rest, PATH, tmp_path, force=True)
    assert [p.name for p in existing.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-123_weights_final"]


def test_http_errors_and_truncation_are_clear_and_never_quote_the_url(
    tmp_path: pathlib.Path, server: _ArchiveServer, rest: FakeRest
) -> None:
    server.status = 403
    with pytest.raises(CheckpointDownloadError) as error:
        download_checkpoint(rest, PATH, tmp_path)
    assert str(error.value) == "archive download failed: HTTP 403 Forbidden"

    server.status = 200
    server.payload = build_tar(FILES)
    server.claimed_length = len(server.payload) + 1000
    with pytest.raises(CheckpointDownloadError) as error:
        download_checkpoint(rest, PATH, tmp_path)
    assert "SECRET" not in str(error.value)
    assert str(error.value).startswith("archive download")
    assert list(tmp_path.iterdir()) == []


def test_unreachable_url_fails_fast(tmp_path: pathlib.Path, rest: FakeRest) -> None:
    rest.archive_url = "http://127.0.0.1:9/archive?sig=SECRET"
    with pytest.raises(CheckpointDownloadError, match="archive download failed: ConnectionError"):
        download_checkpoint(rest, PATH, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_safe_extract_without_the_data_filter(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    safe_extract(_write(tmp_path, build_tar({"d/a.txt": b"A"})), tmp_path / "out")
    assert (tmp_path / "out" / "d" / "a.txt").read_bytes() == b"A"
    hostile = _write(tmp_path, build_tar({}, extra=[_special("l", tarfile.SYMTYPE, "/")]))
    with pytest.raises(UnsafeArchiveError, match="'l': symbolic link"):
        safe_extract(hostile, tmp_path / "out2")


def test_cli_download_table_json_and_existing_target(
    tmp_path: pathlib.Path, server: _ArchiveServer, rest: FakeRest
) -> None:
    server.payload = build_tar(FILES)
    cli = Cli(FakeClients(rest))
    result = cli("checkpoint", "download", PATH, "-o", str(tmp_path))
    dest = tmp_path / "run-123_weights_final"
    size = f"{len(server.payload) / 1024:.1f} KB"
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "Checkpoint Path                 Archive Size  Extracted to",
        "------------------------------  ------------  " + "-" * len(str(dest)),
        f"{PATH}  {size.ljust(12)}  {dest}",
    ]
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES)

    again = cli("checkpoint", "download", PATH, "--output", str(tmp_path))
    assert again.code == 1
    assert again.err == f"Error: {dest} already exists (use force=True / --force to replace it)\n"

    forced = cli("-f", "json", "checkpoint", "download", PATH, "-o", str(tmp_path), "--force")
    assert json.loads(forced.out) == {
        "checkpoint_path": PATH,
        "destination": str(dest),
        "file_size_bytes": len(server.payload),
    }


def test_cli_download_draws_progress_on_a_terminal_only(
    tmp_path: pathlib.Path, server: _ArchiveServer, rest: FakeRest
) -> None:
    server.payload = build_tar(FILES)
    for output_format, expect_bar in (("table", True), ("json", False)):
        err = TtyBuffer()
        ctx = Context(stdout=io.StringIO(), stderr=err, interactive=False)
        argv = ["-f", output_format, "checkpoint", "download", PATH, "-o", str(tmp_path), "--force"]
        assert main(argv, client_factory=FakeClients(rest), context=ctx) == 0
        total = f"{len(server.payload) / 1024:.1f} KB"
        if expect_bar:
            assert err.getvalue().endswith(f"\rDownloading [{'#' * 30}] {total}/{total}\n")
        else:
            assert err.getvalue() == ""
