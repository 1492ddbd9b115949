import json

import pandas as pd
import pytest

from overshadow_lab.cli import main
from overshadow_lab.grading import find_submissions, grade
from tests.teaching.submissions import GOOD, NO_PERCENT


def _notebook(*sources):
    cells = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in sources
    ]
    cells.insert(0, {"cell_type": "markdown", "metadata": {}, "source": "# my answers"})
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    d = tmp_path_factory.mktemp("subs")
    (d / "alice.py").write_text(GOOD)
    (d / "bob.py").write_text(NO_PERCENT)
    (d / "carol.py").write_text("def relative_hallucination_rate(hr, rr:\n")  # syntax error
    (d / "dave.py").write_text("import os\nos._exit(3)\n")
    (d / "erin.ipynb").write_text(
        _notebook("%matplotlib inline\n" + GOOD, "raise RuntimeError('oops')")
    )
    (d / "notes.txt").write_text("not a submission")
    return d


def test_find_submissions_ignores_other_files(submissions):
    names = [p.name for p in find_submissions(submissions)]
    assert names == ["alice.py", "bob.py", "carol.py", "dave.py", "erin.ipynb"]


@pytest.fixture(scope="module")
def graded(submissions):
    return grade(submissions, progress=False, timeout=120, isolation="fork")


def test_subprocess_isolation_grades_the_same(tmp_path):
    (tmp_path / "alice.py").write_text(GOOD)
    (tmp_path / "bob.py").write_text(NO_PERCENT)
    df = grade(tmp_path, progress=False, timeout=120, isolation="subprocess")
    assert list(df["score"]) == [1, 0]
    assert "multiply the ratio by 100" in df.loc[1, "feedback"]


def test_grade_scores_each_submission_and_survives_broken_ones(graded):
    df = graded.set_index("submission")
    # the introduction has two exercises (the rate and the popularity-slope experiment)
    assert df.loc["alice.py", "score"] == 1 and df.loc["alice.py", "max_score"] == 2
    assert df.loc["bob.py", "score"] == 0
    assert "multiply the ratio by 100" in df.loc["bob.py", "feedback"]
    assert df.loc["carol.py", "score"] == 0 and "SyntaxError" in df.loc["carol.py", "error"]
    assert df.loc["dave.py", "score"] == 0 and "stopped the grader" in df.loc["dave.py", "error"]
    # a notebook: magics dropped, a failing later cell does not undo the definition
    assert (
        df.loc["erin.ipynb", "score"] == 1 and "RuntimeError: oops" in df.loc["erin.ipynb", "error"]
    )


@pytest.mark.parametrize("isolation", ["fork", "subprocess"])
def test_hanging_submission_times_out(tmp_path, isolation):
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(60)\n")
    df = grade(
        tmp_path,
        exercises=["relative_hallucination_rate"],
        progress=False,
        timeout=3,
        isolation=isolation,
    )
    assert df.loc[0, "score"] == 0 and "timed out after 3 s" in df.loc[0, "error"]
    assert "relative_hallucination_rate: not defined" in df.loc[0, "feedback"]


def test_cli_writes_scores_csv(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "alice.py").write_text(GOOD)
    (subs / "bob.py").write_text(NO_PERCENT)
    out = tmp_path / "scores.csv"
    assert main(["grade", str(subs), "--out", str(out), "--chapter", "introduction"]) == 0
    df = pd.read_csv(out)
    assert list(df.columns[:4]) == [
        "submission",
        "score",
        "max_score",
        "relative_hallucination_rate",
    ]
    assert list(df["score"]) == [1, 0]
    assert "wrote 2 rows" in capsys.readouterr().out


def test_cli_bad_input_is_a_clean_error(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "missing"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "does not exist or is not a folder" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "s.csv")]) == 2
    assert "no .py or .ipynb submissions" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--out", "s.csv", "--chapter", "nope"]) == 2
    assert "unknown chapter 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_every_entry_is_graded_or_skipped_with_its_reason(tmp_path, capsys):
    (tmp_path / "_smith.py").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("not a submission")
    (tmp_path / ".hidden.py").write_text(GOOD)
    (tmp_path / "empty").mkdir()
    out = tmp_path.parent / f"{tmp_path.name}-scores.csv"
    assert main(["grade", str(tmp_path), "--out", str(out), "--chapter", "introduction"]) == 0
    assert list(pd.read_csv(out)["submission"]) == ["_smith.py"]
    err = capsys.readouterr().err
    assert "skipped notes.txt: not a .py or .ipynb file" in err
    assert "skipped .hidden.py: hidden" in err
    assert "skipped empty: a folder without .py or .ipynb files" in err


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_timeout_must_be_positive(tmp_path, capsys, timeout):
    (tmp_path / "alice.py").write_text(GOOD)
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path), "--out", str(tmp_path / "s.csv"), f"--timeout={timeout}"])
    assert "must be a positive number of seconds" in capsys.readouterr().err
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        grade(tmp_path, timeout=float(timeout), progress=False)
    assert not (tmp_path / "s.csv").exists()


def test_out_is_checked_before_grading(tmp_path, capsys):
    (tmp_path / "alice.py").write_text(GOOD)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert main(["grade", str(tmp_path), "--out", str(folder)]) == 2
    assert "is a folder; give a file name such as scores.csv" in capsys.readouterr().err
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert main(["grade", str(tmp_path), "--out", str(blocked / "scores.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "a-file' is a file, not a folder" in err


def test_without_a_selection_each_max_score_is_the_submissions_own(tmp_path):
    (tmp_path / "alice.py").write_text(GOOD)
    (tmp_path / "greedy.py").write_text(
        "def relative_hallucination_rate(hr, rr):\n    return 0\n"
        "def log_law_fit(x, r):\n    return (0, 0, 0)\n"
    )
    df = grade(tmp_path, progress=False, timeout=60, isolation="fork").set_index("submission")
    assert df.loc["alice.py", "max_score"] == 2 and df.loc["alice.py", "score"] == 1
    assert df.loc["greedy.py", "max_score"] == 6  # introduction (2) and the law chapter (4)
    assert pd.isna(df.loc["alice.py", "log_law_fit"])


def test_limits_too_large_for_the_kernel_are_refused_up_front(tmp_path):
    (tmp_path / "alice.py").write_text(GOOD)
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds up to"):
        grade(tmp_path, timeout=1e308, progress=False)
    with pytest.raises(ValueError, match="memory_mb must be a whole number from 1 to"):
        grade(tmp_path, memory_mb=2**40, progress=False)
