"""``overshadow-lab decode eval`` prints one JSON object (tiny local model, tiny data)."""

from __future__ import annotations

import json

import pytest

from overshadow_lab.cli import main
from tests.tiny import MEMO_CSV, NQ_ROW, tiny_lm


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "memotrap").mkdir()
    (root / "memotrap" / "1-proverb-ending.csv").write_text(MEMO_CSV)
    (root / "memotrap" / "3-hate-speech-ending.csv").write_text(
        "prompt,classes,answer_index\n\"Write a sign: No Irish need\",\"[' visas', ' apply']\",0\n"
    )
    rows = [dict(NQ_ROW, question=f"who wrote it {i}") for i in range(6)]
    (root / "nq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    words = (
        "Write a quote that ends in the word heavy Absence makes the heart grow Translate into "
        "English line two to The absent are always in the sign No Irish need visas apply who "
        "wrote it Bob Ann P 0 1 2 3 4 5"
    ).split()
    model, tok = tiny_lm(words)
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    return root


def _run(capsys, *argv):
    code = main(["decode", "eval", *argv, "--json", "--no-progress"])
    out = capsys.readouterr()
    return code, out


@pytest.mark.parametrize("method", ["greedy", "coda", "cad"])
def test_nq_swap_json(setup, capsys, method):
    code, out = _run(
        capsys,
        "--benchmark",
        "nq_swap",
        "--data",
        str(setup / "nq.jsonl"),
        "--model",
        str(setup / "model"),
        "--method",
        method,
        "--limit",
        "4",
        "--seed",
        "1",
    )
    assert code == 0
    res = json.loads(out.out)
    assert res["n"] == 4 and 0 <= res["em"] <= 1 and res["method"] == method
    assert ("alarm" in res) == (method == "coda")
    if method == "coda":
        assert {"precision", "recall", "f1", "accuracy"} <= set(res["alarm"])


def test_memotrap_json_with_subtasks_and_loglik(setup, capsys):
    code, out = _run(
        capsys,
        "--benchmark",
        "memotrap",
        "--data",
        str(setup / "memotrap"),
        "--model",
        str(setup / "model"),
        "--method",
        "coda",
    )
    res = json.loads(out.out)
    assert code == 0 and res["n"] == 3 and set(res["subtasks"]) == {"proverb", "hate"}
    code, out = _run(
        capsys,
        "--benchmark",
        "memotrap",
        "--data",
        str(setup / "memotrap"),
        "--model",
        str(setup / "model"),
        "--protocol",
        "loglik",
        "--subtask",
        "proverb",
    )
    res = json.loads(out.out)
    assert code == 0 and res["protocol"] == "loglik" and res["n"] == 2


def test_errors_are_clean(setup, capsys):
    code, out = _run(
        capsys,
        "--benchmark",
        "memotrap",
        "--data",
        str(setup / "memotrap"),
        "--model",
        str(setup / "model"),
        "--subtask",
        "poetry",
    )
    assert code == 2 and "unknown MemoTrap subtask" in out.err
    code, out = _run(
        capsys,
        "--benchmark",
        "nq_swap",
        "--data",
        str(setup / "missing.jsonl"),
        "--model",
        str(setup / "model"),
    )
    assert code == 2 and "not found" in out.err
    code, out = _run(
        capsys,
        "--benchmark",
        "nq_swap",
        "--data",
        str(setup / "nq.jsonl"),
        "--model",
        str(setup / "model"),
        "--limit",
        "0",
    )
    assert code == 2 and "--limit must be >= 1" in out.err


def test_synthetic_from_a_saved_run(tmp_path, capsys):
    data = pytest.importorskip("overshadow_lab.lab.data")
    models = pytest.importorskip("overshadow_lab.lab.models")
    sets = data.make_knowledge_sets(P=2, L=3, n_sets=4, vocab=200, seed=0)
    model = models.make_model("nano", vocab_size=sets.vocab_size)
    models.save_run(tmp_path / "run", model, sets)
    code, out = _run(
        capsys, "--benchmark", "synthetic", "--model", str(tmp_path / "run"), "--method", "coda"
    )
    res = json.loads(out.out)
    assert code == 0 and res["n"] == 4 and "alarm" in res


def test_synthetic_limit_decodes_a_seeded_subset_of_the_subordinate_prompts(tmp_path, capsys):
    data = pytest.importorskip("overshadow_lab.lab.data")
    models = pytest.importorskip("overshadow_lab.lab.models")
    sets = data.make_knowledge_sets(P=2, L=3, n_sets=6, vocab=200, seed=0)
    models.save_run(tmp_path / "run", models.make_model("nano", vocab_size=sets.vocab_size), sets)
    argv = ["--benchmark", "synthetic", "--model", str(tmp_path / "run"), "--limit", "3"]
    code, out = _run(capsys, *argv, "--seed", "2")
    assert code == 0 and json.loads(out.out)["n"] == 3
    # a saved lab run has no tokenizer: the text benchmarks refuse it before any work
    code, out = _run(capsys, "--benchmark", "nq_swap", "--model", str(tmp_path / "run"))
    assert code == 2 and "saved lab run" in out.err


def test_evalset_subset_keeps_every_field_aligned_and_leaves_empty_fields_empty():
    data = pytest.importorskip("overshadow_lab.lab.data")
    es = data.EvalSet(
        prompts=[[1, 2], [3, 4], [5, 6]],
        answers=[[7], [8], [9]],
        set_ids=[0, 1, 2],
        overshadow_answers=None,
        shared_positions=[[0], [0], [0]],
    )
    sub = es.subset([2, 0])
    assert sub.prompts == [[5, 6], [1, 2]] and sub.answers == [[9], [7]]
    assert sub.set_ids == [2, 0] and sub.shared_positions == [[0], [0]]
    assert sub.overshadow_answers is None and sub.distinct_positions == []
    assert len(es) == 3 and es.prompts[0] == [1, 2]  # the original is untouched
    with pytest.raises(IndexError, match="out of range"):
        es.subset([3])


@pytest.mark.parametrize("method", ["greedy", "coda"])
def test_predictions_file_holds_every_row(setup, capsys, tmp_path, method):
    import pandas as pd

    target = tmp_path / f"{method}.csv"
    code, out = _run(
        capsys,
        "--benchmark",
        "nq_swap",
        "--data",
        str(setup / "nq.jsonl"),
        "--model",
        str(setup / "model"),
        "--method",
        method,
        "--limit",
        "3",
        "--predictions",
        str(target),
    )
    assert code == 0 and json.loads(out.out)["predictions"] == str(target)
    table = pd.read_csv(target, keep_default_na=False)
    assert len(table) == 3 and {"row", "source", "prediction", "em", "contains"} <= set(table)
    assert table["source"].str.contains("nq.jsonl:").all()
    assert ("greedy_em" in table) == (method != "greedy")
    assert ("alarm" in table) == (method == "coda")
    code, out = _run(
        capsys,
        "--benchmark",
        "memotrap",
        "--data",
        str(setup / "memotrap"),
        "--model",
        str(setup / "model"),
        "--protocol",
        "loglik",
        "--predictions",
        str(tmp_path / "ll.csv"),
    )
    assert code == 0 and {"pred_index", "correct"} <= set(pd.read_csv(tmp_path / "ll.csv"))
    code, out = _run(
        capsys,
        "--benchmark",
        "nq_swap",
        "--data",
        str(setup / "nq.jsonl"),
        "--model",
        str(setup / "model"),
        "--predictions",
        str(tmp_path / "no" / "such" / "p.csv"),
    )
    assert code == 2 and "folder does not exist" in out.err
