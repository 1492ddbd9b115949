"""The baselines CoDA is compared with, as ``transformers`` logits processors.

Context-aware decoding (:class:`CADLogitsProcessor`, Shi et al. 2023), expert-amateur contrastive
decoding (:class:`ContrastiveDecodingLogitsProcessor`, Li et al. 2023) and DoLa
(:class:`DoLaLogitsProcessor`, Chuang et al. 2024). Each contrasts generate's distribution with
a second one computed alongside it in its own cached stream (:class:`_AltStreamProcessor`): the
prompts without their context, a smaller model, or the same model's early layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import LogitsProcessor

from overshadow_lab.decoding.coda import plausible
from overshadow_lab.decoding.kv_cache import _Stream


class _AltStreamProcessor(LogitsProcessor):
    """Base for contrasts with a second input or model that keeps its own KV cache."""

    def __init__(
        self,
        model,
        prompts: Sequence[Sequence[int]],
        pad_token_id: int = 0,
        hidden_states: bool = False,
    ):
        self.alt_model, self.alt_prompts = model, [[int(t) for t in p] for p in prompts]
        self.pad_token_id, self._hidden = int(pad_token_id), hidden_states
        self.stream: _Stream | None = None

    def _alt(self, input_ids: torch.LongTensor) -> torch.Tensor:
        if input_ids.shape[0] != len(self.alt_prompts):
            raise ValueError(
                f"built for {len(self.alt_prompts)} prompts, generate passed {input_ids.shape[0]} rows"
            )
        if self.stream is None:
            self.stream = _Stream(self.alt_model, self.alt_prompts, self.pad_token_id, self._hidden)
            return self.stream.logp
        return self.stream.step(input_ids[:, -1])


class CADLogitsProcessor(_AltStreamProcessor):
    """Context-aware decoding (Shi et al. 2023): ``(1 + alpha) log p(y|c, x) - alpha log p(y|x)``.

    generate gets the prompts with the context; ``plain_prompts`` are the same prompts without it.
    ``alpha=0`` is greedy decoding. ``plausibility`` optionally restricts to Li et al.'s head.
    """

    def __init__(
        self,
        model,
        plain_prompts,
        alpha: float = 0.5,
        plausibility: float | None = None,
        pad_token_id: int = 0,
    ):
        super().__init__(model, plain_prompts, pad_token_id)
        self.alpha, self.plausibility = float(alpha), plausibility

    @torch.no_grad()
    def __call__(self, input_ids, scores):
        logp = F.log_softmax(scores.float(), dim=-1)
        plain = self._alt(input_ids)
        out = (1 + self.alpha) * logp - self.alpha * plain
        if self.plausibility is not None:
            out = out.masked_fill(~plausible(logp, self.plausibility), -math.inf)
        return out.to(scores.dtype)


class ContrastiveDecodingLogitsProcessor(_AltStreamProcessor):
    """Expert-amateur contrastive decoding (Li et al. 2023): ``log p_expert - log p_amateur`` on
    the expert's plausible head (``alpha``), ``-inf`` elsewhere. The amateur must share the
    expert's tokenizer; it reads the same prompts."""

    def __init__(
        self,
        amateur,
        prompts,
        alpha: float = 0.1,
        amateur_temperature: float = 1.0,
        pad_token_id: int = 0,
    ):
        super().__init__(amateur, prompts, pad_token_id)
        self.alpha, self.temperature = float(alpha), float(amateur_temperature)

    @torch.no_grad()
    def __call__(self, input_ids, scores):
        logp = F.log_softmax(scores.float(), dim=-1)
        amateur = self._alt(input_ids)
        if self.temperature != 1.0:
            amateur = F.log_softmax(amateur / self.temperature, dim=-1)
        out = (logp - amateur).masked_fill(~plausible(logp, self.alpha), -math.inf)
        return out.to(scores.dtype)


def _final_norm(model):
    """The model's final normalisation layer, applied before the output head (DoLa's early exit
    reads the intermediate hidden states through it)."""
    base = model.base_model
    for name in ("norm", "final_layer_norm", "ln_f", "final_layernorm"):
        if hasattr(base, name):
            return getattr(base, name)
    raise ValueError(f"DoLa: cannot find the final layer norm of {type(model).__name__}")


def dola_layers(n_layers: int, layers: str | Sequence[int] = "high") -> list[int]:
    """Premature-layer candidates as in DoLa: ``low`` = even layers of the first half,
    ``high`` = even layers of the second half (hidden-state index; 0 is the embeddings)."""
    if not isinstance(layers, str):
        return [int(x) for x in layers]
    half = n_layers // 2
    if layers == "low":
        return list(range(0, half, 2))
    if layers == "high":
        return list(range(half, n_layers, 2))
    raise ValueError(f"layers={layers!r}: use 'low', 'high' or a list of layer indices")


class DoLaLogitsProcessor(_AltStreamProcessor):
    """DoLa (Chuang et al. 2024), re-implemented since it left transformers' core: contrast the
    final layer with the premature layer (among ``layers``) whose early-exit distribution is
    farthest in Jensen-Shannon divergence, on the final layer's plausible head (``alpha``).

    It runs its own cached pass of the same model with hidden states (twice the compute of
    greedy); DoLa's authors pair it with ``repetition_penalty=1.2``.
    """

    def __init__(
        self,
        model,
        prompts,
        layers: str | Sequence[int] = "high",
        alpha: float = 0.1,
        pad_token_id: int = 0,
    ):
        super().__init__(model, prompts, pad_token_id, hidden_states=True)
        self.layers = dola_layers(model.config.num_hidden_layers, layers)
        self.alpha = float(alpha)
        self.norm, self.head = _final_norm(model), model.get_output_embeddings()
        self.chosen_layers: list[list[int]] = []

    @torch.no_grad()
    def __call__(self, input_ids, scores):
        self._alt(input_ids)
        final = F.log_softmax(scores.float(), dim=-1)
        hidden = torch.stack([self.stream.last_hidden[i] for i in self.layers])  # (J, B, H)
        early = F.log_softmax(self.head(self.norm(hidden)).float(), dim=-1)  # (J, B, V)
        mix = torch.logaddexp(final.unsqueeze(0), early) - math.log(2)
        jsd = 0.5 * (
            F.kl_div(
                mix, final.unsqueeze(0).expand_as(early), log_target=True, reduction="none"
            ).sum(-1)
            + F.kl_div(mix, early, log_target=True, reduction="none").sum(-1)
        )
        pick = jsd.argmax(0)  # (B,)
        self.chosen_layers.append([self.layers[int(j)] for j in pick])
        premature = early[pick, torch.arange(final.shape[0], device=final.device)]
        out = (final - premature).masked_fill(~plausible(final, self.alpha), -math.inf)
        return out.to(scores.dtype)
