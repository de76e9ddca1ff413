"""What a sample request can ask about its prompt and its generated positions, computed from
logits: prompt logprobs (optionally only the last N), top-k tables with the wire's sentinel
cells, logprobs of named target tokens (dense or CSR), and alternative-token draws.

Conventions (row i of the prompt's logits is the distribution that predicts prompt token i+1):
* prompt logprobs, top-k prompt logprobs and target prompt logprobs use the untempered
  log_softmax, as the trainer computes logprobs;
* top-k sample logprobs use the distribution the sampled token's own logprob came from (the
  tempered log_softmax(z / T), untempered under greedy decoding), so a sampled token that is in
  the top k carries the same value in both;
* alternative prompt tokens are drawn with replacement at the request's temperature (greedy
  repeats the argmax; top_k / top_p do not apply), and their logprobs are those of the
  distribution they were drawn from.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.errors import UserInputError
from tinker.local.compute.transformer import log_softmax

Array = npt.NDArray[Any]

#: Empty cells of a top-k table (the wire's sentinel: token 0, logprob -99999.0).
SENTINEL_TOKEN = 0
SENTINEL_LOGPROB = -99999.0
#: Largest k of a top-k table, K of a target table or k of alternative draws.
MAX_WIDTH = 1024


@attrs.frozen
class TopkTable:
    """(n, k) token ids (int64) and logprobs (float64), best first; sentinel cells pad rows
    when k exceeds the vocabulary."""

    token_ids: Array
    logprobs: Array


@attrs.frozen
class TargetTable:
    """A [len(prompt) - 1, K] table of token ids or their logprobs: dense (`values` is 2-D)
    or CSR (`values` lists the cells, with `crow` row pointers and `col` columns)."""

    shape: tuple[int, int]
    values: Array
    crow: Array | None = None
    col: Array | None = None

    @property
    def is_sparse(self) -> bool:
        """True for the CSR layout."""
        return self.crow is not None


@attrs.frozen
class PromptAltTokens:
    """k draws per prompt position after the first: tokens (T-1, k) int64 and their
    logprobs (T-1, k) float64; row i is prompt position i+1."""

    tokens: Array
    logprobs: Array


def check_width(name: str, value: int) -> int:
    """A table width: an integer in 0..MAX_WIDTH."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UserInputError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value <= MAX_WIDTH:
        raise UserInputError(f"{name} must be in 0..{MAX_WIDTH}, got {value}")
    return int(value)


def topk_table(logp: Array, k: int) -> TopkTable:
    """The k best (token, logprob) of every row of logp (n, V), sentinel-padded past V."""
    n, vocab = logp.shape
    order = np.argsort(-logp, axis=-1, kind="stable")[:, : min(k, vocab)]
    ids = np.full((n, k), SENTINEL_TOKEN, dtype=np.int64)
    values = np.full((n, k), SENTINEL_LOGPROB, dtype=np.float64)
    ids[:, : order.shape[1]] = order
    values[:, : order.shape[1]] = np.take_along_axis(logp, order, axis=-1)
    return TopkTable(ids, values)


def first_scored(prompt_len: int, last_n: int | None, want_logprobs: bool) -> int:
    """The first prompt position that gets logprobs (1 unless prompt_logprobs_last_n)."""
    if last_n is None:
        return 1
    if not want_logprobs:
        raise UserInputError(
            "prompt_logprobs_last_n requires prompt_logprobs (include_prompt_logprobs)"
        )
    if isinstance(last_n, bool) or not isinstance(last_n, (int, np.integer)):
        raise UserInputError(f"prompt_logprobs_last_n must be an integer, got {last_n!r}")
    if not 1 <= last_n <= prompt_len - 1:
        raise UserInputError(
            f"prompt_logprobs_last_n must be in 1..{prompt_len - 1} (prompt length - 1), "
            f"got {last_n}"
        )
    return prompt_len - int(last_n)


def prompt_logprobs(tokens: Array, logp: Array, first: int) -> list[float | None]:
    """log p(x_i | x_<i) for positions first..T-1; earlier entries None."""
    picked = logp[np.arange(first - 1, len(tokens) - 1), tokens[first:]]
    return [None] * first + [float(v) for v in picked]


