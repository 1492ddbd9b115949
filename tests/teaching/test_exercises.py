import json

import numpy as np
import pytest
import torch

from overshadow_lab.exercises import (
    REGISTRY,
    Case,
    Exercise,
    ExerciseFailure,
    Mistake,
    check_relative_hallucination_rate,
    close,
    list_exercises,
)
from overshadow_lab.exercises.framework import Opaque, from_plain, to_plain
from overshadow_lab.metrics import relative_hallucination_rate


def _square_exercise():
    return Exercise(
        name="square_for_test",
        chapter="tests",
        reference=lambda x: x * x,
        cases=[
            Case((3,)),
            Case((-2,), label="negative"),
            Case(("a",), label="bad", raises=TypeError),
        ],
        mistakes=[Mistake(lambda x: 2 * x, "you doubled instead of squaring")],
    )


def test_reference_passes_and_prints_a_pass_line(capsys):
    result = _square_exercise().check(lambda x: x**2)
    assert result.passed and result.n_cases == 3
    assert "square_for_test: all 3 cases pass" in capsys.readouterr().out


def test_known_mistake_is_named():
    with pytest.raises(ExerciseFailure, match=r"on input \(3\) expected 9.*got 6.*you doubled"):
        _square_exercise().check(lambda x: 2 * x)


def test_unknown_wrong_answer_shows_input_expected_and_got():
    result = _square_exercise().run(lambda x: x * x + 1)
    assert not result.passed
    assert result.message == "on input (3) expected 9, got 10"


def test_exceptions_and_missing_raises_are_reported():
    ex = _square_exercise()
    assert "raised ZeroDivisionError" in ex.run(lambda x: 1 / 0).message
    assert (
        "not implemented yet"
        in ex.run(lambda x: (_ for _ in ()).throw(NotImplementedError)).message
    )

    def no_type_check(x):
        return x * x if not isinstance(x, str) else 0

    msg = ex.run(no_type_check).message
    assert "bad: ('a')" in msg and "expected TypeError to be raised" in msg
    assert "expected a function" in ex.run(42).message


def test_student_cannot_corrupt_the_cases_by_mutating_inputs():
    ex = Exercise(
        name="first_for_test", chapter="tests", reference=lambda xs: xs[0], cases=[Case(([1, 2],))]
    )
    assert ex.run(lambda xs: xs.pop(0)).passed
    assert ex.run(lambda xs: xs[0]).passed


def test_close_handles_tensors_arrays_nan_and_containers():
    assert close(torch.tensor([1.0, float("nan")]), np.array([1.0, np.nan]))
    assert not close(np.zeros(2), np.zeros(3))
    assert close({"a": 1.0, "b": (2, 3)}, {"a": 1.0 + 1e-9, "b": [2, 3]})
    assert not close({"a": 1}, {"b": 1})
    assert close("x", "x") and not close("x", "y")
    assert not close(np.ones(1), "one")


def test_intro_check_accepts_the_reference_and_diagnoses_mistakes():
    check_relative_hallucination_rate(relative_hallucination_rate, quiet=True)
    ex = REGISTRY["relative_hallucination_rate"]
    assert (
        "multiply the ratio by 100"
        in ex.run(lambda hr, rr: np.asarray(hr) / np.asarray(rr)).message
    )
    assert "upside down" in ex.run(lambda hr, rr: 100 * np.asarray(rr) / np.asarray(hr)).message


def test_catalogue_lists_every_registered_exercise():
    df = list_exercises()
    assert list(df.columns) == ["exercise", "chapter", "points", "description"]
    assert set(df["exercise"]) == set(REGISTRY)
    assert "relative_hallucination_rate" in set(df["exercise"])


def test_metric_rejects_rates_outside_unit_interval():
    with pytest.raises(ValueError, match=r"fractions and must lie in \[0, 1\]"):
        relative_hallucination_rate(2, 1)


def test_plain_data_keeps_what_the_comparison_needs():
    answer = {
        "r": (np.float64(50.0), float("nan"), [1, 2]),
        "mask": torch.tensor([True, False]),
        "x": np.arange(6.0).reshape(2, 3),
        "empty": np.zeros((0, 3)),
    }
    back = from_plain(json.loads(json.dumps(to_plain(answer))))
    assert close(back, answer) and isinstance(back["r"], tuple)
    assert back["x"].shape == (2, 3) and back["empty"].shape == (0, 3)
    assert back["mask"].dtype == bool


def test_an_answer_that_is_not_plain_data_matches_nothing():
    class Anything:
        def __eq__(self, other):
            return True

    back = from_plain(to_plain(Anything()))
    assert isinstance(back, Opaque) and not close(back, 1.0) and not close(1.0, back)
    forged = [{"ndarray": [1], "dtype": "O", "shape": [1]}, {"passed": True}, {"tuple": 3}]
    assert all(isinstance(from_plain(f), Opaque) for f in forged)
    ex = _square_exercise()
    assert not ex.run(lambda x: Anything()).passed


def test_judge_reads_plain_outcomes_and_says_where_an_answer_is_missing():
    ex = _square_exercise()
    outcomes = [{"value": 9}, {"value": 4}]
    result = ex.judge(outcomes, stopped="timed out after 3 s")
    assert not result.passed
    assert result.message == "on input bad: ('a') no answer: timed out after 3 s"
    raised = {"raised": ["builtins.TypeError", "builtins.Exception"], "error": "TypeError: no"}
    assert ex.judge([{"value": 9}, {"value": 4}, raised]).passed
    assert "could not be read" in ex.judge(["pass"]).message
