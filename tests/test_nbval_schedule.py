"""How `make test` spreads the chapters over parallel nbval workers (`tools/notebooks.py
schedule`, `tools/nbval_groups.py`): chapters that share results run on one worker, in order."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import notebooks  # noqa: E402


def test_shared_results_chapters_form_one_group_in_reading_order():
    staged = [md.stem for md in notebooks.chapters()] + ["07_new_chapter"]
    order, groups = notebooks.schedule(staged)
    assert sorted(order) == sorted(f"{s}.ipynb" for s in staged)
    assert order[0] == "04_model_size.ipynb" and order[-1] == "07_new_chapter.ipynb"
    shared = [name for name in order if groups[name] == "shared-results"]
    assert shared == [f"{s}.ipynb" for s in notebooks.SHARED_RESULTS]  # reading order kept
    others = [groups[name] for name in order if groups[name] != "shared-results"]
    assert len(others) == len(set(others))  # every other chapter is a group of its own


def test_every_chapter_naming_the_lab_sweep_tables_is_in_the_shared_group():
    # a chapter added later that loads or resumes sweep_P / sweep_L must join the group, or a
    # parallel run could read a table another chapter is still writing
    pattern = re.compile(r"sweep_(P|L|\{factor\})_")
    naming = {md.stem for md in notebooks.chapters() if pattern.search(md.read_text())}
    assert naming == set(notebooks.SHARED_RESULTS)


def test_a_group_runs_on_one_worker_in_command_line_order(tmp_path):
    names = ["test_c.py", "test_a.py", "test_b.py", "test_e.py", "test_d.py", "test_f.py"]
    for name in names:
        (tmp_path / name).write_text(
            "import os, time\n"
            "def test_it():\n"
            "    time.sleep(0.3)\n"
            f"    with open('log.txt', 'a') as f: f.write('{name} ' + os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n"
        )
    group = {"test_c.py": "g", "test_a.py": "g", "test_e.py": "g"}
    (tmp_path / "groups.json").write_text(json.dumps(group))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null"]
    cmd += ["--rootdir", ".", "-p", "nbval_groups", "-n", "2"]
    cmd += ["--no-loadscope-reorder", *names]
    env = {"PYTHONPATH": str(ROOT / "tools"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = [line.split() for line in (tmp_path / "log.txt").read_text().splitlines()]
    worker = {name: w for name, w in ran}
    assert worker["test_c.py"] == worker["test_a.py"] == worker["test_e.py"]
    assert [name for name, _ in ran if name in group] == ["test_c.py", "test_a.py", "test_e.py"]
    assert len(set(worker.values())) == 2  # the other files went to the other worker too
