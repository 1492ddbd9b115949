"""The machinery behind every graded exercise.

An :class:`Exercise` names the function a student writes, holds the reference solution, a list
of input :class:`Case` s (fixed values and edge cases), and known :class:`Mistake` s: wrong
implementations that students typically write. ``check(student_fn)`` runs the student's function
beside the reference on every case; on the first disagreement it raises :class:`ExerciseFailure`
with a message that shows the input, the expected and the received value, and, when the
student's answer equals one of the known mistakes, names that mistake.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PASS_MARK = "\u2714"  # check mark printed on success


class ExerciseFailure(AssertionError):
    """A student's function disagrees with the reference (the message says where and why)."""


@dataclass
class Case:
    """One input to try: positional and keyword arguments, a label for messages.

    ``raises`` marks an edge case where the reference raises that exception type and the
    student's function must raise it too.
    """

    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    raises: type[BaseException] | None = None

    def describe(self) -> str:
        parts = [_short(a) for a in self.args] + [f"{k}={_short(v)}" for k, v in self.kwargs.items()]
        call = "(" + ", ".join(parts) + ")"
        return f"{self.label}: {call}" if self.label else call


@dataclass
class Mistake:
    """A typical wrong implementation and the hint to give when a student's output matches it."""

    fn: Callable[..., Any]
    hint: str


@dataclass
class CheckResult:
    name: str
    passed: bool
    n_cases: int
    message: str

    def _ipython_display_(self) -> None:
        """In a notebook the check has already printed its verdict; show nothing more."""


@dataclass
class Exercise:
    """A graded exercise: the student implements ``name``; ``check`` grades it."""

    name: str
    chapter: str
    reference: Callable[..., Any]
    cases: Sequence[Case] | Callable[[], Sequence[Case]]
    mistakes: Sequence[Mistake] = ()
    rtol: float = 1e-5
    atol: float = 1e-7
    points: float = 1.0
    description: str = ""

    def get_cases(self) -> list[Case]:
        return list(self.cases() if callable(self.cases) else self.cases)

    def run(self, student_fn: Callable[..., Any]) -> CheckResult:
        """Grade ``student_fn`` without raising; the result says what failed."""
        if not callable(student_fn):
            return CheckResult(self.name, False, 0, f"expected a function, got {type(student_fn).__name__}")
        cases = self.get_cases()
        for case in cases:
            message = self._check_case(student_fn, case)
            if message is not None:
                return CheckResult(self.name, False, len(cases), message)
        return CheckResult(self.name, True, len(cases), f"all {len(cases)} cases pass")

    def check(self, student_fn: Callable[..., Any], quiet: bool = False) -> CheckResult:
        """Grade ``student_fn``; raise :class:`ExerciseFailure` with a diagnosis if it is wrong."""
        result = self.run(student_fn)
        if not result.passed:
            raise ExerciseFailure(f"{self.name}: {result.message}")
        if not quiet:
            print(f"{PASS_MARK} {self.name}: {result.message}")
        return result

    # -- internals -------------------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], case: Case) -> Any:
        return fn(*copy.deepcopy(case.args), **copy.deepcopy(dict(case.kwargs)))

    def _check_case(self, student_fn: Callable[..., Any], case: Case) -> str | None:
        where = f"on input {case.describe()}"
        if case.raises is not None:
            try:
                got = self._call(student_fn, case)
            except case.raises:
                return None
            except Exception as err:  # noqa: BLE001 - any other error is the student's
                return f"{where} expected {case.raises.__name__}, but it raised {type(err).__name__}: {err}"
            return f"{where} expected {case.raises.__name__} to be raised, but it returned {_short(got)}"
        expected = self._call(self.reference, case)
        try:
            got = self._call(student_fn, case)
        except NotImplementedError:
            return "not implemented yet (the function raised NotImplementedError)"
        except Exception as err:  # noqa: BLE001
            return f"{where} it raised {type(err).__name__}: {err}"
        if close(got, expected, self.rtol, self.atol):
            return None
        msg = f"{where} expected {_short(expected)}, got {_short(got)}"
        for mistake in self.mistakes:
            try:
                wrong = self._call(mistake.fn, case)
            except Exception:  # noqa: BLE001 - a mistake that cannot run this case is no match
                continue
            if not close(wrong, expected, self.rtol, self.atol) and close(got, wrong, self.rtol, self.atol):
                return f"{msg}. Likely mistake: {mistake.hint}"
        return msg


def _to_numeric(x: Any) -> Any:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(x, (np.ndarray, np.generic)) or isinstance(x, (int, float)) and not isinstance(x, bool):
        return np.asarray(x, dtype=float)
    return x


def close(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-7) -> bool:
    """Equality for exercise outputs: numbers, arrays and tensors up to tolerance (NaN == NaN),
    sequences and mappings element by element, anything else with ``==``."""
    a, b = _to_numeric(a), _to_numeric(b)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(close(a[k], b[k], rtol, atol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, rtol, atol) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


def _short(x: Any, limit: int = 80) -> str:
    if isinstance(x, np.generic):  # show np.float64(0.5) as 0.5
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    arr = _to_numeric(x)
    if isinstance(arr, np.ndarray) and arr.ndim > 0:
        text = np.array2string(arr, precision=4, threshold=8, separator=", ")
        text = text.replace("\n", " ")
        text = f"array(shape={arr.shape}) {text}"
    else:
        text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Callable[..., CheckResult]:
    """Add an exercise to the registry and return its ``check_<name>`` function."""
    if exercise.name in REGISTRY and REGISTRY[exercise.name] is not exercise:
        raise ValueError(f"two exercises are named {exercise.name!r}")
    REGISTRY[exercise.name] = exercise

    def check(student_fn: Callable[..., Any], quiet: bool = False) -> CheckResult:
        return exercise.check(student_fn, quiet=quiet)

    check.__name__ = f"check_{exercise.name}"
    check.__doc__ = (
        f"Check a student's ``{exercise.name}`` against the reference "
        f"(chapter {exercise.chapter!r}). {exercise.description}"
    )
    return check
