"""The law chapter's experiment exercise: predict a held-out task's R before seeing its runs."""

import pytest

from overshadow_lab.exercises import ExerciseFailure, check_transfer_prediction
from overshadow_lab.exercises import law as ex


def test_the_hidden_runs_are_not_in_the_data_the_student_gets():
    syn, visible = ex.transfer_exercise_data()
    assert set(visible.task) == {ex.HELD_OUT_TASK}
    assert ex.HELD_OUT_P not in set(visible.P) and visible.P.nunique() >= 3
    assert set(syn.task) == {"synthetic"}


def test_the_reference_prediction_passes(capsys):
    predicted, lo, hi = ex._reference_interval()
    assert check_transfer_prediction(predicted, lo, hi)
    assert "covers the measured R" in capsys.readouterr().out


def test_a_vague_interval_fails_even_though_it_covers():
    with pytest.raises(ExerciseFailure, match="predicts almost nothing"):
        check_transfer_prediction(50.0, 5.0, 95.0)
    # the ends are clipped to the 0-100% a rate can take before the width is measured
    actual = ex.measured_held_out()
    # an interval running far past one end of 0-100%, narrow once clipped (which end depends on
    # the recorded value)
    lo, hi = (actual - 1, 150.0) if actual >= 50 else (-50.0, actual + 1)
    assert min(hi, 100) - max(lo, 0) <= ex.MAX_WIDTH < hi - lo
    assert check_transfer_prediction(actual, lo, hi, quiet=True)


def test_an_interval_that_misses_the_measured_value_fails_and_says_on_which_side():
    actual = ex.measured_held_out()
    half = ex.MAX_WIDTH / 4
    centre = actual + 3 * half
    with pytest.raises(ExerciseFailure, match="measured R lies below"):
        check_transfer_prediction(centre, centre - half, centre + half)


@pytest.mark.parametrize(
    ("args", "match"),
    [((10.0, 20.0, 30.0), "inside its interval"), (("x", 1, 2), "three numbers"),
     ((float("nan"), 0.0, 1.0), "finite")],
)  # fmt: skip
def test_malformed_predictions_are_named(args, match):
    with pytest.raises(ExerciseFailure, match=match):
        check_transfer_prediction(*args)