def topk_prompt_logprobs(logp: Array, k: int, first: int) -> list[list[tuple[int, float]] | None]:
    """Top-k (token, logprob) lists for positions first..T-1; earlier entries None."""
    table = topk_table(logp[first - 1 : -1], min(k, logp.shape[-1]))
    rows: list[list[tuple[int, float]] | None] = [None] * first
    for ids, values in zip(table.token_ids, table.logprobs, strict=True):
        rows.append([(int(t), float(v)) for t, v in zip(ids, values, strict=True)])
    return rows


def check_targets(table: TargetTable, prompt_len: int, vocab_size: int) -> None:
    """The service's rules for target_prompt_logprobs (UserInputError naming the rule)."""
    rows, width = table.shape
    what = "target_prompt_logprobs"
    if rows != prompt_len - 1:
        raise UserInputError(
            f"{what} must have len(prompt) - 1 = {prompt_len - 1} rows, got {rows}"
        )
    if not 1 <= width <= MAX_WIDTH:
        raise UserInputError(f"{what} must have 1..{MAX_WIDTH} columns, got {width}")
    ids = np.asarray(table.values)
    if not np.issubdtype(ids.dtype, np.integer):
        raise UserInputError(f"{what} must hold int64 token ids, got {ids.dtype}")
    if table.is_sparse:
        _check_csr(table, what)
    elif ids.shape != (rows, width):
        raise UserInputError(f"{what} has {list(ids.shape)} values for shape {[rows, width]}")
    bad = ids[(ids < -1) | (ids >= vocab_size)]
    if bad.size:
        raise UserInputError(
            f"{what} contains {bad[0]}: ids must be -1 (nothing) or in 0..{vocab_size - 1}"
        )
    if not np.any(ids >= 0):
        raise UserInputError(f"{what} must name at least one token id")


def _check_csr(table: TargetTable, what: str) -> None:
    rows, width = table.shape
    crow, col = np.asarray(table.crow), np.asarray(table.col)
    nnz = len(table.values)
    if crow.shape != (rows + 1,) or crow[0] != 0 or crow[-1] != nnz or np.any(np.diff(crow) < 0):
        raise UserInputError(
            f"{what}: crow_indices must have {rows + 1} non-decreasing entries from 0 to {nnz}"
        )
    if col.shape != (nnz,) or np.any((col < 0) | (col >= width)):
        raise UserInputError(f"{what}: col_indices must list {nnz} columns in 0..{width - 1}")


def score_targets(table: TargetTable, logp: Array) -> TargetTable:
    """Logprobs of the named ids in the same layout; 0.0 where the id is -1."""
    ids = np.asarray(table.values, dtype=np.int64)
    if table.is_sparse:
        rows = np.repeat(np.arange(table.shape[0]), np.diff(np.asarray(table.crow)))
    else:
        rows = np.broadcast_to(np.arange(table.shape[0])[:, None], ids.shape)
    scored = np.where(ids >= 0, logp[rows, np.maximum(ids, 0)], 0.0)
    return TargetTable(table.shape, scored, table.crow, table.col)


def draw_alt_tokens(
    logits: Array, k: int, temperature: float, rng: np.random.Generator
) -> PromptAltTokens:
    """k draws with replacement from each of rows 0..T-2 of the prompt logits."""
    z = logits[:-1].astype(np.float64)
    if len(z) == 0:
        return PromptAltTokens(np.zeros((0, k), np.int64), np.zeros((0, k), np.float64))
    if temperature == 0.0:
        logp = log_softmax(z)
        best = np.argmax(z, axis=-1)
        tokens = np.repeat(best[:, None], k, axis=1)
    else:
        logp = log_softmax(z / temperature)
        cumulative = np.cumsum(np.exp(logp), axis=-1)
        draws = rng.random((len(z), k)) * cumulative[:, -1:]
        tokens = np.stack(
            [np.searchsorted(c, u, side="right") for c, u in zip(cumulative, draws, strict=True)]
        ).reshape(len(z), k)
        tokens = np.minimum(tokens, z.shape[-1] - 1)
    return PromptAltTokens(tokens.astype(np.int64), np.take_along_axis(logp, tokens, axis=-1))
