"""Official import path `tinker.types.custom_loss_graph`, no code of its own.

Aliases `CustomLossGraph`, `CustomLossNode`.
"""

from tinker.types._custom_losses import CustomLossGraph, CustomLossNode

__all__ = ["CustomLossGraph", "CustomLossNode"]
