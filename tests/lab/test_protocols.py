"""Tests of the training protocols (overshadow_lab.lab.protocols and the rules in lab.train)."""

import math

import numpy as np
import pytest

from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.models import make_model
from overshadow_lab.lab.protocols import (
    ADOPTED,
    PROTOCOLS,
    describe_protocols,
    get_protocol,
    protocol_options,
)
from overshadow_lab.lab.sweep import plan_runs, run_sweep
from overshadow_lab.lab.train import RULES, TrainConfig, subordinate_rows, train_model


def _train(sets, **kw):
    model = make_model("nano", sets.vocab_size, seed=0)
    return train_model(model, sets, progress=False, **kw)


@pytest.mark.parametrize("P", [1, 4, 12])
def test_equal_exposure_presents_every_subordinate_statement_exactly_the_budget(P):
    sets = make_knowledge_sets(P=P, L=3, n=2, n_sets=7, vocab=120, seed=1)
    r = _train(sets, rule="exposure", exposures=3, batch_size=8, eval_every=1000)
    assert r.converged and r.stop_reason == "exposures"
    assert r.exposure["subordinate_min"] == r.exposure["subordinate_max"] == 3
    per_pass = math.ceil(len(sets.train_sequences) / 8)
    # it stops in the third pass, as soon as the last subordinate statement is seen a third time
    assert 2 * per_pass < r.steps <= 3 * per_pass
    assert r.exposure["other_min"] >= 2 and r.exposure["other_max"] <= 3


def test_equal_exposure_holds_when_the_corpus_has_sequences_of_several_lengths():
    """Batches hold one length each, so a pass takes more batches than len / batch_size: the
    budget must still be met (it was not, when the step ceiling assumed one length)."""
    sets = make_knowledge_sets(P=5, L=3, n=2, n_sets=6, vocab=120, seed=2)
    seqs = [list(s) for s in sets.train_sequences]
    for i in range(len(seqs)):  # five lengths: each group needs its own, partly empty, batches
        seqs[i] = seqs[i][:1] * (i % 5) + seqs[i]
    sets.train_sequences = seqs
    sub = set(subordinate_rows(sets).tolist())
    assert sub and len({len(s) for s in seqs}) == 5
    r = _train(sets, rule="exposure", exposures=3, batch_size=10, eval_every=1000)
    assert r.stop_reason == "exposures"
    assert r.exposure["subordinate_min"] == r.exposure["subordinate_max"] == 3


def test_exposure_counts_are_the_same_whatever_P_but_the_recall_rule_lets_them_fall():
    counts = {}
    for P in (2, 20):
        sets = make_knowledge_sets(P=P, L=3, n_sets=10, vocab=200, seed=0)
        counts[P] = _train(sets, rule="exposure", exposures=2, batch_size=16).exposure
        assert counts[P]["subordinate_min"] == 2
    assert counts[2]["subordinate_min"] == counts[20]["subordinate_min"]
    # a fixed number of steps shows each subordinate statement less often when P is large
    seen = {}
    for P in (2, 20):
        sets = make_knowledge_sets(P=P, L=3, n_sets=10, vocab=200, seed=0)
        r = _train(sets, rule="converge", max_steps=20, eval_every=20, batch_size=16)
        seen[P] = r.exposure["subordinate_max"]
    assert seen[20] < seen[2]


def test_subordinate_rows_finds_the_subordinate_statements():
    sets = make_knowledge_sets(P=3, L=3, n=2, n_sets=4, vocab=60, seed=0)
    rows = subordinate_rows(sets)
    assert len(rows) == 4 * 2
    for i in rows:
        seq = sets.train_sequences[i]
        assert seq[-1:] in sets.subordinate.answers


