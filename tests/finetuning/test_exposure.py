"""Exposure: how often a run showed each statement, and whether a sweep fixes it for every size."""

from __future__ import annotations

import pandas as pd
import pytest

from overshadow_lab.finetuning.exposure import (
    check_equal_exposure,
    corpus_size,
    exposure_table,
    planned_exposure,
    statement_exposure,
)
from overshadow_lab.lab.sweep import plan_runs


def test_statement_exposure_counts_epochs_with_a_short_last_batch():
    # 300 statements in batches of 64: 5 batches an epoch (the last one holds 44)
    assert statement_exposure(200, 300, 64) == 40
    assert statement_exposure(25, 300, 64) == 5
    assert statement_exposure(7, 100, 16) == pytest.approx(1.0)
    assert statement_exposure(0, 10, 4) == 0
    with pytest.raises(ValueError, match="batch_size >= 1"):
        statement_exposure(10, 300, 0)
    with pytest.raises(ValueError, match="steps >= 0"):
        statement_exposure(-1, 300, 64)


def test_planned_exposure_is_fixed_only_by_a_budget_set_in_advance():
    base = {"P": 5, "L": 5, "n": 1, "n_sets": 50, "batch_size": 64, "max_steps": 1500}
    assert corpus_size(base) == 300
    assert planned_exposure(base | {"rule": "epochs", "epochs": 20}) == 20
    assert planned_exposure(base | {"rule": "converge", "min_steps": 0}) is None
    # min_steps == max_steps: every run takes exactly max_steps steps
    fixed = base | {"rule": "converge", "min_steps": 1500}
    assert planned_exposure(fixed) == pytest.approx(1500 / 5)
    assert planned_exposure(base | {"rule": "some-future-rule"}) is None


def test_check_equal_exposure_accepts_epochs_and_names_the_recall_rule():
    sizes = ["pico", "nano", "tiny"]
    ok, why = check_equal_exposure(plan_runs("S", sizes, seeds=2, tier="cpu", rule="epochs"))
    assert ok and "10 times" in why  # the cpu tier's epoch budget
    ok, why = check_equal_exposure(plan_runs("S", sizes, seeds=1, tier="cpu"))
    assert not ok and "pico" in why and "rule='converge'" in why
    runs = plan_runs("S", sizes, seeds=1, tier="cpu", rule="epochs")
    runs[1] = runs[1] | {"epochs": 30}
    ok, why = check_equal_exposure(runs)
    assert not ok and "10 to 30" in why
    with pytest.raises(ValueError, match="empty"):
        check_equal_exposure([])


def test_exposure_table_reads_each_run_of_a_sweep_table():
    table = pd.DataFrame(
        {
            "size": ["pico", "pico", "medium"],
            "S": [1e5, 1e5, 1e7],
            "steps": [200, 150, 25],
            "batch_size": [64, 64, 64],
            "n_sets": [50, 50, 50],
            "P": [5, 5, 5],
            "L": [5, 5, 5],
            "n": [1, 1, 1],
            "R": [0.0, 10.0, 20.0],
        }
    )
    got = exposure_table(table).set_index("size")
    assert got.loc["pico", "exposure"] == pytest.approx(35.0)  # (40 + 30) / 2
    assert got.loc["medium", "exposure"] == pytest.approx(5.0)
    assert got.loc["pico", "S"] == 1e5 and got.loc["pico", "R"] == 5.0
    with pytest.raises(ValueError, match="batch_size"):
        exposure_table(table.drop(columns="batch_size"))
