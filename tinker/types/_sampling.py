"""Sampling requests and results: sampling sessions, SamplingParams, asample.

Results are frozen dataclasses backed by numpy arrays (as in the official SDK 0.38); their
list views are computed on first read and cached. They also take the 0.5.1 list fields.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from tinker.types._base import WireModel, wire
from tinker.types._data import DataModel, data_model, fields_repr, values_equal
from tinker.types._inputs import ModelInput
from tinker.types._tensors import TensorData, is_numpy_array

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "MASK_LOGPROB",
    "CreateSamplingSessionRequest",
    "CreateSamplingSessionResponse",
    "PromptAltTokens",
    "SampleRequest",
    "SampleResponse",
    "SampledSequence",
    "SamplingParams",
    "StopReason",
    "TopkLogprobs",
    "check_target_prompt_logprobs",
]

StopReason = Literal["length", "stop"]


@wire
@attrs.frozen(kw_only=True)
class SamplingParams(WireModel):
    """How to sample; only the fields set are sent (the server applies the defaults)."""

    max_tokens: int | None = None
    seed: int | None = None
    stop: str | Sequence[str] | Sequence[int] | None = None
    temperature: float = 1
    top_k: int = -1
    top_p: float = 1

    def _validate(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 0:
            raise ValueError(f"SamplingParams.max_tokens: must be >= 0, got {self.max_tokens}")
        if not self.temperature >= 0:  # NaN too
            raise ValueError(f"SamplingParams.temperature: must be >= 0, got {self.temperature}")
        if not 0 <= self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p: must be in [0, 1], got {self.top_p}")
        if self.top_k < -1:
            raise ValueError(
                f"SamplingParams.top_k: must be -1 (no limit) or >= 0, got {self.top_k}"
            )


@wire
@attrs.frozen(kw_only=True)
class CreateSamplingSessionRequest(WireModel):
    """Body of POST /api/v1/create_sampling_session."""

    session_id: str
    sampling_session_seq_id: int
    base_model: str | None = None
    model_path: str | None = None
    type: Literal["create_sampling_session"] = "create_sampling_session"


@wire
@attrs.define(kw_only=True)
class CreateSamplingSessionResponse(WireModel):
    """Answer of create_sampling_session: the sampler's id."""

    type: Literal["create_sampling_session"] = "create_sampling_session"
    sampling_session_id: str


@wire
@attrs.frozen(kw_only=True)
class SampleRequest(WireModel):
    """Body of POST /api/v1/asample."""

    num_samples: int = 1
    prompt: ModelInput
    sampling_params: SamplingParams
    base_model: str | None = None
    model_path: str | None = None
    sampling_session_id: str | None = None
    seq_id: int | None = None
    prompt_logprobs: bool | None = None
    topk_prompt_logprobs: int = 0
    topk_sample_logprobs: int = 0
    target_prompt_logprobs: TensorData | None = None
    prompt_alt_tokens_k: int = 0
    prompt_logprobs_last_n: int | None = None
    record_stability_info: bool | None = None
    type: Literal["sample"] = "sample"

    def _validate(self) -> None:
        if self.num_samples < 1:
            raise ValueError(f"SampleRequest.num_samples: must be >= 1, got {self.num_samples}")
        for name in ("topk_prompt_logprobs", "topk_sample_logprobs", "prompt_alt_tokens_k"):
            if getattr(self, name) < 0:
                raise ValueError(f"SampleRequest.{name}: must be >= 0, got {getattr(self, name)}")
        last_n = self.prompt_logprobs_last_n
        if last_n is not None:
            if last_n < 1:
                raise ValueError(
                    f"SampleRequest.prompt_logprobs_last_n: must be >= 1, got {last_n}"
                )
            if not self.prompt_logprobs:
                raise ValueError(
                    "SampleRequest.prompt_logprobs_last_n: needs prompt_logprobs "
                    "(include_prompt_logprobs=True)"
                )
        if self.target_prompt_logprobs is not None:
            check_target_prompt_logprobs(self.target_prompt_logprobs, self.prompt)


def check_target_prompt_logprobs(target: TensorData, prompt: ModelInput | None = None) -> None:
    """ValueError unless `target` is int64, 2-D and (when the prompt's length is known) has
    one row per prompt position after the first."""
    where = "target_prompt_logprobs"
    if target.dtype != "int64":
        raise ValueError(f"{where}: dtype must be int64 (token ids), got {target.dtype}")
    shape = target.shape if target.shape is not None else list(target.to_numpy().shape)
    if len(shape) != 2:
        raise ValueError(f"{where}: must be 2-D [len(prompt) - 1, K], got shape {shape}")
    if prompt is not None:
        try:
            length = prompt.length
        except ValueError:
            return  # an image without a token count: the server checks the rows
        if shape[0] != length - 1:
            raise ValueError(f"{where}: needs len(prompt) - 1 = {length - 1} rows, got {shape[0]}")


