"""Client configuration: one frozen value built from arguments and the environment.

An explicit argument always beats the environment. Secrets (the API key and the Cloudflare
client secret) never show in `repr` or `str`. Everything that goes into an HTTP header (the
key, the Cloudflare credentials, `default_headers`, the SDK version) is checked when the config
is built: a control character (a trailing newline pasted with the key), a character outside
Latin-1 or surrounding whitespace is refused with a ValueError that names the setting and the
character, never the value.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from tinker._credential_file import credentials_file, stored_default_key
from tinker._credentials import CREDENTIAL_COMMAND_ENV
from tinker.errors import TinkerError

if TYPE_CHECKING:
    from tinker import types

__all__ = [
    "CURRENT_SDK_VERSION",
    "DEFAULT_BASE_URL",
    "LEGACY_SERVER",
    "LOCAL_BASE_URL",
    "PROTOCOL_SDK_VERSION",
    "ClientConfig",
    "Era",
    "ServerConfig",
]

DEFAULT_BASE_URL = "https://tinker.thinkingmachines.dev/services/tinker-prod"
LOCAL_BASE_URL = "local"
# The SDK version reported to the service (create_session, telemetry, X-Stainless-Package-Version):
# the protocol this package speaks, so that the service applies the matching behaviour.
PROTOCOL_SDK_VERSION = "0.5.1"
# The newest protocol this package speaks: offered in the start-up handshake, and reported
# instead of PROTOCOL_SDK_VERSION to a server that answers it.
CURRENT_SDK_VERSION = "0.38.0"

_TELEMETRY_ON = frozenset({"1", "true", "yes", "on"})
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
TRAFFIC_KINDS = ("session", "train", "sample", "poll", "telemetry")
_DEFAULT_POOL_SIZES = {"session": 4, "train": 16, "sample": 128, "poll": 128, "telemetry": 2}


def _redacted(value: object) -> str:
    return "None" if value is None else "'***'"


def _positive(name: str) -> Any:
    def check(_instance: object, _attribute: object, value: float) -> None:
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")

    return check


def _check_base_url(_instance: object, _attribute: object, value: str) -> None:
    if value != LOCAL_BASE_URL and not value.startswith(("http://", "https://")):
        raise ValueError(
            f"base_url must start with http:// or https:// (or be 'local'), got {value!r}"
        )


def _check_pool_sizes(_instance: object, _attribute: object, value: Mapping[str, int]) -> None:
    unknown = set(value) - set(TRAFFIC_KINDS)
    if unknown:
        raise ValueError(f"pool_sizes has unknown traffic kinds {sorted(unknown)}")
    for kind, size in value.items():
        if size < 1:
            raise ValueError(f"pool_sizes[{kind!r}] must be >= 1, got {size}")


def _pool_sizes(value: Mapping[str, int] | None) -> dict[str, int]:
    return {**_DEFAULT_POOL_SIZES, **(value or {})}


def _non_negative_int(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an int >= 0, got {value!r}")


def _positive_int(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


_CHARACTER_NAMES = {"\n": "a line feed (\\n)", "\r": "a carriage return (\\r)", "\t": "a tab"}
# Characters of an HTTP header name (RFC 9110 token).
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def check_header_value(what: str, value: object) -> None:
    """Refuse a value that cannot go into an HTTP header, naming `what` and the offending
    character but never showing the value (it may be a secret)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    for index, char in enumerate(value):
        code = ord(char)
        if code >= 0x20 and code != 0x7F and code <= 0xFF:
            continue
        if char in _CHARACTER_NAMES:
            name = _CHARACTER_NAMES[char]
        elif code > 0xFF:
            name = f"the non-Latin-1 character U+{code:04X}"
        else:
            name = f"the control character U+{code:04X}"
        if index == len(value) - 1:
            where = "at its end"
        elif index == 0:
            where = "at its start"
        else:
            where = f"at position {index + 1} of {len(value)}"
        raise ValueError(
            f"{what} contains {name} {where}, which an HTTP header cannot carry (copied with a "
            "trailing newline?); the value is not shown"
        )
    if value != value.strip(" "):
        raise ValueError(
            f"{what} starts or ends with a space, which an HTTP header cannot carry; "
            "the value is not shown"
        )


