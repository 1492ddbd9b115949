"""Graded exercises: ``check_<name>(student_fn)`` for every exercise in the book.

Each chapter's exercises live in a submodule named after the chapter; all submodules are
imported here, so ``from overshadow_lab.exercises import check_relative_hallucination_rate``
works for any exercise. ``list_exercises()`` returns the catalogue as a DataFrame, and
``overshadow-lab grade`` runs every check on a folder of submissions.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from overshadow_lab.exercises.framework import (
    REGISTRY,
    Case,
    CheckResult,
    Exercise,
    ExerciseFailure,
    Mistake,
    close,
    register,
)

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "framework":
        importlib.import_module(f"{__name__}.{_mod.name}")

# Experiment checks are plain functions, not registered function exercises: one trains the
# student's chosen protocol, the other grades a prediction against recorded runs.
from overshadow_lab.exercises.data_imbalance import check_exposure_protocol  # noqa: E402
from overshadow_lab.exercises.law import check_transfer_prediction  # noqa: E402


def get_exercise(name: str) -> Exercise:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no exercise named {name!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None


def list_exercises():
    """The catalogue of exercises: name, chapter, points and description, one row each."""
    import pandas as pd

    rows = [
        {"exercise": e.name, "chapter": e.chapter, "points": e.points, "description": e.description}
        for e in REGISTRY.values()
    ]
    return pd.DataFrame(rows, columns=["exercise", "chapter", "points", "description"])


def __getattr__(attr: str) -> Any:
    if attr.startswith("check_") and attr[len("check_") :] in REGISTRY:
        exercise = REGISTRY[attr[len("check_") :]]

        def check(student_fn, quiet: bool = False) -> CheckResult:
            return exercise.check(student_fn, quiet=quiet)

        check.__name__ = attr
        check.__doc__ = (
            f"Check a student's ``{exercise.name}`` against the reference. {exercise.description}"
        )
        return check
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = [
    "REGISTRY",
    "check_exposure_protocol",
    "Case",
    "CheckResult",
    "Exercise",
    "ExerciseFailure",
    "Mistake",
    "check_transfer_prediction",
    "close",
    "get_exercise",
    "list_exercises",
    "register",
]
