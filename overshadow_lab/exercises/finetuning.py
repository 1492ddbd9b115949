"""Exercises of the chapters "Natural-language tasks and fine-tuning" and "Model size".

* ``relative_length`` (chapter ``finetuning``): L of a tokenised prompt, in the tokenizer's own
  tokens, from the positions of its distinct span;
* ``statement_exposure`` (chapter ``model_size``): how many times a run showed each statement;
* ``size_comparison_design`` (chapter ``model_size``, a graded experiment): the settings of a
  size sweep that removes the exposure confound. There is no single right answer, so the
  check does not compare with a reference answer: it plans the sweep the student designed
  (:func:`overshadow_lab.lab.sweep.plan_runs`) and accepts it when every size is given the same
  exposure, fixed before training (:func:`overshadow_lab.finetuning.exposure.check_equal_exposure`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overshadow_lab.exercises.framework import Case, Exercise, Mistake, from_plain, register
from overshadow_lab.finetuning.exposure import check_equal_exposure, statement_exposure
from overshadow_lab.finetuning.tasks import relative_length
from overshadow_lab.lab.sweep import plan_runs

check_relative_length = register(
    Exercise(
        name="relative_length",
        chapter="finetuning",
        reference=relative_length,
        description="L = (len(X_share) + len(x)) / len(x) of a tokenised prompt, in its tokens.",
        cases=[
            Case(([5, 9, 2, 7, 7, 1, 3], [6]), label="one-token distinct span at the end"),
            Case(([5, 9, 2, 7, 7, 1, 3], [5, 6]), label="two-token span"),
            Case(([11, 12, 13, 14, 15, 16], [0, 1, 2]), label="span at the start, L = 2"),
            Case(([4, 4, 4, 8, 8, 9, 4, 4, 4, 4, 4, 4], [3, 4, 5]), label="span in the middle"),
            Case(([3, 1, 4], []), label="edge case: no distinct span", raises=ValueError),
        ],
        mistakes=[
            Mistake(
                lambda prompt, pos: (len(prompt) - len(pos)) / len(pos),
                "that is len(X_share) / len(x): L counts the distinct span in the numerator too",
            ),
            Mistake(
                lambda prompt, pos: float(len(prompt)),
                "L is a ratio: divide the prompt's length by the distinct span's length",
            ),
            Mistake(
                lambda prompt, pos: len(prompt) / len({prompt[i] for i in pos}),
                "the span's length counts its positions; two of its tokens may be the same id",
            ),
        ],
    )
)

check_statement_exposure = register(
    Exercise(
        name="statement_exposure",
        chapter="model_size",
        reference=statement_exposure,
        description="Times each statement was shown: steps / ceil(n_sequences / batch_size).",
        cases=[
            Case((200, 300, 64), label="pico under the recall rule (5 batches an epoch)"),
            Case((25, 300, 64), label="medium under the recall rule"),
            Case((50, 320, 64), label="batches that divide the corpus exactly"),
            Case((7, 100, 16), label="an epoch cut short"),
            Case((0, 10, 4), label="no training"),
            Case((10, 300, 0), label="edge case: batch size 0", raises=ValueError),
            Case((-1, 300, 64), label="edge case: negative steps", raises=ValueError),
        ],
        mistakes=[
            Mistake(
                lambda steps, n, b: steps * b / n,
                "the last batch of an epoch is short: an epoch takes ceil(n / batch_size) steps, "
                "so divide steps by that, not by n / batch_size",
            ),
            Mistake(
                lambda steps, n, b: steps / n,
                "each step shows a whole batch, not one statement",
            ),
            Mistake(
                lambda steps, n, b: float(steps * b),
                "that counts statements shown in all; divide by the batches of one epoch",
            ),
        ],
    )
)


def _design_problem(design: Any, case: Case) -> str | None:
    """Why a student's size-sweep design fails to remove the exposure confound (None if it does)."""
    if not isinstance(design, dict):
        return f"return the settings as a dict (e.g. for run_sweep('S', ...)), got {design!r}"
    sizes = list(case.args[0])
    try:
        runs = plan_runs("S", sizes, seeds=[0], tier="cpu", **design)
    except (TypeError, ValueError) as err:
        return f"run_sweep cannot plan these settings: {err}"
    ok, reason = check_equal_exposure(runs)
    return None if ok else reason


@dataclass
class DesignExercise(Exercise):
    """An exercise whose answer is a design, accepted when ``validate`` finds no problem.

    ``validate(answer, case)`` returns None for an acceptable answer, else the reason. The
    reference is one acceptable answer (for the solution and the tests), not the only one.
    """

    validate: Callable[[Any, Case], str | None] = field(default=_design_problem)

    def _verdict(self, case: Case, outcome: Any) -> str | None:
        where = f"on input {case.describe()}"
        if not isinstance(outcome, dict) or not ("value" in outcome or "raised" in outcome):
            return f"{where} the answer could not be read"
        if outcome.get("raised") is not None:
            return f"{where} it raised {str(outcome.get('error', ''))[:300]}"
        problem = self.validate(from_plain(outcome["value"]), case)
        return None if problem is None else f"{where} the design is not fair: {problem}"


def equal_exposure_design(sizes: list[str]) -> dict:
    """One acceptable design: every size trained for the same 20 epochs of the same corpus."""
    return {"rule": "epochs", "epochs": 20}


check_size_comparison_design = register(
    DesignExercise(
        name="size_comparison_design",
        chapter="model_size",
        reference=equal_exposure_design,
        description="Settings of a size sweep in which every size sees each statement equally "
        "often, fixed before training.",
        cases=[
            Case((["pico", "nano", "tiny"],), label="three small sizes"),
            Case((["pico", "medium"],), label="the smallest and the largest CPU size"),
        ],
    )
)
