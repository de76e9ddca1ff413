"""The pretrained local base models through the public API: they write words, answer a chat
and memorise quickly; their `-random` twins know nothing."""

from __future__ import annotations

import importlib
import pathlib
import re
from collections.abc import Iterator
from types import ModuleType

import pytest

import tinker
from tinker import types
from tinker.local import LocalServer

TINY = "tinker-local/tiny"
ROOT = pathlib.Path(__file__).resolve().parents[3]
SENTENCE = "A red kite flew over the dunes"  # 30 byte tokens


@pytest.fixture
def corpus(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """scripts/pretrain_corpus.py, the generator of the text the base models learnt."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    return importlib.import_module("pretrain_corpus")


@pytest.fixture(scope="module")
def service(tinker_shared_server: LocalServer) -> Iterator[tinker.ServiceClient]:
    with tinker.ServiceClient(base_url=tinker_shared_server.url, api_key="test-key") as client:
        yield client


def _greedy(sampler: tinker.SamplingClient, prompt: list[int], max_tokens: int) -> list[int]:
    params = types.SamplingParams(max_tokens=max_tokens, temperature=0.0)
    response = sampler.sample(types.ModelInput.from_ints(prompt), 1, params).result()
    return list(response.sequences[0].tokens)


def test_base_model_continues_text_with_known_words(
    service: tinker.ServiceClient, corpus: ModuleType
) -> None:
    sampler = service.create_sampling_client(base_model=TINY)
    tokenizer = sampler.get_tokenizer()
    text = tokenizer.decode(_greedy(sampler, tokenizer.encode("The lighthouse keeper"), 60))
    vocabulary = set(re.findall(r"[A-Za-z]+", corpus.corpus_text(0, 200_000)))
    words = re.findall(r"[A-Za-z]+", text[: text.rindex(" ")])  # the last word may be cut
    assert len(words) >= 8, text
    assert set(words) <= vocabulary, text


def test_base_model_answers_in_the_chat_template(service: tinker.ServiceClient) -> None:
    sampler = service.create_sampling_client(base_model=TINY)
    tokenizer = sampler.get_tokenizer()
    prompt = tokenizer.encode("<|user|>What color is the sky?<|endoftext|><|assistant|>")
    assert tokenizer.decode(_greedy(sampler, prompt, 30)) == "The sky is blue.<|endoftext|>"


def test_pretrained_base_predicts_text_the_random_twin_cannot(
    service: tinker.ServiceClient,
) -> None:
    tokens = list(b"The old sailor reads a letter by the window.")
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
    )
    per_token = {}
    for model in (TINY, TINY + "-random"):
        trainer = service.create_lora_training_client(base_model=model, rank=4, seed=0)
        loss = trainer.forward([datum], "cross_entropy").result().metrics["loss:sum"]
        per_token[model] = loss / (len(tokens) - 1)
    assert per_token[TINY] < 1.5  # nats per byte
    assert per_token[TINY + "-random"] > 5.0  # about log(260): uniform guessing


@pytest.mark.parametrize("model", [TINY, TINY + "-random"])
def test_two_layer_model_memorises_a_30_token_sentence_within_150_steps(
    service: tinker.ServiceClient, model: str
) -> None:
    tokens = list(SENTENCE.encode())
    assert len(tokens) == 30
    trainer = service.create_lora_training_client(base_model=model, rank=8, seed=0)
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * 29},
    )
    adam = types.AdamParams(learning_rate=1e-2)
    memorised_at = None
    for step in range(1, 151):
        trainer.forward_backward([datum], "cross_entropy")
        trainer.optim_step(adam).result()
        if step % 10 == 0:
            sampler = trainer.save_weights_and_get_sampling_client()
            if _greedy(sampler, tokens[:1], 29) == tokens[1:]:
                memorised_at = step
                break
    print(f"{model} memorised the sentence by step {memorised_at}")
    assert memorised_at is not None
