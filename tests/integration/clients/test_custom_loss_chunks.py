"""A client-side custom loss on a server whose chunk limits differ from the defaults: the
backward pass is chunked like the forward one, under the seq ids reserved for it."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import pytest

from tinker import types
from tinker.lib.custom_loss import numpy_loss
from tinker.local import serve
from tinker.local.server import settings
from tinker.service_client import ServiceClient


@numpy_loss
def weighted_nll(data: list[types.Datum], logprobs: list[Any]) -> Any:
    loss = -sum(float(lp.sum()) for lp in logprobs)
    return loss, {}, [-np.ones_like(lp) for lp in logprobs]


def test_a_custom_loss_on_one_datum_chunks_runs(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    monkeypatch.setattr(settings, "FWDBWD_MAX_CHUNK_LEN", 1)  # one datum per request
    data = [
        types.Datum(
            model_input=types.ModelInput.from_ints([1, 2, 3]),
            loss_fn_inputs={"target_tokens": [2, 3, 4 + i], "weights": [1.0, 1.0, 1.0]},
        )
        for i in range(3)
    ]
    with serve(data_dir=tmp_path, protocol="0.38") as server:
        service = ServiceClient(base_url=server.url, api_key="tml-k")
        assert service.holder.server.max_chunk_len == 1  # negotiated, not the default
        trainer = service.create_lora_training_client("tinker-local/tiny", rank=2).result()
        output = trainer.forward_backward_custom(data, weighted_nll).result(timeout=120)
        reference = trainer.forward(data, "cross_entropy").result(timeout=120)
        expected = -sum(float(o["logprobs"].to_numpy().sum()) for o in reference.loss_fn_outputs)
        assert output.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
        assert len(output.loss_fn_outputs) == 3
        service.close()
