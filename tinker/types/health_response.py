"""Official import path `tinker.types.health_response`, no code of its own.

Aliases `HealthResponse`.
"""

from tinker.types._service import HealthResponse

__all__ = ["HealthResponse"]
