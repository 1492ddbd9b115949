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
from overshadow_lab.benchmark_data.scoring import STOP_PATTERN, cut_answer, text_exact_match
from overshadow_lab.records import load_or_compute

BENCH_DEFAULTS: dict[str, dict[str, Any]] = {
    # MemoTrap answers are one or two words: mask words; NQ-Swap contexts are long: mask entities
    "memotrap": {"max_new_tokens": 8, "candidates": "word", "articles": False},
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
) -> pd.DataFrame:
    """Generate an answer for every row with ``method`` and score it. One row per input with the
    prediction, ``em`` (faithful answer), ``memorised`` (the prediction is the memorised or
    original answer: overshadowing) and, for CoDA, ``alarm`` and ``indicator``."""
    from overshadow_lab.decoding import CoDAConfig, generate, with_options

    spec = BENCH_DEFAULTS[benchmark]
    items = benchmark_items(benchmark, df)
    enc = lambda texts: [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]  # noqa: E731
    prompts = enc(items["prompts"])
    coda = coda if coda is not None else CoDAConfig(candidates=spec["candidates"])
    if coda.mask == "replace" and coda.mask_token_id is None:
        coda = with_options(coda, mask_token_id=tokenizer.unk_token_id or tokenizer.pad_token_id)
    res = generate(
        model,
        prompts,
        method,
        max_new_tokens or spec["max_new_tokens"],
        tokenizer=tokenizer,
        coda=coda,
        plain_prompts=enc(items["plain"]) if method == "cad" else None,
        cad_alpha=cad_alpha,
        amateur=amateur,
        stop_pattern=STOP_PATTERN,
        batch_size=batch_size,
        progress=progress,
    )
    texts = tokenizer.batch_decode(res.outputs, skip_special_tokens=True)
    out = pd.DataFrame(
        {
            "prediction": [cut_answer(t).strip() for t in texts],
            "em": [
                text_exact_match(t, g, spec["articles"])
                for t, g in zip(texts, items["golds"], strict=True)
            ],
            "memorised": [
                text_exact_match(t, g, spec["articles"])
                for t, g in zip(texts, items["memorised"], strict=True)
            ],
        }
    )
    if "subtask" in df.columns:
        out.insert(0, "subtask", df["subtask"].to_numpy())
    if method == "coda":
        out["alarm"] = [d.alarm for d in res.detections]
        out["indicator"] = [d.indicator for d in res.detections]
    out.attrs.update(seconds=res.seconds, new_tokens=res.new_tokens)
    return out


def memotrap_loglik(model, tokenizer, df: pd.DataFrame, batch_size: int = 16) -> pd.DataFrame:
    """Log-likelihood classification: the ending with the higher summed log-probability given the
    prompt is the prediction. Columns: subtask, pred_index, correct, margin (gold minus other)."""
    import torch
    import torch.nn.functional as F

    from overshadow_lab.decoding.padding import left_pad, positions

    device = next(model.parameters()).device
    seqs, owners, lens = [], [], []
    for i, (p, classes) in enumerate(zip(df["prompt"], df["classes"], strict=True)):
        pids = tokenizer(p, add_special_tokens=False)["input_ids"]
        for c in classes:
            cids = tokenizer(c, add_special_tokens=False)["input_ids"]
            seqs.append(pids + cids)
            owners.append(i)
            lens.append(len(cids))
    scores = np.zeros(len(seqs))
    with torch.no_grad():
        for lo in range(0, len(seqs), batch_size):
            chunk = seqs[lo : lo + batch_size]
            ids, mask = left_pad(chunk, tokenizer.pad_token_id or 0, device)
            pos = positions(mask)
            logp = F.log_softmax(
                model(ids, attention_mask=mask, position_ids=pos).logits.float(), -1
            )
            tok_lp = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
            for j in range(len(chunk)):
                k = lens[lo + j]
                scores[lo + j] = float(tok_lp[j, -k:].sum())
    rows = []
    owners_arr = np.asarray(owners)
    for i, gold in enumerate(df["answer_index"]):
        s = scores[owners_arr == i]
        pred = int(np.argmax(s))
        rows.append(
            {
                "pred_index": pred,
                "correct": pred == int(gold),
                "margin": float(s[int(gold)] - np.max(np.delete(s, int(gold)))),
            }
        )
    out = pd.DataFrame(rows)
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
