"""The recorded transfer runs (scripts/record_transfer.py): their design, and a seeded re-run.

The chapter "The law" reads these tables instead of training 200-odd models; this test re-runs
a seeded few of their rows with the recording script's own functions and checks that each
lands inside the interval the table recorded for it (the bootstrap interval over knowledge sets
of that run), so a change to the code that moves the results fails here.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from overshadow_lab.finetuning.tasks import TASKS
from overshadow_lab.records import load_recorded

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "record_transfer.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("record_transfer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(part):
    found = load_recorded(f"transfer_{part}")
    assert found is not None, f"transfer_{part} is not recorded"
    return found


@pytest.mark.parametrize("part", ["synthetic", "scratch", "smollm2"])
def test_recorded_tables_cover_the_design_with_provenance(script, part):
    table, prov = _table(part)
    assert prov["protocol"] == "equal exposure" and prov["code_hash"] and prov["wall_seconds"] > 0
    assert (table["settings"] == script.settings_key(part)).all()
    ps = np.sort(table["P"].unique())
    assert ps.size >= 5 and np.log10(ps.max() / ps.min()) >= 1.5
    per_cell = table.groupby(["task", "P"])["seed"].nunique()
    assert per_cell.min() >= 3
    if part != "synthetic":
        assert set(table["task"]) == set(TASKS)
    assert (table["steps"] == json.loads(script.settings_key(part))["steps"]).all()


def _check_row(row, fresh):
    assert fresh["steps"] == row.steps
    for key in ("RR", "HR"):
        assert fresh[key] == pytest.approx(getattr(row, key), abs=0.051), key
    if np.isfinite(row.R):
        assert row.R_lo - 1e-9 <= fresh["R"] <= row.R_hi + 1e-9


def test_a_seeded_synthetic_run_lands_inside_its_recorded_interval(script):
    table, _ = _table("synthetic")
    row = next(table[(table.P == 64) & (table.seed == 1)].itertuples())
    _check_row(row, script.synthetic_run(64, 1))


def test_seeded_from_scratch_runs_land_inside_their_recorded_intervals(script):
    table, _ = _table("scratch")
    spans = script.span_lengths(["gender", "event-time"])
    for task, P, seed in [("gender", 16.0, 0), ("event-time", 4.0, 2)]:
        row = next(table[(table.task == task) & (table.P == P) & (table.seed == seed)].itertuples())
        _check_row(row, script.scratch_run(task, P, seed, spans[task]))