# Empty cells of a top-k table: token 0 with this logprob.
MASK_LOGPROB = -99999.0
TopkRows = list[list[tuple[int, float]] | None]


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class TopkLogprobs:
    """A dense top-k table: `token_ids` (int32) and `logprobs` (float32), both (length, k);
    empty cells hold token 0 and MASK_LOGPROB."""

    token_ids: Any
    logprobs: Any

    def __post_init__(self) -> None:
        import numpy as np

        ids = np.asarray(self.token_ids, dtype=np.int32)
        lps = np.asarray(self.logprobs, dtype=np.float32)
        if ids.ndim != 2 or ids.shape != lps.shape:
            raise ValueError(
                "TopkLogprobs: token_ids and logprobs must be 2-D of one shape, got "
                f"{ids.shape} and {lps.shape}"
            )
        object.__setattr__(self, "token_ids", ids)
        object.__setattr__(self, "logprobs", lps)

    __repr__ = fields_repr

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TopkLogprobs):
            return NotImplemented
        return values_equal(self.token_ids, other.token_ids) and values_equal(
            self.logprobs, other.logprobs
        )

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[tuple[int, float]] | None]) -> TopkLogprobs:
        """The table of (token, logprob) rows; short rows are padded, None rows masked."""
        import numpy as np

        k = max((len(row) for row in rows if row), default=0)
        token_ids = np.zeros((len(rows), k), np.int32)
        logprobs = np.full((len(rows), k), MASK_LOGPROB, np.float32)
        for index, row in enumerate(rows):
            for column, (token, logprob) in enumerate(row or ()):
                token_ids[index, column] = token
                logprobs[index, column] = logprob
        return cls(token_ids=token_ids, logprobs=logprobs)

    def tolist(self) -> TopkRows:
        """Rows of (token, logprob) pairs: a row starting with an empty cell is None, trailing
        empty cells are dropped; no positions or k = 0 give []."""
        length, k = self.token_ids.shape
        if length == 0 or k == 0:
            return []
        filled = (self.token_ids != 0) | (self.logprobs != MASK_LOGPROB)
        rows: TopkRows = []
        table = zip(self.token_ids.tolist(), self.logprobs.tolist(), filled.tolist(), strict=True)
        for ids, lps, cells in table:
            if not cells[0]:
                rows.append(None)
                continue
            width = len(cells)
            while not cells[width - 1]:
                width -= 1
            rows.append(list(zip(ids[:width], lps[:width], strict=True)))
        return rows


def _topk(name: str, value: Any) -> TopkLogprobs | None:
    if value is None or isinstance(value, TopkLogprobs):
        return value
    if isinstance(value, (list, tuple)):
        return TopkLogprobs.from_rows(value)
    raise TypeError(f"{name}: expected TopkLogprobs or rows of (token, logprob), got {value!r}")


def _tensor(name: str, value: Any) -> TensorData | None:
    if value is None or isinstance(value, TensorData):
        return value
    if isinstance(value, Mapping):
        return TensorData.model_validate(value)
    raise TypeError(f"{name}: expected TensorData, got {type(value).__name__}")


def _array(name: str, value: Any, dtype: str, optional: bool) -> Any:
    """A 1-D array of `dtype` from a list or an array (None when allowed)."""
    import numpy as np

    if value is None:
        if optional:
            return None
        raise TypeError(f"{name}: required")
    if is_numpy_array(value) and value.dtype == dtype and value.ndim == 1:
        return value
    if isinstance(value, (str, bytes, Mapping)):
        raise TypeError(f"{name}: expected a list of numbers, got {value!r}")
    try:
        array = np.asarray(value, dtype=np.float64 if dtype == "float32" else np.int64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a list of numbers, got {value!r}") from None
    if array.ndim != 1:
        raise ValueError(f"{name}: must be 1-D, got shape {list(array.shape)}")
    if dtype == "int32" and array.size and (array.min() < -(2**31) or array.max() >= 2**31):
        raise ValueError(f"{name}: a token id does not fit in int32")
    return array.astype(dtype)


@data_model
@dataclasses.dataclass(frozen=True)
class PromptAltTokens(DataModel):
    """k draws from the next-token distribution at every prompt position after the first:
    `tokens` (int64) and their `logprobs` (float32), both [len(prompt) - 1, k]."""

    _json_keys = ("tokens", "logprobs")

    tokens: TensorData
    logprobs: TensorData

    def __post_init__(self) -> None:
        tokens = _tensor("PromptAltTokens.tokens", self.tokens)
        logprobs = _tensor("PromptAltTokens.logprobs", self.logprobs)
        assert tokens is not None and logprobs is not None
        if tokens.dtype != "int64" or logprobs.dtype != "float32":
            raise ValueError(
                "PromptAltTokens: tokens must be int64 and logprobs float32, got "
                f"{tokens.dtype} and {logprobs.dtype}"
            )
        if tokens.to_numpy().shape != logprobs.to_numpy().shape:
            raise ValueError("PromptAltTokens: tokens and logprobs must have one shape")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "logprobs", logprobs)


