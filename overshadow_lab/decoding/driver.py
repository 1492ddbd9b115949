"""The batch driver: any decoding method on lists of token ids, through ``model.generate``.

:func:`generate` left-pads each batch of prompts (:func:`~overshadow_lab.decoding.padding.left_pad`),
builds the method's logits processor (CoDA's from :mod:`~overshadow_lab.decoding.processors`, a
baseline's from :mod:`~overshadow_lab.decoding.baselines`), hands CoDA generate's own KV cache so
the prompts are run once, and returns the generated ids without padding and end-of-sequence
tokens, with CoDA's detections. Greedy CoDA runs by default in a loop of its own
(:func:`_coda_fused`) that feeds the prompts and their masked prompts through one forward pass
per step.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteria

from overshadow_lab.decoding.baselines import (
    CADLogitsProcessor,
    ContrastiveDecodingLogitsProcessor,
    DoLaLogitsProcessor,
)
from overshadow_lab.decoding.coda import CoDAConfig, Detection
from overshadow_lab.decoding.kv_cache import _cache_for_generate, _cache_layers, _Stream
from overshadow_lab.decoding.padding import left_pad
from overshadow_lab.decoding.processors import CoDALogitsProcessor

METHODS = ("greedy", "coda", "cad", "cd", "dola")


class _RegexStop(StoppingCriteria):
    """Stop a row once its decoded continuation matches a pattern (e.g. a newline) after its
    first visible character: leading spaces and blank lines do not end an answer."""

    def __init__(self, tokenizer, prompt_width: int, pattern: str):
        self.tokenizer, self.width, self.pattern = tokenizer, prompt_width, re.compile(pattern)

    def __call__(self, input_ids, scores, **kwargs):
        texts = self.tokenizer.batch_decode(input_ids[:, self.width :], skip_special_tokens=True)
        return torch.tensor(
            [bool(self.pattern.search(t.lstrip())) for t in texts], device=input_ids.device
        )


@dataclass
class DecodeResult:
    """What :func:`generate` returns: the continuations, CoDA's detections and the time taken."""

    outputs: list[list[int]]  # generated token ids per prompt (eos and padding removed)
    detections: list[Detection | None]  # CoDA's detection per prompt (None for other methods)
    seconds: float = 0.0
    new_tokens: int = 0


def _fusable(cfg: CoDAConfig, do_sample: bool, generate_kwargs: dict) -> str | None:
    """Why CoDA cannot run as one fused loop here (None: it can)."""
    if do_sample:
        return "sampling"
    if cfg.detect != "once":
        return "detect='every_step'"
    if not cfg.amplify:
        return "amplify=False"
    if not cfg.share_prefix or cfg.variant_batch_size == 1:
        return "no shared prefix"
    extra = set(generate_kwargs) - {"min_new_tokens"}
    if extra:
        return f"generate options {', '.join(sorted(extra))}"
    return None


