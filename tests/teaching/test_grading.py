import json

import pandas as pd
import pytest

from overshadow_lab.cli import main
from overshadow_lab.grading import find_submissions, grade

GOOD = '''
import numpy as np
def relative_hallucination_rate(hr, rr):
    hr, rr = np.asarray(hr, float), np.asarray(rr, float)
    if ((hr < 0) | (hr > 1) | (rr < 0) | (rr > 1)).any():
        raise ValueError("bad")
    r = np.where(rr > 0, 100 * hr / np.where(rr > 0, rr, 1), np.nan)
    return float(r) if r.ndim == 0 else r
'''

NO_PERCENT = "def relative_hallucination_rate(hr, rr):\n    return hr / rr\n"


def _notebook(*sources):
    cells = [{"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
             for s in sources]
    cells.insert(0, {"cell_type": "markdown", "metadata": {}, "source": "# my answers"})
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    d = tmp_path_factory.mktemp("subs")
    (d / "alice.py").write_text(GOOD)
    (d / "bob.py").write_text(NO_PERCENT)
    (d / "carol.py").write_text("def relative_hallucination_rate(hr, rr:\n")  # syntax error
    (d / "dave.py").write_text("import os\nos._exit(3)\n")
    (d / "erin.ipynb").write_text(_notebook("%matplotlib inline\n" + GOOD, "raise RuntimeError('oops')"))
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
    assert df.loc["alice.py", "score"] == 1 and df.loc["alice.py", "max_score"] == 1
    assert df.loc["bob.py", "score"] == 0
    assert "multiply the ratio by 100" in df.loc["bob.py", "feedback"]
    assert df.loc["carol.py", "score"] == 0 and "SyntaxError" in df.loc["carol.py", "error"]
    assert df.loc["dave.py", "score"] == 0 and "stopped the grader" in df.loc["dave.py", "error"]
    # a notebook: magics dropped, a failing later cell does not undo the definition
    assert df.loc["erin.ipynb", "score"] == 1 and "RuntimeError: oops" in df.loc["erin.ipynb", "error"]


@pytest.mark.parametrize("isolation", ["fork", "subprocess"])
def test_hanging_submission_times_out(tmp_path, isolation):
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(60)\n")
    df = grade(tmp_path, exercises=["relative_hallucination_rate"], progress=False, timeout=3,
               isolation=isolation)
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
    assert list(df.columns[:4]) == ["submission", "score", "max_score", "relative_hallucination_rate"]
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
