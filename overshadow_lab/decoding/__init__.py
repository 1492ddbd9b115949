"""Contrastive decoding against knowledge overshadowing: CoDA and its baselines.

CoDA {zhang2025law} (called self-contrastive decoding in {zhang2024overshadowing}) asks, before it
answers, whether some part of the prompt is being *ignored*: it deletes (or replaces) one
candidate span of the prompt at a time, compares the next-token distributions with and without
it, raises an **alarm** when the comparison says the span was overshadowed, and then decodes
with a contrast that amplifies what that span contributes. SPEC §6 gives the formulas:

* plausible sets ``V_top(X) = {y : p(y|X) >= alpha * max p(.|X)}`` (Li et al.'s head);
* on ``C = V_top(X) ∩ V_top(X')``: ``R-PMI(y) = log p(y|X) - log p(y|X')``;
  ``R-PMI_sum = Σ min(R-PMI, 0)``; ``S = {y in C : R-PMI(y) < 0}``;
* escaping tokens ``V_esc = V_top(X) \\ V_top(X')``;
  ``ERM = Σ_{y in V_esc} (log p(y|X) - min_{y' in S} log p(y'|X'))``;
* indicator ``= R-PMI_sum + ERM``; ``> 0`` means overshadowed (the alarm);
* amplified score: ``R-PMI(y)`` on ``C``, ``log p(y|X) - min_S log p(.|X')`` on ``V_esc``,
  ``-inf`` elsewhere; the next token is its argmax (or a sample from it).

Every choice the papers leave open is a field of :class:`CoDAConfig`. The module offers the same
algorithm twice: :func:`coda_reference`, a short loop that recomputes everything from scratch, and
:class:`CoDALogitsProcessor`, a ``transformers`` logits processor for ``model.generate`` that
evaluates the masked variants of a batch of prompts in a few batched forward passes, each variant
reusing its prompt's KV cache for the tokens before the masked span, and keeps KV caches for the
prompts (generate's own) and for the masked prompts (its own). The tests check that the two
agree token for token.

Baselines, also as logits processors: context-aware decoding (:class:`CADLogitsProcessor`),
expert-amateur contrastive decoding (:class:`ContrastiveDecodingLogitsProcessor`) and DoLa
(:class:`DoLaLogitsProcessor`). :func:`generate` runs any of them on lists of token ids.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria

CANDIDATES = ("token", "word", "entity")
MASKS = ("delete", "replace")
SELECTS = ("max", "first")
DETECTS = ("once", "every_step")
EMPTY_S = ("skip", "common_min")
METHODS = ("greedy", "coda", "cad", "cd", "dola")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoDAConfig:
    """CoDA's parameters; each OPEN choice of the papers is a field with a documented default.

    alpha: plausibility head of Li et al. (2023), 0.01 as in the paper.
    candidates: what is masked, one at a time: ``"token"`` (every token, the paper's "vanilla"),
        ``"word"`` (whole words, punctuation-only words skipped) or ``"entity"`` (runs of
        capitalised words or numbers: a cheap stand-in for the paper's entity tagger). Needs a
        tokenizer for ``word``/``entity``; explicit spans can also be passed to the decoder.
    mask: ``"delete"`` the span (default: X' is X without it) or ``"replace"`` each of its
        tokens by ``mask_token_id``.
    select: which flagged span is contrasted: ``"max"`` indicator (default) or the ``"first"``
        span (left to right) whose indicator is positive.
    detect: run detection ``"once"`` per prompt before generation (default; the masked span then
        stays fixed) or at ``"every_step"``.
    empty_s: when ``S`` is empty, ``min_S`` is undefined: ``"skip"`` (default) treats the span as
        not overshadowed (indicator ``-inf``); ``"common_min"`` uses the smallest
        ``log p(.|X')`` over ``V_top(X')`` instead.
    threshold: the alarm fires when indicator > threshold (the paper: 0).
    amplify: False computes the alarm but decodes greedily (the contrast switched off).
    max_candidates: keep only the last K candidate spans (nearest to the answer); None keeps all.
    variant_batch_size: the most masked variants per forward pass (default 64: on a CPU larger
        batches were slower, and it bounds memory on long prompts); None sets no limit (all in
        one pass without ``share_prefix``); 1 is one plain pass per variant over its whole masked
        prompt, never sharing a prefix (the slow way, kept for the speed comparison).
    share_prefix: reuse the prompt's KV cache for the tokens before the masked span (default
        True). A variant that masks the span ``[a, b)`` (deleted or replaced) equals the prompt
        on its first ``a`` tokens, at the same positions, so its keys and values there are the
        prompt's: they come from the prompt's own pass (generate's, when :func:`generate` runs
        it), and each variant feeds only its tokens from ``a`` on, about half of them for
        ``candidates="token"``. Variants are sorted by how many tokens they feed and cut into
        passes (at most ``variant_batch_size`` each) where that saves more padding than a pass
        costs. The same results up to float rounding. Not used with ``variant_batch_size=1``,
        nor for a model whose cache is not plain per-layer keys and values (sliding windows,
        recurrent states: every variant is then a full pass).
    """

    alpha: float = 0.01
    candidates: str = "token"
    mask: str = "delete"
    mask_token_id: int | None = None
    select: str = "max"
    detect: str = "once"
    empty_s: str = "skip"
    threshold: float = 0.0
    amplify: bool = True
    max_candidates: int | None = None
    variant_batch_size: int | None = 64
    share_prefix: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("candidates", CANDIDATES),
            ("mask", MASKS),
            ("select", SELECTS),
            ("detect", DETECTS),
            ("empty_s", EMPTY_S),
        ]
        for name, allowed in checks:
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(
                    f"CoDAConfig.{name}={value!r} is not valid: use one of {', '.join(allowed)}"
                )
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(
                f"CoDAConfig.alpha={self.alpha} must lie in (0, 1]; the paper uses 0.01"
            )
        if self.mask == "replace" and self.mask_token_id is None:
            raise ValueError(
                "CoDAConfig(mask='replace') needs mask_token_id (e.g. tokenizer.unk_token_id)"
            )
        if self.max_candidates is not None and self.max_candidates < 1:
            raise ValueError(
                "CoDAConfig.max_candidates must be >= 1, or None to keep every candidate"
            )
        if self.variant_batch_size is not None and self.variant_batch_size < 1:
            raise ValueError(
                "CoDAConfig.variant_batch_size must be >= 1, or None for one batched pass"
            )


# --------------------------------------------------------------------------------------------
# the arithmetic of one step
# --------------------------------------------------------------------------------------------
def plausible(logp: torch.Tensor, alpha: float) -> torch.Tensor:
    """Li et al.'s plausible set: ``p(y) >= alpha * max p`` (boolean mask over the last axis)."""
    return logp >= logp.max(dim=-1, keepdim=True).values + math.log(alpha)


class CoDAStep(NamedTuple):
    indicator: torch.Tensor  # (...,) R-PMI_sum + ERM
    rpmi_sum: torch.Tensor  # (...,)
    erm: torch.Tensor  # (...,)
    scores: torch.Tensor  # (..., V) amplified scores, -inf outside V_top(X)


def coda_step(
    logp: torch.Tensor, logp_masked: torch.Tensor, alpha: float = 0.01, empty_s: str = "skip"
) -> CoDAStep:
    """Indicator and amplified scores from ``log p(.|X)`` and ``log p(.|X')`` (any leading shape)."""
    top, top_m = plausible(logp, alpha), plausible(logp_masked, alpha)
    common, esc = top & top_m, top & ~top_m
    rpmi = logp - logp_masked
    rpmi_sum = torch.where(common, rpmi.clamp(max=0.0), torch.zeros_like(rpmi)).sum(-1)
    in_s = common & (rpmi < 0)
    inf = torch.full_like(logp_masked, math.inf)
    s_min = torch.where(in_s, logp_masked, inf).min(-1).values
    s_empty = ~in_s.any(-1)
    if empty_s == "common_min":
        s_min = torch.where(s_empty, torch.where(top_m, logp_masked, inf).min(-1).values, s_min)
    esc_score = logp - s_min.unsqueeze(-1)
    erm = torch.where(esc, esc_score, torch.zeros_like(logp)).sum(-1)
    indicator = rpmi_sum + erm
    if empty_s == "skip":
        indicator = torch.where(s_empty, torch.full_like(indicator, -math.inf), indicator)
    scores = torch.where(common, rpmi, torch.where(esc, esc_score, -inf))
    return CoDAStep(indicator, rpmi_sum, erm, scores)


def _indicators(
    logp: torch.Tensor,
    blocks: Iterable[tuple[int, torch.Tensor]],
    alpha: float = 0.01,
    empty_s: str = "skip",
) -> torch.Tensor:
    """``coda_step(...).indicator`` for the masked rows of many prompts, on ``V_top(X)`` only.

    ``blocks`` are ``(b, rows)``: log-probabilities ``rows`` (n, V) of masked variants of the
    prompt of row ``b`` of ``logp``; the result is their indicators, block after block. The
    indicator only sums over ``V_top(X)``, usually a few tokens, so each block is cut down to
    those columns; what needs the whole vocabulary is the max of each masked row (and, for
    ``empty_s="common_min"``, its smallest plausible value). Sets are applied by multiplying
    with masks (``torch.where`` is several times slower on a CPU); the numbers are
    coda_step's, summed in another order.
    """
    top = plausible(logp, alpha)
    # -inf (a token banned by a processor or a model) times a 0 mask would be NaN; such a token
    # is in no plausible set, so what the clamp changes is never used
    lowest = torch.finfo(logp.dtype).min
    finite = logp.clamp(min=lowest)
    log_alpha, vocab = math.log(alpha), logp.shape[-1]
    parts = []
    for b, rows in blocks:
        if len(rows) == 0:
            continue
        threshold = rows.amax(dim=-1, keepdim=True) + log_alpha
        ids = top[b].nonzero()[:, 0]
        if 8 * len(ids) < vocab:
            lp, lpm, in_top = finite[b, ids], rows.index_select(-1, ids), None
        else:  # a flat distribution (an untrained model): cutting would not save anything
            lp, lpm, in_top = finite[b], rows, top[b]
        lpm = lpm.clamp(min=lowest)
        top_m = lpm >= threshold
        common, esc = top_m, ~top_m
        if in_top is not None:
            common, esc = common & in_top, esc & in_top
        rpmi = lp - lpm
        in_s = common & (rpmi < 0)
        rpmi_sum = (rpmi * in_s).sum(-1)  # R-PMI clamped at 0, summed on the common set
        s_empty = ~in_s.amax(-1)
        # log-probabilities are <= 0, so the min over S is minus the max of -log p' * [S]
        s_min = -((-lpm) * in_s).amax(-1)
        if empty_s == "common_min":
            m_min = -((-rows.clamp(min=lowest)) * (rows >= threshold)).amax(-1)
            s_min = torch.where(s_empty, m_min, s_min)
        else:
            s_min = s_min.masked_fill(s_empty, 0.0)  # S empty: the indicator is -inf below
        erm = ((lp - s_min.unsqueeze(-1)) * esc).sum(-1)
        indicator = rpmi_sum + erm
        if empty_s == "skip":
            indicator = indicator.masked_fill(s_empty, -math.inf)
        parts.append(indicator)
    return torch.cat(parts) if parts else logp.new_zeros(0)


def _amplified(
    logp: torch.Tensor, logp_masked: torch.Tensor, alpha: float = 0.01, empty_s: str = "skip"
) -> torch.Tensor:
    """``coda_step(logp, logp_masked, ...).scores`` (both (R, V)), computed on ``V_top(X)``.

    Outside ``V_top(X)`` the scores are ``-inf``; inside they take the same float operations as
    in coda_step, so the result is the same tensor, for a few whole-vocabulary passes instead of
    about twenty (it runs at every generated token).
    """
    top = plausible(logp, alpha)
    width = int(top.sum(-1).max())
    if 8 * width >= logp.shape[-1]:  # a flat distribution: nothing to save
        return coda_step(logp, logp_masked, alpha, empty_s).scores
    ids = logp.topk(width, dim=-1).indices  # V_top(X) is the top |V_top(X)| of each row
    valid, lp = top.gather(-1, ids), logp.gather(-1, ids)
    lpm = logp_masked.gather(-1, ids)
    threshold = logp_masked.max(dim=-1, keepdim=True).values + math.log(alpha)
    top_m = lpm >= threshold
    common, esc = valid & top_m, valid & ~top_m
    rpmi = lp - lpm
    in_s = common & (rpmi < 0)
    inf = torch.full_like(lpm, math.inf)
    s_min = torch.where(in_s, lpm, inf).min(-1).values
    if empty_s == "common_min":
        s_empty = ~in_s.any(-1)
        if bool(s_empty.any()):
            plaus_m = logp_masked >= threshold
            m_min = torch.where(plaus_m, logp_masked, math.inf).min(-1).values
            s_min = torch.where(s_empty, m_min, s_min)
    esc_score = lp - s_min.unsqueeze(-1)
    top_scores = torch.where(common, rpmi, torch.where(esc, esc_score, -inf))
    return torch.full_like(logp, -math.inf).scatter_(-1, ids, top_scores)


def relative_pmi(
    logp: torch.Tensor, logp_masked: torch.Tensor, alpha: float = 0.01
) -> torch.Tensor:
    """R-PMI on the common plausible set, NaN elsewhere (for tables and plots)."""
    common = plausible(logp, alpha) & plausible(logp_masked, alpha)
    return torch.where(common, logp - logp_masked, torch.full_like(logp, math.nan))


def alarm_metrics(alarm: Sequence[bool], overshadowed: Sequence[bool]) -> dict[str, float]:
    """Precision, recall, F1 and accuracy of the alarm as a prediction of ``overshadowed``."""
    a = torch.as_tensor([bool(x) for x in alarm])
    y = torch.as_tensor([bool(x) for x in overshadowed])
    if a.shape != y.shape:
        raise ValueError(f"alarm ({a.numel()}) and overshadowed ({y.numel()}) need the same length")
    tp, fp = int((a & y).sum()), int((a & ~y).sum())
    fn, tn = int((~a & y).sum()), int((~a & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else (0.0 if fp + fn else math.nan)
    n = tp + fp + fn + tn
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / n if n else math.nan,
        "n": n,
        "alarms": tp + fp,
        "overshadowed": tp + fn,
    }


# --------------------------------------------------------------------------------------------
# candidate spans and masking
# --------------------------------------------------------------------------------------------
_PUNCT = re.compile(r"^[\W_]*$")


def candidate_spans(
    prompt: Sequence[int],
    candidates: str = "token",
    tokenizer=None,
    max_candidates: int | None = None,
) -> list[tuple[int, int]]:
    """Half-open token spans ``(start, end)`` of ``prompt`` to mask one at a time.

    ``token``: every token (special tokens of the tokenizer skipped). ``word``: tokens grouped
    into words (a token starting with a space or following a newline or punctuation starts a
    word); words of punctuation or whitespace only are skipped. ``entity``: runs of words that
    start with a capital letter or contain a digit. A span that is the whole prompt is never a
    candidate (deleting it would leave nothing to condition on).
    """
    if candidates not in CANDIDATES:
        raise ValueError(f"candidates={candidates!r}: use one of {', '.join(CANDIDATES)}")
    ids = [int(t) for t in prompt]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    if candidates == "token":
        spans = [(i, i + 1) for i, t in enumerate(ids) if t not in special]
    else:
        if tokenizer is None:
            raise ValueError(
                f"candidates={candidates!r} needs a tokenizer; use 'token' or pass spans"
            )
        texts = [tokenizer.decode([t]) for t in ids]
        words: list[list[int]] = []
        prev = ""
        for i, (t, text) in enumerate(zip(ids, texts, strict=True)):
            if t in special:
                prev = "\n"
                continue
            # a tokenizer that marks no spaces in its tokens (word-level) puts one between them
            spaced = False
            if i and words and not text[:1].isspace():
                pair = tokenizer.decode([ids[i - 1], t])
                spaced = pair.startswith(texts[i - 1]) and pair[len(texts[i - 1]) :][:1].isspace()
            starts = (
                not words
                or spaced
                or text[:1].isspace()
                or prev.endswith("\n")
                or bool(_PUNCT.match(text))
                or bool(_PUNCT.match(prev))
            )
            if starts:
                words.append([i])
            else:
                words[-1].append(i)
            prev = text
        spans = []
        for w in words:
            text = "".join(texts[i] for i in w).strip()
            if text and not _PUNCT.match(text):
                spans.append((w[0], w[-1] + 1, text))
        if candidates == "entity":
            merged: list[tuple[int, int, str]] = []
            for s, e, text in spans:
                if text[:1].isupper() or any(c.isdigit() for c in text):
                    if merged and merged[-1][1] == s:
                        merged[-1] = (merged[-1][0], e, merged[-1][2] + " " + text)
                    else:
                        merged.append((s, e, text))
            spans = merged
        spans = [(s, e) for s, e, _ in spans]
    spans = [(s, e) for s, e in spans if e - s < len(ids)]
    if max_candidates is not None:
        spans = spans[-max_candidates:]
    return spans


def mask_span(
    prompt: Sequence[int],
    span: tuple[int, int],
    mask: str = "delete",
    mask_token_id: int | None = None,
) -> list[int]:
    """The prompt with one span deleted or replaced token by token with ``mask_token_id``."""
    s, e = span
    ids = [int(t) for t in prompt]
    if mask == "delete":
        return ids[:s] + ids[e:]
    if mask_token_id is None:
        raise ValueError("mask='replace' needs mask_token_id")
    return ids[:s] + [int(mask_token_id)] * (e - s) + ids[e:]


@dataclass
class Detection:
    """What CoDA found in one prompt before generating: the hallucination alarm and its evidence."""

    alarm: bool
    span: tuple[int, int] | None  # the masked span the contrast uses (None: no candidate)
    indicator: float  # the chosen span's indicator
    spans: list[tuple[int, int]] = field(default_factory=list)
    indicators: list[float] = field(default_factory=list)  # one per candidate span, at step 0


def _choose(indicators: torch.Tensor, select: str, threshold: float) -> int:
    """Index of the span to contrast: the maximum, or the first above the threshold."""
    if select == "first":
        above = (indicators > threshold).nonzero()
        if len(above):
            return int(above[0, 0])
    return int(indicators.argmax())


# --------------------------------------------------------------------------------------------
# (a) the reference loop: readable, slow, no caches
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def _next_logprobs(model, ids: Sequence[int]) -> torch.Tensor:
    device = next(model.parameters()).device
    logits = model(torch.tensor([list(ids)], device=device)).logits[0, -1]
    return F.log_softmax(logits.float(), dim=-1)


@torch.no_grad()
def coda_reference(
    model,
    prompt: Sequence[int],
    max_new_tokens: int,
    config: CoDAConfig | None = None,
    spans: list[tuple[int, int]] | None = None,
    tokenizer=None,
    eos_token_id: int | None = None,
) -> tuple[list[int], Detection]:
    """CoDA for one prompt, greedily, recomputing every distribution from scratch at each step.

    Returns the generated tokens (without the prompt; stops after ``eos_token_id``) and the
    detection made before the first token.
    """
    cfg = config or CoDAConfig()
    prompt = [int(t) for t in prompt]
    if spans is None:
        spans = candidate_spans(prompt, cfg.candidates, tokenizer, cfg.max_candidates)
    out: list[int] = []
    chosen, active, detection = None, False, None
    for step in range(max_new_tokens):
        logp = _next_logprobs(model, prompt + out)
        scores = logp
        if spans and (step == 0 or cfg.detect == "every_step"):
            variants = [mask_span(prompt, sp, cfg.mask, cfg.mask_token_id) + out for sp in spans]
            masked = torch.stack([_next_logprobs(model, v) for v in variants])
            steps = coda_step(logp.expand_as(masked), masked, cfg.alpha, cfg.empty_s)
            k = _choose(steps.indicator, cfg.select, cfg.threshold)
            chosen, active = k, bool(steps.indicator[k] > cfg.threshold)
            scores = steps.scores[k] if active else logp
            if step == 0:
                detection = Detection(
                    active,
                    spans[k],
                    float(steps.indicator[k]),
                    list(spans),
                    steps.indicator.tolist(),
                )
        elif spans and active:  # detection once: keep contrasting the span chosen at step 0
            masked = _next_logprobs(
                model, mask_span(prompt, spans[chosen], cfg.mask, cfg.mask_token_id) + out
            )
            scores = coda_step(logp, masked, cfg.alpha, cfg.empty_s).scores
        if not cfg.amplify or not torch.isfinite(scores).any():
            scores = logp
        token = int(scores.argmax())
        out.append(token)
        if eos_token_id is not None and token == eos_token_id:
            break
    if detection is None:
        detection = Detection(False, None, -math.inf, [], [])
    return out, detection


# --------------------------------------------------------------------------------------------
# (b) fast: batched, cached streams of sequences
# --------------------------------------------------------------------------------------------
def _forward_kwargs(model) -> tuple[str, bool]:
    """The cache argument's name (``cache`` from transformers 5.2x, ``past_key_values`` before)
    and whether the model can compute logits for the last position only."""
    params = inspect.signature(model.forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def _cache_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Each layer's ``(keys, values)``, shaped ``(batch, heads, length, head_dim)``, of a KV cache;
    None for a cache that cannot be cut into prefixes (sliding windows, recurrent states,
    quantised or offloaded layers: anything but plain per-layer keys and values)."""
    if cache is None:
        return None
    if isinstance(cache, (tuple, list)):  # the legacy format
        pairs = [tuple(layer[:2]) for layer in cache]
    elif hasattr(cache, "layers"):  # transformers >= 4.56
        if getattr(cache, "offloading", False):
            return None
        pairs = []
        for layer in cache.layers:
            if type(layer).__name__ != "DynamicLayer":
                return None
            pairs.append((layer.keys, layer.values))
    elif type(cache).__name__ == "DynamicCache" and hasattr(cache, "key_cache"):
        pairs = list(zip(cache.key_cache, cache.value_cache, strict=True))
    else:
        return None
    ok = all(isinstance(t, torch.Tensor) and t.dim() == 4 for pair in pairs for t in pair)
    return pairs if pairs and ok else None


def _cache_for_generate(model, generate_kwargs: dict) -> tuple[str, Any] | None:
    """``(argument, cache)``: an empty ``DynamicCache`` to hand to generate, so that CoDA reads
    the prompts' keys and values after generate's first pass; None where generate should keep
    choosing its own cache (a cache or cache type asked for, no cache, another cache class)."""
    from transformers import DynamicCache

    argument = _forward_kwargs(model)[0]
    if argument in generate_kwargs or generate_kwargs.get("use_cache") is False:
        return None
    if generate_kwargs.get("cache_implementation"):
        return None
    if getattr(getattr(model, "generation_config", None), "cache_implementation", None):
        return None
    supports = getattr(model, "_supports_default_dynamic_cache", None)
    if callable(supports) and not supports():
        return None
    try:
        return argument, DynamicCache(config=model.config)
    except TypeError:  # transformers before 4.56
        return argument, DynamicCache()


def _make_cache(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]):
    """A ``DynamicCache`` holding the given per-layer keys and values."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for i, (keys, values) in enumerate(pairs):
        cache.update(keys, values, i)
    return cache


class _Prefix:
    """The KV cache of a batch of prompts, cut into the prefixes that their masked variants share.

    A variant that masks the span ``[a, b)`` of prompt ``X`` (deleted or replaced) has ``X``'s
    first ``a`` tokens at ``X``'s positions, so its keys and values there are ``X``'s. ``pairs``
    holds each layer's keys and values of the prompts left-padded to ``width`` columns (the
    layout of generate's batch: prompt ``b`` in the last ``len(prompts[b])`` columns).
    """

    def __init__(self, pairs, prompts: Sequence[Sequence[int]], width: int):
        self.pairs, self.width = pairs, int(width)
        device = pairs[0][0].device
        self.lengths = torch.as_tensor([len(p) for p in prompts], dtype=torch.long, device=device)

    @classmethod
    def compute(cls, model, prompts: Sequence[Sequence[int]], pad_token_id: int = 0):
        """Run the prompts through the model (None if its cache cannot be cut)."""
        stream = _Stream(model, prompts, pad_token_id)
        pairs = _cache_layers(stream.cache)
        return cls(pairs, prompts, stream.mask.shape[1]) if pairs is not None else None

    @classmethod
    def from_cache(cls, cache, prompts: Sequence[Sequence[int]], input_ids: torch.Tensor):
        """The cache generate filled with ``input_ids`` (its prompts, left-padded) before its
        first call of the logits processors; None unless it holds exactly those tokens."""
        pairs = _cache_layers(cache)
        batch, width = input_ids.shape
        if pairs is None or any(k.shape[0] != batch or k.shape[2] != width for k, _ in pairs):
            return None
        for b, p in enumerate(prompts):
            if not p or input_ids[b, width - len(p) :].tolist() != list(p):
                return None
        return cls(pairs, prompts, width)

    def take(self, owners: Sequence[int], starts: Sequence[int]) -> tuple[Any, torch.Tensor] | None:
        """A KV cache and its attention mask for rows that continue prompt ``owners[i]`` after
        its first ``starts[i]`` tokens, left-padded to the longest (None when every start is 0:
        nothing to share). It holds a copy of those keys and values, as much memory as the KV
        cache of the rows' first ``max(starts)`` tokens."""
        width = max(starts, default=0)
        if width == 0:
            return None
        device = self.lengths.device
        owner = torch.as_tensor(list(owners), dtype=torch.long, device=device)
        start = torch.as_tensor(list(starts), dtype=torch.long, device=device)
        j = torch.arange(width, device=device)
        valid = j >= (width - start).unsqueeze(1)
        # prompt b fills columns [W - len_b, W), so its position p is column W - len_b + p; the
        # row's padding (masked out) takes any real column
        col = (self.width - self.lengths[owner] + start - width).unsqueeze(1) + j
        col = torch.where(valid, col, torch.full_like(col, self.width - 1))
        row = owner.unsqueeze(1).expand_as(col)
        pairs = (  # one layer at a time: the cache copies it
            (keys[row, :, col].transpose(1, 2), values[row, :, col].transpose(1, 2))
            for keys, values in self.pairs
        )
        return _make_cache(pairs), valid.long()


class _Stream:
    """A left-padded batch of sequences with a KV cache, extended by one token per step.

    With ``prefix`` (a KV cache and its attention mask, from :meth:`_Prefix.take`), each
    sequence continues the cached tokens of its row: ``seqs`` holds only the tokens after them.
    """

    def __init__(
        self,
        model,
        seqs: Sequence[Sequence[int]],
        pad_token_id: int = 0,
        hidden_states: bool = False,
        keep_cache: bool = True,
        prefix: tuple[Any, torch.Tensor] | None = None,
    ):
        self.model, self.hidden, self.keep_cache = model, hidden_states, keep_cache
        device = next(model.parameters()).device
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), int(pad_token_id), dtype=torch.long, device=device)
        mask = torch.zeros((len(seqs), width), dtype=torch.long, device=device)
        for i, s in enumerate(seqs):
            if len(s):
                ids[i, width - len(s) :] = torch.as_tensor(list(s), device=device)
                mask[i, width - len(s) :] = 1
        self.cache = None
        if prefix is not None:
            self.cache, prefix_mask = prefix
            mask = torch.cat([prefix_mask.to(mask), mask], dim=-1)
        self.mask = mask
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, mask.shape[1] - width :]
        self.logp = self._forward(ids, positions)

    @torch.no_grad()
    def _forward(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        cache_arg, keep = _forward_kwargs(self.model)
        kw: dict[str, Any] = {
            "attention_mask": self.mask,
            "position_ids": positions,
            cache_arg: self.cache,
            "use_cache": self.keep_cache or self.cache is not None,
        }
        if keep:
            kw["logits_to_keep"] = 1
        if self.hidden:
            kw["output_hidden_states"] = True
        out = self.model(ids, **kw)
        cache = out.get("cache", None) or out.get("past_key_values", None)
        self.cache = cache if self.keep_cache else None
        self.last_hidden = [h[:, -1] for h in out.hidden_states] if self.hidden else None
        return F.log_softmax(out.logits[:, -1].float(), dim=-1)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = self.mask.sum(-1, keepdim=True)
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=-1)
        self.logp = self._forward(tokens.view(-1, 1), positions)
        return self.logp


# what one more forward pass costs, in tokens fed through the model (SmolLM2-135M on two CPU
# cores: a pass took about 60-100 ms plus 1.2 ms per token; 48 to 144 all measured within noise)
_PASS_COST_TOKENS = 64


def _split(lengths: Sequence[int], most: int | None, pass_cost: int = _PASS_COST_TOKENS):
    """Cut rows sorted by length into consecutive chunks of at most ``most`` rows (None: no
    limit) that minimise the tokens fed, padding included, plus ``pass_cost`` per chunk."""
    n = len(lengths)
    if most is None or most >= n:  # no limit: cut only where the length changes
        cuts = [j for j in range(1, n + 1) if j == n or lengths[j] != lengths[j - 1]]
        before = lambda k, j: [0, *cuts[:k]]  # noqa: E731
    else:
        cuts = list(range(1, n + 1))
        before = lambda k, j: range(max(0, j - most), j)  # noqa: E731
    best, back = {0: 0.0}, {}
    for k, j in enumerate(cuts):
        best[j] = math.inf
        for i in before(k, j):
            cost = best[i] + pass_cost + (j - i) * lengths[j - 1]
            if cost < best[j]:
                best[j], back[j] = cost, i
    bounds, j = [], n
    while j:
        bounds.append((back[j], j))
        j = back[j]
    return bounds[::-1]


class _StreamGroup:
    """Many sequences, each of prompt ``owners[i]``, as chunks of streams (``chunk=None``: one
    chunk, one forward pass).

    Sequences are sorted by length before chunking, so a chunk pads little, and by prompt within
    a chunk. With ``prefix``, sequence ``i`` reuses the cached first ``starts[i]`` tokens of its
    prompt (which it must equal there) and only its tokens from ``starts[i]`` on go through the
    model; the sort is then by that length, and the chunks (at most ``chunk`` sequences,
    ``None``: no limit) are cut where that saves padding. The log-probabilities stay in the
    chunks' order (``order[j]`` is the sequence in row ``j``): :meth:`runs` reads them by prompt.
    """

    def __init__(
        self,
        model,
        seqs: Sequence[Sequence[int]],
        chunk: int | None,
        owners: Sequence[int],
        pad_token_id: int = 0,
        keep_cache: bool = True,
        prefix: _Prefix | None = None,
        starts: Sequence[int] = (),
    ):
        if prefix is not None:
            seqs = [s[a:] for s, a in zip(seqs, starts, strict=True)]
            key = lambda i: (len(seqs[i]), starts[i])  # noqa: E731
        else:
            key = lambda i: len(seqs[i])  # noqa: E731
        order = sorted(range(len(seqs)), key=key)
        if prefix is not None:
            self.bounds = _split([len(seqs[i]) for i in order], chunk)
        else:
            chunk = chunk or max(1, len(seqs))
            self.bounds = [(i, min(i + chunk, len(seqs))) for i in range(0, len(seqs), chunk)]
        # within a chunk (padded to its longest anyway) the rows of a prompt are neighbours
        self.order = [
            i for a, b in self.bounds for i in sorted(order[a:b], key=lambda k: owners[k])
        ]
        self.owners = [owners[i] for i in self.order]
        self.streams = []
        for a, b in self.bounds:
            rows = self.order[a:b]
            shared = (
                None if prefix is None else prefix.take(self.owners[a:b], [starts[i] for i in rows])
            )
            ids = [seqs[i] for i in rows]
            self.streams.append(
                _Stream(model, ids, pad_token_id, keep_cache=keep_cache, prefix=shared)
            )
            del shared  # without keep_cache, the pass's cache goes now
        self.position = torch.empty(len(seqs), dtype=torch.long)  # sequence -> row
        self.position[torch.as_tensor(self.order, dtype=torch.long)] = torch.arange(len(seqs))

    def runs(self):
        """``(prompt, rows)`` for each run of one prompt's rows within a chunk, in row order;
        ``rows`` is a view of the chunk's log-probabilities."""
        for stream, (a, b) in zip(self.streams, self.bounds, strict=True):
            lo = a
            for hi in range(a + 1, b + 1):
                if hi == b or self.owners[hi] != self.owners[lo]:
                    yield self.owners[lo], stream.logp[lo - a : hi - a]
                    lo = hi

    def rows(self, seqs: Sequence[int]) -> torch.Tensor:
        """The log-probabilities of the given sequences (by their index in ``seqs``)."""
        out = []
        for i in seqs:
            j = int(self.position[i])
            c = next(c for c, (a, b) in enumerate(self.bounds) if a <= j < b)
            out.append(self.streams[c].logp[j - self.bounds[c][0]])
        return torch.stack(out)

    def step(self, tokens: torch.Tensor) -> None:
        """Extend sequence ``i`` by ``tokens[i]``."""
        tokens = tokens[torch.as_tensor(self.order, device=tokens.device)]
        for stream, (a, b) in zip(self.streams, self.bounds, strict=True):
            stream.step(tokens[a:b])


class CoDALogitsProcessor(LogitsProcessor):
    """CoDA as a ``transformers`` logits processor: ``model.generate(..., logits_processor=[p])``.

    ``prompts`` are the unpadded token ids of the batch given to ``generate`` (left-padded there),
    in the same order; ``spans`` optionally gives each prompt's candidate spans. At the first call
    every masked variant of every prompt goes through the model in batched forward passes of at
    most ``config.variant_batch_size`` variants; with ``config.share_prefix`` each variant reuses
    its prompt's KV cache for the tokens before its masked span. With ``detect="once"`` only the
    flagged prompts then keep a KV cache for their masked prompt X' (made at the second call,
    together with the first generated token), extended by one token per step, while generate
    keeps X's. Works with greedy search and with sampling (it returns scores, not tokens).
    ``prompt_cache`` optionally is the KV cache object given to generate (``generate(...,
    cache=c)``, ``past_key_values=c`` before transformers 5; :func:`generate` does this): at the
    first call it holds the prompts' keys and values, so the prompts need no pass of their own
    (without it they get one). After generation, ``detections`` holds one :class:`Detection` per
    prompt.
    """

    def __init__(
        self,
        model,
        prompts: Sequence[Sequence[int]],
        config: CoDAConfig | None = None,
        spans: Sequence[list[tuple[int, int]]] | None = None,
        tokenizer=None,
        pad_token_id: int = 0,
        prompt_cache=None,
    ):
        self.model, self.config = model, config or CoDAConfig()
        self.prompt_cache = prompt_cache
        self.prompts = [[int(t) for t in p] for p in prompts]
        cfg = self.config
        if spans is None:
            spans = [
                candidate_spans(p, cfg.candidates, tokenizer, cfg.max_candidates)
                for p in self.prompts
            ]
        if len(spans) != len(self.prompts):
            raise ValueError(f"got {len(spans)} span lists for {len(self.prompts)} prompts")
        self.spans = [list(s) for s in spans]
        self.pad_token_id = int(pad_token_id)
        self.detections: list[Detection] = []
        self.n_variants = sum(len(s) for s in self.spans)
        self._calls = 0

    def _variants(
        self, gen: torch.Tensor, rows: Sequence[int]
    ) -> tuple[list[list[int]], list[int], list[int]]:
        seqs, owner, which = [], [], []
        cfg = self.config
        for b in rows:
            tail = gen[b].tolist()
            for k, sp in enumerate(self.spans[b]):
                seqs.append(mask_span(self.prompts[b], sp, cfg.mask, cfg.mask_token_id) + tail)
                owner.append(b)
                which.append(k)
        return seqs, owner, which

    def _starts(self, seqs: Sequence[Sequence[int]], owner: Sequence[int], which: Sequence[int]):
        """How many first tokens of each variant equal its prompt's: those before the masked span
        (at least one token of every variant is left to go through the model)."""
        return [
            min(self.spans[b][k][0], len(s) - 1) for s, b, k in zip(seqs, owner, which, strict=True)
        ]

    def _shared_prefix(self, input_ids: torch.Tensor) -> _Prefix | None:
        """The prompts' KV cache for the variants to share, or None where it is not used."""
        cfg = self.config
        if not cfg.share_prefix or cfg.variant_batch_size == 1:
            return None  # one plain pass per variant stays the plain baseline
        if self.prompt_cache is not None:
            prefix = _Prefix.from_cache(self.prompt_cache, self.prompts, input_ids)
            if prefix is not None:
                return prefix
        return _Prefix.compute(self.model, self.prompts, self.pad_token_id)

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        cfg, batch = self.config, input_ids.shape[0]
        if batch != len(self.prompts):
            raise ValueError(
                f"CoDALogitsProcessor was built for {len(self.prompts)} prompts but generate passed "
                f"{batch} rows; build it with the same prompts (num_beams=1, num_return_sequences=1)"
            )
        logp = F.log_softmax(scores.float(), dim=-1)
        first = self._calls == 0
        self._calls += 1
        if first:
            self._prompt_width = input_ids.shape[1]
            self._chosen: dict[int, tuple[int, bool]] = {}
            self.detections = [Detection(False, None, -math.inf, [], []) for _ in range(batch)]
        gen = input_ids[:, self._prompt_width :]
        rows: list[int] = []  # the prompts whose scores become the contrast ...
        picks: list[int] = []  # ... and the masked rows they are contrasted with

        if first or cfg.detect == "every_step":
            if first:
                seqs, self._owner, self._which = self._variants(gen, range(batch))
                self._offsets = [0]
                for b in range(batch):
                    self._offsets.append(self._offsets[-1] + len(self.spans[b]))
                self._prefix = self._shared_prefix(input_ids) if seqs else None
                self._group = (
                    _StreamGroup(
                        self.model,
                        seqs,
                        cfg.variant_batch_size,
                        self._owner,
                        self.pad_token_id,
                        keep_cache=cfg.detect == "every_step",
                        prefix=self._prefix,
                        starts=self._starts(seqs, self._owner, self._which),
                    )
                    if seqs
                    else None
                )
            elif self._group is not None:
                self._group.step(input_ids[self._owner, -1])
            if self._group is not None:
                found = _indicators(logp, self._group.runs(), cfg.alpha, cfg.empty_s)
                indicator = found[self._group.position.to(found.device)]  # rows -> variants
                self._chosen = {}
                for b in range(batch):
                    lo, hi = self._offsets[b], self._offsets[b + 1]
                    if lo == hi:
                        continue
                    ind = indicator[lo:hi]
                    k = _choose(ind, cfg.select, cfg.threshold)
                    active = bool(ind[k] > cfg.threshold)
                    if active:
                        rows.append(b)
                        picks.append(lo + k)
                    self._chosen[b] = (k, active)
                    if first:
                        self.detections[b] = Detection(
                            active,
                            self.spans[b][k],
                            float(ind[k]),
                            list(self.spans[b]),
                            ind.tolist(),
                        )
                masked = self._group.rows(picks) if picks else None
            if first:
                if cfg.detect == "once":
                    self._group = None  # the all-variant pass kept no cache worth keeping
                    self._active = [b for b in range(batch) if self._chosen.get(b, (0, False))[1]]
                    self._stream = self._pending = None
                    if self._active:
                        which = [self._chosen[b][0] for b in self._active]
                        seqs = [
                            mask_span(
                                self.prompts[b], self.spans[b][k], cfg.mask, cfg.mask_token_id
                            )
                            for b, k in zip(self._active, which, strict=True)
                        ]
                        part = None
                        if self._prefix is not None:
                            starts = self._starts(seqs, self._active, which)
                            seqs = [s[a:] for s, a in zip(seqs, starts, strict=True)]
                            part = self._prefix.take(self._active, starts)
                        # p(.|X') is known from the detection: X' goes through the model with
                        # the next token, in one pass, at the next call (if there is one)
                        self._pending = seqs, part
                self._prefix = None  # only the first step's sequences start with a prompt
        elif self._active and cfg.amplify:  # without the contrast, X' is not needed any more
            rows = list(self._active)
            if self._pending is not None:
                (seqs, part), self._pending = self._pending, None
                tokens = input_ids[rows, -1].tolist()
                seqs = [s + [t] for s, t in zip(seqs, tokens, strict=True)]
                self._stream = _Stream(self.model, seqs, self.pad_token_id, prefix=part)
                masked = self._stream.logp
            else:
                masked = self._stream.step(input_ids[rows, -1])

        if not cfg.amplify or not rows:
            return scores
        rows_t = torch.as_tensor(rows, device=scores.device)
        new = _amplified(logp[rows_t], masked, cfg.alpha, cfg.empty_s)
        keep = torch.isfinite(new).any(-1)  # no plausible token left: keep X's scores
        out = scores.clone()
        out[rows_t[keep]] = new[keep].to(scores.dtype)
        return out


# --------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# running generate on lists of token ids
# --------------------------------------------------------------------------------------------
class _RegexStop(StoppingCriteria):
    """Stop a row once its decoded continuation matches a pattern (e.g. a newline)."""

    def __init__(self, tokenizer, prompt_width: int, pattern: str):
        self.tokenizer, self.width, self.pattern = tokenizer, prompt_width, re.compile(pattern)

    def __call__(self, input_ids, scores, **kwargs):
        texts = self.tokenizer.batch_decode(input_ids[:, self.width :], skip_special_tokens=True)
        return torch.tensor([bool(self.pattern.search(t)) for t in texts], device=input_ids.device)


@dataclass
class DecodeResult:
    outputs: list[list[int]]  # generated token ids per prompt (eos and padding removed)
    detections: list[Detection | None]  # CoDA's detection per prompt (None for other methods)
    seconds: float = 0.0
    new_tokens: int = 0


def _left_pad(
    prompts: Sequence[Sequence[int]], pad: int, device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.as_tensor(list(p), device=device)
        mask[i, width - len(p) :] = 1
    return ids, mask


def generate(
    model,
    prompts: Sequence[Sequence[int]],
    method: str = "greedy",
    max_new_tokens: int = 16,
    *,
    tokenizer=None,
    coda: CoDAConfig | None = None,
    spans: Sequence[list[tuple[int, int]]] | None = None,
    plain_prompts: Sequence[Sequence[int]] | None = None,
    cad_alpha: float = 0.5,
    amateur=None,
    cd_alpha: float = 0.1,
    dola_layers: str | Sequence[int] = "high",
    stop_pattern: str | None = None,
    eos_token_id: int | None = None,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int | None = None,
    progress: Callable[[int], Any] | None = None,
    **generate_kwargs,
) -> DecodeResult:
    """Decode every prompt (token id lists) with ``method`` via ``model.generate``, in batches.

    method: ``greedy``; ``coda`` (``coda`` config, optional per-prompt ``spans``); ``cad``
    (needs ``plain_prompts``: the prompts without their context); ``cd`` (needs ``amateur``, a
    smaller model with the same tokenizer); ``dola``. ``stop_pattern`` (needs ``tokenizer``) ends
    a row once its decoded continuation matches. ``progress(n)`` is called after each batch.
    """
    import time

    from transformers import GenerationConfig

    if method not in METHODS:
        raise ValueError(f"unknown decoding method {method!r}: use one of {', '.join(METHODS)}")
    if method == "cad" and plain_prompts is None:
        raise ValueError("method='cad' needs plain_prompts (each prompt without its context)")
    if method == "cd" and amateur is None:
        raise ValueError("method='cd' needs amateur= (a smaller model with the same tokenizer)")
    if stop_pattern and tokenizer is None:
        raise ValueError("stop_pattern needs tokenizer= to decode the continuation")
    cfg = coda or CoDAConfig()
    device = next(model.parameters()).device
    pad = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else None
    pad = int(pad if pad is not None else (eos_token_id if eos_token_id is not None else 0))
    if eos_token_id is None and tokenizer is not None:
        eos_token_id = tokenizer.eos_token_id
    if seed is not None:
        torch.manual_seed(seed)
    outputs: list[list[int]] = []
    detections: list[Detection | None] = []
    start, new_tokens = time.perf_counter(), 0
    for lo in range(0, len(prompts), batch_size):
        batch = [list(map(int, p)) for p in prompts[lo : lo + batch_size]]
        ids, mask = _left_pad(batch, pad, device)
        processors = LogitsProcessorList()
        coda_proc = None
        extra: dict[str, Any] = {}
        if method == "coda":
            sp = None if spans is None else spans[lo : lo + batch_size]
            handed = None
            if cfg.share_prefix and cfg.variant_batch_size != 1:
                handed = _cache_for_generate(model, generate_kwargs)
                if handed is not None:
                    extra[handed[0]] = handed[1]
            cache = None if handed is None else handed[1]
            coda_proc = CoDALogitsProcessor(model, batch, cfg, sp, tokenizer, pad, cache)
            processors.append(coda_proc)
        elif method == "cad":
            processors.append(
                CADLogitsProcessor(
                    model, plain_prompts[lo : lo + batch_size], cad_alpha, pad_token_id=pad
                )
            )
        elif method == "cd":
            processors.append(
                ContrastiveDecodingLogitsProcessor(amateur, batch, cd_alpha, pad_token_id=pad)
            )
        elif method == "dola":
            processors.append(DoLaLogitsProcessor(model, batch, dola_layers, pad_token_id=pad))
        stopping = [_RegexStop(tokenizer, ids.shape[1], stop_pattern)] if stop_pattern else []
        gcfg = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            num_beams=1,
            temperature=temperature if do_sample else None,
            top_k=0 if do_sample else None,
            top_p=None,
            pad_token_id=pad,
            eos_token_id=eos_token_id,
            **generate_kwargs,
        )
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=mask,
                generation_config=gcfg,
                logits_processor=processors,
                stopping_criteria=stopping,
                **extra,
            )
        for row in out[:, ids.shape[1] :].tolist():
            if eos_token_id is not None and eos_token_id in row:
                row = row[: row.index(eos_token_id)]
            outputs.append(row)
            new_tokens += len(row)
        detections.extend(coda_proc.detections if coda_proc else [None] * len(batch))
        if progress is not None:
            progress(len(batch))
    return DecodeResult(outputs, detections, time.perf_counter() - start, new_tokens)


def with_options(config: CoDAConfig | None = None, **changes) -> CoDAConfig:
    """A copy of ``config`` (default CoDAConfig()) with some fields changed."""
    return replace(config or CoDAConfig(), **changes)
