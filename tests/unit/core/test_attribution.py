"""x-sdk-method attribution: the outermost public method names the calls built while it runs
(async twins by their own name); only a 0.38 codec sends it; background calls carry nothing."""

from __future__ import annotations

import asyncio

from tinker._attribution import attribute_public_methods, current_method
from tinker._calls import ApiCall
from tinker._transport import Traffic
from tinker._wire.codec import LEGACY_CODEC, WireCodec


class Outer:
    def build(self) -> ApiCall:
        return ApiCall(traffic=Traffic.TRAIN, method="POST", path="/api/v1/x", body={})

    def nested(self) -> ApiCall:
        return self.build()

    async def build_async(self) -> ApiCall:
        return self.build()

    def _private(self) -> str | None:
        return current_method()

    @staticmethod
    def static() -> str | None:
        return current_method()


attribute_public_methods(Outer)


def test_the_outermost_public_method_names_the_call() -> None:
    assert Outer().build().sdk_method == "Outer.build"
    assert Outer().nested().sdk_method == "Outer.nested"
    assert asyncio.run(Outer().build_async()).sdk_method == "Outer.build_async"
    assert Outer()._private() is None and Outer.static() is None
    assert current_method() is None  # nothing leaks out of a call
    background = ApiCall(traffic=Traffic.TRAIN, method="POST", path="/api/v1/x")
    assert background.sdk_method is None


def test_only_the_038_codec_sends_the_headers() -> None:
    call = Outer().build()
    current = call.encode(WireCodec(era="0.38")).headers or {}
    assert (current["x-sdk-version"], current["x-sdk-method"]) == ("0.38.0", "Outer.build")
    legacy = call.encode(LEGACY_CODEC).headers or {}
    assert "x-sdk-method" not in legacy and "x-sdk-version" not in legacy
