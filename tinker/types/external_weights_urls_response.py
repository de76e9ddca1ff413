"""Official import path `tinker.types.external_weights_urls_response`, no code of its own.

Aliases `ExternalWeightsUrlsResponse`.
"""

from tinker.types._rest import ExternalWeightsUrlsResponse

__all__ = ["ExternalWeightsUrlsResponse"]
