"""Official module path: re-exports ImageAssetPointerChunk."""

from tinker.types.inputs import ImageAssetPointerChunk

__all__ = ["ImageAssetPointerChunk"]
