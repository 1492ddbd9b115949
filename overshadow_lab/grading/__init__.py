"""Grade a folder of student submissions with the exercise checks, trusting nothing they do.

A submission is a ``.py`` module or a ``.ipynb`` notebook (or a folder of them, graded as one)
that defines functions named after exercises (``relative_hallucination_rate`` …). Every file
is read once, before any student code runs; then each submission runs alone in a sandbox
(:mod:`overshadow_lab.grading.sandbox`) that holds only its own copy, and sends back nothing but
the plain values its functions returned on the exercises' inputs. The verdicts are computed
here, in the grader's process, against references computed here
(:meth:`~overshadow_lab.exercises.framework.Exercise.judge`): patching the checks, the
references or the comparison inside a submission, or printing a forged result, changes nothing.

Each finished row is written to the results file at once (atomically, so a crash or a kill
keeps every row graded so far and no reader sees half a file); rows are rewritten from the
grader's memory each time, which also undoes anything a submission wrote to that file.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from overshadow_lab.grading.runner import SUFFIXES, Limits
from overshadow_lab.grading.sandbox import Report, bubblewrap, run_submission, undumpable
from overshadow_lab.records import write_csv_atomic

MAX_SUBMISSION_BYTES = 20 * 2**20  # a larger submission is skipped, with that reason
MAX_TIMEOUT = 7 * 24 * 3600.0  # seconds; limits beyond these are mistakes, and overflow rlimits
MAX_MEMORY_MB = 2**20  # 1 TiB
ISOLATIONS = ("auto", "fork", "subprocess")
SANDBOXES = ("auto", "bwrap", "none")


def scan_submissions(folder: str | Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The submissions in ``folder`` (its .py/.ipynb files and the sub-folders that hold some)
    and every other entry with the reason it is skipped, so that nothing is left out silently."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(
            f"submissions folder {str(folder)!r} does not exist or is not a folder"
        )
    found, skipped = [], []
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            skipped.append((path.name, "a symbolic link (copy the file itself into the folder)"))
        elif path.name.startswith("."):
            skipped.append((path.name, "hidden (its name starts with '.')"))
        elif path.is_file() and path.suffix in SUFFIXES:
            found.append(path)
        elif path.is_dir() and any(p.suffix in SUFFIXES for p in path.rglob("*")):
            found.append(path)
        elif path.is_dir():
            skipped.append((path.name, "a folder without .py or .ipynb files"))
        else:
            skipped.append((path.name, "not a .py or .ipynb file"))
    return found, skipped


def find_submissions(folder: str | Path) -> list[Path]:
    """Submissions in ``folder``: its .py/.ipynb files and its sub-folders that hold some."""
    return scan_submissions(folder)[0]


def _snapshot(path: Path) -> dict[str, bytes] | str:
    """Every file of one submission (relative path -> bytes), or why it cannot be graded."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if any(p.is_symlink() for p in files):
        return "it holds a symbolic link"
    if sum(p.stat().st_size for p in files) > MAX_SUBMISSION_BYTES:
        return f"larger than {MAX_SUBMISSION_BYTES // 2**20} MiB"
    return {p.relative_to(path.parent).as_posix(): p.read_bytes() for p in files}


def _registry() -> dict:
    """The exercises, imported on first use, the one deferred import here: the chapters' checks
    bring torch and the lab, which the sandbox's own machinery (and ``grade --help``) need not
    load."""
    from overshadow_lab.exercises import REGISTRY

    return REGISTRY


def _selected(exercises: Iterable[str] | None, chapter: str | None) -> list[str]:
    REGISTRY = _registry()

    names = list(exercises or [])
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown exercise(s) {', '.join(unknown)}; known: {', '.join(sorted(REGISTRY))}"
        )
    if chapter is not None:
        chapters = sorted({e.chapter for e in REGISTRY.values()})
        if chapter not in chapters:
            raise ValueError(
                f"unknown chapter {chapter!r}; chapters with exercises: {', '.join(chapters)}"
            )
        names += [e.name for e in REGISTRY.values() if e.chapter == chapter and e.name not in names]
    return names


