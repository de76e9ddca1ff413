"""Official import path `tinker.types.provenance_spans`, no code of its own.

Aliases `PromptProvenanceSpan`, `ProvenanceSpans`, `SampledProvenanceSpan`.
"""

from tinker.types._provenance import PromptProvenanceSpan, ProvenanceSpans, SampledProvenanceSpan

__all__ = ["PromptProvenanceSpan", "ProvenanceSpans", "SampledProvenanceSpan"]
