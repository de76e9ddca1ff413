"""create_custom_loss and LossHandles on the wire: the upload body, seq ids, dedupe, the
client-side handle path (weights = -dloss/dlogprobs, metrics by suffix), and the checks that
raise in the caller's thread with nothing sent."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from support.fake_service import FakeService, Reply

from tinker import types
from tinker._custom_loss import numpy_loss

torch = pytest.importorskip("torch")

from tinker import LossHandle  # noqa: E402
from tinker.service_client import ServiceClient  # noqa: E402

from .conftest import API_KEY  # noqa: E402

FIXTURE = pathlib.Path(__file__).parents[2] / "fixtures" / "official-0.38" / "calls"
RANKS = {"logprobs": 1, "weights": 1}


def nll(logprobs: Any, weights: Any) -> Any:
    loss = -(logprobs * weights).sum()
    return loss, {"custom/nll:sum": loss}


def scaled(logprobs: Any, weights: Any) -> Any:
    loss = -(logprobs * weights).sum() * 2
    return loss, {}


def _created(body: dict[str, Any]) -> dict[str, Any]:
    return {"loss_id": f"L{body['custom_loss_seq_id']}", "type": "create_custom_loss"}


@pytest.fixture
def uploading() -> Iterator[FakeService]:
    """A 0.38 service that runs custom losses (custom_loss_server_side)."""
    with FakeService(session_id="S", client_config={"custom_loss_server_side": True}) as svc:
        svc.future("/api/v1/create_custom_loss", _created)
        yield svc


def _client(service: FakeService) -> ServiceClient:
    return ServiceClient(api_key=API_KEY, base_url=service.url, telemetry=False)


@pytest.fixture
def uploader(uploading: FakeService) -> Iterator[ServiceClient]:
    client = _client(uploading)
    yield client
    client.close()


def test_the_upload_is_the_official_body(uploading: FakeService, uploader: ServiceClient) -> None:
    handle = uploader.create_custom_loss(nll, RANKS).result(timeout=10)
    recorded = json.loads((FIXTURE / "ServiceClient.create_custom_loss.json").read_text())
    official = recorded["modes"]["features"][0]
    (submit,) = uploading.seen("/api/v1/create_custom_loss")
    assert submit.body == {**official["body"]["json"], "session_id": "S"}
    assert submit.headers["x-sdk-method"] == "ServiceClient.create_custom_loss"
    polls = [
        r for r in uploading.seen("/api/v1/retrieve_future") if r.body["request_id"] == "req-0"
    ]
    assert polls and {p.headers["X-Tinker-Request-Type"] for p in polls} == {"CreateCustomLoss"}
    assert handle == LossHandle("nll", handle.inputs, "S", graph=None, loss_id="L0")
    assert [(i.name, i.rank) for i in handle.inputs] == [("logprobs", 1), ("weights", 1)]
    assert handle.input_names == ("weights",)
    assert handle.key == "37b394c03ae7200c6d2ab7c2cecba354cf5466ab61dd99008cf044a03e395b7e"
    assert "graph" not in repr(handle) and "loss_id='L0'" in repr(handle)
    with pytest.raises(dataclasses.FrozenInstanceError):
        handle.loss_id = "other"  # type: ignore[misc]
    loss, metrics = handle.graph(torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 0.5]))
    assert float(loss) == 2.0 and set(metrics) == {"custom/nll:sum"}


def test_seq_ids_follow_call_order(uploading: FakeService, uploader: ServiceClient) -> None:
    first = uploader.create_custom_loss(nll, RANKS)
    second = uploader.create_custom_loss(scaled, RANKS)
    assert (first.result(timeout=10).loss_id, second.result(timeout=10).loss_id) == ("L0", "L1")
    bodies = uploading.bodies("/api/v1/create_custom_loss")
    assert sorted((b["custom_loss_seq_id"], b["name"]) for b in bodies) == [
        (0, "nll"),
        (1, "scaled"),
    ]


def test_the_same_loss_is_created_once_per_session(
    uploading: FakeService, uploader: ServiceClient
) -> None:
    def renamed(logprobs: Any, weights: Any) -> Any:  # the same code under another name
        loss = -(logprobs * weights).sum()
        return loss, {"custom/nll:sum": loss}

    first = uploader.create_custom_loss(nll, RANKS).result(timeout=10)
    again = uploader.create_custom_loss(renamed, RANKS)  # returns a future: no raise here
    with pytest.raises(ValueError, match=r"already created in this session; reuse its LossHandle"):
        again.result(timeout=10)
    other_ranks = uploader.create_custom_loss(nll, {"logprobs": 1, "weights": 0})
    assert other_ranks.result(timeout=10).loss_id == "L1"
    assert first.loss_id == "L0"
    assert len(uploading.bodies("/api/v1/create_custom_loss")) == 2
    other_session = _client(uploading)  # dedupe and seq ids are per session
    assert other_session.create_custom_loss(nll, RANKS).result(timeout=10).loss_id == "L0"
    other_session.close()


def test_a_failed_upload_can_be_tried_again(
    uploading: FakeService, uploader: ServiceClient
) -> None:
    uploading.push("/api/v1/create_custom_loss", Reply(400, {"detail": "graph refused"}))
    with pytest.raises(Exception, match="graph refused"):
        uploader.create_custom_loss(nll, RANKS).result(timeout=10)
    assert uploader.create_custom_loss(nll, RANKS).result(timeout=10).loss_id == "L1"


@pytest.mark.parametrize("client_config", [{}, None], ids=["switch-off", "0.5.1-server"])
def test_without_the_server_switch_the_loss_stays_on_the_client(
    client_config: dict[str, Any] | None,
) -> None:
    with FakeService(session_id="S", client_config=client_config) as svc:
        client = _client(svc)
        handle = client.create_custom_loss(nll, RANKS).result(timeout=10)
        assert (handle.loss_id, handle.session_id, handle.name) == (None, "S", "nll")
        assert svc.seen("/api/v1/create_custom_loss") == []
        again = client.create_custom_loss(nll, RANKS)
        with pytest.raises(ValueError, match="reuse its LossHandle"):
            again.result(timeout=10)
        client.close()


def test_bad_input_raises_at_call_time_and_opens_no_session(uploading: FakeService) -> None:
    client = _client(uploading)
    with pytest.raises(ValueError, match="the first parameter must be named 'logprobs'"):
        client.create_custom_loss(lambda lp, weights: (lp.sum(), {}), RANKS)
    with pytest.raises(ValueError, match="not parameters \\['extra'\\]"):
        client.create_custom_loss(nll, {**RANKS, "extra": 1})
    assert uploading.requests == []


def test_without_torch_create_custom_loss_names_torch(
    uploading: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(uploading)
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "torch.fx", None)
    with pytest.raises(ImportError, match="create_custom_loss needs torch"):
        client.create_custom_loss(nll, RANKS)
    assert uploading.requests == []


# -- forward_backward_custom with a handle (0.5.1-era fake: JSON bodies) --------------------


def _datum(n: int, offset: int = 0, **extra: Any) -> types.Datum:
    tokens = list(range(offset, offset + n))
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": tokens, "weights": [1.0] * n, **extra},
    )


def _logprobs_result(body: dict[str, Any], key: str) -> dict[str, Any]:
    """Every target token gets logprob -0.5; the server's loss is the datum count."""
    data = body[key]["data"]
    outputs = [
        {"logprobs": {"data": [-0.5] * len(d["loss_fn_inputs"]["target_tokens"]["data"]),
                      "dtype": "float32"}}
        for d in data
    ]  # fmt: skip
    return {
        "loss_fn_output_type": "CrossEntropyLossReturn",
        "loss_fn_outputs": outputs,
        "metrics": {"loss:sum": float(len(data))},
    }


