"""The built-in Tinker losses (sum reduction): per-token loss and its gradient w.r.t. the
learner log-probs, plus validation of their inputs and configs.

Every loss maps the learner log-probs `lp` (N,) of one datum and its inputs to the
elementwise loss l_i and g_i = dL/dlp_i; the batch loss is the sum of l_i over every token of
every datum (metric "loss:sum"). With q the sampler's logprobs, A the advantages and
r = exp(lp - q) (not detached):

    cross_entropy        l = -w lp                             g = -w
    importance_sampling  l = -r A                              g = -A r
    ppo                  l = -min(r A, clip(r, lo, hi) A)      g = -A r where the unclipped
                                                                   branch is active, else 0
    cispo                l = -clip(r, lo, hi) lp A             g = -clip(r, lo, hi) A
                             (the clipped ratio is a constant)
    dro                  l = -(lp A - beta (lp - q)^2 / 2)     g = -A + beta (lp - q)
    gspo                 rho = exp(S + lp - sg(lp)) with S = mean over {i: mask_i != 0} of
                         sg(lp_i) - q_i (0 for an empty mask); then as ppo with rho for r
    stable_reinforce     r = exp(sg(lp) - b) with b the recorded behaviour log-prob (below);
                         m = [sampled] [lo <= r <= hi];  l = -m r A  g = -m A r

lo and hi are absolute ratio bounds (loss_fn_config clip_low_threshold, clip_high_threshold).

gspo (GSPO-token) reads `sequence_ratio_mask`: every token's ratio has the value of the
sequence's geometric-mean ratio over the masked tokens and the gradient of its own log-prob.
Its default band (1 - 3e-4, 1 + 4e-4) is the GSPO paper's; ratios of whole sequences move far
less than token ratios, so the band is narrow.

stable_reinforce is a REINFORCE with masked importance sampling against the sampler's recorded
behaviour (stability.py): b is the exact log-prob of each sampled token under the distribution
it was drawn from, looked up through the datum's provenance spans, not the client's `logprobs`
input. Positions not sampled (prompt spans) carry no loss, and tokens whose ratio left the
band [lo, hi] (default [0.5, 2]) are dropped rather than clipped, so that no token whose
sampler and learner disagree strongly (stale weights, other numerics) steers the update. This is
a documented variant: the service's exact formula is not public.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.errors import UserInputError

Array = npt.NDArray[Any]

#: CISPO default clip bounds: the one-sided (0, 4) clip of the current docs (the Dec 2025
#: tutorial said 0.8/1.2; pass the thresholds explicitly for that behaviour).
CISPO_DEFAULT_CLIP = (0.0, 4.0)
#: DRO default beta: the value used in the docs' example (the service default is unknown).
DRO_DEFAULT_BETA = 0.05

#: GSPO's default ratio band (the GSPO paper's epsilons 3e-4 below and 4e-4 above 1).
GSPO_DEFAULT_CLIP = (1.0 - 3e-4, 1.0 + 4e-4)
#: stable_reinforce's band: tokens whose ratio lies outside are masked.
STABLE_REINFORCE_DEFAULT_BAND = (0.5, 2.0)

RL_INPUTS = ("target_tokens", "logprobs", "advantages")
#: RL losses accept `weights` (the docs' RL example sends it) but no formula uses it.
RL_OPTIONAL = ("weights",)
#: Internal input the trainer adds for stable_reinforce: 1 where the target was sampled.
SAMPLED_MASK = "sampled_mask"


@attrs.frozen
class TokenLoss:
    """Per-token loss values and their gradient w.r.t. the learner log-probs."""

    elementwise: Array
    grad: Array


LossFormula = Callable[[Array, Mapping[str, Array], Mapping[str, float]], TokenLoss]


@attrs.frozen
class LossSpec:
    """A named loss: which inputs it takes, its config keys with defaults, and its formula."""

    name: str
    output_type: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    config_defaults: Mapping[str, float]
    formula: LossFormula
    #: True when the trainer must look up recorded behaviour log-probs (stable_reinforce).
    needs_provenance: bool = False

    def resolve_config(self, config: Mapping[str, float] | None) -> dict[str, float]:
        """Defaults overridden by `config`; unknown keys or non-numbers raise UserInputError."""
        resolved = dict(self.config_defaults)
        for key, value in (config or {}).items():
            if key not in resolved:
                allowed = ", ".join(sorted(resolved)) or "none"
                raise UserInputError(
                    f"loss_fn_config key {key!r} is not accepted by loss {self.name!r} "
                    f"(accepted keys: {allowed})"
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserInputError(f"loss_fn_config[{key!r}] must be a number, got {value!r}")
            if not np.isfinite(value):
                raise UserInputError(f"loss_fn_config[{key!r}] must be finite, got {value!r}")
            resolved[key] = float(value)
        if resolved.get("clip_low_threshold", 0.0) > resolved.get("clip_high_threshold", np.inf):
            raise UserInputError(
                f"clip_low_threshold ({resolved['clip_low_threshold']}) must not exceed "
                f"clip_high_threshold ({resolved['clip_high_threshold']})"
            )
        return resolved

    def check_inputs(
        self, index: int, length: int, inputs: Mapping[str, Array], vocab_size: int
    ) -> None:
        """Exactly the documented keys, each 1-D of length N; target ids inside the vocabulary."""
        where = f"datum {index}"
        unknown = sorted(set(inputs) - set(self.required) - set(self.optional))
        if unknown:
            raise UserInputError(
                f"{where}: loss_fn_inputs key(s) {unknown} are not accepted by loss "
                f"{self.name!r} (expected {list(self.required)})"
            )
        for key in self.required:
            if key not in inputs:
                raise UserInputError(
                    f"{where}: loss_fn_inputs is missing {key!r} for loss {self.name!r}"
                )
        for key, value in inputs.items():
            if value.ndim != 1 or value.shape[0] != length:
                raise UserInputError(
                    f"{where}: loss_fn_inputs[{key!r}] has shape {list(value.shape)}, "
                    f"expected [{length}] (the model_input length)"
                )
            if key == "target_tokens":
                if not np.issubdtype(value.dtype, np.integer):
                    raise UserInputError(
                        f"{where}: target_tokens must be integers, got {value.dtype}"
                    )
                bad = np.flatnonzero((value < 0) | (value >= vocab_size))
                if bad.size:
                    raise UserInputError(
                        f"{where}: target_tokens[{bad[0]}] = {value[bad[0]]} is outside the "
                        f"vocabulary (0..{vocab_size - 1})"
                    )
            elif not np.all(np.isfinite(value)):
                raise UserInputError(f"{where}: loss_fn_inputs[{key!r}] contains NaN or infinity")


def _cross_entropy(lp: Array, inputs: Mapping[str, Array], _: Mapping[str, float]) -> TokenLoss:
    weights = inputs["weights"].astype(lp.dtype)
    return TokenLoss(-weights * lp, -weights)


def _ratio(lp: Array, inputs: Mapping[str, Array]) -> tuple[Array, Array, Array]:
    """(r, q, A) with r = exp(lp - q) the learner/sampler probability ratio."""
    q = inputs["logprobs"].astype(lp.dtype)
    adv = inputs["advantages"].astype(lp.dtype)
    return np.exp(lp - q), q, adv


def _importance_sampling(
    lp: Array, inputs: Mapping[str, Array], _: Mapping[str, float]
) -> TokenLoss:
    ratio, _q, adv = _ratio(lp, inputs)
    return TokenLoss(-ratio * adv, -adv * ratio)


def _ppo(lp: Array, inputs: Mapping[str, Array], config: Mapping[str, float]) -> TokenLoss:
    ratio, _q, adv = _ratio(lp, inputs)
    low, high = config["clip_low_threshold"], config["clip_high_threshold"]
    clipped = np.clip(ratio, low, high)
    elementwise = -np.minimum(ratio * adv, clipped * adv)
    active = ((adv > 0) & (ratio <= high)) | ((adv < 0) & (ratio >= low))
    return TokenLoss(elementwise, np.where(active, -adv * ratio, 0.0).astype(lp.dtype))


def _cispo(lp: Array, inputs: Mapping[str, Array], config: Mapping[str, float]) -> TokenLoss:
    ratio, _q, adv = _ratio(lp, inputs)
    coefficient = np.clip(ratio, config["clip_low_threshold"], config["clip_high_threshold"])
    return TokenLoss(-coefficient * lp * adv, -coefficient * adv)


def _dro(lp: Array, inputs: Mapping[str, Array], config: Mapping[str, float]) -> TokenLoss:
    _ratio_unused, q, adv = _ratio(lp, inputs)
    beta = lp.dtype.type(config["beta"])
    gap = lp - q
    return TokenLoss(-(lp * adv - 0.5 * beta * gap * gap), -adv + beta * gap)


def _gspo(lp: Array, inputs: Mapping[str, Array], config: Mapping[str, float]) -> TokenLoss:
    q = inputs["logprobs"].astype(lp.dtype)
    adv = inputs["advantages"].astype(lp.dtype)
    masked = inputs["sequence_ratio_mask"] != 0
    mean_log_ratio = float(np.mean(lp[masked] - q[masked])) if masked.any() else 0.0
    rho = np.full_like(lp, np.exp(mean_log_ratio))
    low, high = config["clip_low_threshold"], config["clip_high_threshold"]
    elementwise = -np.minimum(rho * adv, np.clip(rho, low, high) * adv)
    active = ((adv > 0) & (rho <= high)) | ((adv < 0) & (rho >= low))
    return TokenLoss(elementwise, np.where(active, -adv * rho, 0.0).astype(lp.dtype))


def _stable_reinforce(
    lp: Array, inputs: Mapping[str, Array], config: Mapping[str, float]
) -> TokenLoss:
    ratio, _q, adv = _ratio(lp, inputs)
    low, high = config["clip_low_threshold"], config["clip_high_threshold"]
    live = (inputs[SAMPLED_MASK] != 0) & (ratio >= low) & (ratio <= high)
    value = np.where(live, -ratio * adv, 0.0).astype(lp.dtype)
    return TokenLoss(value, value.copy())


def _clip_defaults(low: float, high: float) -> Mapping[str, float]:
    return MappingProxyType({"clip_low_threshold": low, "clip_high_threshold": high})


LOSSES: Mapping[str, LossSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            LossSpec(
                "cross_entropy",
                "CrossEntropyLossReturn",
                ("target_tokens", "weights"),
                (),
                MappingProxyType({}),
                _cross_entropy,
            ),
            LossSpec(
                "importance_sampling",
                "ImportanceSamplingLossReturn",
                RL_INPUTS,
                RL_OPTIONAL,
                MappingProxyType({}),
                _importance_sampling,
            ),
            LossSpec(
                "ppo", "PPOLossReturn", RL_INPUTS, RL_OPTIONAL, _clip_defaults(0.8, 1.2), _ppo
            ),
            LossSpec(
                "cispo",
                "CISPOLossReturn",
                RL_INPUTS,
                RL_OPTIONAL,
                _clip_defaults(*CISPO_DEFAULT_CLIP),
                _cispo,
            ),
            LossSpec(
                "dro",
                "DROLossReturn",
                RL_INPUTS,
                RL_OPTIONAL,
                MappingProxyType({"beta": DRO_DEFAULT_BETA}),
                _dro,
            ),
            LossSpec(
                "gspo",
                "GSPOLossReturn",
                (*RL_INPUTS, "sequence_ratio_mask"),
                RL_OPTIONAL,
                _clip_defaults(*GSPO_DEFAULT_CLIP),
                _gspo,
            ),
            LossSpec(
                "stable_reinforce",
                "StableReinforceLossReturn",
                ("target_tokens", "advantages"),
                ("logprobs", *RL_OPTIONAL),
                _clip_defaults(*STABLE_REINFORCE_DEFAULT_BAND),
                _stable_reinforce,
                needs_provenance=True,
            ),
        )
    }
)


def get_loss(name: str) -> LossSpec:
    """The loss called `name`; unknown names raise UserInputError listing the supported ones."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise UserInputError(
            f"unsupported loss_fn {name!r}; supported: {', '.join(LOSSES)}"
        ) from None
