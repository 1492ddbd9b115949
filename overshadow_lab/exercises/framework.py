"""The machinery behind every graded exercise.

An :class:`Exercise` names the function a student writes, holds the reference solution, a list
of input :class:`Case` s (fixed values and edge cases), and known :class:`Mistake` s: wrong
implementations that students typically write. ``check(student_fn)`` runs the student's function
beside the reference on every case; on the first disagreement it raises :class:`ExerciseFailure`
with a message that shows the input, the expected and the received value, and, when the
student's answer equals one of the known mistakes, names that mistake.

Answers are judged as *plain data*: :meth:`Exercise.outcome` turns what the student's function
returned (or raised) into JSON-ready values (:func:`to_plain`), and :meth:`Exercise.judge`
compares those, decoded by :func:`from_plain`, with references it computes itself. A notebook's
``check`` does both in one process; the grader (:mod:`overshadow_lab.grading`) runs only the
first half inside a submission's sandbox and the second in its own process, so nothing a
submission does to its own copy of this module can change a verdict. This module imports only
the standard library and NumPy (torch only for a tensor answer), so that the sandbox can load it
by path without the rest of the package.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
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
        parts = [_short(a) for a in self.args] + [
            f"{k}={_short(v)}" for k, v in self.kwargs.items()
        ]
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
    _inputs: list[Case] | None = field(default=None, init=False, repr=False, compare=False)
    _answers: dict[int, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def get_cases(self) -> list[Case]:
        return list(self.cases() if callable(self.cases) else self.cases)

    def run(self, student_fn: Callable[..., Any]) -> CheckResult:
        """Grade ``student_fn`` without raising; the result says what failed.

        The function is called on each case in turn and its answer turned into plain data
        (:func:`to_plain`) before it is judged, exactly as the grader judges what a sandboxed
        submission sends back; it stops at the first failing case.
        """
        if not callable(student_fn):
            return CheckResult(
                self.name, False, 0, f"expected a function, got {type(student_fn).__name__}"
            )
        return self.judge(self.outcome(student_fn, case) for case in self.inputs())

    def check(self, student_fn: Callable[..., Any], quiet: bool = False) -> CheckResult:
        """Grade ``student_fn``; raise :class:`ExerciseFailure` with a diagnosis if it is wrong."""
        result = self.run(student_fn)
        if not result.passed:
            raise ExerciseFailure(f"{self.name}: {result.message}")
        if not quiet:
            print(f"{PASS_MARK} {self.name}: {result.message}")
        return result

    def inputs(self) -> list[Case]:
        """The cases, built once per exercise (case builders are seeded, so this is a cache)."""
        if self._inputs is None:
            self._inputs = self.get_cases()
        return self._inputs

    def outcome(self, fn: Callable[..., Any], case: Case) -> dict:
        """What ``fn`` does on ``case``, as plain data: ``{"value": to_plain(answer)}``, or
        ``{"raised": [qualified class names of the exception's MRO], "error": "Type: message"}``.

        This is all a sandboxed submission reports back; the verdict is :meth:`judge`'s.
        """
        return answer(fn, case.args, dict(case.kwargs))

    def judge(self, outcomes: Iterable[dict], stopped: str = "") -> CheckResult:
        """The verdict on a sequence of :meth:`outcome` s, one per case in order.

        Only plain data is compared, against references computed here, so nothing the student's
        code did to its own process can change the verdict. A sequence that ends early (the
        submission was stopped) fails on the first missing case, with ``stopped`` as the reason.
        """
        cases = self.inputs()
        answered = 0
        for case, outcome in zip(cases, outcomes, strict=False):
            answered += 1
            message = self._verdict(case, outcome)
            if message is not None:
                return CheckResult(self.name, False, len(cases), message)
        if answered < len(cases):
            why = stopped or "the submission stopped"
            message = f"on input {cases[answered].describe()} no answer: {why}"
            return CheckResult(self.name, False, len(cases), message)
        return CheckResult(self.name, True, len(cases), f"all {len(cases)} cases pass")

    # -- internals -------------------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], case: Case) -> Any:
        return fn(*copy.deepcopy(case.args), **copy.deepcopy(dict(case.kwargs)))

    def _expected(self, case: Case) -> Any:
        """The reference's answer on ``case`` as plain data, computed once."""
        key = id(case)
        if key not in self._answers:
            self._answers[key] = from_plain(to_plain(self._call(self.reference, case)))
        return self._answers[key]

    def _verdict(self, case: Case, outcome: Any) -> str | None:
        where = f"on input {case.describe()}"
        if not isinstance(outcome, dict) or not ("value" in outcome or "raised" in outcome):
            return f"{where} the answer could not be read"
        names = outcome.get("raised")
        error = str(outcome.get("error", ""))[:_ERROR_CHARS]
        got = None if names is not None else from_plain(outcome["value"])
        if case.raises is not None:
            if names is None:
                return f"{where} expected {case.raises.__name__} to be raised, but it returned {_short(got)}"
            if _qualname(case.raises) in names:
                return None
            return f"{where} expected {case.raises.__name__}, but it raised {error}"
        expected = self._expected(case)
        if names is not None:
            if _qualname(NotImplementedError) in names:
                return "not implemented yet (the function raised NotImplementedError)"
            return f"{where} it raised {error}"
        if close(got, expected, self.rtol, self.atol):
            return None
        msg = f"{where} expected {_short(expected)}, got {_short(got)}"
        for mistake in self.mistakes:
            try:
                wrong = from_plain(to_plain(self._call(mistake.fn, case)))
            except Exception:  # noqa: BLE001 - a mistake that cannot run this case is no match
                continue
            if not close(wrong, expected, self.rtol, self.atol) and close(
                got, wrong, self.rtol, self.atol
            ):
                return f"{msg}. Likely mistake: {mistake.hint}"
        return msg


# -- plain data: what crosses from a submission's process to the grader ---------------------------
_ERROR_CHARS = 300  # an exception message is cut to this many characters
_MAX_DEPTH = 20  # deeper nesting is not an answer any exercise expects


class Opaque:
    """An answer that is not plain data (an object of the student's own class, a generator ...).

    It keeps only the type's name and a cut ``repr`` for messages, and equals nothing, so an
    object whose ``__eq__`` always says yes cannot pass a check.
    """

    def __init__(self, kind: str, text: str) -> None:
        self.kind, self.text = kind, text

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return self.text


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def answer(fn: Callable[..., Any], args: tuple, kwargs: dict) -> dict:
    """Call ``fn`` on copies of the arguments; its answer or its exception as plain data."""
    try:
        return {"value": to_plain(fn(*copy.deepcopy(args), **copy.deepcopy(kwargs)))}
    except Exception as err:  # noqa: BLE001 - an exception is an answer too
        return raised(err)


def raised(err: BaseException) -> dict:
    """The plain-data outcome of a call that raised ``err``."""
    try:
        text = f"{type(err).__name__}: {err}"
    except Exception:  # noqa: BLE001 - a hostile __str__
        text = type(err).__name__
    return {"raised": [_qualname(c) for c in type(err).__mro__], "error": text[:_ERROR_CHARS]}


def _safe_repr(x: Any) -> str:
    try:
        return repr(x)[:200]
    except Exception:  # noqa: BLE001 - a hostile __repr__
        return f"<{type(x).__name__} object>"


def to_plain(x: Any, _depth: int = 0) -> Any:
    """``x`` as JSON-serialisable data that keeps what :func:`close` compares.

    Numbers, strings, ``None`` and lists stay as they are; NumPy scalars become Python numbers;
    arrays and tensors become ``{"ndarray": nested list, "dtype": ..., "shape": ...}``; tuples
    and dicts are tagged so that they come back as tuples and dicts. Anything else becomes an
    :class:`Opaque` description, which matches nothing.
    """
    if _depth > _MAX_DEPTH:
        return {"opaque": type(x).__name__, "repr": "<nested too deeply>"}
    if x is None or type(x) in (bool, str):
        return x
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    array = _as_array(x)
    if array is not None:
        return {"ndarray": array.tolist(), "dtype": array.dtype.str, "shape": list(array.shape)}
    if isinstance(x, list):
        return [to_plain(v, _depth + 1) for v in x]
    if isinstance(x, tuple):
        return {"tuple": [to_plain(v, _depth + 1) for v in x]}
    if isinstance(x, Mapping):
        return {"dict": [[to_plain(k, _depth + 1), to_plain(v, _depth + 1)] for k, v in x.items()]}
    return {"opaque": type(x).__name__, "repr": _safe_repr(x)}


def _as_array(x: Any) -> np.ndarray | None:
    """A numeric or boolean NumPy copy of an array or tensor, else None."""
    if type(x).__module__.split(".")[0] == "torch":
        import torch  # deferred: only a tensor answer needs it, and torch is slow to import

        if isinstance(x, torch.Tensor) and not x.is_complex():
            x = x.detach().cpu()
            x = (x.double() if x.is_floating_point() else x).numpy()
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        return np.array(x)
    return None


def from_plain(d: Any) -> Any:
    """The inverse of :func:`to_plain`; anything malformed becomes an :class:`Opaque`."""
    if d is None or type(d) in (bool, int, float, str):
        return d
    if type(d) is list:
        return [from_plain(v) for v in d]
    if type(d) is dict and len(d) == 1 and type(d.get("tuple")) is list:
        return tuple(from_plain(v) for v in d["tuple"])
    if type(d) is dict and len(d) == 1 and type(d.get("dict")) is list:
        try:
            return {from_plain(k): from_plain(v) for k, v in d["dict"]}
        except (TypeError, ValueError):
            return Opaque("dict", "<a dict that could not be read>")
    if type(d) is dict and set(d) == {"ndarray", "dtype", "shape"}:
        try:
            dtype = np.dtype(str(d["dtype"]))
            if dtype.kind not in "biuf":
                raise ValueError(dtype)
            return np.array(d["ndarray"], dtype=dtype).reshape([int(n) for n in d["shape"]])
        except (TypeError, ValueError, OverflowError):
            return Opaque("ndarray", "<an array that could not be read>")
    if type(d) is dict and set(d) == {"opaque", "repr"}:
        return Opaque(str(d["opaque"])[:100], str(d["repr"])[:200])
    return Opaque(type(d).__name__, "<an answer that could not be read>")


def _to_numeric(x: Any) -> Any:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if (
        isinstance(x, (np.ndarray, np.generic))
        or isinstance(x, (int, float))
        and not isinstance(x, bool)
    ):
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
