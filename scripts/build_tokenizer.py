"""Build the byte-level tokenizer shipped in tinker/local/compute/assets/tokenizer.

Ids 0..255 are the raw bytes, then the special tokens of tinker.local.compute.catalogue, in order.
Run: `python scripts/build_tokenizer.py` (needs only `tokenizers`).
"""

from __future__ import annotations

import json
import pathlib
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tinker.local.compute.catalogue import (
    BYTE_TOKENS,
    EOS_TOKEN_ID,
    LOCAL_MODELS,
    SPECIAL_TOKENS,
    TOKENIZER_DIR,
)

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
    "<|endoftext|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def byte_symbols() -> list[str]:
    """One printable character per byte value, the byte-level pre-tokenizer's alphabet."""
    kept = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    symbols: dict[int, str] = {b: chr(b) for b in kept}
    extra = 0
    for b in range(BYTE_TOKENS):
        if b not in symbols:
            symbols[b] = chr(BYTE_TOKENS + extra)
            extra += 1
    return [symbols[b] for b in range(BYTE_TOKENS)]


def build() -> Tokenizer:
    """A BPE model without merges over the byte alphabet, plus the special tokens."""
    vocab = {symbol: byte for byte, symbol in enumerate(byte_symbols())}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(
        [AddedToken(tok, special=True, normalized=False) for tok in SPECIAL_TOKENS]
    )
    for offset, tok in enumerate(SPECIAL_TOKENS):
        assert tokenizer.token_to_id(tok) == BYTE_TOKENS + offset, tok
    return tokenizer


def transformers_config() -> dict[str, object]:
    """tokenizer_config.json: lets transformers' AutoTokenizer load the directory offline."""
    eos = SPECIAL_TOKENS[EOS_TOKEN_ID - BYTE_TOKENS]
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max(cfg.max_seq_len for cfg in LOCAL_MODELS.values()),
        "eos_token": eos,
        "pad_token": eos,
        "bos_token": None,
        "unk_token": None,
        "additional_special_tokens": [tok for tok in SPECIAL_TOKENS if tok != eos],
        "added_tokens_decoder": {
            str(BYTE_TOKENS + i): {
                "content": tok,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i, tok in enumerate(SPECIAL_TOKENS)
        },
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }


def main(out_dir: pathlib.Path = TOKENIZER_DIR) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    build().save(str(out_dir / "tokenizer.json"), pretty=True)
    config = transformers_config()
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special_map = {
        "eos_token": config["eos_token"],
        "pad_token": config["pad_token"],
        "additional_special_tokens": config["additional_special_tokens"],
    }
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")


if __name__ == "__main__":
    main()
