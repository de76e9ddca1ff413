"""Official import path `tinker.types.topk_logprobs`, no code of its own.

Aliases `MASK_LOGPROB`, `TopkLogprobs`.
"""

from tinker.types._sampling import MASK_LOGPROB, TopkLogprobs

__all__ = ["MASK_LOGPROB", "TopkLogprobs"]
