"""The batch driver: any decoding method on lists of token ids, through ``model.generate``.

:func:`generate` left-pads each batch of prompts (:func:`~overshadow_lab.decoding.padding.left_pad`),
builds the method's logits processor (CoDA's from :mod:`~overshadow_lab.decoding.processors`, a
baseline's from :mod:`~overshadow_lab.decoding.baselines`), hands CoDA generate's own KV cache so
the prompts are run once, and returns the generated ids without padding and end-of-sequence
tokens, with CoDA's detections.
"""

from __future__ import annotations

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
from overshadow_lab.decoding.kv_cache import _cache_for_generate
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
    **generate_kwargs,
) -> DecodeResult:
    """Decode every prompt (token id lists) with ``method`` via ``model.generate``, in batches.

    method: ``greedy``; ``coda`` (``coda`` config, optional per-prompt ``spans``); ``cad``
    (needs ``plain_prompts``: the prompts without their context); ``cd`` (needs ``amateur``, a
    smaller model with the same tokenizer); ``dola`` (``dola_premature_layers``: ``"high"``,
    ``"low"`` or hidden-state indices, see :func:`~overshadow_lab.decoding.baselines.dola_layers`).
    ``stop_pattern`` (needs ``tokenizer``) ends a row once its decoded continuation matches.
    ``progress(n)`` is called after each batch.
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
