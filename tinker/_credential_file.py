"""The credentials file `tinker auth login` keeps API keys in (~/.tinker/credentials.json): the
one reader and writer of its format.

`{"version": 1, "default": <key id or null>, "keys": {"<key id>": record}}`, a record being
`{"type": "manual" | "generated", "key", "name", "note"?, "details"?}`. The directory is kept
at mode 0700 and the file at 0600; it is replaced atomically, records of other tools are kept
as they are, and null fields are left out. Keys never appear in reprs, logs or errors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import tempfile
from collections.abc import Mapping
from typing import Any

import attrs

from tinker.errors import TinkerError

__all__ = [
    "FORMAT_VERSION",
    "GENERATED",
    "MANUAL",
    "Credentials",
    "CredentialsFileError",
    "StoredKey",
    "credentials_file",
    "read_credentials",
    "stored_default_key",
    "write_credentials",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANUAL = "manual"  # pasted by the user (`tinker auth login`)
GENERATED = "generated"  # created for the CLI by the service; revoked on logout
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


class CredentialsFileError(TinkerError):
    """The credentials file cannot be read or written; the message names the file and why."""


def credentials_file() -> pathlib.Path:
    """The file `tinker auth login` keeps keys in: ~/.tinker/credentials.json."""
    return pathlib.Path.home() / ".tinker" / "credentials.json"


def _without_nulls(value: Any) -> Any:
    """`value` with every null field of its objects left out, at any depth."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


@attrs.frozen(kw_only=True)
class StoredKey:
    """One record of the file: an API key, its service-side id, name, note and details
    (`{"org_details": {"name"}, "user_details": {"email"}}`)."""

    key_id: str
    type: str
    key: str = attrs.field(repr=False)
    name: str | None = None
    note: str | None = None
    details: Mapping[str, Any] | None = None

    @classmethod
    def from_record(cls, key_id: str, record: object) -> StoredKey:
        """The record stored under `key_id`; CredentialsFileError naming what is wrong."""
        where = f"the credentials file's record of key {key_id!r}"
        if not isinstance(record, Mapping):
            raise CredentialsFileError(f"{where} is not an object")
        key, kind = record.get("key"), record.get("type")
        if not isinstance(key, str) or not key:
            raise CredentialsFileError(f"{where} has no key")
        name, note, details = record.get("name"), record.get("note"), record.get("details")
        return cls(
            key_id=key_id,
            type=kind if isinstance(kind, str) else MANUAL,
            key=key,
            name=name if isinstance(name, str) else None,
            note=note if isinstance(note, str) else None,
            details=details if isinstance(details, Mapping) else None,
        )

    def record(self) -> dict[str, Any]:
        """The record as stored (null fields left out)."""
        fields = {
            "type": self.type,
            "key": self.key,
            "name": self.name,
            "note": self.note,
            "details": self.details,
        }
        record: dict[str, Any] = _without_nulls(fields)
        return record

    @property
    def email(self) -> str | None:
        """The owner's email from the details, if recorded."""
        return _detail(self.details, "user_details", "email")

    @property
    def organization(self) -> str | None:
        """The organization's name from the details, if recorded."""
        return _detail(self.details, "org_details", "name")


def _detail(details: Mapping[str, Any] | None, section: str, name: str) -> str | None:
    part = details.get(section) if details is not None else None
    value = part.get(name) if isinstance(part, Mapping) else None
    return value if isinstance(value, str) else None


@attrs.frozen(kw_only=True)
class Credentials:
    """The file's contents: the default key id and every record, kept as read (so that fields
    and records this SDK does not know survive a rewrite)."""

    version: int = FORMAT_VERSION
    default: str | None = None
    keys: Mapping[str, Any] = attrs.field(factory=dict)

    def default_key(self) -> StoredKey | None:
        """The default record; None when there is no default or it names no record."""
        if self.default is None or self.default not in self.keys:
            return None
        return StoredKey.from_record(self.default, self.keys[self.default])

    def with_default(self, stored: StoredKey) -> Credentials:
        """These credentials with `stored` added (replacing a record of its id) as default."""
        keys = {**self.keys, stored.key_id: stored.record()}
        return attrs.evolve(self, default=stored.key_id, keys=keys)

    def without(self, key_id: str) -> Credentials:
        """These credentials without the record `key_id` (no default if it was the default)."""
        keys = {k: v for k, v in self.keys.items() if k != key_id}
        default = None if self.default == key_id else self.default
        return attrs.evolve(self, default=default, keys=keys)

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object (null record fields left out; `default` may be null)."""
        return {
            "version": self.version,
            "default": self.default,
            "keys": {k: _without_nulls(v) for k, v in self.keys.items()},
        }


def _parse(text: str, path: pathlib.Path) -> Credentials:
    try:
        data = json.loads(text)
    except ValueError:
        raise CredentialsFileError(f"the credentials file {path} is not valid JSON") from None
    if not isinstance(data, Mapping):
        raise CredentialsFileError(f"the credentials file {path} does not hold a JSON object")
    version, default, keys = (
        data.get("version", FORMAT_VERSION),
        data.get("default"),
        data.get("keys"),
    )
    if keys is None:
        keys = {}
    if not isinstance(keys, Mapping):
        raise CredentialsFileError(f"the credentials file {path} has no object of keys")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CredentialsFileError(f"the credentials file {path} has no valid version")
    return Credentials(
        version=version, default=None if default is None else str(default), keys=dict(keys)
    )


def read_credentials(path: pathlib.Path | None = None) -> Credentials:
    """The file's contents (empty when there is no file); CredentialsFileError when it cannot be
    read, is malformed, or has a format version other than 1 (it must not be rewritten)."""
    path = credentials_file() if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Credentials()
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsFileError(
            f"the credentials file {path} cannot be read ({type(exc).__name__})"
        ) from None
    credentials = _parse(text, path)
    if credentials.version != FORMAT_VERSION:
        raise CredentialsFileError(
            f"the credentials file {path} has format version {credentials.version}; this SDK "
            f"reads and writes version {FORMAT_VERSION}"
        )
    return credentials


def stored_default_key(path: pathlib.Path | None = None) -> str | None:
    """The key of the default record; None when there is no file or no default, or the file
    cannot be read (logged, without its contents). Any format version is read."""
    path = credentials_file() if path is None else path
    try:
        stored = _parse(path.read_text(encoding="utf-8"), path).default_key()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, CredentialsFileError) as exc:
        logger.warning("ignoring the credentials file %s: %s", path, type(exc).__name__)
        return None
    return None if stored is None else stored.key


def write_credentials(credentials: Credentials, path: pathlib.Path | None = None) -> None:
    """Replace the file atomically with `credentials` (directory 0700, file 0600): readers see
    the old file or the new one, never a part of it."""
    path = credentials_file() if path is None else path
    text = json.dumps(credentials.to_json(), indent=2) + "\n"
    try:
        path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        path.parent.chmod(DIRECTORY_MODE)
        descriptor, temporary = tempfile.mkstemp(
            prefix=".credentials-", suffix=".tmp", dir=path.parent
        )
    except OSError as exc:
        raise CredentialsFileError(
            f"the credentials file {path} cannot be written ({type(exc).__name__})"
        ) from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.chmod(temporary, FILE_MODE)  # mkstemp's own mode, made explicit
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise CredentialsFileError(
                f"the credentials file {path} cannot be written ({type(exc).__name__})"
            ) from None
        raise
