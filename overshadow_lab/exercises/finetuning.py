"""Exercises of the chapter "Fine-tuning experiments on GPU"."""

from __future__ import annotations

import numpy as np

from overshadow_lab.exercises.framework import Case, Exercise, Mistake, register
from overshadow_lab.finetuning.gpu_tier import shard_of
from overshadow_lab.finetuning.speed import model_flops_utilization
from overshadow_lab.finetuning.tasks import filler_tokens_needed

check_model_flops_utilization = register(
    Exercise(
        name="model_flops_utilization",
        chapter="finetuning",
        reference=model_flops_utilization,
        description="MFU = 6 N tokens/s / peak FLOP/s; NaN without a peak; ValueError for negatives.",
        cases=[
            Case((160e6, 3.5e5, 989e12), label="a 160M model on an H100"),
            Case((70e6, 1.2e5, 65e12), label="a 70M model on a T4"),
            Case((0, 1e5, 312e12), label="edge case: no parameters"),
            Case((160e6, 3.5e5, None), label="edge case: a CPU (no peak)"),
            Case((-5, 1e5, 312e12), label="edge case: negative count", raises=ValueError),
        ],
        mistakes=[
            Mistake(
                lambda n, t, p: 2 * n * t / p if p else float("nan"),
                "2N counts only the forward pass: training costs about 6N per token "
                "(forward 2N, backward 4N)",
            ),
            Mistake(
                lambda n, t, p: 100 * 6 * n * t / p if p else float("nan"),
                "return a fraction, not a percentage",
            ),
            Mistake(
                lambda n, t, p: 6 * n * t / p if p else 0.0,
                "without a peak (a CPU) MFU is undefined: return NaN, not 0",
            ),
        ],
    )
)

check_filler_tokens_needed = register(
    Exercise(
        name="filler_tokens_needed",
        chapter="finetuning",
        reference=filler_tokens_needed,
        description="Filler tokens so that (len(X_share) + span_len) / span_len == L exactly.",
        cases=[
            Case((16, 1, 15), label="one-token span, template already at L"),
            Case((20, 1, 15), label="one-token span, five filler tokens"),
            Case((10, 3, 14), label="three-token span"),
            Case((4.5, 2, 5), label="fractional L, whole token count"),
            Case((3, 1, 15), label="edge case: L shorter than the template", raises=ValueError),
            Case((4.5, 1, 2), label="edge case: (L-1)*span_len not whole", raises=ValueError),
        ],
        mistakes=[
            Mistake(
                lambda L, k, nat: int(round(L * k)) - nat,
                "len(X_share) = (L - 1) * span_len: L counts the distinct span too",
            ),
            Mistake(
                lambda L, k, nat: int(round(L - 1)) - nat,
                "L is measured in units of the distinct span: multiply (L - 1) by span_len",
            ),
            Mistake(
                lambda L, k, nat: max(0, int(round((L - 1) * k)) - nat),
                "a template longer than L allows cannot be shortened: raise ValueError",
            ),
        ],
    )
)


def _shard_cases():
    rng = np.random.default_rng(4)
    items = [int(x) for x in rng.integers(0, 100, size=13)]
    return [
        Case((items, 0, 4), label="rank 0 of 4"),
        Case((items, 3, 4), label="rank 3 of 4"),
        Case((items, 0, 1), label="one process takes everything"),
        Case((items[:2], 2, 3), label="more processes than runs"),
        Case((items, 4, 4), label="edge case: rank == world", raises=ValueError),
    ]


check_shard_runs = register(
    Exercise(
        name="shard_runs",
        chapter="finetuning",
        reference=shard_of,
        description="Every world-th run starting at rank, so that N processes split a plan.",
        cases=_shard_cases,
        mistakes=[
            Mistake(
                lambda items, r, w: list(items)[r * len(items) // w : (r + 1) * len(items) // w],
                "contiguous blocks also partition the plan, but the convention here is "
                "round-robin (items r, r + world, ...), which balances slow and fast runs",
            ),
            Mistake(
                lambda items, r, w: [it for k, it in enumerate(items) if k % w == r + 1],
                "ranks count from 0: rank r takes items r, r + world, r + 2 world ...",
            ),
        ],
    )
)
