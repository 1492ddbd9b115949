"""Tests of overshadow_lab.lab.data: structure of the knowledge sets and the error messages."""

import pytest

from overshadow_lab.lab.data import SyntheticConfig, make_knowledge_sets


@pytest.mark.parametrize("position", ["end", "middle", "start", "random"])
def test_structure(position):
    ks = make_knowledge_sets(
        P=4, L=3, n=2, n_sets=7, span_len=2, answer_len=2, position=position, seed=3
    )
    cfg = ks.config
    assert cfg.m == 8 and cfg.shared_len == 4
    assert len(ks.dominant) == 7 * 8 and len(ks.subordinate) == 7 * 2
    assert len(ks.train_sequences) == 7 * 10
    assert all(len(s) == 4 + 2 + 2 for s in ks.train_sequences)
    for es in (ks.dominant, ks.subordinate):
        for p, sp, dp in zip(es.prompts, es.shared_positions, es.distinct_positions, strict=True):
            assert len(dp) == 2 and dp == list(range(dp[0], dp[0] + 2))
            assert sorted(sp + dp) == list(range(len(p)))
    # shared span identical within a set, distinct spans differ, Y_a != Y_b
    for s in range(7):
        doms = [i for i, k in enumerate(ks.dominant.set_ids) if k == s]
        subs = [i for i, k in enumerate(ks.subordinate.set_ids) if k == s]
        shared = {
            tuple(ks.dominant.prompts[i][j] for j in ks.dominant.shared_positions[i]) for i in doms
        }
        shared |= {
            tuple(ks.subordinate.prompts[i][j] for j in ks.subordinate.shared_positions[i])
            for i in subs
        }
        assert len(shared) == 1
        spans = [
            tuple(ks.dominant.prompts[i][j] for j in ks.dominant.distinct_positions[i])
            for i in doms
        ]
        spans += [
            tuple(ks.subordinate.prompts[i][j] for j in ks.subordinate.distinct_positions[i])
            for i in subs
        ]
        assert len(set(spans)) == 10
        ya = {tuple(ks.dominant.answers[i]) for i in doms}
        yb = {tuple(ks.subordinate.answers[i]) for i in subs}
        assert len(ya) == 1 and len(yb) == 1 and ya != yb
        assert all(tuple(ks.subordinate.overshadow_answers[i]) in ya for i in subs)
    # training sequences are exactly prompt + answer of every statement
    evals = {
        tuple(p + a)
        for es in (ks.dominant, ks.subordinate)
        for p, a in zip(es.prompts, es.answers, strict=True)
    }
    assert evals == {tuple(s) for s in ks.train_sequences}


def test_positions_and_determinism():
    end = make_knowledge_sets(P=2, L=5, n_sets=3, position="end")
    start = make_knowledge_sets(P=2, L=5, n_sets=3, position="start")
    mid = make_knowledge_sets(P=2, L=5, n_sets=3, position="middle")
    assert end.subordinate.distinct_positions[0] == [4]
    assert start.subordinate.distinct_positions[0] == [0]
    assert mid.subordinate.distinct_positions[0] == [2]
    a = make_knowledge_sets(P=3, L=4, seed=5, n_sets=5)
    b = make_knowledge_sets(SyntheticConfig(P=3, L=4, seed=5, n_sets=5))
    c = make_knowledge_sets(P=3, L=4, seed=6, n_sets=5)
    assert a.train_sequences == b.train_sequences != c.train_sequences
    assert max(max(s) for s in a.train_sequences) < a.vocab_size == 2000


def test_to_frame():
    ks = make_knowledge_sets(P=3, L=2, n_sets=4)
    df = ks.to_frame()
    assert len(df) == 16 and set(df["kind"]) == {"dominant", "subordinate"}
    assert (df.groupby("set_id").size() == 4).all()


class _FakeTokenizer:
    all_special_ids = [0, 1]

    def __len__(self):
        return 50

    def get_vocab(self):
        return {str(i): i for i in range(50)}


def test_tokenizer_vocab_skips_special_tokens():
    ks = make_knowledge_sets(P=2, L=3, n_sets=20, vocab=_FakeTokenizer())
    toks = {t for s in ks.train_sequences for t in s}
    assert ks.vocab_size == 50 and not toks & {0, 1}


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"P": 0.5}, r"must be >= 1.*P >= 1"),
        ({"P": 2.5}, r"not a whole number.*n=2"),
        ({"L": 1}, r"must be > 1.*L >= 2"),
        ({"L": 2.5, "span_len": 1}, r"\(L-1\)\*span_len.*integer"),
        ({"vocab": 10, "P": 10}, r"vocabulary too small.*needs 17.*vocab >= 17"),
        ({"n_sets": 2.5}, r"n_sets is a count.*whole number"),
        ({"n": 0}, r"n must be at least 1"),
        ({"position": "left"}, r"position must be one of end, middle, start, random"),
        ({"colour": 3}, r"unknown parameter.*SyntheticConfig takes"),
        ({"vocab": "gpt2"}, r"integer vocabulary size or a Hugging Face tokenizer"),
    ],
)
def test_bad_inputs(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_knowledge_sets(**kwargs)