def _header_value(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_header_value(attribute.name, value)


def _check_default_headers(_instance: object, _attribute: object, value: Mapping[str, str]) -> None:
    for name, header_value in value.items():
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
            raise ValueError(f"default_headers has an invalid header name {name!r}")
        check_header_value(f"default_headers[{name!r}]", header_value)


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Everything a client needs to talk to one Tinker service."""

    api_key: str | None = attrs.field(default=None, repr=_redacted, validator=_header_value)
    # A shell command printing a credential (TINKER_CREDENTIAL_CMD), used when there is no key.
    credential_command: str | None = attrs.field(default=None, repr=_redacted)
    base_url: str = attrs.field(default=DEFAULT_BASE_URL, validator=_check_base_url)
    timeout: float = attrs.field(default=60.0, validator=_positive("timeout"))
    connect_timeout: float = attrs.field(default=5.0, validator=_positive("connect_timeout"))
    poll_timeout: float = attrs.field(default=45.0, validator=_positive("poll_timeout"))
    heartbeat_timeout: float = attrs.field(default=10.0, validator=_positive("heartbeat_timeout"))
    telemetry_timeout: float = attrs.field(default=5.0, validator=_positive("telemetry_timeout"))
    max_retries: int = attrs.field(default=10, validator=_non_negative_int)
    submit_retry_seconds: float = attrs.field(
        default=300.0, validator=_positive("submit_retry_seconds")
    )
    default_headers: Mapping[str, str] = attrs.field(
        factory=dict, converter=dict, hash=False, validator=_check_default_headers
    )
    tags: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    telemetry: bool = True
    log_level: str | None = None
    cloudflare_client_id: str | None = attrs.field(default=None, validator=_header_value)
    cloudflare_client_secret: str | None = attrs.field(
        default=None, repr=_redacted, validator=_header_value
    )
    pool_sizes: Mapping[str, int] = attrs.field(
        factory=dict, converter=_pool_sizes, validator=_check_pool_sizes, hash=False
    )
    max_sample_submits: int = attrs.field(default=400, validator=_non_negative_int)
    verify_tls: bool = True
    sdk_version: str = attrs.field(default=PROTOCOL_SDK_VERSION, validator=_header_value)
    max_response_bytes: int = attrs.field(default=256 * 1024 * 1024, validator=_positive_int)
    future_timeout: float = attrs.field(default=7200.0, validator=_positive("future_timeout"))

    @classmethod
    def from_env(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        require_api_key: bool = True,
        **explicit: Any,
    ) -> ClientConfig:
        """Build a config from `explicit` arguments, falling back to the environment.

        Arguments given as None count as not given. Raises TinkerError when no API key is
        available and `require_api_key` is true (the embedded server needs none).
        """
        env = os.environ if environ is None else environ
        unknown = set(explicit) - {field.name for field in attrs.fields(cls)}
        if unknown:
            raise TypeError(f"unknown configuration arguments: {sorted(unknown)}")
        values = {key: value for key, value in explicit.items() if value is not None}
        from_env = {
            "api_key": env.get("TINKER_API_KEY") or None,
            "base_url": env.get("TINKER_BASE_URL") or None,
            "tags": _parse_tags(env["TINKER_TAGS"]) if "TINKER_TAGS" in env else None,
            "telemetry": env.get("TINKER_TELEMETRY", "1").strip().lower() in _TELEMETRY_ON,
            "log_level": env.get("TINKER_LOG") or None,
            "cloudflare_client_id": env.get("CLOUDFLARE_ACCESS_CLIENT_ID") or None,
            "cloudflare_client_secret": env.get("CLOUDFLARE_ACCESS_CLIENT_SECRET") or None,
        }
        for key, value in from_env.items():
            if key not in values and value is not None:
                values[key] = value
        if "credential_command" not in values and env.get(CREDENTIAL_COMMAND_ENV):
            values["credential_command"] = env[CREDENTIAL_COMMAND_ENV]
        if "api_key" not in values and "credential_command" not in values:
            stored = stored_default_key()
            if stored is not None:
                values["api_key"] = stored
        config = cls(**values)
        if require_api_key:
            config.check_api_key()
        return config

    def check_api_key(self) -> None:
        """Raise TinkerError when this config has no credential but its server needs one."""
        if self.api_key is None and self.credential_command is None:
            self.check_key_needed()

    def check_key_needed(self) -> None:
        """Raise TinkerError when this config has no API key but its server needs one (a
        credential command serves only servers with JWT auth)."""
        if self.api_key is None and self.base_url != LOCAL_BASE_URL:
            raise TinkerError(
                "No API key: pass api_key= to the client, set the TINKER_API_KEY environment "
                f"variable, or store a default key in {credentials_file()}"
                + (
                    f" ({CREDENTIAL_COMMAND_ENV} is used only by servers with JWT auth)"
                    if self.credential_command is not None
                    else f" (or set {CREDENTIAL_COMMAND_ENV} for a server with JWT auth)"
                )
            )

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate every request (API key and Cloudflare Access)."""
        headers: dict[str, str] = {}
        if self.api_key is not None:
            headers["X-API-Key"] = self.api_key
        if self.cloudflare_client_id is not None:
            headers["CF-Access-Client-Id"] = self.cloudflare_client_id
        if self.cloudflare_client_secret is not None:
            headers["CF-Access-Client-Secret"] = self.cloudflare_client_secret
        return headers

    def secrets(self) -> tuple[str, ...]:
        """The secret values of this config, for scrubbing them from any text."""
        return tuple(s for s in (self.api_key, self.cloudflare_client_secret) if s)

    def apply_log_level(self) -> None:
        """Honour TINKER_LOG=debug|info by setting the level of the `tinker` logger."""
        level = _LOG_LEVELS.get((self.log_level or "").lower())
        if level is not None:
            logger = logging.getLogger("tinker")
            logger.setLevel(level)
            if not logging.getLogger().handlers and not logger.handlers:
                logging.basicConfig()


Era = Literal["0.5.1", "0.38"]


@attrs.frozen(kw_only=True)
class ServerConfig:
    """What the start-up handshake negotiated with the server: the protocol era and the
    switches the server's `client/config` and `client/dynamic_config` answers turned on.

    A server that does not know `client/config` (404) speaks the 0.5.1 protocol: JSON bodies
    with only the fields set, JSON results, per-future polls (`LEGACY_SERVER`). Every other
    field takes its protocol default when the server leaves it out.
    """

    era: Era = "0.38"
    jwt_auth: bool = False
    compress_forward_backward: bool = False
    parallel_chunks: bool = True
    max_chunk_len: int = 1024
    max_chunk_bytes: int = 5_000_000
    dispatch_bytes: int = 50_000_000
    sample_dispatch_bytes: int = 10 * 1024 * 1024
    inflight_response_bytes: int = 50 * 1024 * 1024
    billing_pause_seconds: float = 3600.0
    batch_poller: bool = False
    join_sampling_session: bool = False
    custom_loss_server_side: bool = False
    sample_cancel: bool = False
    sample_cancel_batch: int = 64
    dynamic_refresh_seconds: float = 300.0

    @property
    def current(self) -> bool:
        """True for the 0.38 protocol (protobuf, handshake, session finish, ...)."""
        return self.era == "0.38"

    @property
    def sdk_version(self) -> str:
        """The SDK version to report to this server."""
        return CURRENT_SDK_VERSION if self.current else PROTOCOL_SDK_VERSION

    @classmethod
    def from_answers(
        cls, client: types.ClientConfigResponse, dynamic: types.ClientDynamicConfigResponse
    ) -> ServerConfig:
        """The negotiated value of a 0.38 server's two start-up answers."""
        return cls(
            jwt_auth=client.pjwt_auth_enabled,
            compress_forward_backward=client.proto_compress_fwdbwd,
            parallel_chunks=client.parallel_fwdbwd_chunks,
            max_chunk_len=client.fwdbwd_max_chunk_len,
            max_chunk_bytes=client.fwdbwd_max_chunk_bytes_count,
            dispatch_bytes=client.fwdbwd_dispatch_bytes_semaphore_size,
            sample_dispatch_bytes=client.sample_dispatch_bytes_semaphore_size,
            inflight_response_bytes=client.inflight_response_bytes_semaphore_size,
            billing_pause_seconds=float(client.billing_exception_max_pause_duration_sec),
            batch_poller=client.sample_use_retrieve_futures,
            join_sampling_session=client.sample_join_sampling_session,
            custom_loss_server_side=client.custom_loss_server_side,
        ).with_dynamic(dynamic)

    def with_dynamic(self, dynamic: types.ClientDynamicConfigResponse) -> ServerConfig:
        """This config with the switches of a `client/dynamic_config` answer (the refresh
        period has a floor of 10 s)."""
        return attrs.evolve(
            self,
            sample_cancel=dynamic.sample_cancel_enabled,
            sample_cancel_batch=max(1, dynamic.sample_cancel_max_batch_size),
            dynamic_refresh_seconds=max(10.0, float(dynamic.refresh_interval_sec)),
        )


# A server of the 0.5.1 era (no start-up handshake); also what 0.5.1-era chunk limits are.
LEGACY_SERVER = ServerConfig(
    era="0.5.1", parallel_chunks=False, max_chunk_len=128, max_chunk_bytes=0
)


def _parse_tags(raw: str) -> tuple[str, ...]:
    """Split TINKER_TAGS on commas; blanks are dropped, duplicates removed, order kept."""
    tags = (tag.strip() for tag in raw.split(","))
    return tuple(dict.fromkeys(tag for tag in tags if tag))
