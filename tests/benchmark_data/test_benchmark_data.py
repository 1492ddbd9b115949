"""Benchmark loaders (schema errors name file and line), sampling, scoring, evaluation wiring."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from overshadow_lab import benchmark_data as bm
from tests.tiny import MEMO_CSV, NQ_ROW, tiny_lm


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---- loading and validation ----------------------------------------------------------------
def test_memotrap_csv_parses_multiline_prompts(tmp_path):
    p = _write(tmp_path, "1-proverb-ending.csv", MEMO_CSV)
    df = bm.load_memotrap(p)
    assert len(df) == 2 and set(df["subtask"]) == {"proverb"}
    assert df.loc[1, "answer"] == " background." and df.loc[1, "memorised"] == [" wrong."]
    assert df.loc[0, "source"].endswith(":2") and df.loc[1, "source"].endswith(":3")


@pytest.mark.parametrize(
    "bad, message",
    [
        ('"p","[\' a\']",0', "at least two"),
        ('"p","not a list",0', "list literal"),
        ("\"p\",\"[' a', ' b']\",2", "outside 0..1"),
        ("\"p\",\"[' a', ' b']\",x", "must be an integer"),
        ("\"\",\"[' a', ' b']\",0", "empty prompt"),
    ],
)
def test_memotrap_bad_row_names_file_and_line(tmp_path, bad, message):
    p = _write(tmp_path, "3-hate-speech-ending.csv", MEMO_CSV + bad + "\n")
    # the header is line 1, the two-line... second row spans lines 3-6, the bad row is line 7
    with pytest.raises(ValueError, match=rf"3-hate-speech-ending\.csv:7: .*{message}"):
        bm.load_memotrap(p)


def test_memotrap_bad_header_and_missing(tmp_path):
    with pytest.raises(ValueError, match=r"x\.csv:1: expected the header"):
        bm.load_memotrap(_write(tmp_path, "x.csv", "a,b,c\n1,2,3\n"))
    with pytest.raises(FileNotFoundError, match="none of the MemoTrap CSVs"):
        bm.load_memotrap(tmp_path / "x.csv" if False else _empty_dir(tmp_path))
    with pytest.raises(FileNotFoundError, match="not found"):
        bm.load_memotrap(tmp_path / "nowhere")


def _empty_dir(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_nq_swap_loads_and_validates(tmp_path):
    good = json.dumps(NQ_ROW) + "\n"
    df = bm.load_nq_swap(_write(tmp_path, "a.jsonl", good + good))
    assert len(df) == 2 and df.loc[0, "sub_answer"] == ["Bob"]
    bad = dict(NQ_ROW, sub_answer=[])
    with pytest.raises(ValueError, match=r"b\.jsonl:3: field 'sub_answer'"):
        bm.load_nq_swap(_write(tmp_path, "b.jsonl", good + good + json.dumps(bad) + "\n"))
    with pytest.raises(ValueError, match=r"c\.jsonl:2: not valid JSON"):
        bm.load_nq_swap(_write(tmp_path, "c.jsonl", good + "{oops\n"))
    with pytest.raises(ValueError, match=r"d\.jsonl:1: field 'question'"):
        bm.load_nq_swap(_write(tmp_path, "d.jsonl", json.dumps(dict(NQ_ROW, question="")) + "\n"))


def test_local_slices_load(monkeypatch):
    monkeypatch.delenv("OVERSHADOW_DATA", raising=False)  # the slices bundled with the package
    mt = bm.load_memotrap()
    assert set(mt["subtask"]) == set(bm.MEMOTRAP_FILES) and len(mt) > 1000
    assert mt["subtask"].value_counts().to_dict() == {
        "proverb": 430,
        "translate": 421,
        "science": 368,
        "hate": 50,
    }
    nq = bm.load_nq_swap()
    assert len(nq) == 1427 and {"sub_answer", "org_answer"} <= set(nq.columns)
    assert nq.loc[0, "source"].endswith("nq_swap_dev.jsonl.gz:1")  # read through gzip


# ---- sampling and scoring ------------------------------------------------------------------
def test_sample_rows_is_seeded_and_spread():
    df = pd.DataFrame({"subtask": ["a"] * 50 + ["b"] * 30 + ["c"] * 3, "x": range(83)})
    s = bm.sample_rows(df, 20, seed=1, by="subtask")
    counts = s["subtask"].value_counts().to_dict()
    assert counts == {"a": 9, "b": 8, "c": 3}  # c has only 3: the rest goes to a and b
    assert s.equals(bm.sample_rows(df, 20, seed=1, by="subtask"))
    assert not s.equals(bm.sample_rows(df, 20, seed=2, by="subtask"))
    assert len(bm.sample_rows(df, 500, seed=0)) == 83
    with pytest.raises(ValueError, match="limit must be >= 1"):
        bm.sample_rows(df, 0)


def test_normalisation_and_text_exact_match():
    assert bm.normalize_answer("The  Beatles!") == "beatles"
    assert bm.cut_answer(" Paris, France") == " Paris"
    assert bm.cut_answer(" 1,000 people.") == " 1,000 people"
    assert bm.text_exact_match(" the Eagles.\nMore", ["Eagles"])
    assert not bm.text_exact_match(" Eagles band", ["Eagles"])
    assert not bm.text_exact_match("", [""])
    # MemoTrap's science answers are the letters A/B: articles must not be dropped there
    assert bm.text_exact_match(" A. The Earth", [" A"], articles=False)
    assert not bm.text_exact_match(" B", [" A"], articles=False)


def test_prompts():
    assert (
        bm.nq_swap_prompt(NQ_ROW)
        == "Context: <P> Bob wrote it . </P>\nQuestion: who wrote it?\nAnswer:"
    )
    assert bm.nq_swap_prompt(NQ_ROW, with_context=False) == "Question: who wrote it?\nAnswer:"
    assert bm.memotrap_plain_prompt('Write a quote that ends in "x": All is') == "All is"
    assert bm.memotrap_plain_prompt("Translate.\nfoo\nto:\nThe absent") == "The absent"


def test_summaries():
    s = bm.em_summary([1, 0, 1, 1])
    assert s["em"] == 0.75 and s["em_lo"] <= 0.75 <= s["em_hi"] and s["n"] == 4
    d = bm.paired_difference([1, 1, 1, 0], [0, 0, 1, 0])
    assert d["diff"] == 0.5 and d["diff_lo"] <= 0.5 <= d["diff_hi"]


# ---- evaluation wiring with a tiny model ------------------------------------------------------
def test_evaluate_generation_and_loglik(tmp_path):
    mt = bm.load_memotrap(_write(tmp_path, "1-proverb-ending.csv", MEMO_CSV))
    nq = bm.load_nq_swap(_write(tmp_path, "n.jsonl", json.dumps(NQ_ROW) + "\n"))
    text = (
        " ".join(mt["prompt"])
        + " heavy fonder wrong background "
        + bm.nq_swap_prompt(NQ_ROW)
        + " Ann Bob"
    )
    model, tok = tiny_lm(text.replace("\n", " ").replace('"', " ").split())
    for bench, df in (("memotrap", mt), ("nq_swap", nq)):
        for method in ("greedy", "coda", "cad"):
            res = bm.evaluate_generation(model, tok, bench, df, method, max_new_tokens=4)
            assert len(res) == len(df) and res["em"].dtype == bool
            assert ("alarm" in res.columns) == (method == "coda")
    ll = bm.memotrap_loglik(model, tok, mt)
    assert set(ll.columns) >= {"pred_index", "correct", "margin"} and len(ll) == 2
    assert ll["correct"].tolist() == (ll["margin"] > 0).tolist()


def test_compare_methods_cache_is_reused_only_for_the_same_code_and_request(tmp_path, monkeypatch):
    from overshadow_lab import records

    mt = bm.load_memotrap(_write(tmp_path, "1-proverb-ending.csv", MEMO_CSV))
    model, tok = tiny_lm(" ".join(mt["prompt"]).replace("\n", " ").replace('"', " ").split())
    cache = tmp_path / "cmp.csv"
    first = bm.compare_methods(
        model, tok, "memotrap", mt, ("greedy",), cache=cache, max_new_tokens=2
    )
    assert len(first) == len(mt) and cache.is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although the cache is current")

    monkeypatch.setattr(bm.evaluate, "evaluate_generation", refuse)
    again = bm.compare_methods(model, tok, "memotrap", mt, ("greedy",), cache=cache)
    pd.testing.assert_frame_equal(again, first, check_dtype=False)
    monkeypatch.setattr(records, "code_hash", lambda: "000000000000")  # newer package code
    with pytest.raises(AssertionError, match="recomputed"):
        bm.compare_methods(model, tok, "memotrap", mt, ("greedy",), cache=cache)
