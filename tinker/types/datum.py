"""Official import path `tinker.types.datum`, no code of its own.

Aliases `Datum`, `LossFnInputs`, `ModelInput`, `PromptProvenanceSpan`, `ProvenanceSpans`,
`SampledProvenanceSpan`, `TensorData`.
"""

from tinker.types._inputs import Datum, LossFnInputs, ModelInput
from tinker.types._provenance import PromptProvenanceSpan, ProvenanceSpans, SampledProvenanceSpan
from tinker.types._tensors import TensorData

__all__ = [
    "Datum",
    "LossFnInputs",
    "ModelInput",
    "PromptProvenanceSpan",
    "ProvenanceSpans",
    "SampledProvenanceSpan",
    "TensorData",
]