@data_model
@dataclasses.dataclass(frozen=True, init=False)
class SampledSequence(DataModel):
    """One generated continuation (prompt not included), numpy-backed; `tokens`,
    `logprobs` and `topk_logprobs` are list views computed once. `sequence_id` is the server's id
    of the sequence, None when the server named none (a 0.5.1 server). The constructor also
    takes the 0.5.1 list fields (`tokens=`, `logprobs=`)."""

    _json_keys = ("stop_reason", "tokens", "logprobs", "sequence_id", "topk_logprobs")
    _json_aliases = {
        "tokens_np": "tokens",
        "logprobs_np": "logprobs",
        "topk_logprobs_np": "topk_logprobs",
    }
    _json_optional = {"sequence_id": None, "topk_logprobs": None}

    stop_reason: StopReason
    sequence_id: str | None = None
    tokens_np: Any = None
    logprobs_np: Any = None
    topk_logprobs_np: TopkLogprobs | None = None

    def __init__(
        self,
        stop_reason: StopReason,
        sequence_id: str | None = None,
        tokens_np: npt.NDArray[Any] | None = None,
        logprobs_np: npt.NDArray[Any] | None = None,
        topk_logprobs_np: TopkLogprobs | None = None,
        *,
        tokens: Sequence[int] | None = None,
        logprobs: Sequence[float] | None = None,
        topk_logprobs: TopkRows | None = None,
    ) -> None:
        if stop_reason not in ("length", "stop"):
            raise ValueError(
                f"SampledSequence.stop_reason: expected 'length' or 'stop', got {stop_reason!r}"
            )
        if sequence_id is not None and not isinstance(sequence_id, str):
            raise TypeError(
                f"SampledSequence.sequence_id: expected a str or None, got {sequence_id!r}"
            )
        object.__setattr__(self, "stop_reason", stop_reason)
        object.__setattr__(self, "sequence_id", sequence_id)
        tokens_value = tokens_np if tokens is None else tokens
        object.__setattr__(
            self, "tokens_np", _array("SampledSequence.tokens", tokens_value, "int32", False)
        )
        logprobs_value = logprobs_np if logprobs is None else logprobs
        object.__setattr__(
            self, "logprobs_np", _array("SampledSequence.logprobs", logprobs_value, "float32", True)
        )
        topk = topk_logprobs_np if topk_logprobs is None else topk_logprobs
        object.__setattr__(self, "topk_logprobs_np", _topk("SampledSequence.topk_logprobs", topk))

    @functools.cached_property
    def tokens(self) -> list[int]:
        """The generated token ids."""
        return self.tokens_np.tolist()  # type: ignore[no-any-return]

    @functools.cached_property
    def logprobs(self) -> list[float] | None:
        """The logprob of each generated token, when the server sent them."""
        return None if self.logprobs_np is None else self.logprobs_np.tolist()

    @functools.cached_property
    def topk_logprobs(self) -> TopkRows | None:
        """Top-k (token, logprob) pairs at each generated position, when asked for."""
        return None if self.topk_logprobs_np is None else self.topk_logprobs_np.tolist()


def _sequence(index: int, value: Any) -> SampledSequence:
    if isinstance(value, SampledSequence):
        return value
    if isinstance(value, Mapping):
        return SampledSequence.model_validate(value)
    raise TypeError(f"SampleResponse.sequences[{index}]: expected a SampledSequence, got {value!r}")


def _prompt_logprobs(value: Any) -> Any:
    """Prompt logprobs as a float32 array, None entries (unscored positions) as NaN."""
    if value is None or is_numpy_array(value):
        return (
            None
            if value is None
            else _array("SampleResponse.prompt_logprobs", value, "float32", True)
        )
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise TypeError(f"SampleResponse.prompt_logprobs: expected a list, got {value!r}")
    return _array(
        "SampleResponse.prompt_logprobs",
        [math.nan if item is None else item for item in value],
        "float32",
        True,
    )


