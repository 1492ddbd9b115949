"""Exercises of the chapter "Data imbalance"."""

from __future__ import annotations

import math

import numpy as np

from overshadow_lab.exercises.framework import Case, Exercise, Mistake, register
from overshadow_lab.lab.data import insert_span
from overshadow_lab.lab.train import epoch_steps
from overshadow_lab.metrics import token_exact_match_rate

check_insert_span = register(
    Exercise(
        name="insert_span",
        chapter="data_imbalance",
        reference=insert_span,
        description="Build the prompt X_share ⊙ x: insert a distinct span at the end, start, "
        "middle (after len(shared)//2 tokens) or at an index.",
        cases=[
            Case(([1, 2, 3, 4], [9]), {"position": "end"}, label="end"),
            Case(([1, 2, 3, 4], [9]), {"position": "start"}, label="start"),
            Case(([1, 2, 3, 4], [9, 8]), {"position": "middle"}, label="middle, even length"),
            Case(([1, 2, 3, 4, 5], [9]), {"position": "middle"}, label="middle, odd length"),
            Case(([1, 2, 3], [7, 7]), {"position": 1}, label="integer index"),
            Case(([5], [6]), {"position": "middle"}, label="edge case: one shared token"),
            Case(
                ([1, 2], [3]),
                {"position": 5},
                label="edge case: index past the end",
                raises=ValueError,
            ),
            Case(
                ([1, 2], [3]),
                {"position": "left"},
                label="edge case: unknown name",
                raises=ValueError,
            ),
        ],
        mistakes=[
            Mistake(
                lambda s, x, position="end": (
                    list(x) + list(s)
                    if position == "end"
                    else list(s) + list(x)
                    if position == "start"
                    else insert_span(s, x, position)
                ),
                "end and start are swapped: 'end' puts the distinct span after X_share",
            ),
            Mistake(
                lambda s, x, position="end": (
                    insert_span(s, x, math.ceil(len(s) / 2))
                    if position == "middle"
                    else insert_span(s, x, position)
                ),
                "'middle' inserts after len(shared) // 2 tokens (round down), not up",
            ),
        ],
    )
)

check_exact_match_rate = register(
    Exercise(
        name="exact_match_rate",
        chapter="data_imbalance",
        reference=token_exact_match_rate,
        description="Fraction of greedy answers (token lists) equal to their targets; HR is "
        "this rate against Y_a on the subordinate prompts.",
        cases=[
            Case(([[5], [6], [5]], [[5], [5], [5]]), label="single-token answers"),
            Case(([[5, 1], [5, 2]], [[5, 1], [5, 1]]), label="multi-token answers"),
            Case(([[1, 2]], [[1, 2]]), label="one perfect answer"),
            Case(([[3]], [[4]]), label="one wrong answer"),
            Case(([], []), label="edge case: nothing to score", raises=ValueError),
            Case(([[1]], [[1], [2]]), label="edge case: lengths differ", raises=ValueError),
        ],
        mistakes=[
            Mistake(
                lambda p, t: float(np.mean([a[0] == b[0] for a, b in zip(p, t, strict=True)])),
                "compare the whole answer sequence, not only its first token",
            ),
            Mistake(
                lambda p, t: float(sum(list(a) == list(b) for a, b in zip(p, t, strict=True))),
                "return a fraction (divide the number of matches by the number of prompts)",
            ),
        ],
    )
)

check_epoch_steps = register(
    Exercise(
        name="epoch_steps",
        chapter="data_imbalance",
        reference=epoch_steps,
        description="Optimizer steps of a fixed epoch budget: epochs * ceil(n_sequences / batch).",
        cases=[
            Case((600, 64, 10), label="P=5 corpus, 10 epochs"),
            Case((10100, 64, 10), label="P=100 corpus, 10 epochs"),
            Case((128, 64, 3), label="batches divide the corpus exactly"),
            Case((5, 64, 2), label="edge case: corpus smaller than a batch"),
            Case((100, 0, 1), label="edge case: batch size 0", raises=ValueError),
        ],
        mistakes=[
            Mistake(
                lambda n, b, e=1: e * (n // b), "the last, shorter batch is a step too: round up"
            ),
            Mistake(lambda n, b, e=1: e * n / b, "steps are whole numbers: round the batches up"),
            Mistake(lambda n, b, e=1: math.ceil(n / b), "multiply by the number of epochs"),
        ],
    )
)