@pytest.fixture
def passes(fake: FakeService) -> FakeService:
    fake.future("/api/v1/forward", lambda b: _logprobs_result(b, "forward_input"))
    fake.future("/api/v1/forward_backward", lambda b: _logprobs_result(b, "forward_backward_input"))
    return fake


def advantage_loss(logprobs: Any, advantages: Any, scale: Any) -> Any:
    loss = -(logprobs * advantages).sum() * scale
    return loss, {
        "custom/adv:sum": advantages.sum(),
        "custom/len:mean": torch.ones_like(logprobs).sum(),
    }


def test_a_client_side_handle_sends_minus_its_gradient(
    passes: FakeService, service: Any, trainer: Any
) -> None:
    handle = service.create_custom_loss(
        advantage_loss, {"logprobs": 1, "advantages": 1, "scale": 0}
    ).result(timeout=10)
    assert handle.loss_id is None
    data = [
        _datum(2, advantages=[1.0, -2.0], scale=np.array([3.0], np.float32)),
        _datum(3, 5, advantages=[0.5, 0.25, 4.0], scale=np.array([0.5], np.float32)),
    ]
    result = trainer.forward_backward_custom(data, handle).result(timeout=10)
    (backward,) = passes.bodies("/api/v1/forward_backward")
    sent = backward["forward_backward_input"]
    assert sent["loss_fn"] == "cross_entropy"
    # dloss/dlogprobs = -advantages * scale, sent negated as the cross-entropy weights
    assert [d["loss_fn_inputs"]["weights"]["data"] for d in sent["data"]] == [
        [3.0, -6.0],
        [0.25, 0.125, 2.0],
    ]
    assert result.metrics["loss:sum"] == pytest.approx(0.5 * (3.0 * -1.0 + 0.5 * 4.75))
    assert result.metrics["surrogate_loss:sum"] == 2.0
    assert result.metrics["custom/adv:sum"] == pytest.approx(-1.0 + 4.75)
    assert result.metrics["custom/len:mean"] == pytest.approx(2.5)


