"""Official import path `tinker.types.optimizer`, no code of its own.

Aliases `AdamOptimizerConfig`, `AdamParams`, `DimuonOptimizerConfig`, `DimuonParams`,
`OptimParams`, `OptimParamsBase`, `OptimizerConfig`, `OptimizerConfigBase`.
"""

from tinker.types._optimizers import (
    AdamOptimizerConfig,
    AdamParams,
    DimuonOptimizerConfig,
    DimuonParams,
    OptimizerConfig,
    OptimizerConfigBase,
    OptimParams,
    OptimParamsBase,
)

__all__ = [
    "AdamOptimizerConfig",
    "AdamParams",
    "DimuonOptimizerConfig",
    "DimuonParams",
    "OptimParams",
    "OptimParamsBase",
    "OptimizerConfig",
    "OptimizerConfigBase",
]
