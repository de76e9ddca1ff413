"""Official import path `tinker.types.lora_config`: aliases `LoraConfig`, no code of its own."""

from tinker.types._training import LoraConfig

__all__ = ["LoraConfig"]
