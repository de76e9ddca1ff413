"""Which protocol eras and optional 0.38 features the server speaks, and the start-up answers
(`client/config`, `client/dynamic_config`) that tell a 0.38 client what is switched on.

Eras: "both" (default) serves the JSON protocol of SDK 0.5.1 and today's (0.38) from one
process, telling them apart by Content-Type, Accept and the endpoints a client calls; "0.5.1"
speaks only the old one (the 0.38 endpoints answer 404, protobuf and zstd bodies 415), so an
SDK's fallback can be tested; "0.38" speaks only today's (the endpoints 0.38 removed answer
404, and forward/sample results are protobuf whatever the poll's Accept says).

Features are switched one by one, for tests: zstd request bodies, the retrieve_futures batch
poller, join_sampling_session, JWT auth (only with an API key), parallel forward_backward
chunks, cancel_future of abandoned samples, server-side custom losses, and the client's HTTP
transport. The official 0.38 client's default transport (pyqwest) is off by default: a process
that used its retrieve_futures poller aborts at exit now and then (SIGABRT after Python has
finished, about one run in eight here); on plain httpx it does not.
"""

from __future__ import annotations

from typing import Literal, cast

import attrs

from tinker import types
from tinker.local.server import settings

Era = Literal["both", "0.5.1", "0.38"]
ERAS: tuple[Era, ...] = ("both", "0.5.1", "0.38")
OLD, NEW = "0.5.1", "0.38"
_ON = {"1": True, "on": True, "true": True, "yes": True}
_OFF = {"0": False, "off": False, "false": False, "no": False}


def _era(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ERAS:
        raise ValueError(f"protocol must be one of {', '.join(ERAS)}; got {value!r}")


@attrs.frozen
class ProtocolOptions:
    """The era(s) spoken and each optional feature of the 0.38 protocol (on by default,
    except JWT auth, which also needs an API key)."""

    era: Era = attrs.field(default="both", validator=_era)
    zstd: bool = True
    retrieve_futures: bool = True
    join_sampling_session: bool = True
    jwt_auth: bool = False
    parallel_chunks: bool = True
    sample_cancel: bool = True
    custom_loss_server_side: bool = True
    pyqwest: bool = False

    @classmethod
    def parse(cls, spec: str) -> ProtocolOptions:
        """From `<era>[,<feature>=on|off,...]`, e.g. "0.38,jwt_auth=on,zstd=off"; ValueError
        naming what is wrong."""
        parts = [part.strip() for part in spec.split(",") if part.strip()]
        era = parts.pop(0) if parts and "=" not in parts[0] else "both"
        features: dict[str, bool] = {}
        names = [f.name for f in attrs.fields(cls) if f.name != "era"]
        for part in parts:
            name, sep, value = part.partition("=")
            flag = _ON.get(value.lower(), _OFF.get(value.lower()))
            if not sep or name not in names or flag is None:
                raise ValueError(
                    f"protocol option {part!r} must be <feature>=on|off with a feature among "
                    f"{', '.join(names)}"
                )
            features[name] = flag
        return cls(era=cast(Era, era), **features)

    def speaks(self, era: str) -> bool:
        """Whether endpoints and bodies of `era` ("0.5.1", "0.38" or "both") are served."""
        return era == "both" or self.era in ("both", era)

    def client_config(self, *, jwt_active: bool) -> types.ClientConfigResponse:
        """The `client/config` answer: every field set, so the client sees what is on."""
        return types.ClientConfigResponse(
            pjwt_auth_enabled=jwt_active,
            credential_default_source="api_key",
            sample_dispatch_bytes_semaphore_size=settings.SAMPLE_DISPATCH_BYTES,
            inflight_response_bytes_semaphore_size=settings.INFLIGHT_RESPONSE_BYTES,
            parallel_fwdbwd_chunks=self.parallel_chunks,
            proto_compress_fwdbwd=self.zstd,
            fwdbwd_max_chunk_len=settings.FWDBWD_MAX_CHUNK_LEN,
            fwdbwd_max_chunk_bytes_count=settings.FWDBWD_MAX_CHUNK_BYTES,
            fwdbwd_dispatch_bytes_semaphore_size=settings.FWDBWD_DISPATCH_BYTES,
            billing_exception_max_pause_duration_sec=settings.BILLING_MAX_PAUSE_SECONDS,
            sample_no_retries=False,
            sample_enable_stuck_detection=True,
            sample_max_concurrent_requests=settings.SAMPLE_MAX_CONCURRENT_REQUESTS,
            use_pyqwest_transport=self.pyqwest,
            sample_use_retrieve_futures=self.retrieve_futures,
            custom_loss_server_side=self.custom_loss_server_side,
            sample_join_sampling_session=self.join_sampling_session,
        )

    def dynamic_config(self) -> types.ClientDynamicConfigResponse:
        """The `client/dynamic_config` answer."""
        return types.ClientDynamicConfigResponse(
            refresh_interval_sec=settings.DYNAMIC_CONFIG_REFRESH_SECONDS,
            sample_cancel_enabled=self.sample_cancel,
            sample_cancel_max_batch_size=settings.SAMPLE_CANCEL_BATCH,
        )


def coerce(protocol: ProtocolOptions | str) -> ProtocolOptions:
    """ProtocolOptions as given, or parsed from a spec string."""
    return protocol if isinstance(protocol, ProtocolOptions) else ProtocolOptions.parse(protocol)
