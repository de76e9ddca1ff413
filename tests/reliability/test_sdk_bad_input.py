"""A catalogue of bad SDK input: each is refused in the caller's thread with the exact error
class, and nothing reaches the wire (a counting transport over a real local server)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tinker import _transport, types
from tinker.local import LocalServer

from .runs import MODEL

NAN = math.nan
PROMPT = types.ModelInput.from_ints([1, 2, 3])
PARAMS = types.SamplingParams(max_tokens=2)
FLOAT_TARGETS = types.TensorData(data=[2.0, 3.0, 4.0], dtype="float32", shape=[3])
INT_WEIGHTS = types.TensorData(data=[1, 1, 1], dtype="int64", shape=[3])
IGNORED_PATHS = ("session_heartbeat", "telemetry", "retrieve_future")


def _datum(length: int = 3, **inputs: Any) -> types.Datum:
    return types.Datum(
        model_input=types.ModelInput.from_ints(list(range(1, length + 1))), loss_fn_inputs=inputs
    )


def _ce(**overrides: Any) -> types.Datum:
    inputs: dict[str, Any] = {"target_tokens": [2, 3, 4], "weights": [1.0, 1.0, 1.0]}
    inputs.update(overrides)
    return _datum(**{k: v for k, v in inputs.items() if v is not None})


Case = tuple[str, Callable[[Any], Any], type[BaseException]]
# Each call gets a namespace with .service, .trainer, .sampler, .rest.
CASES: list[Case] = [
    # forward_backward / forward
    ("fb unknown loss", lambda c: c.trainer.forward_backward([_ce()], "mse"), ValueError),
    ("fb loss not str", lambda c: c.trainer.forward_backward([_ce()], 42), ValueError),
    ("fb data None", lambda c: c.trainer.forward_backward(None, "cross_entropy"), TypeError),
    ("fb data a Datum", lambda c: c.trainer.forward_backward(_ce(), "cross_entropy"), TypeError),
    ("fb data of str", lambda c: c.trainer.forward_backward(["x"], "cross_entropy"), TypeError),
    (
        "fb missing targets",
        lambda c: c.trainer.forward_backward([_ce(target_tokens=None)], "cross_entropy"),
        ValueError,
    ),
    (
        "fb unexpected key",
        lambda c: c.trainer.forward_backward([_ce(advantages=[1.0] * 3)], "cross_entropy"),
        ValueError,
    ),
    (
        "fb float32 targets",
        lambda c: c.trainer.forward_backward([_ce(target_tokens=FLOAT_TARGETS)], "cross_entropy"),
        ValueError,
    ),
    (
        "fb int64 weights",
        lambda c: c.trainer.forward_backward([_ce(weights=INT_WEIGHTS)], "cross_entropy"),
        ValueError,
    ),
    (
        "fb infinite weights",
        lambda c: c.trainer.forward_backward([_ce(weights=[1.0, math.inf, 1.0])], "cross_entropy"),
        ValueError,
    ),
    (
        "fb short targets",
        lambda c: c.trainer.forward_backward([_ce(target_tokens=[2, 3])], "cross_entropy"),
        ValueError,
    ),
    (
        "fb long weights",
        lambda c: c.trainer.forward_backward([_ce(weights=[1.0] * 5)], "cross_entropy"),
        ValueError,
    ),
    (
        "fb NaN weights",
        lambda c: c.trainer.forward_backward([_ce(weights=[1.0, NAN, 1.0])], "cross_entropy"),
        ValueError,
    ),
    (
        "fb IS missing logprobs",
        lambda c: c.trainer.forward_backward([_ce()], "importance_sampling"),
        ValueError,
    ),
    (
        "fb config not a dict",
        lambda c: c.trainer.forward_backward([_ce()], "cross_entropy", "x"),
        TypeError,
    ),
    (
        "fb config str value",
        lambda c: c.trainer.forward_backward([_ce()], "cross_entropy", {"clip": "0.2"}),
        TypeError,
    ),
    (
        "fb config bool value",
        lambda c: c.trainer.forward_backward([_ce()], "cross_entropy", {"clip": True}),
        TypeError,
    ),
    ("forward unknown loss", lambda c: c.trainer.forward([_ce()], "nll"), ValueError),
    ("forward ints", lambda c: c.trainer.forward((1, 2, 3), "cross_entropy"), TypeError),
    # optim_step
    ("optim None", lambda c: c.trainer.optim_step(None), TypeError),
    ("optim dict", lambda c: c.trainer.optim_step({"learning_rate": 1e-3}), TypeError),
    (
        "adam negative lr",
        lambda c: c.trainer.optim_step(types.AdamParams(learning_rate=-1.0)),
        ValueError,
    ),
    (
        "adam NaN lr",
        lambda c: c.trainer.optim_step(types.AdamParams(learning_rate=NAN)),
        ValueError,
    ),
    ("adam beta1 1.5", lambda c: c.trainer.optim_step(types.AdamParams(beta1=1.5)), ValueError),
    # checkpoints
    ("save name slash", lambda c: c.trainer.save_state("a/b"), ValueError),
    ("save name dotdot", lambda c: c.trainer.save_state(".."), ValueError),
    ("save name int", lambda c: c.trainer.save_state(42), ValueError),
    ("save ttl negative", lambda c: c.trainer.save_state("x", ttl_seconds=-1), ValueError),
    ("save ttl str", lambda c: c.trainer.save_state("x", ttl_seconds="1"), ValueError),
    ("sampler name dotdot", lambda c: c.trainer.save_weights_for_sampler("../x"), ValueError),
    ("load absolute path", lambda c: c.trainer.load_state("/etc/passwd"), ValueError),
    ("load bare scheme", lambda c: c.trainer.load_state("tinker://"), ValueError),
    ("load None", lambda c: c.trainer.load_state(None), TypeError),
    # sampling
    ("sample num_samples -1", lambda c: c.sampler.sample(PROMPT, -1, PARAMS), ValueError),
    ("sample num_samples bool", lambda c: c.sampler.sample(PROMPT, True, PARAMS), TypeError),
    ("sample prompt str", lambda c: c.sampler.sample("hello", 1, PARAMS), TypeError),
    ("sample params None", lambda c: c.sampler.sample(PROMPT, 1, None), TypeError),
    (
        "sample max_tokens -1",
        lambda c: c.sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=-1)),
        ValueError,
    ),
    (
        "sample NaN temperature",
        lambda c: c.sampler.sample(PROMPT, 1, types.SamplingParams(temperature=NAN)),
        ValueError,
    ),
    (
        "sample negative temperature",
        lambda c: c.sampler.sample(PROMPT, 1, types.SamplingParams(temperature=-1.0)),
        ValueError,
    ),
    (
        "sample top_p 2",
        lambda c: c.sampler.sample(PROMPT, 1, types.SamplingParams(top_p=2.0)),
        ValueError,
    ),
    ("sample topk -1", lambda c: c.sampler.sample(PROMPT, 1, PARAMS, False, -1), ValueError),
    ("sample logprobs str", lambda c: c.sampler.sample(PROMPT, 1, PARAMS, "yes"), TypeError),
    (
        "prompt negative token",
        lambda c: c.sampler.sample(types.ModelInput.from_ints([1, -2]), 1, PARAMS),
        ValueError,
    ),
    (
        "prompt float tokens",
        lambda c: c.sampler.sample(types.ModelInput.from_ints([1.5, 2.0]), 1, PARAMS),
        TypeError,
    ),
    ("logprobs of a list", lambda c: c.sampler.compute_logprobs([1, 2]), TypeError),
    # service
    ("lora rank -1", lambda c: c.service.create_lora_training_client(MODEL, rank=-1), ValueError),
    ("lora base None", lambda c: c.service.create_lora_training_client(None), ValueError),
    ("sampler base int", lambda c: c.service.create_sampling_client(base_model=5), ValueError),
    (
        "sampler http path",
        lambda c: c.service.create_sampling_client(model_path="http://x/y"),
        ValueError,
    ),
    (
        "from state bad path",
        lambda c: c.service.create_training_client_from_state("weights/x"),
        ValueError,
    ),
    # REST
    ("rest empty run id", lambda c: c.rest.get_training_run(""), ValueError),
    ("rest run id None", lambda c: c.rest.list_checkpoints(None), ValueError),
    ("rest limit -1", lambda c: c.rest.list_training_runs(limit=-1), ValueError),
    (
        "rest archive of http url",
        lambda c: c.rest.get_checkpoint_archive_url_from_tinker_path("http://x/y"),
        ValueError,
    ),
    (
        "rest traversal path",
        lambda c: c.rest.delete_checkpoint_from_tinker_path("tinker://run/weights/../../x"),
        ValueError,
    ),
]


class Clients:
    def __init__(self, service: Any) -> None:
        self.service = service
        self.trainer = service.create_lora_training_client(MODEL, rank=2, seed=0).result()
        self.sampler = service.create_sampling_client(base_model=MODEL).result()
        self.rest = service.create_rest_client()


@pytest.fixture(scope="module")
def clients(tinker_shared_server: LocalServer) -> Iterator[Clients]:
    """Clients on the session's shared server (the tinker.testing plugin's)."""
    import tinker

    service = tinker.ServiceClient(base_url=tinker_shared_server.url, api_key="k", telemetry=False)
    try:
        yield Clients(service)
    finally:
        service.close()


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the requests sent during the test (background heartbeats and polls aside)."""
    sent: list[str] = []
    original = _transport.Transport.send

    def counting(self: Any, request: _transport.HttpRequest, **kwargs: Any) -> Any:
        if not any(part in request.path for part in IGNORED_PATHS):
            sent.append(f"{request.method} {request.path}")
        return original(self, request, **kwargs)

    monkeypatch.setattr(_transport.Transport, "send", counting)
    return sent


def test_the_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "call", "error"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_anything_is_sent(
    clients: Clients,
    wire: list[str],
    name: str,
    call: Callable[[Any], Any],
    error: type[BaseException],
) -> None:
    with pytest.raises(BaseException) as caught:
        call(clients)
    assert type(caught.value) is error, f"{name}: {type(caught.value).__name__}: {caught.value}"
    assert str(caught.value)
    assert wire == []
