"""Natural-language task families: P, L, unambiguous answers, no leakage, tokenizer handling."""

from __future__ import annotations

import pytest

from overshadow_lab.finetuning.tasks import (
    TASKS,
    TaskConfig,
    check_task_sets,
    make_task,
    relative_length,
    task_summary,
)
from overshadow_lab.lab.data import KnowledgeSets


class CharTokenizer:
    """A minimal tokenizer of a different granularity than words: one token per character
    (spaces included), like the byte-level tokenizers that split digits one by one."""

    all_special_ids: list[int] = []

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)

    def __len__(self):
        return 256


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("P", [2, 5, 10])
def test_every_task_has_the_requested_P_one_L_and_unambiguous_answers(task, P):
    sets = make_task(task, P=P, n_sets=6, seed=1)
    facts = check_task_sets(sets)
    assert facts["P"] == P
    assert facts["n_subordinate"] == 6 and facts["n_dominant"] == 6 * P
    assert facts["L"] == pytest.approx(sets.L_actual)
    assert isinstance(sets, KnowledgeSets)
    # every subordinate prompt differs from every dominant prompt, also in text
    df = sets.to_frame()
    dom_text = set(df.loc[df.kind == "dominant", "prompt_text"])
    assert not dom_text & set(df.loc[df.kind == "subordinate", "prompt_text"])
    # within a set the answers differ and the overshadow answer is the set's Y_a
    for _, g in df.groupby("set_id"):
        ya = set(g.loc[g.kind == "dominant", "answer_text"])
        yb = set(g.loc[g.kind == "subordinate", "answer_text"])
        assert len(ya) == 1 and len(yb) == 1 and ya != yb
        assert set(g.loc[g.kind == "subordinate", "overshadow_text"]) == ya


@pytest.mark.parametrize("task", TASKS)
def test_requested_L_is_met_exactly_by_padding_the_shared_span(task):
    natural = make_task(task, P=3, n_sets=4)
    L = natural.L_actual + 6  # six more shared tokens per distinct-span token
    sets = make_task(task, P=3, n_sets=4, L=L)
    assert check_task_sets(sets)["L"] == pytest.approx(L)
    for es in (sets.dominant, sets.subordinate):
        for p, d in zip(es.prompts, es.distinct_positions, strict=True):
            assert relative_length(p, d) == pytest.approx(L)
            assert len(d) == sets.span_len and d == list(range(d[0], d[0] + len(d)))


def test_distinct_positions_hold_the_distinct_text_and_shared_positions_are_shared():
    sets = make_task("negation", P=4, n_sets=3)
    tok = sets.tokenizer
    df = sets.to_frame()
    dom = df[df.kind == "dominant"].reset_index(drop=True)
    for i, row in dom.iterrows():
        span = [sets.dominant.prompts[i][k] for k in sets.dominant.distinct_positions[i]]
        assert tok.decode(span) == row.distinct_text
    # all prompts of one set agree on the shared positions, and differ on the distinct span
    by_set: dict[int, set] = {}
    for es in (sets.dominant, sets.subordinate):
        for p, s, sp in zip(es.prompts, es.set_ids, es.shared_positions, strict=True):
            by_set.setdefault(s, set()).add(tuple(p[k] for k in sp))
    assert all(len(v) == 1 for v in by_set.values())
    negations = {"not", "never", "hardly", "scarcely", "barely"}
    assert set(df.loc[df.kind == "subordinate", "distinct_text"]) <= negations
    assert not set(df.loc[df.kind == "dominant", "distinct_text"]) & negations


def test_sets_have_distinct_contexts_and_training_sequences_are_prompt_plus_answer():
    sets = make_task("event-time", P=5, n_sets=10)
    df = sets.to_frame()
    assert df.groupby("set_id").context.nunique().eq(1).all()
    assert df.context.nunique() == 10
    seqs = {tuple(s) for s in sets.train_sequences}
    for es in (sets.dominant, sets.subordinate):
        for p, a in zip(es.prompts, es.answers, strict=True):
            assert tuple(p + a) in seqs
    assert len(sets.train_sequences) == len(sets.dominant) + len(sets.subordinate)


def test_generation_is_deterministic_for_a_seed_and_varies_with_it():
    a = make_task("logical", P=4, n_sets=5, seed=3)
    b = make_task("logical", P=4, n_sets=5, seed=3)
    c = make_task("logical", P=4, n_sets=5, seed=4)
    assert a.train_sequences == b.train_sequences
    assert a.to_frame().prompt_text.tolist() != c.to_frame().prompt_text.tolist()


def test_a_character_tokenizer_gives_longer_spans_and_still_meets_the_invariants():
    sets = make_task("math", P=5, n_sets=4, tokenizer=CharTokenizer())
    facts = check_task_sets(sets)
    assert facts["span_len"] > 3  # "8 or 11" is several characters
    assert sets.vocab_size == 256
    # the decoded prompt is the text itself
    row = sets.to_frame().iloc[0]
    assert "Which number is larger" in row.prompt_text


def test_summary_has_one_row_per_family():
    df = task_summary(n_sets=2)
    assert df.task.tolist() == list(TASKS)
    assert (df.Y_a != df.Y_b).all()


def test_bad_inputs_name_the_limit_and_the_fix():
    with pytest.raises(ValueError, match="unknown task 'poetry'"):
        make_task("poetry")
    with pytest.raises(ValueError, match="P = m/n must be >= 1"):
        make_task("gender", P=0.5)
    with pytest.raises(ValueError, match=r"too short: .* L >= 1 \+"):
        make_task("negation", P=2, L=2)
    with pytest.raises(ValueError, match="not a whole number"):
        make_task("negation", P=2, L=20.5, span_len=1)
    with pytest.raises(ValueError, match="lower P"):
        make_task("negation", P=40, span_len=1)  # ~30 one-word affirmative qualifiers
    with pytest.raises(ValueError, match="unknown parameter"):
        make_task("gender", popularity=3)
    with pytest.raises(ValueError, match="whole number"):
        make_task(TaskConfig(task="gender", n_sets=0))
