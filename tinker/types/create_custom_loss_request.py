"""Official import path `tinker.types.create_custom_loss_request`, no code of its own.

Aliases `CreateCustomLossRequest`, `CustomLossGraph`, `CustomLossInput`.
"""

from tinker.types._custom_losses import CreateCustomLossRequest, CustomLossGraph, CustomLossInput

__all__ = ["CreateCustomLossRequest", "CustomLossGraph", "CustomLossInput"]