def test_a_handle_of_another_session_is_refused(passes: FakeService, trainer: Any) -> None:
    traced = _trace(nll)
    foreign = LossHandle("nll", traced.inputs, "another-session", traced.module)
    with pytest.raises(ValueError, match="created in session 'another-session'; this client"):
        trainer.forward_backward_custom([_datum(2)], foreign)
    assert passes.seen("/api/v1/forward") == []


def _trace(fn: Any, ranks: dict[str, int] | None = None) -> Any:
    from tinker._loss_trace import trace_loss

    return trace_loss(fn, ranks or RANKS)


def _bare(**inputs: Any) -> types.Datum:
    return types.Datum(model_input=types.ModelInput.from_ints([1, 2]), loss_fn_inputs=inputs)


@pytest.mark.parametrize(
    ("datum", "message"),
    [
        (_bare(weights=[1.0, 1.0]),
         r"data\[0\].loss_fn_inputs lacks 'target_tokens'"),
        (_bare(target_tokens=[1, 2]),
         r"data\[0\].loss_fn_inputs lacks 'weights', which loss 'nll' reads"),
        (_datum(3, weights=[[1.0], [1.0], [1.0]]),
         r"data\[0\].loss_fn_inputs\['weights'\] has shape \[3, 1\]; loss 'nll' declares rank 1 "
         r"with 3 rows"),
        (_datum(3, weights=[1.0, 1.0]),
         r"\['weights'\] has shape \[2\]; loss 'nll' declares rank 1 with 3 rows"),
        (_bare(target_tokens=[[1, 2], [2, 3]], weights=[1.0, 1.0]),
         r"loss 'nll' takes rank-1 logprobs, but target_tokens has shape \[2, 2\]"),
    ],
)  # fmt: skip
def test_handle_inputs_are_checked_before_anything_is_sent(
    passes: FakeService, service: Any, trainer: Any, datum: types.Datum, message: str
) -> None:
    handle = service.create_custom_loss(nll, RANKS).result(timeout=10)
    for loss in (handle, dataclasses.replace(handle, loss_id="L9")):
        with pytest.raises(ValueError, match=message):
            trainer.forward_backward_custom([datum], loss)
    assert passes.seen("/api/v1/forward") == passes.seen("/api/v1/forward_backward") == []


def test_a_scalar_input_may_be_empty_shaped_or_one_element(
    passes: FakeService, service: Any, trainer: Any
) -> None:
    handle = service.create_custom_loss(
        advantage_loss, {"logprobs": 1, "advantages": 1, "scale": 0}
    ).result(timeout=10)
    scalar = types.TensorData(data=[2.0], dtype="float32", shape=[])
    data = [
        _datum(1, advantages=[1.0], scale=scalar),
        _datum(1, advantages=[1.0], scale=np.array([2.0], np.float32)),
    ]
    trainer.forward_backward_custom(data, handle).result(timeout=10)
    with pytest.raises(ValueError, match=r"\['scale'\] has shape \[2\]; loss 'advantage_loss' "
                       "declares rank 0$"):  # fmt: skip
        trainer.forward_backward_custom(
            [_datum(1, advantages=[1.0], scale=np.array([2.0, 1.0], np.float32))], handle
        )


@numpy_loss
def _zero_loss(_data: list[Any], logprobs: list[np.ndarray]) -> Any:
    return 0.0, {}, [np.zeros_like(lp) for lp in logprobs]


def test_loss_type_input_is_deprecated(passes: FakeService, trainer: Any) -> None:
    with pytest.warns(DeprecationWarning, match="loss_type_input=.* is deprecated") as caught:
        trainer.forward_backward_custom([_datum(2)], _zero_loss, loss_type_input="logprobs")
    assert [w.filename for w in caught] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.forward_backward_custom([_datum(2)], _zero_loss).result(timeout=10)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="'probs'"):
        trainer.forward_backward_custom([_datum(2)], _zero_loss, loss_type_input="probs")
    assert len(passes.bodies("/api/v1/forward")) == 2


def test_the_async_twin_returns_the_handle(uploading: FakeService, uploader: ServiceClient) -> None:
    import asyncio

    handle = asyncio.run(uploader.create_custom_loss_async(nll, RANKS))
    assert isinstance(handle, LossHandle) and handle.loss_id == "L0"


def test_a_handle_needs_torch(
    passes: FakeService, trainer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = (
        types.CustomLossInput(name="logprobs", rank=1),
        types.CustomLossInput(name="weights", rank=1),
    )
    handle = LossHandle("nll", inputs, "S", graph=None, loss_id="L0")
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "torch.fx", None)
    with pytest.raises(ImportError, match="forward_backward_custom with a LossHandle needs torch"):
        trainer.forward_backward_custom([_datum(2)], handle)
    assert passes.seen("/api/v1/forward") == passes.seen("/api/v1/forward_backward") == []
