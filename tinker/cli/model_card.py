"""The README.md model card that `tinker checkpoint push-hf` puts beside an uploaded adapter:
Hub metadata, where the weights came from, the LoRA config, and how to load them with PEFT."""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["CardFacts", "lora_config", "model_card", "module_names"]

ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class CardFacts:
    """What the card says; None where it is not known."""

    repo_id: str
    tinker_path: str
    training_run_id: str
    base_model: str | None = None
    lora_rank: int | None = None
    lora_alpha: object = None  # a number, or whatever else the adapter config says
    target_modules: tuple[str, ...] = ()


def lora_config(folder: pathlib.Path) -> dict[str, Any]:
    """The PEFT adapter config in `folder` (empty when there is none or it is unreadable)."""
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def module_names(value: object) -> tuple[str, ...]:
    """PEFT's `target_modules` as names: a string (`"all-linear"`, a regex) is one name."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(str(name) for name in value)
    return (str(value),)


def _number(value: object) -> str:
    """A real number compactly (`64.0` as `64`); anything else as its text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _yaml_text(text: str) -> str:
    """`text` as one YAML scalar: as it is when it is a plain model name, else quoted (a JSON
    string is a YAML string), so that ':', '#' or a line break cannot change the metadata."""
    return text if re.fullmatch(r"[\w./-]+", text) else json.dumps(text)


def _cell(text: str) -> str:
    """`text` kept inside one Markdown table cell: a '|' (as in a regex) would end it (GitHub
    Markdown reads '\\|' as '|'), and a line break would end the row."""
    return " ".join(text.replace("|", "\\|").split("\n"))


def model_card(facts: CardFacts) -> str:
    """The card's Markdown, with YAML front matter the Hub reads (base_model, library, tags)."""
    base = facts.base_model
    front = ["---"] + ([f"base_model: {_yaml_text(base)}"] if base else [])
    front += ["library_name: peft", "tags:", "- tinker", "- lora", "---"]
    about = f"a LoRA adapter for `{base}`" if base else "a LoRA adapter"
    rows = [
        ("Base model", f"`{base}`" if base else "unknown"),
        ("Tinker checkpoint", f"`{facts.tinker_path}`"),
        ("Training run", f"`{facts.training_run_id}`"),
    ]
    if facts.lora_rank is not None:
        rows.append(("LoRA rank", str(facts.lora_rank)))
    if facts.lora_alpha is not None:
        rows.append(("LoRA alpha", _number(facts.lora_alpha)))
    if facts.target_modules:
        rows.append(("Target modules", ", ".join(f"`{m}`" for m in facts.target_modules)))
    base_id = base or "<base model>"
    body = [
        "",
        f"# {facts.repo_id}",
        "",
        f"This repository holds {about}, trained with Tinker and exported from the checkpoint "
        f"`{facts.tinker_path}`.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {_cell(value)} |" for name, value in rows),
        "",
        "## Loading with PEFT",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f'tokenizer = AutoTokenizer.from_pretrained("{base_id}")',
        f'base = AutoModelForCausalLM.from_pretrained("{base_id}")',
        f'model = PeftModel.from_pretrained(base, "{facts.repo_id}")',
        "```",
        "",
    ]
    return "\n".join(front + body)
