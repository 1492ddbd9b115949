"""Exercises of the chapter "Data imbalance".

Two implement-a-function exercises on the chapter's core ideas (the prompt ``X_share ⊙ x`` and
the exact-match rate behind HR and RR) and one experiment: :func:`check_exposure_protocol`
checks that a student's choice of training protocol removes the exposure confound, by training
under it on two corpora far apart in P and comparing how often each subordinate statement was
seen (the interpretation of the student's sweep is graded with the rubric in the chapter).
"""

from __future__ import annotations

import math

import numpy as np

from overshadow_lab.exercises.framework import (
    PASS_MARK,
    Case,
    CheckResult,
    Exercise,
    ExerciseFailure,
    Mistake,
    register,
)
from overshadow_lab.lab.data import insert_span, make_knowledge_sets
from overshadow_lab.lab.models import make_model
from overshadow_lab.lab.train import TrainConfig, train_model
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

#: The corpora on which :func:`check_exposure_protocol` trains a student's protocol: small, so that
#: a check takes seconds, and far apart in P, so that an exposure confound cannot hide.
_PROBE_P = (2, 20)
_PROBE_SETS = {"L": 3, "n_sets": 8, "vocab": 200, "seed": 0}


def check_exposure_protocol(options: dict, quiet: bool = False) -> CheckResult:
    """Check that training ``options`` remove the exposure confound of the recall rule.

    ``options`` are keyword arguments of :func:`~overshadow_lab.lab.train.train_model` (for
    example from :func:`~overshadow_lab.lab.protocols.protocol_options`). The check trains a
    small model under them on a P = 2 and a P = 20 corpus and passes when every subordinate
    statement was presented the same number of times (at least once) in both runs, whatever
    P; otherwise it raises :class:`ExerciseFailure` naming what differed and the likely cause.
    """
    name = "exposure_protocol"
    if not isinstance(options, dict):
        raise ExerciseFailure(f"{name}: expected a dict of training options, got {options!r}")
    try:
        TrainConfig(**options)
    except TypeError as err:
        raise ExerciseFailure(f"{name}: not a training option: {err}") from None
    options = {**options, "progress": False, "threads": 1}
    options.setdefault("batch_size", 16)
    options["max_steps"] = min(int(options.get("max_steps", 400)), 400)  # keep the check short
    seen = {}
    for P in _PROBE_P:
        sets = make_knowledge_sets(P=P, **_PROBE_SETS)
        model = make_model("nano", sets.vocab_size, seed=0)
        res = train_model(model, sets, **options)
        seen[P] = (res.exposure["subordinate_min"], res.exposure["subordinate_max"], res.steps)
    lo, hi = (seen[P][:2] for P in _PROBE_P)
    rule = options.get("rule", TrainConfig().rule)
    if lo[0] != hi[0]:
        why = {
            "converge": "the recall threshold stops a popular corpus once its dominant set is "
            "recalled, before the subordinate statements have been seen as often",
            "plateau": "a loss plateau is reached at a different point for each corpus",
        }.get(rule, "a budget in optimizer steps buys fewer passes over a bigger corpus")
        msg = (
            f"each subordinate statement was seen {lo[0]} times at P = {_PROBE_P[0]} but "
            f"{hi[0]} times at P = {_PROBE_P[1]}: {why}"
        )
    elif lo[0] != lo[1] or hi[0] != hi[1]:
        msg = (
            "some subordinate statements were seen more often than others in one run: "
            "a budget that ends inside a pass over the corpus"
        )
    elif lo[0] < 1:
        msg = "the subordinate statements were never presented: give the runs a budget"
    else:
        result = CheckResult(name, True, len(_PROBE_P), "")
        if not quiet:
            print(
                f"{PASS_MARK} {name}: every subordinate statement seen {lo[0]} times at "
                f"P = {_PROBE_P[0]} and at P = {_PROBE_P[1]} (rule {rule!r})"
            )
        return result
    raise ExerciseFailure(f"{name}: {msg}")
