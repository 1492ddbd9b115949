"""NQ-Swap (Longpre et al. 2021): loading with schema checks, and the prompt of SPEC §7.

A question with a context whose answer entity was swapped for another; the faithful answer is
``sub_answer``. Rows come from JSONL (the bundled slice is gzip-compressed JSONL, read
transparently) or from the Parquet file of the full set on the Hugging Face hub. A bad row
raises ``ValueError`` naming the file and the line.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from overshadow_lab.benchmark_data.fetch import fetch_nq_swap, resolve_source

NQ_SWAP_FILE = "nq_swap_dev.jsonl"
NQ_SWAP_FIELDS = ("question", "org_context", "org_answer", "sub_context", "sub_answer")


def _in_folder(folder: Path) -> Path:
    """The NQ-Swap file of a data folder: plain JSONL if present, else its gzip-compressed copy."""
    for name in (NQ_SWAP_FILE, NQ_SWAP_FILE + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return folder / NQ_SWAP_FILE


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """``(where, record)`` for every row of a JSONL, JSONL.gz or Parquet file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # deferred: only the full set (Parquet) needs it

        for i, rec in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield f"{path}:row {i}", rec
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            where = f"{path}:{i}"
            try:
                yield where, json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not valid JSON ({err.msg})") from None


def _answer_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return value
    return None


def _checked_row(where: str, rec: Any) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected a JSON object per line")
    for key in ("question", "sub_context", "org_context"):
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            raise ValueError(f"{where}: field {key!r} must be a non-empty string")
    answers = {key: _answer_list(rec.get(key)) for key in ("sub_answer", "org_answer")}
    for key, value in answers.items():
        if value is None:
            raise ValueError(f"{where}: field {key!r} must be a non-empty list of strings")
    return {k: answers.get(k, rec[k]) for k in NQ_SWAP_FIELDS} | {"source": where}


def load_nq_swap(path: str | Path | None = None) -> pd.DataFrame:
    """NQ-Swap rows from a JSONL (or .jsonl.gz, or Parquet) file or a folder holding one; default:
    the development slice of the data folder; ``"full"``: the full public dev split, downloaded
    once at a pinned revision. Columns: question, org_context, org_answer, sub_context,
    sub_answer (answers as lists), source."""
    path = resolve_source(path, "nq_swap", fetch_nq_swap)
    if path.is_dir():
        path = _in_folder(path)
    if not path.is_file():
        raise FileNotFoundError(f"NQ-Swap data not found at {path}: give its JSONL file")
    rows = [_checked_row(where, rec) for where, rec in _records(path)]
    if not rows:
        raise ValueError(f"{path}: no rows")
    return pd.DataFrame(rows)


def nq_swap_prompt(row: Any, with_context: bool = True) -> str:
    """The SPEC §7 prompt; ``with_context=False`` drops the context (CAD's second input)."""
    q = str(row["question"]).strip().rstrip("?")
    if not with_context:
        return f"Question: {q}?\nAnswer:"
    return f"Context: {row['sub_context']}\nQuestion: {q}?\nAnswer:"
