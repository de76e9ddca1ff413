from __future__ import annotations

import json
import pathlib

import pytest
from cli_fakes import Cli, FakeClients, FakeRest, FakeSampler, FakeServiceClient, SdkSession

from tinker import types
from tinker.types import SampledSequence

SEQUENCES = [
    SampledSequence(tokens=[ord(c) for c in " world"], logprobs=[-0.5] * 6, stop_reason="length"),
    SampledSequence(tokens=[ord(c) for c in "!\n"], logprobs=[-1.0, -2.0], stop_reason="stop"),
]


@pytest.fixture
def sampler(sdk: SdkSession) -> FakeSampler:
    return FakeSampler(sdk, list(SEQUENCES))


@pytest.fixture
def service(sdk: SdkSession, sampler: FakeSampler) -> FakeServiceClient:
    return FakeServiceClient(sdk, sampler)


@pytest.fixture
def scli(rest: FakeRest, service: FakeServiceClient) -> Cli:
    return Cli(FakeClients(rest, service))


def _params(sampler: FakeSampler) -> types.SamplingParams:
    params = sampler.calls[0]["sampling_params"]
    assert isinstance(params, types.SamplingParams)
    return params


def test_text_prompt_prints_the_decoded_completion(
    scli: Cli, service: FakeServiceClient, sampler: FakeSampler
) -> None:
    result = scli("sample", "--base-model", "tinker-local/tiny", "--prompt", "Hello")
    assert (result.code, result.out, result.err) == (0, " world\n", "")
    assert service.created == [{"base_model": "tinker-local/tiny"}]
    call = sampler.calls[0]
    assert call["prompt"].to_ints() == [ord(c) for c in "Hello"]
    assert call["num_samples"] == 1
    params = _params(sampler)
    assert params.max_tokens == 64
    assert (params.temperature, params.top_k, params.top_p) == (1.0, -1, 1.0)


def test_every_sampling_option_is_passed(
    scli: Cli, service: FakeServiceClient, sampler: FakeSampler
) -> None:
    argv = [
        "sample", "--model-path", "tinker://run-1/sampler_weights/s", "--prompt-tokens", "1, 2,3",
        "--max-tokens", "7", "--temperature", "0.5", "--top-k", "4", "--top-p", "0.9",
        "--seed", "11", "--stop", "\n", "--stop", "END", "--num-samples", "2",
    ]  # fmt: skip
    result = scli(*argv)
    assert result.code == 0, result.err
    assert service.created == [{"model_path": "tinker://run-1/sampler_weights/s"}]
    assert sampler.calls[0]["prompt"].to_ints() == [1, 2, 3]
    assert sampler.calls[0]["num_samples"] == 2
    params = _params(sampler)
    assert (params.max_tokens, params.temperature, params.top_k, params.top_p) == (7, 0.5, 4, 0.9)
    assert (params.seed, params.stop) == (11, ["\n", "END"])
    assert result.out.splitlines() == [
        "--- sample 1 of 2 (stop: length) ---",
        " world",
        "--- sample 2 of 2 (stop: stop) ---",
        "!",
        "",  # the completion's own newline, printed as sampled
    ]


def test_json_output_has_tokens_logprobs_and_text(scli: Cli) -> None:
    result = scli(
        "-f", "json", "sample", "--base-model", "m", "--prompt", "Hi", "--num-samples", "2"
    )
    assert json.loads(result.out) == {
        "model": "m",
        "prompt_tokens": [72, 105],
        "samples": [
            {
                "text": " world",
                "tokens": SEQUENCES[0].tokens,
                "logprobs": [-0.5] * 6,
                "stop_reason": "length",
            },
            {"text": "!\n", "tokens": [33, 10], "logprobs": [-1.0, -2.0], "stop_reason": "stop"},
        ],
    }


def test_prompt_file_as_text_or_token_list(
    scli: Cli, sampler: FakeSampler, tmp_path: pathlib.Path
) -> None:
    text_file = tmp_path / "p.txt"
    text_file.write_text("[not json", encoding="utf-8")
    ids_file = tmp_path / "p.json"
    ids_file.write_text("[5, 6, 7]\n", encoding="utf-8")
    assert scli("sample", "--base-model", "m", "--prompt-file", str(text_file)).code == 0
    assert scli("sample", "--base-model", "m", "--prompt-file", str(ids_file)).code == 0
    assert sampler.calls[0]["prompt"].to_ints() == [ord(c) for c in "[not json"]
    assert sampler.calls[1]["prompt"].to_ints() == [5, 6, 7]


def test_empty_prompt_and_missing_file_are_errors(scli: Cli, tmp_path: pathlib.Path) -> None:
    result = scli("sample", "--base-model", "m", "--prompt", "")
    assert (result.code, result.err) == (1, "Error: the prompt is empty\n")
    missing = tmp_path / "nope.txt"
    result = scli("sample", "--base-model", "m", "--prompt-file", str(missing))
    assert result.code == 1
    assert result.err.startswith("Error: [Errno 2] No such file or directory")


@pytest.mark.parametrize(
    "argv",
    [
        ["--prompt", "x"],  # no model
        ["--base-model", "m"],  # no prompt
        ["--base-model", "m", "--model-path", "tinker://r/sampler_weights/s", "--prompt", "x"],
        ["--base-model", "m", "--prompt", "x", "--prompt-tokens", "1"],
        ["--base-model", "m", "--prompt-tokens", "1,a"],
        ["--base-model", "m", "--prompt-tokens", "-1"],
        ["--base-model", "m", "--prompt", "x", "--num-samples", "0"],
        ["--base-model", "m", "--prompt", "x", "--max-tokens", "0"],
    ],
)
def test_bad_arguments_are_usage_errors(scli: Cli, sampler: FakeSampler, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        scli("sample", *argv)
    assert exit_info.value.code == 2
    assert sampler.calls == []


def test_control_characters_are_shown_escaped(scli: Cli, sampler: FakeSampler) -> None:
    """A completion cannot drive the terminal (colours, cursor moves, bells, overwritten lines):
    control characters print as escapes; newlines and tabs stay; JSON keeps the raw text."""
    raw = "\x1b[2J\x1b[31mred\rover\x07\tx\ny\x00"
    sampler.sequences[:] = [
        SampledSequence(tokens=[ord(c) for c in raw], logprobs=None, stop_reason="stop")
    ]
    result = scli("sample", "--base-model", "tinker-local/tiny", "--prompt", "Hi")
    assert result.code == 0, result.err
    assert result.out == "\\x1b[2J\\x1b[31mred\\rover\\x07\tx\ny\\x00\n"
    as_json = scli("-f", "json", "sample", "--base-model", "tinker-local/tiny", "--prompt", "Hi")
    assert json.loads(as_json.out)["samples"][0]["text"] == raw
