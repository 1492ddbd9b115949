"""Detection apart from amplification: the batched detection equals one pass per variant; the
detection rules, indicator reductions and the escaping penalty compute what they document."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from overshadow_lab.decoding import CoDAConfig, candidate_spans, coda_reference, coda_step
from overshadow_lab.decoding.coda import _amplified, _indicators
from overshadow_lab.decoding.detection import (
    detect,
    detect_one_by_one,
    frequent_tokens,
    precision_recall,
    span_rank,
)
from overshadow_lab.decoding.spans import STOPWORDS
from tests.tiny import random_prompts, tiny_lm

PROMPTS = random_prompts()
CONFIGS = [
    CoDAConfig(),
    CoDAConfig(mask="replace", mask_token_id=0),
    CoDAConfig(reduce="mean", exclude_final=1),
    CoDAConfig(reduce="weighted", escape="penalty", empty_s="common_min"),
]


# ---- batched detection ---------------------------------------------------------------------------
def _same(a, b):
    assert a.spans == b.spans
    fa, fb = torch.isfinite(a.indicator), torch.isfinite(b.indicator)
    assert torch.equal(fa, fb)
    assert torch.allclose(a.indicator[fa], b.indicator[fb], atol=1e-4, rtol=1e-4)
    assert torch.allclose(a.logp_masked, b.logp_masked, atol=1e-4)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "replace", "mean-nofinal", "weighted"])
@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_batched_detection_equals_one_pass_per_variant(cfg, arch, llama, neox):
    model = llama if arch == "llama" else neox
    batched = detect(model, PROMPTS, cfg, batch_size=7)  # several batches, ragged lengths
    for prompt, got in zip(PROMPTS, batched, strict=True):
        _same(got, detect_one_by_one(model, prompt, cfg))


def test_detection_is_one_forward_pass_for_all_variants(neox):
    calls = []
    hook = neox.register_forward_pre_hook(lambda mod, args: calls.append(1))
    try:
        found = detect(neox, PROMPTS, CoDAConfig())
        n_variants = sum(len(f.spans) for f in found)
        assert len(calls) == 1 and n_variants > 30
        calls.clear()
        detect_one_by_one(neox, PROMPTS[0], CoDAConfig())
        assert len(calls) == len(PROMPTS[0]) + 1
    finally:
        hook.remove()


def test_detection_agrees_with_the_reference_loop(llama):
    cfg = CoDAConfig(mask="replace", mask_token_id=0)
    for prompt, found in zip(PROMPTS, detect(llama, PROMPTS, cfg), strict=True):
        _, det = coda_reference(llama, prompt, 1, cfg)
        assert found.best == int(np.argmax(det.indicators))
        assert found.score == pytest.approx(det.indicator, rel=1e-4, abs=1e-4)


def test_given_spans_and_errors(llama):
    found = detect(llama, PROMPTS[:2], spans=[[(0, 2)], []])
    assert found[0].spans == [(0, 2)] and found[1].spans == [] and found[1].best is None
    assert found[1].score == -math.inf
    with pytest.raises(ValueError, match="2 prompts"):
        detect(llama, PROMPTS[:2], spans=[[(0, 1)]])
    with pytest.raises(ValueError, match="batch_size"):
        detect(llama, PROMPTS[:2], batch_size=0)


# ---- detection rules -----------------------------------------------------------------------------
def test_exclude_final_and_content_rules_on_bare_ids():
    ids = [5, 6, 7, 8]
    assert candidate_spans(ids, "token", exclude_final=1) == [(0, 1), (1, 2), (2, 3)]
    assert candidate_spans(ids, "token", exclude_final=2) == [(0, 1), (1, 2)]
    assert candidate_spans(ids, "content", stop_ids={5, 8}) == [(1, 2), (2, 3)]
    with pytest.raises(ValueError, match="stop_ids"):
        candidate_spans(ids, "content")
    with pytest.raises(ValueError, match="exclude_final"):
        candidate_spans(ids, "token", exclude_final=-1)
    with pytest.raises(ValueError, match="exclude_final"):
        CoDAConfig(exclude_final=-1)
    with pytest.raises(ValueError, match="reduce"):
        CoDAConfig(reduce="max")
    with pytest.raises(ValueError, match="escape"):
        CoDAConfig(escape="ignore")


def test_content_words_skip_stopwords_with_a_tokenizer():
    _, tok = tiny_lm("the heart grows fonder in Paris".split())
    ids = tok("the heart grows fonder in Paris", add_special_tokens=False)["input_ids"]
    spans = candidate_spans(ids, "content", tok)
    assert [tok.decode(ids[s:e]).strip() for s, e in spans] == ["heart", "grows", "fonder", "Paris"]
    assert {"the", "in"} <= STOPWORDS


def test_reference_loop_honours_exclude_final(llama):
    prompt = PROMPTS[0]
    _, det = coda_reference(llama, prompt, 1, CoDAConfig(exclude_final=1))
    assert det.spans == [(i, i + 1) for i in range(len(prompt) - 1)]


def test_frequent_tokens_counts_sequences_not_occurrences():
    seqs = [[1, 1, 2], [2, 3], [3, 4], [3]]
    assert frequent_tokens(seqs, 2) == {2, 3}
    assert frequent_tokens(seqs, 3) == {3}
    with pytest.raises(ValueError, match="min_count"):
        frequent_tokens(seqs, 0)


# ---- indicator reductions and the escaping penalty -----------------------------------------------
def _hand():
    p = torch.tensor([0.4, 0.35, 0.245, 0.005]).log()
    pm = torch.tensor([0.8895, 0.001, 0.1, 0.0095]).log()
    return p, pm


def test_mean_and_weighted_reductions_by_hand():
    p, pm = _hand()
    # common = {0, 2, 3}, S = {0, 3}, V_esc = {1}; min_S log p' = log 0.0095
    neg = [math.log(0.4 / 0.8895), 0.0, math.log(0.005 / 0.0095)]
    esc = math.log(0.35 / 0.0095)
    mean = coda_step(p, pm, reduce="mean")
    assert mean.rpmi_sum.item() == pytest.approx(sum(neg) / 3, rel=1e-5)
    assert mean.erm.item() == pytest.approx(esc, rel=1e-5)
    w = torch.tensor([0.4, 0.35, 0.245, 0.005])  # all four are in V_tau(X)
    weighted = coda_step(p, pm, reduce="weighted")
    expect = (0.4 * neg[0] + 0.005 * neg[2]) / float(w.sum())
    assert weighted.rpmi_sum.item() == pytest.approx(expect, rel=1e-5)
    assert weighted.erm.item() == pytest.approx(0.35 * esc / float(w.sum()), rel=1e-5)
    # the amplified scores do not depend on the reduction
    assert torch.equal(mean.scores, coda_step(p, pm).scores)


def test_escaping_penalty_subtracts_erm_and_drops_escaping_tokens():
    p, pm = _hand()
    reward, penalty = coda_step(p, pm), coda_step(p, pm, escape="penalty")
    assert penalty.indicator.item() == pytest.approx(
        reward.rpmi_sum.item() - reward.erm.item(), rel=1e-6
    )
    assert reward.indicator.item() > 0 > penalty.indicator.item()
    assert int(reward.scores.argmax()) == 1 and penalty.scores[1] == -math.inf
    assert int(penalty.scores.argmax()) == 2
    with pytest.raises(ValueError, match="reduce"):
        coda_step(p, pm, reduce="median")


@pytest.mark.parametrize("reduce,escape", [("mean", "reward"), ("weighted", "penalty")])
def test_fast_paths_follow_the_options(reduce, escape):
    g = torch.Generator().manual_seed(0)
    logp = torch.log_softmax(3 * torch.randn(2, 40, generator=g), -1)
    rows = torch.log_softmax(3 * torch.randn(5, 40, generator=g), -1)
    got = _indicators(logp, [(1, rows)], 0.01, "skip", reduce, escape)
    want = coda_step(logp[1].expand_as(rows), rows, 0.01, "skip", reduce, escape).indicator
    assert torch.equal(torch.isfinite(got), torch.isfinite(want))
    assert torch.allclose(got[torch.isfinite(got)], want[torch.isfinite(want)])
    amp = _amplified(logp[1:].expand(5, -1), rows, 0.01, "skip", escape)
    assert torch.equal(amp, coda_step(logp[1].expand_as(rows), rows, escape=escape).scores)


# ---- ranks and precision-recall ------------------------------------------------------------------
class _Found:
    def __init__(self, ind, spans):
        self.indicator, self.spans = torch.tensor(ind), spans


def test_span_rank_counts_ties_half_and_overlaps():
    spans = [(0, 1), (1, 3), (3, 4)]
    assert span_rank(_Found([0.5, 2.0, 1.0], spans), (1, 2)) == 1.0
    assert span_rank(_Found([3.0, 2.0, 1.0], spans), (2, 3)) == 2.0
    assert span_rank(_Found([2.0, 2.0, 1.0], spans), (0, 1)) == 1.5
    assert math.isnan(span_rank(_Found([1.0], [(0, 1)]), (2, 3)))


def test_precision_recall_by_hand():
    pr = precision_recall([3.0, 2.0, 2.0, 1.0, -math.inf], [True, False, True, False, True])
    assert pr["threshold"].tolist() == [3.0, 2.0, 1.0]
    assert pr["precision"].tolist() == pytest.approx([1.0, 2 / 3, 0.5])
    assert pr["recall"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert pr["average_precision"] == pytest.approx(1 / 3 + (1 / 3) * (2 / 3))
    assert pr["base_rate"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="no positive"):
        precision_recall([1.0], [False])
