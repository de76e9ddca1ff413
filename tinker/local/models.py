"""The local models as the SDK's tokenizer loader finds them (`tinker.tokenizer` imports this
module by name): their catalogue and the packaged tokenizer directory, from compute.catalogue.
"""

from tinker.local.compute.catalogue import LOCAL_MODELS, TOKENIZER_DIR, get_model_config

__all__ = ["LOCAL_MODELS", "TOKENIZER_DIR", "get_model_config"]
