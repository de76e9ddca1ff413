"""Official import path `tinker.types.image_asset_pointer_chunk`, no code of its own.

Aliases `ImageAssetPointerChunk`.
"""

from tinker.types._inputs import ImageAssetPointerChunk

__all__ = ["ImageAssetPointerChunk"]
