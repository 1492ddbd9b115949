"""The Data imbalance chapter's experiment check: a protocol that removes the exposure confound."""

import pytest

from overshadow_lab.exercises import ExerciseFailure, check_exposure_protocol
from overshadow_lab.lab.protocols import protocol_options


def test_equal_exposure_and_fixed_epochs_pass(capsys):
    assert check_exposure_protocol(protocol_options("exposure", exposures=3)).passed
    assert "seen 3 times at P = 2 and at P = 20" in capsys.readouterr().out
    assert check_exposure_protocol({"rule": "epochs", "epochs": 2}, quiet=True).passed


def test_the_recall_rule_is_named_as_the_confound():
    with pytest.raises(ExerciseFailure, match="recall threshold stops a popular corpus"):
        check_exposure_protocol({"rule": "converge", "lr": 2e-2, "eval_every": 5})


def test_a_step_budget_is_named_and_bad_options_are_refused():
    with pytest.raises(ExerciseFailure, match="seen 15 times at P = 2 but 2 times at P = 20"):
        check_exposure_protocol(
            {"rule": "converge", "rr_threshold": 1.0, "max_steps": 30, "eval_every": 30}
        )
    with pytest.raises(ExerciseFailure, match="not a training option"):
        check_exposure_protocol({"rule": "exposure", "exposure": 3})
    with pytest.raises(ExerciseFailure, match="expected a dict"):
        check_exposure_protocol("exposure")
