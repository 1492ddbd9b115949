"""Exposure: how many times a run showed the model each training statement.

A size sweep compares models that differ in size *and*, under a stopping rule decided at run
time, in how long they trained. The lab's recall rule (``rule="converge"``) stops a run once the
dominant set is recalled; larger models reach that sooner, so they see every statement, the
rare subordinate ones included, fewer times. A rise of R with S can then be an exposure effect
rather than a size effect. Comparing like with like means fixing the exposure in advance and
giving every size the same (``rule="epochs"``), which is what this module checks and measures:

* :func:`statement_exposure`: the passes over the corpus a run of ``steps`` optimizer steps
  made, i.e. how many times it showed the model each statement (the lab's trainer draws every
  statement once per epoch, in ``ceil(n / batch_size)`` batches);
* :func:`planned_exposure`: that number *before* training, when a run's settings fix it
  (``None`` when the stopping rule decides at run time);
* :func:`check_equal_exposure`: whether a list of planned runs (:func:`overshadow_lab.lab.sweep.plan_runs`)
  gives every run the same exposure, with a one-line reason when it does not;
* :func:`exposure_table`: the exposure each run of a sweep table actually had.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from overshadow_lab.lab.data import SyntheticConfig


def statement_exposure(steps: int, n_sequences: int, batch_size: int) -> float:
    """Times each training statement was shown after ``steps`` optimizer steps.

    The lab's trainer shows every statement once per epoch, in ``ceil(n_sequences /
    batch_size)`` batches (the last one may be short), so the exposure is ``steps`` divided by
    the batches per epoch: the number of epochs run. A fraction means the last epoch was cut
    short (then some statements were shown once more than others).
    """
    if steps < 0 or n_sequences < 1 or batch_size < 1:
        raise ValueError(
            f"need steps >= 0, n_sequences >= 1 and batch_size >= 1, got {steps}, "
            f"{n_sequences}, {batch_size}"
        )
    return steps / math.ceil(n_sequences / batch_size)


def corpus_size(run: Mapping) -> int:
    """Training statements of a run's synthetic corpus: ``n_sets * (P * n + n)``."""
    cfg = SyntheticConfig(P=run["P"], L=run["L"], n=int(run.get("n", 1)), n_sets=int(run["n_sets"]))
    return cfg.n_sets * (cfg.m + cfg.n)


def planned_exposure(run: Mapping, n_sequences: int | None = None) -> float | None:
    """The exposure a run's settings fix before training, or None if its rule decides later.

    ``rule="epochs"`` fixes it (the number of epochs); ``rule="converge"`` fixes it only when
    ``min_steps >= max_steps`` (then every run trains exactly ``max_steps`` steps). Any other
    rule is treated as deciding at run time. ``n_sequences`` defaults to :func:`corpus_size`.
    """
    rule = run.get("rule")
    if rule == "epochs":
        return float(run["epochs"])
    if rule == "converge" and int(run.get("min_steps", 0)) >= int(run["max_steps"]):
        n = int(n_sequences) if n_sequences is not None else corpus_size(run)
        return statement_exposure(int(run["max_steps"]), n, int(run["batch_size"]))
    return None


def check_equal_exposure(runs: Sequence[Mapping]) -> tuple[bool, str]:
    """``(ok, reason)``: do all ``runs`` show each statement equally often, fixed in advance?

    ``runs`` are run configurations (:func:`overshadow_lab.lab.sweep.plan_runs`). A run whose
    exposure its rule decides at run time fails (the recall rule's exposure depends on how fast
    the model learns); so do runs with different planned exposures.
    """
    if not runs:
        raise ValueError("runs is empty: plan at least one run (plan_runs('S', ...))")
    planned = []
    for run in runs:
        e = planned_exposure(run)
        if e is None:
            label = run.get("size", run.get("value", "a run"))
            return False, (
                f"the exposure of {label} is decided during training (rule={run.get('rule')!r}): "
                "a size that learns faster stops sooner and sees the subordinate statements less "
                "often; fix it in advance (rule='epochs', the same epochs for every size)"
            )
        planned.append(e)
    if max(planned) - min(planned) > 1e-9:
        return False, (
            f"planned exposures differ between runs ({min(planned):g} to {max(planned):g} passes "
            "over the corpus): give every size the same number of epochs"
        )
    return True, f"every run shows each statement {planned[0]:g} times"


def exposure_table(table: pd.DataFrame, by: str = "size") -> pd.DataFrame:
    """Per ``by`` value of a sweep table: mean steps, exposure (epochs run) and R over seeds.

    Exposure comes from each row's ``steps``, ``batch_size`` and corpus size
    (:func:`statement_exposure`), so it holds for any stopping rule.
    """
    need = {"steps", "batch_size", "n_sets", "P", "L", "R", by}
    missing = sorted(need - set(table.columns))
    if missing:
        raise ValueError(f"the sweep table lacks column(s) {', '.join(missing)}")
    exposure = [
        statement_exposure(int(row["steps"]), corpus_size(row), int(row["batch_size"]))
        for row in table.to_dict("records")
    ]
    out = table.assign(exposure=exposure)
    agg = {"steps": ("steps", "mean"), "exposure": ("exposure", "mean"), "R": ("R", "mean")}
    if "S" in out and by != "S":
        agg = {"S": ("S", "first"), **agg}
    return out.groupby(by, sort=False).agg(**agg).reset_index()


__all__ = [
    "check_equal_exposure",
    "corpus_size",
    "exposure_table",
    "planned_exposure",
    "statement_exposure",
]
