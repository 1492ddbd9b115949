"""CoDA, the definition: its configuration, the arithmetic of one step, and the readable loop.

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

Every choice the papers leave open is a field of :class:`CoDAConfig`. :func:`coda_step` is the
arithmetic on any batch of distributions; :func:`_indicators` and :func:`_amplified` compute the
same numbers on ``V_top(X)`` only, for the fast processor. :func:`coda_reference` is the whole
algorithm as a short loop that recomputes everything from scratch; the fast version,
:class:`~overshadow_lab.decoding.processors.CoDALogitsProcessor`, is tested to agree with it
token for token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F

from overshadow_lab.decoding.spans import CANDIDATES, candidate_spans, mask_span

MASKS = ("delete", "replace")
SELECTS = ("max", "first")
DETECTS = ("once", "every_step")
EMPTY_S = ("skip", "common_min")
REDUCES = ("sum", "mean", "weighted")
ESCAPES = ("reward", "penalty")


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

    variant_batch_size: the most masked variants per forward pass, one row each (default 64: on
        a CPU larger batches were slower, and it bounds memory on long prompts); None sets no
        limit (all in one pass without ``share_prefix``); packed passes (``pack_variants``) are
        bounded by their tokens instead; 1 is one plain pass per variant over its whole masked
        prompt, never sharing a prefix (the slow way, kept for the speed comparison).

    reduce: how the indicator adds up its terms. ``"sum"`` (default, the paper's): R-PMI_sum and
        ERM are sums, so both grow with the size of the plausible sets, and on a flat
        distribution (hundreds of plausible tokens) many small negative R-PMI values swamp the
        indicator. ``"mean"``: each term is averaged over its own set (R-PMI over the common set,
        ERM over ``V_esc``). ``"weighted"``: each token's term is weighted by ``p(y|X)``
        renormalised on ``V_tau(X)``, an expectation that does not grow with the set either.
        Only the alarm and the choice of span change; the amplified scores do not.

    escape: what the escaping tokens do. ``"reward"`` (default, CoDA of {zhang2025law}): ERM is
        added to the indicator and escaping tokens are scored ``log p(y|X) - min_S log p(.|X')``.
        ``"penalty"``: our reading of the escaping penalty of the self-contrastive decoding of
        {zhang2024overshadowing}, whose formula our spec does not reproduce: the same ERM is
        subtracted, and escaping tokens are dropped from the amplified scores.

    exclude_final: never mask a span that touches the prompt's last ``exclude_final`` tokens
        (default 0: every candidate; the paper's ablation excludes the final tokens).

    The fast processor, :func:`coda_reference` and
    :func:`~overshadow_lab.decoding.detection.detect` all honour ``reduce``, ``escape`` and
    ``exclude_final`` (the processor's equality with the reference is tested with them set).

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

    pack_variants: with ``share_prefix`` and ``detect="once"``, lay the masked variants end to
        end, several to a row of at most a few hundred tokens, under an attention mask that lets
        each see only its prompt's tokens before its span and its own tokens
        (:mod:`~overshadow_lab.decoding.packing`): no variant is padded to a longer one, and a
        pass carries up to :data:`~overshadow_lab.decoding.packing.PACK_PASS_TOKENS` tokens of
        variants, however many variants that is. Default True; the same results up to
        float rounding. Batches with a prompt longer than
        :data:`~overshadow_lab.decoding.packing.PACK_MAX_PROMPT` tokens (where attention over
        the packed rows costs more than the padding it saves) and models whose attention is
        neither ``sdpa`` nor ``eager`` keep one row per variant.
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
    pack_variants: bool = True
    reduce: str = "sum"
    escape: str = "reward"
    exclude_final: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("candidates", CANDIDATES),
            ("mask", MASKS),
            ("select", SELECTS),
            ("detect", DETECTS),
            ("empty_s", EMPTY_S),
            ("reduce", REDUCES),
            ("escape", ESCAPES),
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
        if self.exclude_final < 0:
            raise ValueError(
                "CoDAConfig.exclude_final must be >= 0 (how many final prompt tokens to skip)"
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
    logp: torch.Tensor,
    logp_masked: torch.Tensor,
    alpha: float = 0.01,
    empty_s: str = "skip",
    reduce: str = "sum",
    escape: str = "reward",
) -> CoDAStep:
    """Indicator and amplified scores from ``log p(.|X)`` and ``log p(.|X')`` (any leading shape).

    ``reduce`` and ``escape`` are :class:`CoDAConfig`'s options of the same names; the defaults
    are the paper's CoDA.
    """
    if reduce not in REDUCES or escape not in ESCAPES:
        raise ValueError(
            f"reduce={reduce!r}, escape={escape!r}: use reduce in {REDUCES}, escape in {ESCAPES}"
        )
    top, top_m = plausible(logp, alpha), plausible(logp_masked, alpha)
    common, esc = top & top_m, top & ~top_m
    rpmi = logp - logp_masked
    neg = torch.where(common, rpmi.clamp(max=0.0), torch.zeros_like(rpmi))
    in_s = common & (rpmi < 0)
    inf = torch.full_like(logp_masked, math.inf)
    s_min = torch.where(in_s, logp_masked, inf).min(-1).values
    s_empty = ~in_s.any(-1)
    if empty_s == "common_min":
        s_min = torch.where(s_empty, torch.where(top_m, logp_masked, inf).min(-1).values, s_min)
    esc_score = logp - s_min.unsqueeze(-1)
    esc_terms = torch.where(esc, esc_score, torch.zeros_like(logp))
    if reduce == "sum":
        rpmi_sum, erm = neg.sum(-1), esc_terms.sum(-1)
    elif reduce == "mean":
        rpmi_sum = neg.sum(-1) / common.sum(-1).clamp(min=1)
        erm = esc_terms.sum(-1) / esc.sum(-1).clamp(min=1)
    else:  # weighted by p(y|X) renormalised on V_tau(X)
        w = torch.where(top, logp.exp(), torch.zeros_like(logp))
        w = w / w.sum(-1, keepdim=True)
        rpmi_sum, erm = (w * neg).sum(-1), (w * esc_terms).sum(-1)
    indicator = rpmi_sum + erm if escape == "reward" else rpmi_sum - erm
    if empty_s == "skip":
        indicator = torch.where(s_empty, torch.full_like(indicator, -math.inf), indicator)
    esc_part = esc_score if escape == "reward" else -inf
    scores = torch.where(common, rpmi, torch.where(esc, esc_part, -inf))
    return CoDAStep(indicator, rpmi_sum, erm, scores)


def _indicators(
    logp: torch.Tensor,
    blocks: Iterable[tuple[int, torch.Tensor]],
    alpha: float = 0.01,
    empty_s: str = "skip",
    reduce: str = "sum",
    escape: str = "reward",
) -> torch.Tensor:
    """``coda_step(...).indicator`` for the masked rows of many prompts, on ``V_top(X)`` only.

    ``blocks`` are ``(b, rows)``: log-probabilities ``rows`` (n, V) of masked variants of the
    prompt of row ``b`` of ``logp``; the result is their indicators, block after block. The
    indicator only sums over ``V_top(X)``, usually a few tokens, so each block is cut down to
    those columns; what needs the whole vocabulary is the max of each masked row (and, for
    ``empty_s="common_min"``, its smallest plausible value). Sets are applied by multiplying
    with masks (``torch.where`` is several times slower on a CPU); the numbers are
    coda_step's, summed in another order. Options other than the paper's (``reduce``,
    ``escape``) are computed by :func:`coda_step` itself, block by block.
    """
    if reduce != "sum" or escape != "reward":
        parts = [
            coda_step(logp[b].expand_as(rows), rows, alpha, empty_s, reduce, escape).indicator
            for b, rows in blocks
            if len(rows)
        ]
        return torch.cat(parts) if parts else logp.new_zeros(0)
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
    logp: torch.Tensor,
    logp_masked: torch.Tensor,
    alpha: float = 0.01,
    empty_s: str = "skip",
    escape: str = "reward",
) -> torch.Tensor:
    """``coda_step(logp, logp_masked, ...).scores`` (both (R, V)), computed on ``V_top(X)``.

    Outside ``V_top(X)`` the scores are ``-inf``; inside they take the same float operations as
    in coda_step, so the result is the same tensor, for a few whole-vocabulary passes instead of
    about twenty (it runs at every generated token).
    """
    top = plausible(logp, alpha)
    width = int(top.sum(-1).max())
    if 8 * width >= logp.shape[-1] or escape != "reward":  # flat, or not the paper's option
        return coda_step(logp, logp_masked, alpha, empty_s, escape=escape).scores
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


def with_options(config: CoDAConfig | None = None, **changes) -> CoDAConfig:
    """A copy of ``config`` (default CoDAConfig()) with some fields changed."""
    return replace(config or CoDAConfig(), **changes)


# --------------------------------------------------------------------------------------------
# detection and the reference loop: readable, slow, no caches
# --------------------------------------------------------------------------------------------
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


@torch.no_grad()
def _next_logprobs(model, ids: Sequence[int]) -> torch.Tensor:
    """``log p(.|ids)`` of the next token: one plain forward pass of one sequence, no cache."""
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
        spans = candidate_spans(
            prompt, cfg.candidates, tokenizer, cfg.max_candidates, cfg.exclude_final
        )
    out: list[int] = []
    chosen, active, detection = None, False, None
    for step in range(max_new_tokens):
        logp = _next_logprobs(model, prompt + out)
        scores = logp
        if spans and (step == 0 or cfg.detect == "every_step"):
            variants = [mask_span(prompt, sp, cfg.mask, cfg.mask_token_id) + out for sp in spans]
            masked = torch.stack([_next_logprobs(model, v) for v in variants])
            steps = coda_step(
                logp.expand_as(masked), masked, cfg.alpha, cfg.empty_s, cfg.reduce, cfg.escape
            )
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
            scores = coda_step(logp, masked, cfg.alpha, cfg.empty_s, escape=cfg.escape).scores
        if not cfg.amplify or not torch.isfinite(scores).any():
            scores = logp
        token = int(scores.argmax())
        out.append(token)
        if eos_token_id is not None and token == eos_token_id:
            break
    if detection is None:
        detection = Detection(False, None, -math.inf, [], [])
    return out, detection
