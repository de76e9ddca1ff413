"""Official import path `tinker.types.create_custom_loss_response`, no code of its own.

Aliases `CreateCustomLossResponse`.
"""

from tinker.types._custom_losses import CreateCustomLossResponse

__all__ = ["CreateCustomLossResponse"]
