"""CoDA taken apart on the lab's models, where the overshadowed token is known.

In a subordinate prompt ``X_share ⊙ x_b`` of the lab's sets the distinct token ``x_b`` is the
overshadowed condition, so the two halves of CoDA can be measured separately:

* **amplification with an oracle span**: the contrast applied with ``x_b`` masked, whatever the
  indicator says. Does it turn the dominant answer ``Y_a`` into ``Y_b``?
* **detection alone**: does a detection rule rank ``x_b`` first among the candidates, and does
  the alarm (largest indicator above a threshold) pick out the prompts that greedy decoding
  answers with ``Y_a``?

:func:`prompt_outcomes` computes, for every subordinate prompt and masking, what every variant
does: greedy decoding, sampling at temperature ``T`` (as an exact expectation: the answers are
one token long, so the probability of ``Y_b`` under the sampling distribution is the expected
exact match over seeds), the oracle contrast, CoDA with each detection rule and indicator
reduction of the paper's ablation ({zhang2025law}, Table 6), and the escaping-penalty variant
(our reading of {zhang2024overshadowing}'s self-contrastive decoding). :func:`method_summary`
and :func:`detection_summary` reduce that table to counts, from which the chapter and
``scripts/record_coda_lab.py`` compute intervals.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from overshadow_lab.decoding.coda import CoDAConfig, coda_step
from overshadow_lab.decoding.detection import (
    SpanScores,
    detect,
    frequent_tokens,
    precision_recall,
    span_rank,
)
from overshadow_lab.decoding.spans import candidate_spans

#: detection rules of the ablation: name -> which single-token spans of a lab prompt are masked
RULES = ("token", "content", "no_final")
#: indicator reductions (CoDAConfig.reduce)
REDUCES = ("sum", "mean", "weighted")
#: outcome codes: the subordinate answer Y_b (right), the dominant Y_a (overshadowed), other
OUTCOMES = ("b", "a", "o")


def _outcome(token: int, y_b: int, y_a: int) -> str:
    return "b" if token == y_b else "a" if token == y_a else "o"


def _rule_mask(rule: str, prompt: list[int], stop: set[int]) -> list[bool]:
    n = len(prompt)
    if rule == "token":
        return [True] * n
    if rule == "content":
        return [t not in stop for t in prompt]
    if rule == "no_final":
        return [i < n - 1 for i in range(n)]
    raise ValueError(f"rule={rule!r}: use one of {', '.join(RULES)}")


@torch.no_grad()
def prompt_outcomes(
    model,
    sets,
    masks: tuple[str, ...] = ("delete", "replace"),
    temperature: float = 0.6,
    alpha: float = 0.01,
    threshold: float = 0.0,
    mask_token_id: int | None = None,
    min_count: int = 2,
) -> pd.DataFrame:
    """One row per (subordinate prompt, masking): what each decoding variant answers.

    Columns: ``prompt``, ``mask``, ``true_pos`` (the position of ``x_b``), ``greedy`` (an
    outcome code of :data:`OUTCOMES`), ``p_b``/``p_a`` (``p(Y_b|X)``, ``p(Y_a|X)``),
    ``sample_b``/``sample_a`` (their probabilities when sampling at ``temperature``),
    ``oracle`` and ``oracle_sample_b`` (the contrast with ``x_b`` masked, greedy and sampled),
    ``scd_oracle`` (the same with the escaping penalty), and for every rule r of :data:`RULES`
    and reduction d of :data:`REDUCES`: ``rank_r_d`` (rank of ``x_b`` by indicator, 1 = first;
    NaN when the rule never masks it), ``score_r_d`` (the alarm score: the largest indicator),
    ``coda_r_d`` (the answer when the alarm fires on the best span, greedy otherwise);
    ``force_r`` (the best span by the summed indicator contrasted whether or not the alarm
    fires: detection's ranking without its alarm); and ``scd`` (the escaping penalty with every token as candidate). ``mask_token_id`` for the
    replacement mask defaults to an id the corpus never contains.
    """
    from overshadow_lab.benchmark_data.synthetic import synthetic_rows, unused_token_id

    if sets.config.answer_len != 1:
        raise ValueError(
            f"prompt_outcomes needs one-token answers (answer_len=1), got {sets.config.answer_len}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0 (greedy is reported anyway)")
    rows = synthetic_rows(sets)
    prompts = [list(map(int, p)) for p in rows["prompts"]]
    stop = frequent_tokens(sets.train_sequences, min_count)
    mid = unused_token_id(sets) if mask_token_id is None else mask_token_id
    spans_all = [[(i, i + 1) for i in range(len(p))] for p in prompts]
    out = []
    for mask in masks:
        cfg = CoDAConfig(mask=mask, mask_token_id=mid, alpha=alpha, threshold=threshold)
        found = detect(model, prompts, cfg, spans=spans_all)
        for i, (p, sc) in enumerate(zip(prompts, found, strict=True)):
            y_b, y_a = int(rows["golds"][i][0]), int(rows["memorised"][i][0])
            true = rows["spans"][i][0]
            lp, lpm = sc.logp, sc.logp_masked
            greedy = int(lp.argmax())
            samp = torch.softmax(lp / temperature, -1)
            row = {
                "prompt": i,
                "mask": mask,
                "true_pos": true[0],
                "greedy": _outcome(greedy, y_b, y_a),
                "p_b": float(lp[y_b].exp()),
                "p_a": float(lp[y_a].exp()),
                "sample_b": float(samp[y_b]),
                "sample_a": float(samp[y_a]),
            }
            k_true = true[0]
            oracle = coda_step(lp, lpm[k_true], alpha)
            row["oracle"] = _outcome(int(oracle.scores.argmax()), y_b, y_a)
            row["oracle_sample_b"] = float(torch.softmax(oracle.scores / temperature, -1)[y_b])
            pen = coda_step(lp, lpm[k_true], alpha, escape="penalty")
            row["scd_oracle"] = _outcome(_pick(pen.scores, lp), y_b, y_a)
            for reduce in REDUCES:
                st = coda_step(lp.expand_as(lpm), lpm, alpha, reduce=reduce)
                for rule in RULES:
                    keep = torch.tensor(_rule_mask(rule, p, stop))
                    ind = torch.where(keep, st.indicator, torch.full_like(st.indicator, -math.inf))
                    name = f"{rule}_{reduce}"
                    visible = bool(keep[k_true])
                    row[f"rank_{name}"] = (
                        span_rank(
                            _Ranked(
                                ind[keep],
                                [s for s, k in zip(sc.spans, keep.tolist(), strict=True) if k],
                            ),
                            true,
                        )
                        if visible
                        else math.nan
                    )
                    best = int(ind.argmax())
                    score = float(ind[best]) if bool(keep.any()) else -math.inf
                    row[f"score_{name}"] = score
                    pick = _pick(st.scores[best], lp) if score > threshold else greedy
                    row[f"coda_{name}"] = _outcome(pick, y_b, y_a)
                    if reduce == "sum":  # the rule's best span contrasted, alarm or not
                        row[f"force_{rule}"] = _outcome(_pick(st.scores[best], lp), y_b, y_a)
            pen_all = coda_step(lp.expand_as(lpm), lpm, alpha, escape="penalty")
            best = int(pen_all.indicator.argmax())
            fire = float(pen_all.indicator[best]) > threshold
            row["scd"] = _outcome(_pick(pen_all.scores[best], lp) if fire else greedy, y_b, y_a)
            out.append(row)
    return pd.DataFrame(out)


class _Ranked:
    """The two fields :func:`span_rank` reads, for a subset of a prompt's candidates."""

    def __init__(self, indicator: torch.Tensor, spans: list[tuple[int, int]]):
        self.indicator, self.spans = indicator, spans


def _subset(sc: SpanScores, spans: list[tuple[int, int]]) -> SpanScores:
    """The detection ``sc`` restricted to some of its spans."""
    idx = [sc.spans.index(s) for s in spans]
    return SpanScores(
        list(spans), sc.indicator[idx], sc.rpmi[idx], sc.erm[idx], sc.logp, sc.logp_masked[idx]
    )


def _pick(scores: torch.Tensor, logp: torch.Tensor) -> int:
    """The contrast's argmax; greedy when the contrast leaves no finite score."""
    return int(scores.argmax()) if bool(torch.isfinite(scores).any()) else int(logp.argmax())


def method_columns() -> list[str]:
    """The decoding variants of :func:`prompt_outcomes`, as column names."""
    cols = ["greedy", "oracle", "scd_oracle", "scd"] + [f"force_{r}" for r in RULES]
    return cols + [f"coda_{r}_{d}" for r in RULES for d in REDUCES]


def method_summary(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Counts per (mask, method): ``n``, ``em`` (answers ``Y_b``), ``hr`` (answers ``Y_a``),
    ``fixed`` / ``broken`` (prompts it turns from wrong to right / right to wrong against
    greedy, for a paired interval). Sampling rows hold expected counts (sums of probabilities)."""
    rows = []
    for mask, g in outcomes.groupby("mask", sort=False):
        right = g["greedy"].eq("b").to_numpy()
        for col in method_columns():
            em = g[col].eq("b").to_numpy()
            rows.append(
                {
                    "mask": mask,
                    "method": col,
                    "n": len(g),
                    "em": float(em.sum()),
                    "hr": float(g[col].eq("a").sum()),
                    "fixed": float((em & ~right).sum()),
                    "broken": float((~em & right).sum()),
                }
            )
        for col, b_col, a_col in (
            ("sample", "sample_b", "sample_a"),
            ("oracle_sample", "oracle_sample_b", None),
        ):
            pb = g[b_col].to_numpy()
            rows.append(
                {
                    "mask": mask,
                    "method": col,
                    "n": len(g),
                    "em": float(pb.sum()),
                    "hr": float(g[a_col].sum()) if a_col else math.nan,
                    "fixed": float(pb[~right].sum()),
                    "broken": float((1 - pb[right]).sum()),
                }
            )
    return pd.DataFrame(rows)


def detection_summary(outcomes: pd.DataFrame, threshold: float = 0.0) -> pd.DataFrame:
    """Per (mask, rule, reduce): how often the rule ranks ``x_b`` first (``top1`` of ``visible``
    prompts whose candidates include it, of ``n``), the mean rank, and the alarm as a predictor
    of greedy overshadowing (``pos``: greedy answers ``Y_a``): alarms above ``threshold``, true
    alarms, the average precision over all thresholds and the base rate."""
    rows = []
    for mask, g in outcomes.groupby("mask", sort=False):
        pos = g["greedy"].eq("a").to_numpy()
        for rule in RULES:
            for reduce in REDUCES:
                name = f"{rule}_{reduce}"
                rank = g[f"rank_{name}"].to_numpy(float)
                score = g[f"score_{name}"].to_numpy(float)
                alarm = score > threshold
                ap = precision_recall(score, pos)["average_precision"] if pos.any() else math.nan
                rows.append(
                    {
                        "mask": mask,
                        "rule": rule,
                        "reduce": reduce,
                        "n": len(g),
                        "visible": int(np.isfinite(rank).sum()),
                        "top1": int((rank == 1).sum()),
                        "mean_rank": float(np.nanmean(rank))
                        if np.isfinite(rank).any()
                        else math.nan,
                        "pos": int(pos.sum()),
                        "alarms": int(alarm.sum()),
                        "true_alarms": int((alarm & pos).sum()),
                        "ap": ap,
                        "base_rate": float(pos.mean()),
                    }
                )
    return pd.DataFrame(rows)


def wilson(k, n, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion ``k / n`` (arrays welcome; NaN where ``n`` is 0)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def paired_interval(fixed, broken, n, z: float = 1.96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference in exact match against greedy, ``(fixed - broken) / n``, and its normal interval
    for paired proportions (the variance McNemar's test uses)."""
    f, b, n = np.asarray(fixed, float), np.asarray(broken, float), np.asarray(n, float)
    d = (f - b) / n
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.maximum((f + b) / n - d**2, 0) / n)
    return d, d - z * se, d + z * se


# --------------------------------------------------------------------------------------------
# the lab models of the grid, and detection on a real model's text
# --------------------------------------------------------------------------------------------
def train_lab_model(P: float, L: float, position: str = "end", seed: int = 0, **changes):
    """``(model, sets)``: the lab's CPU-tier model at ``P``, ``L`` (distinct token at
    ``position``), trained with the tier's default rule; a few seconds on a CPU."""
    from overshadow_lab.lab.data import make_knowledge_sets
    from overshadow_lab.lab.models import make_model
    from overshadow_lab.lab.sweep import DATA_KEYS, TRAIN_KEYS, tier_defaults
    from overshadow_lab.lab.train import TrainConfig, train_model

    lab = tier_defaults("cpu") | {"P": P, "L": L, "position": position} | changes
    sets = make_knowledge_sets(**{k: lab[k] for k in DATA_KEYS}, seed=seed)
    model = make_model(lab["size"], sets.vocab_size, seed=seed)
    cfg = TrainConfig(**{k: lab[k] for k in TRAIN_KEYS}, seed=seed, progress=False)
    return train_model(model, sets, cfg).model.eval(), sets


#: text detection rules: name -> (CoDAConfig.candidates, CoDAConfig.exclude_final)
TEXT_RULES = {
    "token": ("token", 0),
    "word": ("word", 0),
    "content": ("content", 0),
    "entity": ("entity", 0),
    "token, no final": ("token", 1),
    "word, no final": ("word", 1),
}


def quoted_span(prompt_ids: list[int], tokenizer, text: str) -> tuple[int, int] | None:
    """The token span of ``prompt_ids`` covering the first double-quoted part of ``text`` (the
    condition a MemoTrap instruction states, e.g. the requested final word), or None."""
    a = text.find('"')
    b = text.find('"', a + 1)
    if a < 0 or b < 0:
        return None
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if list(enc["input_ids"]) != list(prompt_ids):
        raise ValueError("prompt_ids are not the tokenizer's encoding of text")
    toks = [i for i, (s, e) in enumerate(enc["offset_mapping"]) if s < b and e > a + 1]
    return (toks[0], toks[-1] + 1) if toks else None


def text_outcomes(
    model, tokenizer, df: pd.DataFrame, masks: tuple[str, ...] = ("delete", "replace")
) -> pd.DataFrame:
    """Detection on MemoTrap rows whose instruction quotes its condition (the proverb and hate
    subtasks): for each row, masking, rule of :data:`TEXT_RULES` and reduction, the rank of the
    quoted span and the alarm score. ``df`` has MemoTrap's ``prompt`` column."""
    texts = df["prompt"].tolist()
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    truth = [quoted_span(p, tokenizer, t) for p, t in zip(prompts, texts, strict=True)]
    mid = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.pad_token_id
    out = []
    for mask in masks:
        words = None
        for cand in ("token", "word", "content", "entity"):
            cfg = CoDAConfig(candidates=cand, mask=mask, mask_token_id=mid)
            if cand == "content":  # content words are a subset of the words: no new passes
                found = [
                    _subset(sc, candidate_spans(p, cand, tokenizer))
                    for sc, p in zip(words, prompts, strict=True)
                ]
            else:
                found = detect(model, prompts, cfg, tokenizer=tokenizer, batch_size=64)
            if cand == "word":
                words = found
            for i, sc in enumerate(found):
                lp, lpm = sc.logp, sc.logp_masked
                for reduce in REDUCES:
                    ind = (
                        coda_step(lp.expand_as(lpm), lpm, reduce=reduce).indicator
                        if len(sc.spans)
                        else lp.new_zeros(0)
                    )
                    for rule, (c, excl) in TEXT_RULES.items():
                        if c != cand:
                            continue
                        n = len(prompts[i])
                        keep = [k for k, (_, e) in enumerate(sc.spans) if e <= n - excl]
                        sub = _Ranked(ind[keep], [sc.spans[k] for k in keep])
                        rank = span_rank(sub, truth[i]) if truth[i] and keep else math.nan
                        out.append(
                            {
                                "row": i,
                                "subtask": df["subtask"].iloc[i] if "subtask" in df else "",
                                "mask": mask,
                                "rule": rule,
                                "reduce": reduce,
                                "n_candidates": len(keep),
                                "rank": rank,
                                "score": float(sub.indicator.max()) if keep else -math.inf,
                            }
                        )
    return pd.DataFrame(out)


__all__ = [
    "OUTCOMES",
    "REDUCES",
    "RULES",
    "detection_summary",
    "method_columns",
    "method_summary",
    "TEXT_RULES",
    "paired_interval",
    "prompt_outcomes",
    "quoted_span",
    "text_outcomes",
    "train_lab_model",
    "wilson",
]
