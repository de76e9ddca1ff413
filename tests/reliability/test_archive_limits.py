"""Checkpoint downloads are bounded: decompression bombs, huge member counts, endless and
trickled bodies all end quickly with an error naming the cap, and leave nothing behind."""

from __future__ import annotations

import gzip
import http.server
import pathlib
import tarfile
import threading
import time
from collections.abc import Iterator

import pytest

from tinker.checkpoints import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    CheckpointDownloadError,
    UnsafeArchiveError,
    download_checkpoint,
    safe_extract,
)

PATH = "tinker://run-1/weights/final"
GIB = 1 << 30


def gzip_bomb() -> bytes:
    """A 1 MiB tar.gz whose one member is 1 GiB of zeros (gzip members concatenated, so it is
    built from one compressed 16 MiB block instead of compressing a whole GiB)."""
    header = tarfile.TarInfo("adapter_model.safetensors")
    header.size = GIB
    block = gzip.compress(bytes(16 << 20), compresslevel=9)
    parts = [
        gzip.compress(header.tobuf()),
        *[block] * (GIB // (16 << 20)),
        gzip.compress(bytes(1024)),
    ]
    return b"".join(parts)


def many_members(count: int) -> bytes:
    """A tar.gz of `count` empty files, its headers patched from one template (fast)."""
    template = bytearray(tarfile.TarInfo("m000000").tobuf())
    template[148:156] = b" " * 8  # the checksum is computed with its own field blank
    base = sum(template) - sum(b"m000000")
    headers = []
    for index in range(count):
        name = b"m%06d" % index
        header = bytearray(template)
        header[0:7] = name
        header[148:156] = b"%06o\0 " % (base + sum(name))
        headers.append(bytes(header))
    return gzip.compress(b"".join(headers) + bytes(1024), compresslevel=1)


def write(tmp_path: pathlib.Path, payload: bytes) -> pathlib.Path:
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(payload)
    return path


def test_a_gzip_bomb_is_refused_from_its_header_before_anything_is_written(
    tmp_path: pathlib.Path,
) -> None:
    archive = write(tmp_path, gzip_bomb())
    assert archive.stat().st_size < 1.1 * (1 << 20)
    dest = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(UnsafeArchiveError) as error:
        safe_extract(archive, dest)
    assert time.monotonic() - started < 2.0  # refused without inflating the GiB
    assert str(error.value).startswith(
        f"refusing to extract 'adapter_model.safetensors': {GIB} bytes from a "
        f"{archive.stat().st_size}-byte archive is a compression ratio above 100 "
    )
    assert list(dest.iterdir()) == []


def test_total_extracted_size_is_capped_whatever_the_ratio(tmp_path: pathlib.Path) -> None:
    archive = tmp_path / "plain.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("a.bin", "b.bin"):
            path = tmp_path / name
            path.write_bytes(b"x" * 3000)
            tar.add(path, arcname=name)
    limits = ArchiveLimits(max_extracted_bytes=5000)
    with pytest.raises(UnsafeArchiveError) as error:
        safe_extract(archive, tmp_path / "out", limits)
    assert str(error.value) == (
        "refusing to extract 'b.bin': the archive would extract to more than 5000 bytes "
        "(ArchiveLimits.max_extracted_bytes)"
    )
    assert list((tmp_path / "out").iterdir()) == []
    safe_extract(archive, tmp_path / "out", ArchiveLimits(max_extracted_bytes=6000))
    assert (tmp_path / "out" / "b.bin").read_bytes() == b"x" * 3000


def test_an_archive_of_100000_members_is_refused_at_the_member_cap(tmp_path: pathlib.Path) -> None:
    archive = write(tmp_path, many_members(100_000))
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as error:
        safe_extract(archive, dest)
    assert str(error.value) == (
        f"refusing to extract the archive: more than {DEFAULT_LIMITS.max_members} members "
        "(ArchiveLimits.max_members)"
    )
    assert list(dest.iterdir()) == []
    safe_extract(write(tmp_path, many_members(50)), dest, ArchiveLimits(max_members=50))
    assert len(list(dest.iterdir())) == 50


def test_extraction_past_its_deadline_is_stopped(tmp_path: pathlib.Path) -> None:
    archive = write(tmp_path, many_members(3))
    with pytest.raises(UnsafeArchiveError, match=r"not done within 1e-09 s after \d+ members"):
        safe_extract(archive, tmp_path / "out", ArchiveLimits(extract_seconds=1e-9))


class HostileArchiveServer:
    """Loopback server of archive bodies that never end: `endless` sends zeros in chunks
    (at most 1 GiB or 60 s), `trickle` one byte every 2 s of a declared 100."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                try:
                    if self.path.startswith("/endless"):
                        owner.endless(self)
                    else:
                        owner.trickle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def endless(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = bytes(1 << 16)
        framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        deadline = time.monotonic() + 60
        for _ in range(GIB // len(chunk)):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            handler.wfile.write(framed)

    def trickle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"\0")
            handler.wfile.flush()
            if self.stop.wait(2.0):
                return

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class ArchiveRest:
    """The one RestClient call download_checkpoint makes, answering a fixed archive URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get_checkpoint_archive_url_from_tinker_path(self, _path: str) -> ArchiveRest:
        return self

    def result(self) -> ArchiveRest:
        return self


@pytest.fixture
def hostile() -> Iterator[HostileArchiveServer]:
    server = HostileArchiveServer()
    yield server
    server.close()


def test_an_endless_body_stops_at_the_download_cap(
    tmp_path: pathlib.Path, hostile: HostileArchiveServer
) -> None:
    rest = ArchiveRest(f"{hostile.base}/endless?sig=SECRET")
    limits = ArchiveLimits(max_download_bytes=8 << 20)
    with pytest.raises(CheckpointDownloadError) as error:
        download_checkpoint(rest, PATH, tmp_path, limits=limits)
    message = str(error.value)
    assert message.startswith("archive download stopped after ")
    assert message.endswith(
        f"more than {8 << 20} bytes (over the download limit of {8 << 20} bytes; see ArchiveLimits)"
    )
    assert "SECRET" not in message
    assert list(tmp_path.iterdir()) == []  # neither the partial archive nor a staging directory


def test_a_body_trickled_one_byte_every_2_s_ends_at_the_download_deadline(
    tmp_path: pathlib.Path, hostile: HostileArchiveServer
) -> None:
    rest = ArchiveRest(f"{hostile.base}/trickle?sig=SECRET")
    started = time.monotonic()
    with pytest.raises(CheckpointDownloadError) as error:
        download_checkpoint(rest, PATH, tmp_path, limits=ArchiveLimits(download_seconds=1.5))
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 5.0  # per-read timeouts (30 s) alone would never end it
    assert str(error.value).startswith("archive download stopped after ")
    assert str(error.value).endswith(
        "not complete within 1.5 s (over the download deadline of 1.5 s; see ArchiveLimits)"
    )
    assert list(tmp_path.iterdir()) == []
