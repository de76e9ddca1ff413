import logging
import pickle

import pytest

from tinker.config import DEFAULT_BASE_URL, ClientConfig
from tinker.errors import TinkerError

SECRET = "tml-very-secret-key-123"


def test_defaults_follow_the_protocol() -> None:
    config = ClientConfig.from_env(environ={}, api_key="k")
    assert config.base_url == DEFAULT_BASE_URL
    assert config.timeout == 60.0
    assert config.connect_timeout == 5.0
    assert config.poll_timeout == 45.0
    assert config.heartbeat_timeout == 10.0
    assert config.telemetry_timeout == 5.0
    assert config.max_retries == 10
    assert config.submit_retry_seconds == 300.0
    assert config.telemetry is True
    assert config.tags == ()
    assert config.verify_tls is True
    assert config.sdk_version == "0.5.1"


def test_environment_is_read() -> None:
    env = {
        "TINKER_API_KEY": "env-key",
        "TINKER_BASE_URL": "http://127.0.0.1:9",
        "TINKER_TAGS": "b, a,,b ,c",
        "TINKER_TELEMETRY": "off",
        "TINKER_LOG": "debug",
        "CLOUDFLARE_ACCESS_CLIENT_ID": "cf-id",
        "CLOUDFLARE_ACCESS_CLIENT_SECRET": "cf-secret",
    }
    config = ClientConfig.from_env(environ=env)
    assert config.api_key == "env-key"
    assert config.base_url == "http://127.0.0.1:9"
    assert config.tags == ("b", "a", "c")
    assert config.telemetry is False
    assert config.log_level == "debug"
    assert config.auth_headers() == {
        "X-API-Key": "env-key",
        "CF-Access-Client-Id": "cf-id",
        "CF-Access-Client-Secret": "cf-secret",
    }


def test_explicit_arguments_beat_the_environment() -> None:
    env = {"TINKER_API_KEY": "env-key", "TINKER_BASE_URL": "http://env:1", "TINKER_TAGS": "x"}
    config = ClientConfig.from_env(
        environ=env, api_key="arg-key", base_url="http://arg:2", tags=["y"], telemetry=False
    )
    assert config.api_key == "arg-key"
    assert config.auth_headers()["X-API-Key"] == "arg-key"
    assert config.base_url == "http://arg:2"
    assert config.tags == ("y",)
    assert config.telemetry is False


@pytest.mark.parametrize(
    ("raw", "enabled"),
    [
        ("1", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("", False),
        ("nope", False),
    ],
)
def test_telemetry_switch(raw: str, enabled: bool) -> None:
    config = ClientConfig.from_env(environ={"TINKER_TELEMETRY": raw}, api_key="k")
    assert config.telemetry is enabled


def test_missing_key_raises_tinker_error_without_leaking() -> None:
    with pytest.raises(TinkerError, match="TINKER_API_KEY"):
        ClientConfig.from_env(environ={})
    assert ClientConfig.from_env(environ={}, base_url="local").api_key is None
    assert ClientConfig.from_env(environ={}, require_api_key=False).api_key is None


def test_secrets_never_in_repr_or_str() -> None:
    config = ClientConfig.from_env(
        environ={"CLOUDFLARE_ACCESS_CLIENT_SECRET": "cf-" + SECRET}, api_key=SECRET
    )
    for text in (repr(config), str(config)):
        assert SECRET not in text
        assert "api_key='***'" in text
    assert config.secrets() == (SECRET, "cf-" + SECRET)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "ftp://x"}, "base_url must start with http"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"max_retries": -1}, "max_retries must be an int >= 0"),
        ({"pool_sizes": {"bogus": 3}}, "unknown traffic kinds"),
        ({"pool_sizes": {"sample": 0}}, r"pool_sizes\['sample'\] must be >= 1"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClientConfig.from_env(environ={}, api_key="k", **kwargs)


def test_unknown_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="apikey"):
        ClientConfig.from_env(environ={}, apikey="k")


def test_pool_sizes_merge_with_defaults_and_config_pickles() -> None:
    config = ClientConfig.from_env(environ={}, api_key="k", pool_sizes={"sample": 7})
    assert config.pool_sizes["sample"] == 7
    assert config.pool_sizes["poll"] >= 1
    assert pickle.loads(pickle.dumps(config)) == config
    assert hash(config) == hash(pickle.loads(pickle.dumps(config)))


def test_log_level_applies_to_tinker_logger() -> None:
    logger = logging.getLogger("tinker")
    before = logger.level
    try:
        ClientConfig.from_env(environ={"TINKER_LOG": "debug"}, api_key="k").apply_log_level()
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(before)
