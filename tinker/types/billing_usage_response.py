"""Official import path `tinker.types.billing_usage_response`, no code of its own.

Aliases `BillingEventInfo`, `BillingUsageEvent`, `BillingUsageResponse`, `BillingUsageSession`,
`CheckpointBillingEvent`, `SamplingPrefillBillingEvent`, `SamplingSampleBillingEvent`,
`StorageBillingEvent`, `TrainingBillingEvent`.
"""

from tinker.types._billing import (
    BillingEventInfo,
    BillingUsageEvent,
    BillingUsageResponse,
    BillingUsageSession,
    CheckpointBillingEvent,
    SamplingPrefillBillingEvent,
    SamplingSampleBillingEvent,
    StorageBillingEvent,
    TrainingBillingEvent,
)

__all__ = [
    "BillingEventInfo",
    "BillingUsageEvent",
    "BillingUsageResponse",
    "BillingUsageSession",
    "CheckpointBillingEvent",
    "SamplingPrefillBillingEvent",
    "SamplingSampleBillingEvent",
    "StorageBillingEvent",
    "TrainingBillingEvent",
]
