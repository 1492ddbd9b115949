"""Tests of overshadow_lab.lab.dynamics: the schedule, the measurements and the long table."""

import numpy as np
import pandas as pd
import pytest

from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.dynamics import (
    DYNAMICS_COLUMNS,
    METRICS,
    dynamics_run,
    measure,
    score_answers,
    step_schedule,
    train_with_dynamics,
)
from overshadow_lab.lab.models import make_model
from overshadow_lab.lab.sweep import plan_runs
from overshadow_lab.lab.train import train_model
from overshadow_lab.metrics import answer_matches, evaluate, greedy_answers


@pytest.fixture(scope="module")
def sets():
    return make_knowledge_sets(P=4, L=3, n_sets=12, vocab=100, seed=0)


def test_step_schedule():
    s = step_schedule(1000, 10)
    assert s[0] == 0 and s[-1] == 1000 and s == sorted(set(s))
    gaps = np.diff(s)
    assert gaps[0] < gaps[-1]  # log spacing: dense early
    assert step_schedule(5, 20) == [0, 1, 2, 3, 4, 5]
    assert step_schedule(100, 5, "linear") == [0, 1, 26, 50, 75, 100]
    with pytest.raises(ValueError, match="kind"):
        step_schedule(10, 3, "cubic")
    with pytest.raises(ValueError, match="total >= 1"):
        step_schedule(0, 3)


def test_score_answers_matches_greedy_and_probabilities_are_consistent(sets):
    model = make_model("nano", sets.vocab_size, seed=3)
    sub = sets.subordinate
    ok, lp = score_answers(model, sub.prompts, sub.answers)
    assert (ok == answer_matches(model, sub.prompts, sub.answers)).all()
    greedy = greedy_answers(model, sub.prompts, 1)
    assert (ok == np.array([g == a for g, a in zip(greedy, sub.answers, strict=True)])).all()
    _, lp_a = score_answers(model, sub.prompts, sub.overshadow_answers)
    assert (lp <= 0).all() and (np.exp(lp) + np.exp(lp_a) <= 1 + 1e-6).all()


def test_measure_agrees_with_evaluate(sets):
    model = train_model(
        make_model("nano", sets.vocab_size, seed=0),
        sets,
        rule="epochs",
        epochs=5,
        batch_size=16,
        lr=1e-2,
        progress=False,
    ).model
    m, ev = measure(model, sets, dominant_sample=None), evaluate(model, sets, n_boot=0)
    for k in ("RR", "HR", "sub_acc"):
        assert m[k] == pytest.approx(ev[k])
    assert 0 <= m["p_Ya_sub"] <= 1 and 0 <= m["p_Yb_sub"] <= 1


def test_dynamics_table_is_long_with_the_run_key_and_ends_where_the_run_ends(sets):
    model = make_model("nano", sets.vocab_size, seed=0)
    res, table = train_with_dynamics(
        model,
        sets,
        points=6,
        key={"config_hash": "abc", "P": 4},
        rule="exposure",
        exposures=4,
        batch_size=16,
        lr=1e-2,
        progress=False,
    )
    assert list(table.columns) == ["config_hash", "P", *DYNAMICS_COLUMNS]
    assert set(table["metric"]) == set(METRICS)
    assert (table["config_hash"] == "abc").all()
    steps = sorted(table["step"].unique())
    assert steps[0] == 0 and steps[-1] == res.steps
    wide = table.pivot(index="step", columns="metric", values="value")
    assert np.isnan(wide.loc[0, "loss"])  # no training loss before the first step
    assert wide["loss"].dropna().iloc[-1] < wide["loss"].dropna().iloc[0]  # it learns
    final = evaluate(res.model, sets, n_boot=0)
    assert wide.loc[res.steps, "RR"] == pytest.approx(final["RR"])
    # an early stop is recorded too
    res2, t2 = train_with_dynamics(
        make_model("nano", sets.vocab_size, seed=0),
        sets,
        points=4,
        rule="converge",
        max_steps=400,
        eval_every=5,
        lr=2e-2,
        batch_size=16,
        progress=False,
    )
    assert res2.steps < 400 and t2["step"].max() == res2.steps


def test_dynamics_run_of_a_plan():
    run = plan_runs(
        "P",
        [3],
        1,
        tier="cpu",
        size="nano",
        n_sets=5,
        vocab=80,
        rule="exposure",
        exposures=2,
        batch_size=8,
    )[0]
    table = dynamics_run(run, points=4, threads=1)
    assert isinstance(table, pd.DataFrame) and not table.empty
    assert {"config_hash", "P", "L", "size", "seed", "rule", "S", "factor_value"} <= set(table)
    assert (table["config_hash"] == run["config_hash"]).all()
    # the key never overwrites the measurements (a key named like a column once did)
    assert table["value"].dtype.kind == "f" and list(table.columns[-4:]) == list(DYNAMICS_COLUMNS)
    rates = table[table["metric"].isin(["RR", "HR", "sub_acc"])]["value"]
    assert rates.between(0, 1).all() and table["factor_value"].eq(3).all()
