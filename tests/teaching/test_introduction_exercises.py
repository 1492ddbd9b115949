"""The introduction's experiment exercise: a slope that holds the subordinate position fixed."""

import numpy as np
import pytest

from overshadow_lab.exercises import ExerciseFailure, check_popularity_slope
from overshadow_lab.exercises import introduction as ex


def test_reference_passes_and_recovers_a_planted_slope():
    check_popularity_slope(ex._popularity_slope, quiet=True)
    P = [1, 1, 2, 2, 4, 8]
    pos = ["first", "last", "last", "last", "first", "first"]
    margin = [
        0.7 * np.log2(p) + (1.0 if s == "first" else -2.0) for p, s in zip(P, pos, strict=True)
    ]
    assert ex._popularity_slope(P, pos, margin) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (ex._naive_slope, "hold the position fixed"),
        (ex._slope_of_means, "does not balance positions"),
        (ex._slope_log10, "log2 P, not log10"),
    ],
)
def test_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(ExerciseFailure, match=hint):
        check_popularity_slope(wrong)
