"""The exercises of the chapter "Contrastive decoding": each reference passes its own check, and
each known mistake is recognised and named (so the check is not vacuous)."""

from __future__ import annotations

import pytest

from overshadow_lab.exercises import REGISTRY

NAMES = ["plausible_set", "relative_pmi_sum", "escape_reward", "true_span_rank"]


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_and_every_mistake_fails(name):
    ex = REGISTRY[name]
    assert ex.chapter == "contrastive_decoding"
    assert ex.run(ex.reference).passed
    for mistake in ex.mistakes:
        result = ex.run(mistake.fn)
        assert not result.passed, f"{name}: the mistake {mistake.hint!r} passes the check"
        assert "Likely mistake" in result.message


def test_each_mistake_of_the_experiment_exercise_is_named():
    ex = REGISTRY["true_span_rank"]
    for mistake in ex.mistakes:
        assert mistake.hint in ex.run(mistake.fn).message, mistake.hint
