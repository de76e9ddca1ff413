"""The local models: their sizes, parameter names and shapes, and the byte-level vocabulary.

Every model shares one tokenizer (bytes 0..255, then the special tokens), shipped in
`assets/tokenizer` beside this module.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from tinker.local.compute.errors import UnknownModelError

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
            *_configs("tinker-local/small", d_model=256, n_layers=4, n_heads=8, d_ff=768, ctx=1024),
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


# Parameter names: a Llama-style layout, so that adapter tensors carry PEFT's usual names.
ATTN_PROJECTIONS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_PROJECTIONS: tuple[str, ...] = ("gate_proj", "up_proj", "down_proj")
EMBED = "embed_tokens"
UNEMBED = "unembed_tokens"
FINAL_NORM = "norm"


def attn_module(layer: int, proj: str) -> str:
    """Module key of an attention projection, e.g. ``layers.0.self_attn.q_proj``."""
    return f"layers.{layer}.self_attn.{proj}"


def mlp_module(layer: int, proj: str) -> str:
    """Module key of an MLP projection, e.g. ``layers.0.mlp.gate_proj``."""
    return f"layers.{layer}.mlp.{proj}"


def norm_weight(layer: int, which: str) -> str:
    """Key of a block's RMSNorm weight: which is "input_layernorm" (before attention) or
    "post_attention_layernorm" (before the MLP)."""
    return f"layers.{layer}.{which}"


def linear_shapes(config: ModelConfig) -> dict[str, tuple[int, int]]:
    """(out, in) of every LoRA-adaptable linear layer, in canonical order."""
    d, ff = config.d_model, config.d_ff
    shapes: dict[str, tuple[int, int]] = {}
    for layer in range(config.n_layers):
        for proj in ATTN_PROJECTIONS:
            shapes[attn_module(layer, proj)] = (d, d)
        shapes[mlp_module(layer, "gate_proj")] = (ff, d)
        shapes[mlp_module(layer, "up_proj")] = (ff, d)
        shapes[mlp_module(layer, "down_proj")] = (d, ff)
    shapes[UNEMBED] = (config.vocab_size, d)
    return shapes


def weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name and shape of every weight of the network, in canonical order."""
    shapes: dict[str, tuple[int, ...]] = {EMBED: (config.vocab_size, config.d_model)}
    shapes.update(linear_shapes(config))
    for layer in range(config.n_layers):
        shapes[norm_weight(layer, "input_layernorm")] = (config.d_model,)
        shapes[norm_weight(layer, "post_attention_layernorm")] = (config.d_model,)
    shapes[FINAL_NORM] = (config.d_model,)
    return shapes
