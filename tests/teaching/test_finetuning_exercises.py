"""The exercises of the chapters on tasks and model size: references pass, mistakes are named,
and the design exercise accepts any fair design and names the confound of an unfair one."""

from __future__ import annotations

import pytest

from overshadow_lab.exercises import REGISTRY


@pytest.mark.parametrize("name", ["relative_length", "statement_exposure"])
def test_exercises_accept_the_reference_and_name_each_mistake(name):
    ex = REGISTRY[name]
    assert ex.run(ex.reference).passed
    for mistake in ex.mistakes:
        result = ex.run(mistake.fn)
        assert not result.passed
        assert mistake.hint in result.message, (name, result.message)


def test_design_exercise_accepts_fair_designs_and_explains_unfair_ones():
    ex = REGISTRY["size_comparison_design"]
    assert ex.chapter == "model_size"
    assert ex.run(ex.reference).passed
    assert ex.run(lambda sizes: {"rule": "epochs", "epochs": 7}).passed
    assert ex.run(lambda sizes: {"min_steps": 400, "max_steps": 400}).passed
    recall = ex.run(lambda sizes: {})
    assert not recall.passed and "decided during training" in recall.message
    longer = ex.run(lambda sizes: {"max_steps": 3000})
    assert not longer.passed and "rule='converge'" in longer.message
    typo = ex.run(lambda sizes: {"rule": "epochs", "epoch": 20})
    assert not typo.passed and "unknown sweep setting" in typo.message
    assert "return the settings as a dict" in ex.run(lambda sizes: 20).message
    assert "raised" in ex.run(lambda sizes: 1 / 0).message


def test_design_exercise_is_judged_from_plain_data_as_the_grader_does():
    ex = REGISTRY["size_comparison_design"]
    outcomes = [ex.outcome(lambda sizes: {"rule": "epochs", "epochs": 5}, c) for c in ex.inputs()]
    assert ex.judge(outcomes).passed
    assert not ex.judge(outcomes[:1], stopped="time limit").passed
