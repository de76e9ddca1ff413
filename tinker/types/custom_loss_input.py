"""Official import path `tinker.types.custom_loss_input`, no code of its own.

Aliases `CustomLossInput`, `CustomLossInputRank`.
"""

from tinker.types._custom_losses import CustomLossInput, CustomLossInputRank

__all__ = ["CustomLossInput", "CustomLossInputRank"]
