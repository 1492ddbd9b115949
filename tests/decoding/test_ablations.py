"""CoDA taken apart on lab models: the per-prompt table computes what it documents."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from overshadow_lab.benchmark_data.synthetic import synthetic_rows, unused_token_id
from overshadow_lab.decoding import _next_logprobs, coda_step, mask_span
from overshadow_lab.decoding.ablations import (
    OUTCOMES,
    detection_summary,
    method_columns,
    method_summary,
    paired_interval,
    prompt_outcomes,
    quoted_span,
    wilson,
)
from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.models import make_model
from tests.tiny import tiny_lm


@pytest.fixture(scope="module")
def lab():
    sets = make_knowledge_sets(P=3, L=4, n_sets=6, vocab=64, position="random", seed=0)
    model = make_model("pico", sets.vocab_size, seed=0).eval()
    return model, sets


@pytest.fixture(scope="module")
def outcomes(lab):
    return prompt_outcomes(*lab)


def test_outcomes_follow_the_definitions(lab, outcomes):
    model, sets = lab
    rows = synthetic_rows(sets)
    assert len(outcomes) == 2 * len(rows["prompts"])
    for col in method_columns():
        assert set(outcomes[col]) <= set(OUTCOMES)
    mid = unused_token_id(sets)
    for i in range(len(rows["prompts"])):
        p, true = rows["prompts"][i], rows["spans"][i][0]
        y_b, y_a = rows["golds"][i][0], rows["memorised"][i][0]
        lp = _next_logprobs(model, p)
        lpm = _next_logprobs(model, mask_span(p, true, "replace", mid))
        pick = int(coda_step(lp, lpm).scores.argmax())
        got = outcomes.query("mask == 'replace'").iloc[i]
        assert got["oracle"] == ("b" if pick == y_b else "a" if pick == y_a else "o")
        assert got["p_b"] == pytest.approx(float(lp[y_b].exp()), rel=1e-4)
        assert got["sample_b"] == pytest.approx(float(torch.softmax(lp / 0.6, -1)[y_b]), rel=1e-4)
        assert got["true_pos"] == true[0]
    # no_final never sees the last token; token sees every one
    last = outcomes["true_pos"] == [len(p) - 1 for p in rows["prompts"]] * 2
    assert outcomes.loc[last, "rank_no_final_sum"].isna().all()
    assert outcomes["rank_token_sum"].notna().all()
    assert (outcomes["rank_token_sum"] >= 1).all()


def test_summaries_count_what_the_table_holds(outcomes):
    ms = method_summary(outcomes)
    g = ms.query("mask == 'delete' and method == 'greedy'").iloc[0]
    part = outcomes.query("mask == 'delete'")
    assert g["em"] == part["greedy"].eq("b").sum() and g["fixed"] == g["broken"] == 0
    s = ms.query("mask == 'delete' and method == 'sample'").iloc[0]
    assert s["em"] == pytest.approx(part["sample_b"].sum())
    ds = detection_summary(outcomes)
    assert len(ds) == 2 * 3 * 3
    assert (ds["top1"] <= ds["visible"]).all() and (ds["visible"] <= ds["n"]).all()
    assert (ds["true_alarms"] <= ds["alarms"]).all()


def test_wilson_and_paired_interval():
    lo, hi = wilson(5, 10)
    assert float(lo) == pytest.approx(0.2366, abs=1e-3) and float(hi) == pytest.approx(
        0.7634, abs=1e-3
    )
    lo, hi = wilson(np.array([0, 10]), np.array([10, 10]))
    assert lo[0] == 0 and hi[1] == pytest.approx(1.0)
    d, lo, hi = paired_interval(6, 2, 40)
    assert float(d) == pytest.approx(0.1) and lo < 0.1 < hi
    d, lo, hi = paired_interval(0, 0, 40)
    assert float(d) == float(lo) == float(hi) == 0
    assert math.isnan(float(wilson(0, 0)[0]))


def test_quoted_span_finds_the_stated_condition():
    text = 'Write a quote that ends in the word " heavy " : Absence makes the heart grow'
    _, tok = tiny_lm(text.replace('"', "").split())
    ids = tok(text, add_special_tokens=False)["input_ids"]
    a, b = quoted_span(ids, tok, text)
    assert tok.decode(ids[a:b]).strip() == "heavy"
    assert (
        quoted_span(
            tok("no quotes here", add_special_tokens=False)["input_ids"], tok, "no quotes here"
        )
        is None
    )
    with pytest.raises(ValueError, match="encoding"):
        quoted_span(ids[:-1], tok, text)
