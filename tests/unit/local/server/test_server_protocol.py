"""ProtocolOptions: the era and feature spec strings of serve() and the command line."""

from __future__ import annotations

import pytest

from tinker.local.server.protocol import ProtocolOptions


def test_specs_name_the_era_then_features() -> None:
    assert ProtocolOptions.parse("both") == ProtocolOptions()
    assert ProtocolOptions.parse("0.38,jwt_auth=on,zstd=off") == ProtocolOptions(
        era="0.38", jwt_auth=True, zstd=False
    )
    assert ProtocolOptions.parse("retrieve_futures=0") == ProtocolOptions(retrieve_futures=False)
    assert ProtocolOptions.parse(" 0.5.1 , sample_cancel = no ".replace(" = ", "=")).era == "0.5.1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0.40", "protocol must be one of both, 0.5.1, 0.38"),
        ("both,zstd", "must be <feature>=on|off"),
        ("both,brotli=on", "with a feature among zstd, retrieve_futures"),
        ("both,zstd=maybe", "must be <feature>=on|off"),
    ],
)
def test_bad_specs_say_what_is_accepted(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProtocolOptions.parse(spec)


def test_each_era_speaks_its_own_endpoints_and_the_shared_ones() -> None:
    both, old, new = ProtocolOptions(), ProtocolOptions(era="0.5.1"), ProtocolOptions(era="0.38")
    assert all(options.speaks("both") for options in (both, old, new))
    assert both.speaks("0.5.1") and both.speaks("0.38")
    assert old.speaks("0.5.1") and not old.speaks("0.38")
    assert new.speaks("0.38") and not new.speaks("0.5.1")
