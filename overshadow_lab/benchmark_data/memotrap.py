"""MemoTrap (Liu & Liu 2023): loading its CSVs with schema checks, and its context-free prompt.

Four CSVs (``prompt``, ``classes`` = a Python list literal of two endings, ``answer_index``).
Every prompt invites a memorised continuation (a famous proverb's ending) while asking for
another. A bad row raises ``ValueError`` naming the file and the line.
"""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd

from overshadow_lab.benchmark_data.fetch import fetch_memotrap, resolve_source

MEMOTRAP_FILES: dict[str, str] = {
    "proverb": "1-proverb-ending.csv",
    "translate": "2-proverb-translation.csv",
    "hate": "3-hate-speech-ending.csv",
    "science": "4-history-of-science-qa.csv",
}


def _subtask_of(path: Path) -> str:
    for short, file in MEMOTRAP_FILES.items():
        if path.name == file or path.stem == short:
            return short
    return path.stem


def _read_memotrap_csv(path: Path) -> list[dict[str, Any]]:
    rows = []
    text = path.read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != ["prompt", "classes", "answer_index"]:
        raise ValueError(f"{path}:1: expected the header prompt,classes,answer_index, got {header}")
    line = reader.line_num + 1
    subtask = _subtask_of(path)
    for rec in reader:
        where = f"{path}:{line}"
        line = reader.line_num + 1
        if not rec:
            continue
        if len(rec) != 3:
            raise ValueError(
                f"{where}: expected 3 fields (prompt, classes, answer_index), got {len(rec)}"
            )
        prompt, classes_text, idx_text = rec
        if not prompt.strip():
            raise ValueError(f"{where}: empty prompt")
        try:
            classes = ast.literal_eval(classes_text)
        except (ValueError, SyntaxError) as err:
            raise ValueError(
                f"{where}: classes is not a Python list literal ({err}): {classes_text!r}"
            ) from None
        if not (
            isinstance(classes, list)
            and len(classes) >= 2
            and all(isinstance(c, str) and c.strip() for c in classes)
        ):
            raise ValueError(
                f"{where}: classes must list at least two non-empty strings, got {classes_text!r}"
            )
        try:
            answer_index = int(idx_text)
        except ValueError:
            raise ValueError(
                f"{where}: answer_index must be an integer, got {idx_text!r}"
            ) from None
        if not 0 <= answer_index < len(classes):
            raise ValueError(
                f"{where}: answer_index {answer_index} is outside 0..{len(classes) - 1}"
            )
        rows.append(
            {
                "subtask": subtask,
                "prompt": prompt,
                "classes": classes,
                "answer_index": answer_index,
                "answer": classes[answer_index],
                "memorised": [c for i, c in enumerate(classes) if i != answer_index],
                "source": where,
            }
        )
    return rows


def load_memotrap(
    path: str | Path | None = None, subtasks: list[str] | None = None
) -> pd.DataFrame:
    """MemoTrap rows from a folder of the four CSVs or one CSV; default: the development slice of
    the data folder; ``"full"``: the full public set, downloaded once at a pinned commit.
    Columns: subtask, prompt, classes, answer_index, answer, memorised, source."""
    path = resolve_source(path, "memotrap", fetch_memotrap)
    if path.is_dir():
        files = [path / f for s, f in MEMOTRAP_FILES.items() if (path / f).is_file()]
        if not files:
            raise FileNotFoundError(
                f"{path} holds none of the MemoTrap CSVs ({', '.join(MEMOTRAP_FILES.values())})"
            )
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(
            f"MemoTrap data not found at {path}: give the folder of its CSVs or one CSV"
        )
    rows = [r for f in files for r in _read_memotrap_csv(f)]
    df = pd.DataFrame(rows)
    if subtasks:
        unknown = sorted(set(subtasks) - set(df["subtask"]))
        if unknown:
            raise ValueError(
                f"unknown MemoTrap subtask(s) {', '.join(unknown)}: "
                f"the data holds {', '.join(sorted(set(df['subtask'])))}"
            )
        df = df[df["subtask"].isin(subtasks)].reset_index(drop=True)
    return df


def memotrap_plain_prompt(prompt: str) -> str:
    """MemoTrap prompt without its instruction (CAD's context-free input): the last line when the
    prompt has several lines, else the text after the first colon."""
    if "\n" in prompt:
        return prompt.rsplit("\n", 1)[1]
    head, sep, tail = prompt.partition(": ")
    return tail if sep and tail.strip() else prompt
