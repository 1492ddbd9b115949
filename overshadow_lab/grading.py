"""Grade a folder of student submissions with the exercise checks.

A submission is a ``.py`` module or a ``.ipynb`` notebook (or a folder of them, graded as one)
that defines functions named after exercises (``relative_hallucination_rate`` …). Each
submission runs in its own Python process with a time limit, so that one that crashes, hangs or
calls ``exit()`` gets a zero and its error, and the others are graded as usual.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

_RESULT_MARK = "@@overshadow-grade@@"
SUFFIXES = (".py", ".ipynb")


def find_submissions(folder: str | Path) -> list[Path]:
    """Submissions in ``folder``: its .py/.ipynb files and its sub-folders that hold some."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"submissions folder {str(folder)!r} does not exist or is not a folder")
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        if path.is_file() and path.suffix in SUFFIXES:
            found.append(path)
        elif path.is_dir() and any(p.suffix in SUFFIXES for p in path.rglob("*")):
            found.append(path)
    return found


def _code_cells(path: Path) -> list[str]:
    """The code of a submission as a list of chunks, run one after another."""
    if path.is_dir():
        chunks: list[str] = []
        for sub in sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES):
            chunks += _code_cells(sub)
        return chunks
    if path.suffix == ".py":
        return [path.read_text(encoding="utf-8")]
    nb = json.loads(path.read_text(encoding="utf-8"))
    chunks = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        # IPython magics and shell escapes are not Python: drop those lines
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        chunks.append("\n".join(lines))
    return chunks


def _evaluate(path: str, names: list[str]) -> dict:
    """Execute one submission, then run every applicable check; never raises."""
    import contextlib
    import io
    import traceback

    from overshadow_lab.exercises import REGISTRY

    namespace: dict = {"__name__": "__submission__"}
    errors: list[str] = []
    sink = io.StringIO()
    for i, chunk in enumerate(_code_cells(Path(path))):
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                exec(compile(chunk, f"{Path(path).name}[cell {i}]", "exec"), namespace)
        except BaseException as err:  # noqa: BLE001 - keep grading what was defined
            last = traceback.format_exception_only(type(err), err)[-1].strip()
            errors.append(f"cell {i}: {last}")
    results = {}
    for name in names or list(REGISTRY):
        fn = namespace.get(name)
        if name not in REGISTRY or not callable(fn):
            continue
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                res = REGISTRY[name].run(fn)
            results[name] = {"passed": res.passed, "message": res.message}
        except BaseException as err:  # noqa: BLE001
            results[name] = {"passed": False, "message": f"check crashed: {type(err).__name__}: {err}"}
    return {"results": results, "errors": errors}


def _worker(path: str, names: list[str]) -> None:
    """Entry point of a grading subprocess: print the result as one marked JSON line."""
    print(_RESULT_MARK + json.dumps(_evaluate(path, names)))


def _forked_child(path: str, names: list[str], conn) -> None:
    try:
        os.chdir(Path(path).parent)
        try:
            import matplotlib

            matplotlib.use("Agg")
        except Exception:  # noqa: BLE001 - matplotlib is optional for a submission
            pass
        conn.send(_evaluate(path, names))
    finally:
        conn.close()
        os._exit(0)  # never run the parent's clean-up (pytest, atexit) in the child