def test_plateau_rule_stops_on_a_flat_loss_and_not_on_recall():
    sets = make_knowledge_sets(P=3, L=3, n_sets=20, vocab=100, seed=0)
    r = _train(sets, rule="plateau", lr=1e-9, batch_size=128, eval_every=2, patience=3)
    assert r.stop_reason == "plateau" and r.converged and r.steps == 2 * 4
    # a run that recalls the dominant set early keeps going under the plateau rule
    fast = dict(lr=1e-2, batch_size=32, eval_every=10, max_steps=300)
    recall = _train(sets, rule="converge", **fast)
    plateau = _train(sets, rule="plateau", patience=3, **fast)
    assert recall.stop_reason == "rr_threshold" and plateau.steps > recall.steps


def test_an_exposure_run_on_a_corpus_without_subordinate_statements_is_refused():
    sets = make_knowledge_sets(P=3, L=3, n_sets=3, vocab=60, seed=0)
    sets.train_sequences = [s for s in sets.train_sequences[:3]]
    sets.train_sequences[0] = [1, 2, 3]
    sets.subordinate.answers = [[999]] * len(sets.subordinate.answers)
    with pytest.raises(ValueError, match="rule='epochs'"):
        _train(sets, rule="exposure", exposures=1)
    with pytest.raises(ValueError, match="exposures must be"):
        _train(sets, rule="exposure", exposures=0)


def test_protocols_are_named_documented_and_map_to_rules():
    assert list(PROTOCOLS) == ["epochs", "exposure", "plateau", "converge"]
    assert ADOPTED in PROTOCOLS
    for name, p in PROTOCOLS.items():
        assert p.rule in RULES and p.rationale and p.holds_equal and p.lets_vary
        opts = protocol_options(name)
        assert opts["rule"] == p.rule
        TrainConfig(**opts)  # every option is a training option
    assert protocol_options("exposure", exposures=7) == {"rule": "exposure", "exposures": 7}
    assert list(describe_protocols()["protocol"]) == list(PROTOCOLS)
    with pytest.raises(ValueError, match="unknown protocol 'fixed'"):
        get_protocol("fixed")
    with pytest.raises(ValueError, match="unknown training option"):
        protocol_options("epochs", epoch=3)


def test_exposure_budget_enters_the_hash_only_for_exposure_runs(tmp_path):
    base = plan_runs("P", [2], 1, tier="cpu")[0]
    assert "exposures" not in base and base["config_hash"] == "3c6509c31d0c3b1b"
    a = plan_runs("P", [2], 1, tier="cpu", rule="exposure", exposures=3)[0]
    b = plan_runs("P", [2], 1, tier="cpu", rule="exposure", exposures=4)[0]
    assert a["config_hash"] != b["config_hash"]
    fast = dict(size="nano", n_sets=4, vocab=100, batch_size=16, rule="exposure")
    out = tmp_path / "e.csv"
    table = run_sweep(
        "P", [2, 5], seeds=1, tier="cpu", out=out, progress=False, workers=1, exposures=2, **fast
    )
    assert list(table["sub_exposures"]) == [2, 2] and list(table["exposures"]) == [2, 2]
    again = run_sweep(
        "P", [2, 5], seeds=1, tier="cpu", out=out, progress=False, workers=1, exposures=2, **fast
    )  # resumes: the rows check against their own hash
    assert list(again["config_hash"]) == list(table["config_hash"])


def test_extra_factors_sweep_capacity_position_and_weight_decay():
    for factor, values in (
        ("n_sets", [10, 40]),
        ("position", ["start", "end"]),
        ("weight_decay", [0, 0.1]),
    ):
        runs = plan_runs(factor, values, 1, tier="cpu")
        assert [r[factor] for r in runs] == values
    with pytest.raises(ValueError, match="no default grid"):
        plan_runs("n_sets", None, 1, tier="cpu")
    with pytest.raises(ValueError, match="n_sets is a count"):
        plan_runs("n_sets", [2.5], 1, tier="cpu")
    assert np.isfinite(plan_runs("weight_decay", [0.5], 1, tier="cpu")[0]["weight_decay"])
