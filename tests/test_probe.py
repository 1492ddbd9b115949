"""The real-model probes of the introduction, on a tiny word-level model (no files, no network)."""

import numpy as np
import pytest
import torch

from overshadow_lab import probe
from tests.tiny import tiny_lm

PROBE = probe.ContextProbe(
    "toy",
    "the famous {} of vorland is",
    ("general", "admiral", "colonel"),
    "singer",
    "marshal voss",
    "ada lune",
)
WORDS = "the famous of vorland is general admiral colonel singer marshal voss ada lune".split()


@pytest.fixture(scope="module")
def lm(one_thread):
    return tiny_lm(WORDS)


def test_context_places_the_subordinate_statement_and_ends_with_the_query():
    first = PROBE.context(2, "first")
    last = PROBE.context(2, "last")
    sub = "the famous singer of vorland is ada lune."
    assert first.startswith(sub) and last.endswith(f"{sub} the famous singer of vorland is")
    assert first.count("marshal voss.") == last.count("marshal voss.") == 2
    with pytest.raises(ValueError, match="1 <= m <= 3"):
        PROBE.context(4, "first")
    with pytest.raises(ValueError, match="position must be one of"):
        PROBE.context(1, "middle")


def test_probe_definition_errors_are_caught_up_front():
    with pytest.raises(ValueError, match="exactly one"):
        probe.ContextProbe("x", "no slot", ("a",), "b", "A", "B")
    with pytest.raises(ValueError, match="also a dominant span"):
        probe.ContextProbe("x", "{} is", ("a", "b"), "b", "A", "B")


def test_relative_length_counts_tokens(lm):
    _, tok = lm
    # six words in the query, one of them the distinct span
    assert probe.relative_length(tok, PROBE) == 6.0


def test_answer_logprobs_match_a_token_by_token_computation(lm):
    model, tok = lm
    prompt = PROBE.context(3, "last")
    got = probe.answer_logprobs(model, tok, prompt, [" marshal voss", " ada lune"])
    for answer, value in zip([" marshal voss", " ada lune"], got, strict=True):
        ids = tok(prompt)["input_ids"]
        total = 0.0
        for t in tok(answer, add_special_tokens=False)["input_ids"]:
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0, -1]
            total += logits.log_softmax(-1)[t].item()
            ids = ids + [t]
        assert value == pytest.approx(total, abs=1e-4)
    assert np.all(got < 0)
    with pytest.raises(ValueError, match="at least one answer"):
        probe.answer_logprobs(model, tok, prompt, [])


def test_greedy_continuation_is_the_argmax_path(lm):
    model, tok = lm
    prompt = "the famous singer of vorland is"
    text = probe.greedy_continuation(model, tok, prompt, max_new_tokens=2)
    ids = tok(prompt)["input_ids"]
    expected = []
    for _ in range(2):
        with torch.no_grad():
            nxt = int(model(torch.tensor([ids])).logits[0, -1].argmax())
        expected.append(nxt)
        ids = ids + [nxt]
    assert text == tok.decode(expected, skip_special_tokens=True)
    with pytest.raises(ValueError, match="at least 1"):
        probe.greedy_continuation(model, tok, prompt, max_new_tokens=0)


def test_classify_answer():
    assert probe.classify_answer(" Kim Jong-un, who", " Kim Jong", " Hyon Song") == "amalgamated"
    assert probe.classify_answer("canberra.", " Sydney", " Canberra") == "correct"
    assert probe.classify_answer(" Vancouver", " Toronto", " Montreal") == "other"


def test_in_context_sweep_has_one_row_per_setting_and_consistent_margins(lm):
    model, tok = lm
    df = probe.in_context_sweep(model, tok, [PROBE], [1, 3])
    assert len(df) == 4 and set(df["position"]) == {"first", "last"}
    assert np.allclose(df["margin"], df["logp_a"] - df["logp_b"])
    assert (df["overshadowed"] == (df["margin"] > 0)).all()
    assert (df["L"] == 6.0).all() and list(df["P"]) == [1, 1, 3, 3]
    with pytest.raises(ValueError, match="position must be one of"):
        probe.in_context_sweep(model, tok, [PROBE], [1], positions=["middle"])


def test_natural_probe_reports_verdicts_and_margins(lm):
    model, tok = lm
    items = [probe.NaturalPrompt("toy", "the famous singer of vorland is", " marshal", " ada")]
    df = probe.natural_probe(model, tok, items, max_new_tokens=2)
    row = df.iloc[0]
    assert row["verdict"] in {"amalgamated", "correct", "other"}
    assert row["margin"] == pytest.approx(row["logp_amalgamated"] - row["logp_correct"])


def test_default_probes_differ_only_in_shared_span_length():
    probes = probe.default_probes()
    assert len(probes) == 4
    for short, long in [(probes[0], probes[1]), (probes[2], probes[3])]:
        assert short.dominant == long.dominant and short.subordinate == long.subordinate
        assert len(long.shared) > 2 * len(short.shared)