@torch.no_grad()
def _coda_fused(
    model,
    batch: list[list[int]],
    cfg: CoDAConfig,
    spans,
    tokenizer,
    pad: int,
    max_new_tokens: int,
    eos_token_id: int | None,
    stop_pattern: str | None,
    min_new_tokens: int = 0,
) -> tuple[list[list[int]], list[Detection]] | None:
    """Greedy CoDA (``detect="once"``) without ``model.generate``: each step is one forward pass
    for the prompts and their flagged masked prompts together.

    With ``model.generate`` the flagged prompts' X' go through the model in a pass of their own
    at every step, beside generate's pass for X; here, from the third token on, the rows of X and
    of X' are one batch (:meth:`~overshadow_lab.decoding.kv_cache._Stream.merged`). Detection and
    the contrast are the processor's own (:class:`CoDALogitsProcessor`: calls 1 and 2 as in
    generate, then :meth:`~overshadow_lab.decoding.processors.CoDALogitsProcessor.contrast_with`), so the tokens are those of the
    generate path up to float rounding. Stopping follows generate's: a row ends after
    ``eos_token_id`` (dropped) or once its text matches ``stop_pattern`` after its first visible
    character; finished rows are fed ``pad``. None where the model's cache cannot be merged.
    """
    n = len(batch)
    x = _Stream(model, batch, pad)
    if _cache_layers(x.cache) is None:
        return None
    proc = CoDALogitsProcessor(model, batch, cfg, spans, tokenizer, pad, x.cache)
    ids = None
    device = x.logits.device
    stop = re.compile(stop_pattern) if stop_pattern else None
    outputs: list[list[int]] = [[] for _ in range(n)]
    done = torch.zeros(n, dtype=torch.bool, device=device)
    stream, rows = x, []
    for step in range(max_new_tokens):
        logits = stream.logits[:n]
        if step < min_new_tokens and eos_token_id is not None:
            logits = logits.clone()
            logits[:, eos_token_id] = -math.inf
        if step == 0:
            scores = proc(left_pad(batch, pad, device)[0], logits)
        elif step == 1:
            scores = proc(ids, logits)
        else:
            scores = proc.contrast_with(logits, stream.logp[n:] if rows else None)
        tokens = scores.argmax(-1).masked_fill(done, pad)
        for i, t in enumerate(tokens.tolist()):
            if done[i]:
                continue
            if eos_token_id is not None and t == eos_token_id:
                done[i] = True
                continue
            outputs[i].append(t)
            if stop is not None and stop.search(tokenizer.decode(outputs[i]).lstrip()):
                done[i] = True
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        ids = tokens.view(-1, 1)
        if step == 1:  # call 2 made the flagged prompts' X' stream: step it with X from now on
            rows, masked = proc.release_masked_stream()
            joint = _Stream.merged(x, masked) if masked is not None else None
            if masked is not None and joint is None:  # cannot merge: fall back to two passes
                return None
            stream = joint or x
        stream.step(torch.cat([tokens, tokens[rows]]) if rows else tokens)
    return outputs, proc.detections


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
    dola_premature_layers: str | Sequence[int] = "high",
    stop_pattern: str | None = None,
    eos_token_id: int | None = None,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int | None = None,
    progress: Callable[[int], Any] | None = None,
    fused: bool | None = None,
    **generate_kwargs,
) -> DecodeResult:
    """Decode every prompt (token id lists) with ``method`` via ``model.generate``, in batches.

    method: ``greedy``; ``coda`` (``coda`` config, optional per-prompt ``spans``); ``cad``
    (needs ``plain_prompts``: the prompts without their context); ``cd`` (needs ``amateur``, a
    smaller model with the same tokenizer); ``dola`` (``dola_premature_layers``: ``"high"``,
    ``"low"`` or hidden-state indices, see :func:`~overshadow_lab.decoding.baselines.dola_layers`).
    ``stop_pattern`` (needs ``tokenizer``) ends a row once its decoded continuation matches.
    ``progress(n)`` is called after each batch.

    ``fused`` (CoDA only): decode in one loop where each step is a single forward pass for the
    prompts and their flagged masked prompts (:func:`_coda_fused`, about half the time per
    token of two passes) instead of ``model.generate`` with the logits processor. None (default)
    fuses where it applies (greedy, ``detect="once"``, the contrast on, shared prefixes, no
    generate options but ``min_new_tokens``); True insists, False never fuses. Both give the
    same tokens up to float rounding (tested).
    """
    if "dola_layers" in generate_kwargs:
        raise ValueError("generate's dola_layers= is now called dola_premature_layers=")
    if method not in METHODS:
        raise ValueError(f"unknown decoding method {method!r}: use one of {', '.join(METHODS)}")
    if method == "cad" and plain_prompts is None:
        raise ValueError("method='cad' needs plain_prompts (each prompt without its context)")
    if method == "cd" and amateur is None:
        raise ValueError("method='cd' needs amateur= (a smaller model with the same tokenizer)")
    if stop_pattern and tokenizer is None:
        raise ValueError("stop_pattern needs tokenizer= to decode the continuation")
    cfg = coda or CoDAConfig()
    why_not = _fusable(cfg, do_sample, generate_kwargs) if method == "coda" else "not CoDA"
    if fused and why_not:
        raise ValueError(
            f"fused=True applies to greedy CoDA with detect='once' only, not {why_not}"
        )
    fuse = method == "coda" and fused is not False and why_not is None
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
        if fuse:
            sp = None if spans is None else spans[lo : lo + batch_size]
            done = _coda_fused(
                model,
                batch,
                cfg,
                sp,
                tokenizer,
                pad,
                max_new_tokens,
                eos_token_id,
                stop_pattern,
                int(generate_kwargs.get("min_new_tokens") or 0),
            )
            if done is not None:
                outputs.extend(done[0])
                detections.extend(done[1])
                new_tokens += sum(len(o) for o in done[0])
                if progress is not None:
                    progress(len(batch))
                continue
        ids, mask = left_pad(batch, pad, device)
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
            processors.append(
                DoLaLogitsProcessor(model, batch, dola_premature_layers, pad_token_id=pad)
            )
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
