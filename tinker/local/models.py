"""Registry of the local model sizes and the byte-level vocabulary they share."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from tinker.local.errors import UnknownModelError

#: Special tokens appended after the 256 byte tokens, in id order (ids 256, 257, ...).
SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>")
BYTE_TOKENS = 256
VOCAB_SIZE = BYTE_TOKENS + len(SPECIAL_TOKENS)
EOS_TOKEN_ID = BYTE_TOKENS + SPECIAL_TOKENS.index("<|endoftext|>")

#: Packaged tokenizer directory; loads offline with `tokenizers` and with transformers.
TOKENIZER_DIR: pathlib.Path = pathlib.Path(__file__).resolve().parent / "assets" / "tokenizer"


def token_bytes(token_id: int) -> bytes:
    """The UTF-8 bytes a token decodes to (a special token decodes to its own text)."""
    if 0 <= token_id < BYTE_TOKENS:
        return bytes((token_id,))
    if BYTE_TOKENS <= token_id < VOCAB_SIZE:
        return SPECIAL_TOKENS[token_id - BYTE_TOKENS].encode()
    raise ValueError(f"token id {token_id} is outside the vocabulary (0..{VOCAB_SIZE - 1})")


def _check_heads(instance: ModelConfig, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0 or instance.d_model % value or (instance.d_model // value) % 2:
        raise ValueError(f"n_heads={value} must divide d_model into even head sizes")


@attrs.frozen
class ModelConfig:
    """Shape of one local decoder-only transformer (pre-norm, RoPE, SiLU-gated MLP).

    `family` names the weights: a pretrained model and its `-random` twin share the random
    initialisation pretraining starts from; `pretrained` says which of the two is served.
    """

    name: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int = attrs.field(validator=_check_heads)
    d_ff: int
    max_seq_len: int
    eos_token_id: int
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02  # LM head init std (near-uniform start)
    family: str = attrs.field(default=attrs.Factory(lambda self: self.name, takes_self=True))
    pretrained: bool = False

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.d_model // self.n_heads


#: Name suffix of the twin of a pretrained model that keeps its random initial weights.
RANDOM_SUFFIX = "-random"


def _configs(
    name: str, *, d_model: int, n_layers: int, n_heads: int, d_ff: int, ctx: int
) -> tuple[ModelConfig, ModelConfig]:
    """The pretrained model `name` and its `-random` twin."""
    pretrained = ModelConfig(
        name=name,
        vocab_size=VOCAB_SIZE,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        d_ff=d_ff,
        max_seq_len=ctx,
        eos_token_id=EOS_TOKEN_ID,
        pretrained=True,
    )
    return pretrained, attrs.evolve(pretrained, name=name + RANDOM_SUFFIX, pretrained=False)


LOCAL_MODELS: Mapping[str, ModelConfig] = MappingProxyType(
    {
        cfg.name: cfg
        for cfg in (
            *_configs("tinker-local/tiny", d_model=64, n_layers=2, n_heads=4, d_ff=192, ctx=256),
            *_configs(
                "tinker-local/small", d_model=256, n_layers=4, n_heads=8, d_ff=768, ctx=1024
            ),
        )
    }
)


def get_model_config(name: str) -> ModelConfig:
    """Look up a local model by name; unknown names raise UnknownModelError listing the known."""
    try:
        return LOCAL_MODELS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(LOCAL_MODELS))
        raise UnknownModelError(f"unknown base model {name!r}; known models: {known}") from None
