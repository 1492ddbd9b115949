"""Tests of overshadow_lab.metrics: R, exact-match scoring, evaluate() and bootstrap intervals."""

import numpy as np
import pytest
import torch

from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.models import make_model
from overshadow_lab.metrics import (
    answer_matches,
    bootstrap_ci,
    evaluate,
    greedy_answers,
    rates_from_matches,
    relative_hallucination_rate,
    token_exact_match_rate,
)


def test_relative_hallucination_rate():
    assert relative_hallucination_rate(0.3, 0.6) == pytest.approx(50.0)
    assert np.isnan(relative_hallucination_rate(0.2, 0.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        relative_hallucination_rate(1.5, 0.5)


class _Lookup(torch.nn.Module):
    """A 'model' whose next token is a fixed function of the current token: (t * 7 + 3) % V."""

    def __init__(self, vocab=50):
        super().__init__()
        self.vocab = vocab
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, use_cache=False):
        nxt = (input_ids * 7 + 3) % self.vocab
        return type("Out", (), {"logits": torch.nn.functional.one_hot(nxt, self.vocab).float()})


def test_greedy_answers_on_a_known_model():
    m = _Lookup()
    out = greedy_answers(m, [[1, 2], [4], [5, 6, 7]], answer_len=2)
    f = lambda t: (t * 7 + 3) % 50  # noqa: E731
    assert out == [[f(2), f(f(2))], [f(4), f(f(4))], [f(7), f(f(7))]]


@pytest.mark.parametrize("answer_len", [1, 3])
def test_forced_matches_equal_greedy(answer_len):
    """Teacher-forced exact match == generate-then-compare, on a random small transformer."""
    sets = make_knowledge_sets(
        P=3, L=4, n_sets=30, vocab=40, answer_len=answer_len, position="random"
    )
    model = make_model("nano", sets.vocab_size, seed=0)
    prompts = sets.dominant.prompts + sets.subordinate.prompts
    gen = greedy_answers(model, prompts, answer_len, batch_size=7)
    # targets: half the model's own greedy answers (must match), half perturbed (must not)
    targets = [g if i % 2 else [(g[0] + 1) % 40] + g[1:] for i, g in enumerate(gen)]
    fast = answer_matches(model, prompts, targets, batch_size=11)
    slow = np.array([g == t for g, t in zip(gen, targets, strict=True)])
    assert fast.tolist() == slow.tolist() and fast.any() and not fast.all()
    a = evaluate(model, sets, n_boot=50, method="forced")
    b = evaluate(model, sets, n_boot=50, method="greedy")
    np.testing.assert_equal(a, b)  # NaN-aware equality of the two dictionaries


def test_rates_and_bootstrap():
    # 4 sets, 2 dominant prompts each; one subordinate prompt each
    dom_ok = [1, 1, 1, 0, 1, 1, 0, 0]
    dom_sets = [0, 0, 1, 1, 2, 2, 3, 3]
    hall = [1, 0, 1, 0]
    ok = [0, 1, 0, 0]
    r = rates_from_matches(dom_ok, dom_sets, hall, ok, [0, 1, 2, 3], n_boot=500)
    assert r["RR"] == pytest.approx(5 / 8) and r["HR"] == pytest.approx(0.5)
    assert r["R"] == pytest.approx(80.0) and r["sub_acc"] == pytest.approx(0.25)
    assert r["n_dominant"] == 8 and r["n_subordinate"] == 4 and r["n_sets"] == 4
    for k in ("RR", "HR", "R", "sub_acc"):
        assert r[f"{k}_lo"] <= r[k] <= r[f"{k}_hi"]
    assert r["HR_lo"] < r["HR_hi"]
    same = rates_from_matches([1] * 8, dom_sets, [1] * 4, [0] * 4, [0, 1, 2, 3], n_boot=100)
    assert same["R_lo"] == same["R_hi"] == same["R"] == 100.0


def test_bootstrap_ci():
    lo, hi = bootstrap_ci(np.arange(100), n_boot=2000, seed=1)
    assert 40 < lo < 49.5 < hi < 60
    assert bootstrap_ci([3.0, 3.0]) == (3.0, 3.0)
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match=r"level is a coverage"):
        bootstrap_ci([1, 2], level=95)


def test_bad_inputs():
    with pytest.raises(ValueError, match="one target per prompt"):
        answer_matches(_Lookup(), [[1]], [[1], [2]])
    with pytest.raises(ValueError, match="answer_len must be >= 1"):
        greedy_answers(_Lookup(), [[1]], 0)
    sets = make_knowledge_sets(P=2, L=2, n_sets=2, vocab=20)
    with pytest.raises(ValueError, match="method must be 'forced' or 'greedy'"):
        evaluate(_Lookup(20), sets, method="beam")


def test_token_exact_match_rate_compares_token_ids():
    assert token_exact_match_rate([[5, 1], [5, 2], [7]], [[5, 1], [5, 1], [7]]) == pytest.approx(
        2 / 3
    )
    assert token_exact_match_rate([(1, 2)], [[1, 2]]) == 1.0  # any sequence of ids
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        token_exact_match_rate([[1], [2]], [[1]])
    with pytest.raises(ValueError, match="no predictions"):
        token_exact_match_rate([], [])


def test_exact_match_names_say_token_or_text():
    from overshadow_lab import benchmark_data, metrics

    assert not hasattr(metrics, "exact_match_rate") and not hasattr(benchmark_data, "exact_match")
    assert benchmark_data.text_exact_match(" The Eagles.", ["eagles"])