def _modes(isolation: str, sandbox: str) -> tuple[str, str | None]:
    """The isolation and the bubblewrap binary to use (None: the documented fallback)."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}, not {isolation!r}")
    if sandbox not in SANDBOXES:
        raise ValueError(f"sandbox must be one of {', '.join(SANDBOXES)}, not {sandbox!r}")
    if sys.platform == "win32":
        raise ValueError("grading needs Linux or macOS (it forks a supervisor per submission)")
    bwrap = bubblewrap() if sandbox != "none" and isolation != "fork" else None
    if sandbox == "bwrap" and bwrap is None:
        if isolation == "fork":
            raise ValueError(
                "bubblewrap runs a fresh interpreter: use it with isolation 'subprocess'"
            )
        raise ValueError(
            "sandbox 'bwrap' asked for, but no working bwrap was found "
            "(install bubblewrap, or use sandbox 'auto')"
        )
    if isolation == "auto":
        isolation = "subprocess" if bwrap or sys.platform == "darwin" else "fork"
    return isolation, bwrap


def _check_out(out: Path, columns: list[str]) -> None:
    """Fail now, not after grading, if ``out`` cannot be written: write the empty table."""
    if out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a folder; give a file name such as scores.csv")
    above = out.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ValueError(f"cannot write --out {str(out)!r}: {str(above)!r} is a file, not a folder")
    try:
        write_csv_atomic(pd.DataFrame(columns=columns), out)
    except OSError as err:
        raise ValueError(f"cannot write --out {str(out)!r}: {err.strerror or err}") from None


def _row(name: str, report: Report, names: list[str], columns: list[str]) -> dict:
    """The score row of one submission, judged here from the plain data it sent."""
    REGISTRY = _registry()

    graded = names
    if not names:  # no selection: the whole chapters of the exercises this submission defines
        chapters = {REGISTRY[n].chapter for n in report.defined}
        graded = [e.name for e in REGISTRY.values() if e.chapter in chapters]
    row: dict = {"submission": name}
    score, feedback = 0.0, []
    for ex_name in graded:
        exercise = REGISTRY[ex_name]
        if ex_name not in report.defined:
            ok = False
            feedback.append(f"{ex_name}: not defined")
        else:
            try:
                result = exercise.judge(report.outcomes.get(ex_name, []), report.stopped)
                ok, message = result.passed, result.message
            except Exception as err:  # noqa: BLE001 - malformed answers fail, never the grader
                ok, message = False, f"its answers could not be read ({type(err).__name__})"
            if not ok:
                feedback.append(f"{ex_name}: {message}")
        row[ex_name] = int(ok)
        score += exercise.points if ok else 0.0
    row["score"] = score
    row["max_score"] = sum(REGISTRY[n].points for n in graded)
    row["feedback"] = " | ".join(feedback)
    row["error"] = " | ".join(report.errors)
    return {c: row.get(c) for c in columns}


def grade(
    folder: str | Path,
    exercises: Iterable[str] | None = None,
    chapter: str | None = None,
    timeout: float = 300.0,
    progress: bool = True,
    isolation: str = "auto",
    out: str | Path | None = None,
    sandbox: str = "auto",
    memory_mb: int = 2048,
) -> pd.DataFrame:
    """Grade every submission in ``folder``; one row per submission.

    Columns: ``submission``, ``score``, ``max_score``, one 0/1 column per exercise, ``feedback``
    (the failure messages) and ``error`` (what went wrong running the submission, if anything).
    The exercises graded are ``exercises`` if given, else those of ``chapter``; with neither,
    each submission is graded on the whole chapters whose exercises it defines (its columns
    for other exercises are empty), so no submission can change another's ``max_score``.

    ``timeout`` is the wall-clock seconds a submission's code may run (its interpreter's
    start-up is not counted) and, rounded up, its CPU seconds; ``memory_mb`` the memory it may
    allocate. ``isolation``: ``"fork"`` (a forked copy of the grader: fast, the fallback
    sandbox), ``"subprocess"`` (a fresh interpreter, inside bubblewrap when ``sandbox`` allows
    and one works), ``"auto"`` (subprocess with bubblewrap when available, else fork).
    ``sandbox``: ``"auto"``, ``"bwrap"`` (required) or ``"none"`` (always the fallback).
    With ``out``, the table is written there after each submission; it is checked first.
    ``df.attrs["skipped"]`` lists the folder's other entries with the reason each was skipped.
    """
    from tqdm import tqdm

    REGISTRY = _registry()

    if not (isinstance(timeout, (int, float)) and 0 < timeout <= MAX_TIMEOUT):
        raise ValueError(
            f"timeout must be a positive number of seconds up to {MAX_TIMEOUT:g}, not {timeout!r}"
        )
    if not (isinstance(memory_mb, int) and 0 < memory_mb <= MAX_MEMORY_MB):
        raise ValueError(
            f"memory_mb must be a whole number from 1 to {MAX_MEMORY_MB}, not {memory_mb!r}"
        )
    names = _selected(exercises, chapter)
    isolation, bwrap = _modes(isolation, sandbox)
    subs, skipped = scan_submissions(folder)
    if not subs:
        raise FileNotFoundError(f"no .py or .ipynb submissions found in {str(folder)!r}")
    columns = ["submission", "score", "max_score", *(names or REGISTRY), "feedback", "error"]
    if out is not None:
        _check_out(Path(out), columns)
    snapshots = {}
    for sub in subs:  # every file read before any student code runs: none can change another
        snap = _snapshot(sub)
        if isinstance(snap, str):
            skipped.append((sub.name, snap))
        else:
            snapshots[sub] = snap
    inputs = {
        n: [(c.args, dict(c.kwargs)) for c in REGISTRY[n].inputs()] for n in names or REGISTRY
    }
    limits = Limits(
        cpu_seconds=math.ceil(timeout) + 1,
        memory_bytes=memory_mb * 2**20,
        file_bytes=64 * 2**20,
        processes=64,
    )
    hidden = [Path(folder).resolve()] + ([Path(out).resolve()] if out is not None else [])
    rows = []
    with undumpable():
        for sub, files in tqdm(
            snapshots.items(), desc="grading", unit="submission", disable=not progress
        ):
            report = run_submission(
                files, sub.name, inputs, limits, timeout, isolation, bwrap, hidden
            )
            rows.append(_row(sub.name, report, names, columns))
            if out is not None:
                write_csv_atomic(pd.DataFrame(rows, columns=columns), out)
    df = pd.DataFrame(rows, columns=columns)
    df.attrs["skipped"] = sorted(skipped)
    return df