@data_model
@dataclasses.dataclass(frozen=True, init=False)
class SampleResponse(DataModel):
    """Result of a sample: the sequences and, when asked for, prompt scores; numpy-backed
    with list views (`prompt_logprobs`, `topk_prompt_logprobs`) computed once. The
    constructor also takes the 0.5.1 list fields."""

    _json_keys = (
        "sequences",
        "type",
        "prompt_logprobs",
        "topk_prompt_logprobs",
        "prompt_cache_hit_tokens",
        "target_prompt_logprobs",
        "prompt_alt_tokens",
    )
    _json_aliases = {
        "prompt_logprobs_np": "prompt_logprobs",
        "topk_prompt_logprobs_np": "topk_prompt_logprobs",
    }
    _json_always = frozenset({"type"})
    _json_optional = {
        "prompt_cache_hit_tokens": 0,
        "target_prompt_logprobs": None,
        "prompt_alt_tokens": None,
    }

    sequences: Sequence[SampledSequence]
    prompt_logprobs_np: Any = None
    topk_prompt_logprobs_np: TopkLogprobs | None = None
    target_prompt_logprobs: TensorData | None = None
    prompt_cache_hit_tokens: int = 0
    prompt_alt_tokens: PromptAltTokens | None = None

    def __init__(
        self,
        sequences: Sequence[SampledSequence],
        prompt_logprobs_np: npt.NDArray[Any] | None = None,
        topk_prompt_logprobs_np: TopkLogprobs | None = None,
        target_prompt_logprobs: TensorData | None = None,
        prompt_cache_hit_tokens: int = 0,
        prompt_alt_tokens: PromptAltTokens | None = None,
        *,
        prompt_logprobs: Sequence[float | None] | None = None,
        topk_prompt_logprobs: TopkRows | None = None,
        type: Literal["sample"] = "sample",
    ) -> None:
        if type != "sample":
            raise ValueError(f"SampleResponse.type: expected 'sample', got {type!r}")
        if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Sequence):
            raise TypeError(f"SampleResponse.sequences: expected a list, got {sequences!r}")
        if isinstance(prompt_cache_hit_tokens, bool) or not isinstance(
            prompt_cache_hit_tokens, int
        ):
            raise TypeError(
                "SampleResponse.prompt_cache_hit_tokens: expected an int, "
                f"got {prompt_cache_hit_tokens!r}"
            )
        alt = prompt_alt_tokens
        if isinstance(alt, Mapping):
            alt = PromptAltTokens.model_validate(alt)
        elif alt is not None and not isinstance(alt, PromptAltTokens):
            raise TypeError(
                f"SampleResponse.prompt_alt_tokens: expected PromptAltTokens, got {alt!r}"
            )
        set_ = functools.partial(object.__setattr__, self)
        set_("sequences", [_sequence(i, item) for i, item in enumerate(sequences)])
        set_(
            "prompt_logprobs_np",
            _prompt_logprobs(prompt_logprobs_np if prompt_logprobs is None else prompt_logprobs),
        )
        topk = topk_prompt_logprobs_np if topk_prompt_logprobs is None else topk_prompt_logprobs
        set_("topk_prompt_logprobs_np", _topk("SampleResponse.topk_prompt_logprobs", topk))
        set_(
            "target_prompt_logprobs",
            _tensor("SampleResponse.target_prompt_logprobs", target_prompt_logprobs),
        )
        set_("prompt_cache_hit_tokens", prompt_cache_hit_tokens)
        set_("prompt_alt_tokens", alt)

    @property
    def type(self) -> Literal["sample"]:
        """Always "sample" (the 0.5.1 discriminator)."""
        return "sample"

    @functools.cached_property
    def prompt_logprobs(self) -> list[float | None] | None:
        """The logprob of each prompt token (None where not scored), when asked for."""
        values = self.prompt_logprobs_np
        if values is None:
            return None
        import numpy as np

        listed: list[float | None] = values.tolist()
        for index in np.flatnonzero(np.isnan(values)).tolist():
            listed[index] = None
        return listed

    @functools.cached_property
    def topk_prompt_logprobs(self) -> TopkRows | None:
        """Top-k (token, logprob) pairs at each prompt position, when asked for."""
        topk = self.topk_prompt_logprobs_np
        return None if topk is None else topk.tolist()
