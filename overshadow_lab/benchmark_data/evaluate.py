"""Evaluating a decoding method on MemoTrap and NQ-Swap: generation + text exact match,
log-likelihood classification, and several methods compared on the same rows.

``overshadow_lab.decoding`` and torch are imported inside the functions that decode or score
with a model, so that loading and scoring benchmark rows stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from overshadow_lab.benchmark_data.memotrap import memotrap_plain_prompt
from overshadow_lab.benchmark_data.nq_swap import nq_swap_prompt
from overshadow_lab.benchmark_data.prompts import Encoded, _ids, encode_benchmark, region_spans
from overshadow_lab.benchmark_data.scoring import (
    STOP_PATTERN,
    cut_answer,
    text_contains_match,
    text_exact_match,
)
from overshadow_lab.records import load_or_compute

BENCH_DEFAULTS: dict[str, dict[str, Any]] = {
    # MemoTrap: mask content words. On MemoTrap text they rank the quoted condition first at least
    # as often as whole words for every mask and reduction (the recorded coda_text_detection, in
    # the chapter "Contrastive decoding"), with about half the candidates, so half the passes.
    # NQ-Swap contexts are long and its answers are names: mask entities.
    "memotrap": {"max_new_tokens": 8, "candidates": "content", "articles": False},
    "nq_swap": {"max_new_tokens": 10, "candidates": "entity", "articles": True},
}


def benchmark_items(benchmark: str, df: pd.DataFrame) -> dict[str, list]:
    """Prompts (text), context-free prompts, gold answers and memorised answers of each row."""
    if benchmark == "memotrap":
        return {
            "prompts": df["prompt"].tolist(),
            "plain": [memotrap_plain_prompt(p) for p in df["prompt"]],
            "golds": [[a] for a in df["answer"]],
            "memorised": df["memorised"].tolist(),
        }
    if benchmark == "nq_swap":
        return {
            "prompts": [nq_swap_prompt(r) for _, r in df.iterrows()],
            "plain": [nq_swap_prompt(r, with_context=False) for _, r in df.iterrows()],
            "golds": df["sub_answer"].tolist(),
            "memorised": df["org_answer"].tolist(),
        }
    raise ValueError(
        f"unknown benchmark {benchmark!r}: use memotrap or nq_swap (synthetic has token ids)"
    )


def _coda_config(coda, benchmark: str, tokenizer):
    """The CoDA configuration of a benchmark run: the given one (a replacement mask gets the
    tokenizer's unknown or padding token), else the benchmark's default candidates."""
    from overshadow_lab.decoding import CoDAConfig, with_options

    coda = (
        coda if coda is not None else CoDAConfig(candidates=BENCH_DEFAULTS[benchmark]["candidates"])
    )
    if coda.mask == "replace" and coda.mask_token_id is None:
        coda = with_options(coda, mask_token_id=tokenizer.unk_token_id or tokenizer.pad_token_id)
    return coda


def _spans(enc: Encoded, coda, tokenizer) -> list[list[tuple[int, int]]]:
    return [
        region_spans(p, r, coda.candidates, tokenizer, coda.max_candidates)
        for p, r in zip(enc.prompts, enc.regions, strict=True)
    ]


def score_outputs(benchmark: str, texts: list[str], df: pd.DataFrame) -> pd.DataFrame:
    """Score generated continuations of ``df``'s rows: ``prediction`` (the cut answer),
    ``output`` (the continuation, at most 200 characters), ``em`` and ``contains`` against the
    faithful answer, ``memorised`` and ``memorised_contains`` against the memorised one."""
    spec = BENCH_DEFAULTS[benchmark]
    items = benchmark_items(benchmark, df)
    art = spec["articles"]
    golds, mem = items["golds"], items["memorised"]
    return pd.DataFrame(
        {
            "prediction": [cut_answer(t).strip() for t in texts],
            "output": [t.strip()[:200] for t in texts],
            "em": [text_exact_match(t, g, art) for t, g in zip(texts, golds, strict=True)],
            "contains": [text_contains_match(t, g, art) for t, g in zip(texts, golds, strict=True)],
            "memorised": [text_exact_match(t, g, art) for t, g in zip(texts, mem, strict=True)],
            "memorised_contains": [
                text_contains_match(t, g, art) for t, g in zip(texts, mem, strict=True)
            ],
        }
    )


def evaluate_generation(
    model,
    tokenizer,
    benchmark: str,
    df: pd.DataFrame,
    method: str = "greedy",
    coda=None,
    max_new_tokens: int | None = None,
    batch_size: int = 8,
    cad_alpha: float = 0.5,
    amateur=None,
    progress: Callable[[int], Any] | None = None,
    template: str = "auto",
) -> pd.DataFrame:
    """Generate an answer for every row with ``method`` and score it (:func:`score_outputs`).

    Prompts follow :mod:`.prompts` (``template``: the chat template of an instruct model by
    default); the answer has at least one token (no empty answers from an immediate
    end-of-turn) and generation stops at the first newline or sentence punctuation after it.
    CoDA masks candidates inside the user message and the answer start only; its rows add
    ``alarm``, ``indicator``, ``span_start``/``span_end`` (the token span it contrasts, -1 for
    none) and ``masked`` (that span's text).
    """
    from overshadow_lab.decoding import generate

    spec = BENCH_DEFAULTS[benchmark]
    enc = encode_benchmark(tokenizer, benchmark, df, template)
    coda = _coda_config(coda, benchmark, tokenizer)
    res = generate(
        model,
        enc.prompts,
        method,
        max_new_tokens or spec["max_new_tokens"],
        tokenizer=tokenizer,
        coda=coda,
        spans=_spans(enc, coda, tokenizer) if method == "coda" else None,
        plain_prompts=enc.plain if method == "cad" else None,
        cad_alpha=cad_alpha,
        amateur=amateur,
        stop_pattern=STOP_PATTERN,
        batch_size=batch_size,
        progress=progress,
        min_new_tokens=1,
    )
    texts = tokenizer.batch_decode(res.outputs, skip_special_tokens=True)
    out = score_outputs(benchmark, texts, df)
    if "subtask" in df.columns:
        out.insert(0, "subtask", df["subtask"].to_numpy())
    if method == "coda":
        out["alarm"] = [d.alarm for d in res.detections]
        out["indicator"] = [d.indicator for d in res.detections]
        out["span_start"] = [d.span[0] if d.span else -1 for d in res.detections]
        out["span_end"] = [d.span[1] if d.span else -1 for d in res.detections]
        out["masked"] = [
            tokenizer.decode(p[d.span[0] : d.span[1]]).strip() if d.span else ""
            for p, d in zip(enc.prompts, res.detections, strict=True)
        ]
    out.attrs.update(seconds=res.seconds, new_tokens=res.new_tokens)
    return out


def _ending_logprobs(model, seqs: list[list[int]], lens: list[int], pad: int, batch_size: int):
    """The summed log-probability of the last ``lens[i]`` tokens of each sequence."""
    import torch
    import torch.nn.functional as F

    from overshadow_lab.decoding.padding import left_pad, positions

    device = next(model.parameters()).device
    scores = np.zeros(len(seqs))
    order = np.argsort([len(s) for s in seqs], kind="stable")  # similar lengths pad little
    with torch.no_grad():
        for lo in range(0, len(seqs), batch_size):
            idx = order[lo : lo + batch_size]
            ids, mask = left_pad([seqs[i] for i in idx], pad, device)
            logp = F.log_softmax(
                model(ids, attention_mask=mask, position_ids=positions(mask)).logits.float(), -1
            )
            tok_lp = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
            for j, i in enumerate(idx):
                scores[i] = float(tok_lp[j, -lens[i] :].sum())
    return scores


def memotrap_loglik(
    model,
    tokenizer,
    df: pd.DataFrame,
    batch_size: int = 16,
    template: str = "auto",
    coda=None,
    spans: list[tuple[int, int] | None] | None = None,
) -> pd.DataFrame:
    """Log-likelihood classification: the ending with the higher summed log-probability given the
    prompt (:mod:`.prompts`) is the prediction. Columns: subtask, pred_index, correct, margin
    (gold minus other).

    With ``coda`` (a :class:`~overshadow_lab.decoding.coda.CoDAConfig`), CoDA's contrast is applied to
    the scoring as well: detection runs on each prompt (or ``spans`` gives each row's masked
    span, None for no alarm, e.g. from a CoDA generation run), and where the alarm fires an
    ending is scored by its summed R-PMI, ``log p(ending | X) - log p(ending | X')`` with X' the
    prompt without the chosen span (CoDA's score on the common plausible set; the plausibility
    cut is not applied, as both endings are given). Added columns: ``alarm``,
    ``coda_pred_index``, ``coda_correct``, ``coda_margin`` (equal to the plain ones without an
    alarm).
    """
    from overshadow_lab.decoding import generate, mask_span, with_options

    enc = encode_benchmark(tokenizer, "memotrap", df, template)
    pad = tokenizer.pad_token_id or 0
    endings = [[_ids(tokenizer, c) for c in classes] for classes in df["classes"]]
    seqs, owners, lens = [], [], []
    for i, (pids, cids) in enumerate(zip(enc.prompts, endings, strict=True)):
        for c in cids:
            seqs.append(pids + c)
            owners.append(i)
            lens.append(len(c))
    scores = _ending_logprobs(model, seqs, lens, pad, batch_size)
    owners_arr = np.asarray(owners)
    golds = [int(g) for g in df["answer_index"]]

    def classify(s: np.ndarray) -> pd.DataFrame:
        rows = []
        for i, gold in enumerate(golds):
            si = s[owners_arr == i]
            pred = int(np.argmax(si))
            margin = float(si[gold] - np.max(np.delete(si, gold)))
            rows.append({"pred_index": pred, "correct": pred == gold, "margin": margin})
        return pd.DataFrame(rows)

    out = classify(scores)
    if coda is not None or spans is not None:
        if spans is None:
            cfg = with_options(_coda_config(coda, "memotrap", tokenizer), amplify=False)
            found = generate(
                model,
                enc.prompts,
                "coda",
                1,
                tokenizer=tokenizer,
                coda=cfg,
                spans=_spans(enc, cfg, tokenizer),
                batch_size=batch_size,
            ).detections
            spans = [d.span if d is not None and d.alarm else None for d in found]
        else:
            cfg = _coda_config(coda, "memotrap", tokenizer)
        if len(spans) != len(df):
            raise ValueError(f"got {len(spans)} spans for {len(df)} MemoTrap rows")
        alarm = np.asarray([sp is not None for sp in spans])
        contrast = scores.copy()
        hit = [k for k, i in enumerate(owners) if alarm[i]]
        if hit:
            masked = [
                mask_span(enc.prompts[owners[k]], spans[owners[k]], cfg.mask, cfg.mask_token_id)
                + seqs[k][len(enc.prompts[owners[k]]) :]
                for k in hit
            ]
            masked_scores = _ending_logprobs(model, masked, [lens[k] for k in hit], pad, batch_size)
            contrast[hit] = scores[hit] - masked_scores
        coda_out = classify(contrast)
        out["alarm"] = alarm
        for col in ("pred_index", "correct", "margin"):
            out[f"coda_{col}"] = coda_out[col]
    if "subtask" in df.columns:
        out.insert(0, "subtask", df["subtask"].to_numpy())
    return out


def compare_methods(
    model,
    tokenizer,
    benchmark: str,
    df: pd.DataFrame,
    methods=("greedy", "coda", "cad"),
    coda=None,
    cache: str | Path | None = None,
    progress: bool = False,
    **kwargs,
) -> pd.DataFrame:
    """Per-row results of several methods on the same rows (long format, column ``method``).

    With ``cache`` (a CSV path) the table is loaded when this version of the package computed it
    for the same rows and methods, else computed and written there
    (:func:`overshadow_lab.records.load_or_compute`, keyed on the package's code).
    """

    def compute() -> pd.DataFrame:
        parts = []
        for method in methods:
            bar = None
            if progress:
                bar = tqdm(total=len(df), desc=f"{benchmark} {method}", mininterval=5)
            res = evaluate_generation(
                model,
                tokenizer,
                benchmark,
                df,
                method,
                coda=coda,
                progress=bar.update if bar else None,
                **kwargs,
            )
            if bar:
                bar.close()
            res.insert(0, "method", method)
            res.insert(1, "row", range(len(df)))
            if "subtask" not in res.columns:
                res.insert(2, "subtask", "NQ-Swap" if benchmark == "nq_swap" else benchmark)
            res["seconds"] = res.attrs.get("seconds", np.nan)
            parts.append(res)
        return pd.concat(parts, ignore_index=True)

    if cache is None:
        return compute()

    def same_request(old: pd.DataFrame) -> bool:
        return set(old["method"]) == set(methods) and len(old) == len(methods) * len(df)

    return load_or_compute(cache, compute, valid=same_request)
