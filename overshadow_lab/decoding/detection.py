"""Detection apart from amplification: CoDA's indicator for every candidate span, batched.

CoDA does two things: it *detects* which span of the prompt is overshadowed (the span with the
largest indicator, and an alarm when that indicator is positive), and it *amplifies* what the
span contributes. This module measures the first on its own:

* :func:`detect` computes the indicator of every candidate span of many prompts with all masked
  variants laid out in left-padded batches, one forward pass per batch (attention mask and
  position ids make a padded row see what it would see alone);
  :func:`detect_one_by_one` is the same with one plain pass per masked variant, the readable
  reference that ``tests/decoding/test_detection.py`` checks it against (and times);
* :func:`span_rank` says where the truly overshadowed span lands in that ranking;
* :func:`precision_recall` turns alarm scores into a precision-recall curve over the threshold;
* :func:`frequent_tokens` gives the stop tokens of the ``content`` rule on prompts of bare ids.

The detection rules of the paper's ablation ({zhang2025law}, Table 6) are the ``candidates``,
``exclude_final`` and ``reduce`` fields of :class:`~overshadow_lab.decoding.coda.CoDAConfig`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from inspect import signature

import numpy as np
import torch
import torch.nn.functional as F

from overshadow_lab.decoding.coda import CoDAConfig, _next_logprobs, coda_step
from overshadow_lab.decoding.padding import left_pad, positions
from overshadow_lab.decoding.spans import candidate_spans, mask_span


@dataclass
class SpanScores:
    """The detection of one prompt: every candidate span with its indicator and its terms."""

    spans: list[tuple[int, int]]
    indicator: torch.Tensor  # (n_spans,) R-PMI term + escape term (config.reduce, config.escape)
    rpmi: torch.Tensor  # (n_spans,) the R-PMI term
    erm: torch.Tensor  # (n_spans,) the escape term
    logp: torch.Tensor  # (V,) log p(.|X)
    logp_masked: torch.Tensor  # (n_spans, V) log p(.|X') for each span

    @property
    def best(self) -> int | None:
        """Index of the span with the largest indicator (None without candidates)."""
        return int(self.indicator.argmax()) if len(self.spans) else None

    @property
    def score(self) -> float:
        """The alarm score: the largest indicator (``-inf`` without candidates)."""
        return float(self.indicator.max()) if len(self.spans) else float("-inf")


def frequent_tokens(sequences: Iterable[Sequence[int]], min_count: int = 2) -> set[int]:
    """Ids that occur in at least ``min_count`` of ``sequences``: the "function words" of a corpus
    of bare ids, which ``candidates="content"`` does not mask (document frequency, as in tf-idf).

    On the lab's sets the shared span ``X_share`` occurs in all ``P * n + n`` statements of its
    set, a distinct token in one: this rule therefore favours the distinct tokens by construction,
    which is what a content-word filter does for a prompt in English.
    """
    if min_count < 1:
        raise ValueError(f"min_count={min_count} must be >= 1")
    counts = Counter(t for s in sequences for t in {int(x) for x in s})
    return {t for t, c in counts.items() if c >= min_count}


def _spans_of(prompts, spans, cfg, tokenizer, stop_ids):
    if spans is not None:
        if len(spans) != len(prompts):
            raise ValueError(f"spans has {len(spans)} lists for {len(prompts)} prompts")
        return [list(s) for s in spans]
    return [
        candidate_spans(
            p, cfg.candidates, tokenizer, cfg.max_candidates, cfg.exclude_final, stop_ids
        )
        for p in prompts
    ]


def _scores(logp, masked, spans, cfg) -> SpanScores:
    if not spans:
        empty = logp.new_zeros(0)
        return SpanScores([], empty, empty, empty, logp, logp.new_zeros(0, logp.shape[-1]))
    st = coda_step(logp.expand_as(masked), masked, cfg.alpha, cfg.empty_s, cfg.reduce, cfg.escape)
    return SpanScores(list(spans), st.indicator, st.rpmi_sum, st.erm, logp, masked)


@torch.no_grad()
def _last_logprobs(model, seqs: list[list[int]], batch_size: int) -> torch.Tensor:
    """``log p(.|seq)`` of the next token for every sequence, ``batch_size`` rows per pass."""
    device = next(model.parameters()).device
    # only the last position's logits are needed: skip the vocabulary projection elsewhere
    last = {"logits_to_keep": 1} if "logits_to_keep" in signature(model.forward).parameters else {}
    out = []
    for i in range(0, len(seqs), batch_size):
        ids, mask = left_pad(seqs[i : i + batch_size], 0, device)
        pos = positions(mask)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, **last).logits
        out.append(F.log_softmax(logits[:, -1].float(), dim=-1).cpu())
    return torch.cat(out)


def detect(
    model,
    prompts: Sequence[Sequence[int]],
    config: CoDAConfig | None = None,
    spans: Sequence[Sequence[tuple[int, int]]] | None = None,
    tokenizer=None,
    stop_ids: Iterable[int] | None = None,
    batch_size: int = 256,
) -> list[SpanScores]:
    """CoDA's detection for each prompt: the indicator of every candidate span.

    The prompts and all their masked variants (``config.mask``) go through the model in
    left-padded batches of at most ``batch_size`` sequences, every sequence fed whole (the
    decoder's processor also shares the prompt's cached prefix; for detection alone on short
    prompts that saved nothing measurable on a CPU, so this stays the plain, exact version). ``spans`` (one list per prompt) overrides the
    candidates of ``config`` (``candidates``, ``exclude_final``, ``max_candidates``; ``stop_ids``
    and ``tokenizer`` as in :func:`~overshadow_lab.decoding.spans.candidate_spans`).
    """
    cfg = config or CoDAConfig()
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    prompts = [[int(t) for t in p] for p in prompts]
    stop = set(stop_ids) if stop_ids is not None else None
    span_lists = _spans_of(prompts, spans, cfg, tokenizer, stop)
    variants = [
        mask_span(p, sp, cfg.mask, cfg.mask_token_id)
        for p, sps in zip(prompts, span_lists, strict=True)
        for sp in sps
    ]
    logps = _last_logprobs(model, prompts + variants, batch_size)
    out, k = [], len(prompts)
    for b, sps in enumerate(span_lists):
        out.append(_scores(logps[b], logps[k : k + len(sps)], sps, cfg))
        k += len(sps)
    return out


@torch.no_grad()
def detect_one_by_one(
    model,
    prompt: Sequence[int],
    config: CoDAConfig | None = None,
    spans: Sequence[tuple[int, int]] | None = None,
    tokenizer=None,
    stop_ids: Iterable[int] | None = None,
) -> SpanScores:
    """:func:`detect` for one prompt with one plain forward pass per masked variant (reference)."""
    cfg = config or CoDAConfig()
    prompt = [int(t) for t in prompt]
    stop = set(stop_ids) if stop_ids is not None else None
    sps = _spans_of([prompt], None if spans is None else [spans], cfg, tokenizer, stop)[0]
    logp = _next_logprobs(model, prompt).cpu()
    if not sps:
        return _scores(logp, None, [], cfg)
    masked = torch.stack(
        [
            _next_logprobs(model, mask_span(prompt, sp, cfg.mask, cfg.mask_token_id)).cpu()
            for sp in sps
        ]
    )
    return _scores(logp, masked, sps, cfg)


def span_rank(result: SpanScores, true_span: tuple[int, int]) -> float:
    """Rank (1 = first) of the best candidate overlapping ``true_span`` by indicator; ties count
    half (a candidate tied with it is ahead half the time). NaN when no candidate overlaps it (the
    rule cannot find the span at all)."""
    a, b = true_span
    hits = [i for i, (s, e) in enumerate(result.spans) if s < b and a < e]
    if not hits:
        return float("nan")
    ind = result.indicator
    mine = float(ind[hits].max())
    others = torch.tensor([float(ind[i]) for i in range(len(result.spans)) if i not in hits])
    if others.numel() == 0:
        return 1.0
    return 1.0 + float((others > mine).sum()) + 0.5 * float((others == mine).sum())


def precision_recall(scores: Sequence[float], positive: Sequence[bool]) -> dict:
    """Precision and recall of the alarm ``score >= threshold`` at every threshold that changes it.

    Returns ``threshold``, ``precision``, ``recall`` (arrays, thresholds decreasing), the
    ``average_precision`` (the area under the step curve, as scikit-learn computes it) and the
    ``base_rate`` (the precision of an alarm that always fires). ``-inf`` scores never fire.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and positive {y.shape} must be 1-D of one length")
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("no positive case: precision and recall are undefined")
    finite = np.isfinite(s)
    order = np.argsort(-s[finite], kind="stable")
    ss, yy = s[finite][order], y[finite][order]
    cut = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1] if len(ss) else np.zeros(0, int)
    tp = np.cumsum(yy)[cut]
    fired = cut + 1
    precision, recall = tp / fired, tp / n_pos
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return {
        "threshold": ss[cut],
        "precision": precision,
        "recall": recall,
        "average_precision": ap,
        "base_rate": n_pos / len(y),
    }


__all__ = [
    "SpanScores",
    "detect",
    "detect_one_by_one",
    "frequent_tokens",
    "precision_recall",
    "span_rank",
]
