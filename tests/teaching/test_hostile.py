"""Hostile submissions graded beside honest ones, in both isolation modes, through the CLI.

Each file in ``hostile/`` attacks the grader in one way and says in its first line what it
honestly earns (``# expect: N``): a right answer earns its point whatever else the file does, a
wrong one earns nothing whatever it patches, prints or forges. The files are templates: the
test fills in the submissions folder, the results file and (where a file marks it) the honest
solution, so that each attack aims at the real paths. The grader runs as its own
process so that the submissions that go after it (its command line, killing it) meet a real
grader; afterwards no process started by a submission may be alive and the results file must
stay as the grader wrote it.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.teaching.submissions import GOOD, NO_PERCENT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inspects /proc")

HOSTILE = Path(__file__).parent / "hostile"
REPO = Path(__file__).resolve().parents[2]
RIGHT = "# RIGHT ANSWER (the test puts the honest solution here)"


def _survivors(marker: str) -> list[int]:
    """Processes whose environment mentions ``marker`` (the TMPDIR given to the grader: every
    process a submission starts has its work folder, under that TMPDIR, as HOME)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def _grader(subs: Path, out: Path, tmp: Path, *options: str) -> subprocess.Popen:
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "overshadow_lab.cli",
        "grade",
        str(subs),
        "--out",
        str(out),
        *options,
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module", params=["fork", "subprocess"])
def hostile_run(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"hostile-{request.param}")
    subs, out, tmp = base / "subs", base / "scores.csv", base / "tmp"
    subs.mkdir()
    tmp.mkdir()
    for path in HOSTILE.glob("*.py"):
        text = path.read_text().replace("__SUBMISSIONS__", str(subs)).replace("__OUT__", str(out))
        text = text.replace(RIGHT, GOOD)
        (subs / path.name).write_text(text)
    (subs / "alice.py").write_text(GOOD)
    (subs / "bob.py").write_text(NO_PERCENT)
    proc = _grader(
        subs, out, tmp, "--timeout", "4", "--memory-mb", "1024", "--isolation", request.param
    )
    stdout, stderr = proc.communicate(timeout=240)
    written = out.read_text() if out.exists() else ""
    time.sleep(1.5)  # a detached rewriter, had it survived, writes every 0.1 s
    return {
        "rc": proc.returncode,
        "stdout": stdout,
        "stderr": stderr,
        "written": written,
        "out": out,
        "tmp": tmp,
    }


def test_grader_survives_and_reports_every_submission(hostile_run):
    assert hostile_run["rc"] == 0, hostile_run["stderr"][-2000:]
    n = len(list(HOSTILE.glob("*.py"))) + 2
    assert f"wrote {n} rows" in hostile_run["stdout"]


@pytest.mark.parametrize("path", sorted(HOSTILE.glob("*.py")), ids=lambda p: p.stem)
def test_hostile_submission_scores_only_what_it_earns(hostile_run, path):
    expected = int(re.match(r"# expect: (\d+)", path.read_text()).group(1))
    df = pd.read_csv(hostile_run["out"]).set_index("submission")
    row = df.loc[path.name]
    assert row["score"] == expected, (row["feedback"], row["error"])


def test_honest_neighbours_are_unchanged(hostile_run):
    df = pd.read_csv(hostile_run["out"]).set_index("submission")
    # the introduction's two exercises: alice answers one of them right, bob none
    assert (df.loc["alice.py", "score"], df.loc["alice.py", "max_score"]) == (1, 2)
    assert (df.loc["bob.py", "score"], df.loc["bob.py", "max_score"]) == (0, 2)
    assert "multiply the ratio by 100" in df.loc["bob.py", "feedback"]
    assert "timed out after 4 s" in df.loc["infinite_loop.py", "feedback"]
    assert "MemoryError" in df.loc["memory_bomb.py", "error"]
    assert "File too large" in df.loc["huge_output.py", "error"]
    assert "sent more than 32 MiB of answers" in df.loc["flood_pipe.py", "error"]


def test_nothing_outlives_the_grader_and_the_table_stays_as_written(hostile_run):
    assert _survivors(str(hostile_run["tmp"])) == []
    assert hostile_run["out"].read_text() == hostile_run["written"]
    assert hostile_run["written"].splitlines()[0].endswith("feedback,error")  # not a forgery
    assert list(hostile_run["tmp"].iterdir()) == []  # every work folder removed


def test_a_killed_grader_keeps_the_rows_it_wrote_and_leaves_nothing(tmp_path):
    subs, out, tmp = tmp_path / "subs", tmp_path / "scores.csv", tmp_path / "tmp"
    subs.mkdir()
    tmp.mkdir()
    (subs / "alice.py").write_text(GOOD)
    (subs / "bob.py").write_text(NO_PERCENT)
    (subs / "carl.py").write_text("import time\ntime.sleep(120)\n")
    proc = _grader(subs, out, tmp, "--timeout", "100", "--chapter", "introduction")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and len(pd.read_csv(out)) == 2:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # carl is running
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    df = pd.read_csv(out)
    assert list(df["submission"]) == ["alice.py", "bob.py"]
    assert list(df["score"]) == [1, 0]
    for _ in range(50):  # the supervisor sees its grader gone and kills carl
        if not _survivors(str(tmp)):
            break
        time.sleep(0.1)
    assert _survivors(str(tmp)) == []