def _grade_forked(path: Path, names: list[str], timeout: float) -> dict:
    """Grade in a forked child: the package is imported once, in the parent, for all students."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_forked_child, args=(str(path), names, sender), daemon=True)
    proc.start()
    sender.close()
    result, timed_out = None, False
    try:
        if receiver.poll(timeout):
            result = receiver.recv()
        else:
            timed_out = True
    except EOFError:  # the child died before it could answer
        result = None
    finally:
        receiver.close()
    if timed_out:
        proc.kill()
    proc.join(timeout=5)
    if proc.is_alive():
        proc.kill()
        proc.join()
    if result is not None:
        return result
    if timed_out:
        return {"results": {}, "errors": [f"timed out after {timeout:g} s"]}
    return {"results": {}, "errors": [f"the submission stopped the grader (exit code {proc.exitcode})"]}


def grade_one(path: Path, names: list[str], timeout: float, isolation: str = "auto") -> dict:
    """Grade one submission in a child process; never raises.

    ``isolation="fork"`` forks the grader (fast: the package is imported once), ``"subprocess"``
    starts a fresh interpreter per submission (slower, fully independent); ``"auto"`` forks where
    the platform allows it.
    """
    if isolation == "auto":
        isolation = "fork" if hasattr(os, "fork") and sys.platform != "darwin" else "subprocess"
    if isolation == "fork":
        return _grade_forked(path, names, timeout)
    return _grade_subprocess(path, names, timeout)


def _grade_subprocess(path: Path, names: list[str], timeout: float) -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    code = "import sys, json; from overshadow_lab.grading import _worker; _worker(sys.argv[1], json.loads(sys.argv[2]))"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path), json.dumps(names)],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=str(path.parent),
        )
    except subprocess.TimeoutExpired:
        return {"results": {}, "errors": [f"timed out after {timeout:g} s"]}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_MARK):
            return json.loads(line[len(_RESULT_MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"results": {}, "errors": [f"the submission stopped the grader (exit code {proc.returncode}): {tail[0]}"]}


def grade(
    folder: str | Path,
    exercises: Iterable[str] | None = None,
    chapter: str | None = None,
    timeout: float = 300.0,
    progress: bool = True,
    isolation: str = "auto",
) -> pd.DataFrame:
    """Grade every submission in ``folder``; one row per submission.

    Columns: ``submission``, ``score``, ``max_score``, one 0/1 column per exercise, ``feedback``
    (the failure messages) and ``error`` (what went wrong running the submission, if anything).
    The exercises graded are ``exercises`` if given, else those of ``chapter``, else every
    exercise that at least one submission defines; an exercise a submission lacks scores 0.
    ``isolation`` is passed to :func:`grade_one`.
    """
    from tqdm import tqdm

    from overshadow_lab.exercises import REGISTRY

    names = list(exercises or [])
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown exercise(s) {', '.join(unknown)}; known: {', '.join(sorted(REGISTRY))}")
    if chapter is not None:
        chapters = sorted({e.chapter for e in REGISTRY.values()})
        if chapter not in chapters:
            raise ValueError(f"unknown chapter {chapter!r}; chapters with exercises: {', '.join(chapters)}")
        names += [e.name for e in REGISTRY.values() if e.chapter == chapter and e.name not in names]
    subs = find_submissions(folder)
    if not subs:
        raise FileNotFoundError(f"no .py or .ipynb submissions found in {str(folder)!r}")
    raw = {}
    for sub in tqdm(subs, desc="grading", unit="submission", disable=not progress):
        raw[sub] = grade_one(sub, names, timeout, isolation)
    if not names:
        names = sorted({n for r in raw.values() for n in r["results"]}, key=list(REGISTRY).index)
    rows = []
    for sub, r in raw.items():
        row: dict = {"submission": sub.name}
        score, feedback = 0.0, []
        for name in names:
            res = r["results"].get(name)
            ok = bool(res and res["passed"])
            row[name] = int(ok)
            score += REGISTRY[name].points if ok else 0.0
            if res is None:
                feedback.append(f"{name}: not defined")
            elif not ok:
                feedback.append(f"{name}: {res['message']}")
        row["score"] = score
        row["max_score"] = sum(REGISTRY[n].points for n in names)
        row["feedback"] = " | ".join(feedback)
        row["error"] = " | ".join(r["errors"])
        rows.append(row)
    cols = ["submission", "score", "max_score", *names, "feedback", "error"]
    return pd.DataFrame(rows, columns=cols)


def write_csv_atomic(df: pd.DataFrame, out: str | Path) -> None:
    """Write ``df`` to ``out`` so that a reader never sees a half-written file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            df.to_csv(fh, index=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
