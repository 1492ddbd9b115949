"""The law chapter's exercises accept the reference and recognise each known mistake."""

import pytest

from overshadow_lab.exercises import REGISTRY


@pytest.mark.parametrize(
    "name",
    ["log_law_fit", "relative_prediction_error", "law_critical_value", "slope_confidence_interval"],
)
def test_law_exercises_accept_the_reference_and_name_each_mistake(name):
    ex = REGISTRY[name]
    assert ex.chapter == "law"
    assert ex.run(ex.reference).passed
    for mistake in ex.mistakes:
        result = ex.run(mistake.fn)
        assert not result.passed
        assert mistake.hint in result.message, (name, result.message)
