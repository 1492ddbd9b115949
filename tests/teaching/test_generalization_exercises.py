"""The Generalization-bound experiment exercise: the sign of the weight-decay effect."""

import pytest

from overshadow_lab.exercises import ExerciseFailure, check_weight_decay_effect
from overshadow_lab.exercises import generalization_bound as ex
from overshadow_lab.theory.solvable import flip_threshold


def test_reference_passes_and_agrees_with_the_threshold_theorem():
    check_weight_decay_effect(ex._weight_decay_reference, quiet=True)
    lam_star = flip_threshold(5, 5)
    assert ex._weight_decay_reference(5, 5, 0.5 * lam_star, 2 * lam_star)["flips"]
    assert not ex._weight_decay_reference(5, 5, 2 * lam_star, 4 * lam_star)["flips"]
    # far above the threshold the margin shrinks back towards 0 although the answer stays Y_a
    assert ex._weight_decay_reference(5, 5, 10.0, 100.0) == {"sign": -1, "flips": False}


def test_the_greedy_indicator_is_not_the_margin():
    with pytest.raises(ExerciseFailure, match="not of the greedy indicator"):
        check_weight_decay_effect(ex._weight_decay_hr_only)
