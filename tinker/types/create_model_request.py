"""Official import path `tinker.types.create_model_request`, no code of its own.

Aliases `AdamOptimizerConfig`, `CreateModelRequest`, `LoraConfig`, `OptimizerConfig`.
"""

from tinker.types._optimizers import AdamOptimizerConfig, OptimizerConfig
from tinker.types._training import CreateModelRequest, LoraConfig

__all__ = ["AdamOptimizerConfig", "CreateModelRequest", "LoraConfig", "OptimizerConfig"]
