"""Official import path `tinker.types.billing_usage_request`, no code of its own.

Aliases `GetBillingUsageRequest`.
"""

from tinker.types._billing import GetBillingUsageRequest

__all__ = ["GetBillingUsageRequest"]
