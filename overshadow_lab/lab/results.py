"""The results table of a sweep: one CSV row per finished run, written whole, checked when read.

A row's ``config_hash`` is a hash of the settings that determine its result (:data:`CONFIG_KEYS`:
data, training and model settings and the seed), and the row carries those settings as columns.
That makes every row checkable on its own, which is what keeps a table honest after a crash,
a full disk, two writers or a hand edit:

* **Writing.** :class:`ResultsWriter` appends each row as one ``write`` of its whole line
  (the header goes out with the first row) and ``fsync``s it, so a crash leaves at most one torn
  last line and never rewrites rows already there. A writer holds an exclusive ``flock`` on the
  table for as long as it is open, so a second sweep writing the same file is refused at once
  rather than mixed in (shards write one file each, see :func:`shard_path`; a file system
  without locks is used without one, with a warning).
* **Checking.** :func:`scan_table` sorts the lines of a table into valid rows and bad ones: a
  torn line (no end of line, or fewer fields than the header), a field that does not parse, a
  ``config_hash`` that differs from the hash of the row's own settings (a row edited or pasted
  from another configuration), or a second row of the same run.
* **Repairing.** When a writer opens a table with bad rows it moves them, with the reason, to
  ``<name>.rejected.csv`` beside it, rewrites the table atomically without them and warns naming
  their lines; their runs are then missing from the table and are redone once.
* **Reading.** :func:`read_results` returns only the valid rows (warning about the others,
  without touching the file), so the law CLI and the chapters never count a bad row.
* **Merging.** :func:`merge_results` adds the valid rows of shard tables to one table, each run
  once (:func:`shard_files` finds a sweep's shard files and checks that none is missing).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import numbers
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from overshadow_lab.lab.data import SyntheticConfig
from overshadow_lab.records import write_text_atomic

try:  # advisory locks are a POSIX facility; elsewhere a table is written without one
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS
    fcntl = None

#: The data settings of a run: every field of :class:`~overshadow_lab.lab.data.SyntheticConfig`
#: but the seed (a run's one seed drives data, initialisation and batches alike).
DATA_KEYS = tuple(f.name for f in fields(SyntheticConfig) if f.name != "seed")
#: The training settings a sweep sets (fields of :class:`~overshadow_lab.lab.train.TrainConfig`;
#: the others keep TrainConfig's defaults and so are not part of a run's identity).
TRAIN_KEYS = tuple(
    "rule epochs max_steps min_steps rr_threshold eval_every patience lr weight_decay "
    "batch_size warmup".split()
)
#: Training settings hashed only when a run sets them (the budget of ``rule="exposure"``), so
#: that runs of the other rules keep the hashes they had before these settings existed.
OPTIONAL_KEYS = ("exposures",)
#: The model settings: a size name (or hub id or folder) and how it is initialised.
MODEL_KEYS = ("size", "init")
#: Everything that determines a run's result, hashed into its ``config_hash``.
CONFIG_KEYS = (*DATA_KEYS, *TRAIN_KEYS, *MODEL_KEYS, "seed")
#: The result columns, first in a table (the settings and provenance follow).
RESULT_COLUMNS = tuple(
    "factor value P L S size seed RR HR R sub_acc R_lo R_hi HR_lo HR_hi RR_lo RR_hi sub_acc_lo "
    "sub_acc_hi steps epochs_run seconds tokens converged stop_reason config_hash".split()
)
#: Result columns that must hold a number in every row of a sweep table.
_REQUIRED_NUMBERS = ("RR", "HR", "steps", "seconds", "tokens")
#: Result columns that hold a number when they are not empty.
_NUMBERS = tuple(
    c
    for c in RESULT_COLUMNS
    if c not in ("factor", "value", "size", "converged", "stop_reason", "config_hash")
)


class BadRowsWarning(UserWarning):
    """Rows of a results table were set aside (torn, unparseable, foreign or repeated)."""


def config_hash(config: dict) -> str:
    """A short stable hash of a run's configuration (keys sorted, values JSON-encoded)."""
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _literal(text: str):
    """A CSV field as the value that was written: an int, a float, or the text itself."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _cell(value) -> str:
    """One value as CSV text that :func:`_literal` reads back as the same value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, str)):
        return str(value).replace("\r", " ").replace("\n", " ")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        return "" if math.isnan(v) else repr(v)
    if hasattr(value, "item"):  # a numpy scalar of another kind (bool_)
        return _cell(value.item())
    return _cell(str(value))


def _line(values: Iterable[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(list(values))
    return buf.getvalue()


def shard_path(out: str | Path, shard: tuple[int, int]) -> Path:
    """The results file of shard ``i`` of ``N``: ``results.csv`` -> ``results.shard-i-of-N.csv``."""
    out = Path(out)
    i, n = shard
    return out.with_name(f"{out.stem}.shard-{i}-of-{n}{out.suffix}")


def rejected_path(path: str | Path) -> Path:
    """Where the bad rows of a table are moved: ``results.csv`` -> ``results.rejected.csv``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.rejected{path.suffix or '.csv'}")


def check_output_path(path: str | Path) -> Path:
    """Check that ``path`` can hold a results table, creating nothing; raise one clear line if not.

    The table itself must be a regular file (or not exist yet) with a folder above it (or the
    folders to make) that this process may write into; an existing table must be readable and
    writable and start with a header holding ``config_hash``.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"out {path} is a folder: give a file in it, e.g. {path / 'results.csv'}")
    if path.exists() and not path.is_file():
        raise ValueError(f"out {path} is not a regular file: give a .csv file name")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"out {path}: {folder} is a file, not a folder: choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"out {path}: cannot write in {folder}: choose a folder you may write to")
    if path.is_file():
        if not os.access(path, os.R_OK | os.W_OK):
            raise ValueError(f"out {path} is not readable and writable: fix its permissions")
        with open(path, newline="", errors="replace") as fh:
            head = fh.readline()
        if head.strip() and "config_hash" not in next(csv.reader([head])):
            raise ValueError(
                f"out {path} is not a results table (its header has no config_hash): "
                "choose another file name"
            )
    return path


@dataclass
class Scan:
    """A table's lines sorted: ``rows`` (valid, as ``{column: text}``) and ``bad`` ones."""

    header: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (line number, reason, text)

    @property
    def hashes(self) -> set[str]:
        return {r["config_hash"] for r in self.rows if "config_hash" in r}

    def text(self) -> str:
        """The table of the valid rows only, as CSV text (their lines written as they were)."""
        if not self.header:
            return ""
        return _line(self.header) + "".join(_line(r[c] for c in self.header) for r in self.rows)

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return pd.DataFrame(columns=self.header or list(RESULT_COLUMNS))
        return pd.read_csv(io.StringIO(self.text()))


def _row_problem(row: dict[str, str], header: Sequence[str]) -> str | None:
    """Why a complete row of a sweep table is not valid, or None."""
    for c in _NUMBERS:
        if c in row and row[c] != "":
            try:
                float(row[c])
            except ValueError:
                return f"{c} is not a number ({row[c]!r})"
    for c in _REQUIRED_NUMBERS:
        if c in header and row[c] == "":
            return f"{c} is empty"
    if "config_hash" in header and not row["config_hash"]:
        return "config_hash is empty"
    if set(CONFIG_KEYS) <= set(header):
        keys = (*CONFIG_KEYS, *(k for k in OPTIONAL_KEYS if row.get(k, "") != ""))
        own = config_hash({k: _literal(row[k]) for k in keys})
        if own != row["config_hash"]:
            return (
                f"config_hash {row['config_hash']} is not the hash of the row's own settings "
                f"({own}): edited, or from another configuration"
            )
    return None


def scan_table(text: str, code: str | None = None) -> Scan:
    """Sort the lines of a results table's text into valid rows and bad ones (see the module).

    Rows of a table without the setting columns (e.g. the fine-tuning tables, keyed by a hash of
    other fields) are checked for completeness and numbers only. With ``code`` (the current
    :func:`~overshadow_lab.records.code_hash`), a row that other package code made (another
    ``code_hash``, or none recorded) is bad too: a resumed sweep redoes it rather than showing
    an old result as current.
    """
    if not text:
        return Scan(header=[])
    lines = text.split("\n")
    ends = text.endswith("\n")
    if len(lines) == 1:  # only a header, and that one torn
        return Scan(header=[], bad=[(1, "torn header (no end of line)", lines[0])])
    header = next(csv.reader([lines[0]]))
    scan = Scan(header=header)
    seen: dict[str, int] = {}
    body = lines[1:-1] if ends else lines[1:]
    for k, line in enumerate(body, start=2):
        if not line.strip():
            continue
        if not ends and k == len(lines):
            scan.bad.append((k, "torn: the last line has no end of line", line))
            continue
        try:
            values = next(csv.reader([line]))
        except csv.Error as err:
            scan.bad.append((k, f"not CSV ({err})", line))
            continue
        if len(values) != len(header):
            scan.bad.append((k, f"torn: {len(values)} of {len(header)} fields", line))
            continue
        row = dict(zip(header, values, strict=True))
        problem = _row_problem(row, header)
        if problem is None and code is not None and row.get("code_hash") != code:
            problem = (
                f"made by other package code (code_hash {row.get('code_hash') or 'not recorded'}, "
                f"now {code})"
            )
        h = row.get("config_hash")
        if problem is None and h in seen:
            problem = f"a second row of run {h} (first on line {seen[h]})"
        if problem is not None:
            scan.bad.append((k, problem, line))
            continue
        if h is not None:
            seen[h] = k
        scan.rows.append(row)
        scan.lines.append(k)
    return scan


def _describe(path: Path, bad: list[tuple[int, str, str]]) -> str:
    shown = "; ".join(f"line {k}: {why}" for k, why, _ in bad[:5])
    more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
    return f"{len(bad)} bad row(s) in {path}: {shown}{more}"


def read_results(path: str | Path) -> pd.DataFrame:
    """The valid rows of a results table (an empty frame if there is no table yet).

    Bad rows (see :func:`scan_table`) are left out with a :class:`BadRowsWarning` naming their
    lines; the file is not changed (a sweep resuming on it moves them aside). A CSV without a
    ``config_hash`` column is not a sweep table (the paper's digitised figures, say) and is
    returned as read.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    text = path.read_text()
    if "config_hash" not in next(csv.reader([text.split("\n", 1)[0]]), []):
        return pd.read_csv(path)
    scan = scan_table(text)
    if scan.bad:
        warnings.warn(
            _describe(path, scan.bad) + "; they are left out (a resumed sweep moves them aside)",
            BadRowsWarning,
            stacklevel=2,
        )
    return scan.frame()


class TableBusyError(ValueError):
    """Another process holds a results table open for writing."""


class ResultsWriter:
    """The one writer of a results table: lock it, set its bad rows aside, append whole rows.

    Use as a context manager; :attr:`hashes` holds the runs already in the table. A table that
    does not exist yet is made with its first row, so a sweep that fails or is killed before
    finishing a run leaves no file. ``wait=False`` refuses a table another writer holds
    (:class:`TableBusyError`); ``wait=True`` waits for it. With ``code`` (the current
    :func:`~overshadow_lab.records.code_hash`; :func:`~overshadow_lab.lab.sweep.run_sweep` passes
    it) rows made by other package code are set aside with the bad ones and their runs redone.
    """

    _FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT

    def __init__(self, path: str | Path, wait: bool = False, code: str | None = None):
        self.path = check_output_path(path)
        self.wait = wait
        self.code = code
        self.header: list[str] = []
        self.hashes: set[str] = set()
        self._fd: int | None = None
        self._entered = False

    def __enter__(self) -> ResultsWriter:
        self._entered = True
        if self.path.is_file():
            self._attach()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        self._entered = False

    def _attach(self) -> None:
        """Open and lock the table (creating it), and set its bad rows aside."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open_locked()
        self._repair()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def _open_locked(self) -> int:
        fd = os.open(self.path, self._FLAGS, 0o644)
        if fcntl is None:  # pragma: no cover - not on Linux or macOS
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise TableBusyError(
                f"{self.path} is being written by another process (a sweep of the same table "
                "is running): wait for it, or give each shard its own file (--shard i/N)"
            ) from None
        except OSError as err:  # e.g. a network file system without locks
            warnings.warn(
                f"cannot lock {self.path} ({err.strerror}): make sure no other sweep writes it",
                stacklevel=3,
            )
        return fd

    def _replace(self, text: str) -> None:
        """Replace the table's content atomically and hold the lock on the new file."""
        mode = os.fstat(self._fd).st_mode & 0o777
        write_text_atomic(text, self.path)
        os.chmod(self.path, mode)
        old, self._fd = self._fd, self._open_locked()
        os.close(old)

    def _repair(self) -> None:
        with open(self.path, newline="") as fh:
            scan = scan_table(fh.read(), self.code)
        if scan.bad:
            side = rejected_path(self.path)
            lines = [] if side.is_file() else [_line(("table_line", "reason", "row"))]
            lines += [_line((str(k), why, text)) for k, why, text in scan.bad]
            _append_text(side, "".join(lines))  # kept before they leave the table
            self._replace(scan.text())
            warnings.warn(
                _describe(self.path, scan.bad) + f"; moved to {side}, their runs will be redone",
                BadRowsWarning,
                stacklevel=3,
            )
        self.header = scan.header
        self.hashes = scan.hashes

    def append(self, row: dict) -> bool:
        """Append ``row`` as one whole line (False if its run is already in the table).

        A row with columns the table lacks widens the table first (one atomic rewrite, the
        existing rows keeping their text and getting empty new fields).
        """
        if not self._entered:
            raise RuntimeError("ResultsWriter.append outside `with ResultsWriter(path) as w:`")
        if self._fd is None:  # the table's first row: the file is made now, not before
            self._attach()
        h = _cell(row.get("config_hash"))
        if h and h in self.hashes:
            return False
        new = [c for c in row if c not in self.header]
        data = ""
        if not self.header:
            self.header = list(row)
            data = _line(self.header)
        elif new:
            with open(self.path, newline="") as fh:
                scan = scan_table(fh.read())
            scan.header += new
            for r in scan.rows:
                r.update(dict.fromkeys(new, ""))
            self._replace(scan.text())
            self.header = scan.header
        data += _line(_cell(row.get(c)) for c in self.header)
        _write_all(self._fd, data.encode())
        if h:
            self.hashes.add(h)
        return True


def _write_all(fd: int, data: bytes) -> None:
    """One ``write`` of ``data`` (looping only if the system writes part of it), then ``fsync``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _append_text(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _write_all(fd, text.encode())
    finally:
        os.close(fd)


def append_row(path: str | Path, row: dict) -> bool:
    """Append one row to a results table (waiting for another writer to finish first).

    A row whose ``config_hash`` is already in the table is not added twice (returns False).
    """
    with ResultsWriter(path, wait=True) as writer:
        return writer.append(row)


def shard_files(out: str | Path) -> list[Path]:
    """The shard tables of ``out`` (``<stem>.shard-i-of-N<suffix>`` beside it), all N of them.

    Raises a one-line error if there are none, if they disagree on N, or if one is missing.
    """
    out = Path(out)
    pattern = re.compile(rf"{re.escape(out.stem)}\.shard-(\d+)-of-(\d+){re.escape(out.suffix)}")
    found: dict[int, dict[int, Path]] = {}
    for p in out.parent.glob(f"{out.stem}.shard-*-of-*{out.suffix}"):
        m = pattern.fullmatch(p.name)
        if m:
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    if not found:
        raise FileNotFoundError(
            f"no shard files {out.stem}.shard-*-of-*{out.suffix} beside {out}: "
            "run the shards first, or name the files to merge"
        )
    if len(found) > 1:
        raise ValueError(
            f"shard files of {out} were made with different shard counts "
            f"({', '.join(map(str, sorted(found)))}): name the files to merge"
        )
    ((n, parts),) = found.items()
    missing = [shard_path(out, (i, n)).name for i in range(n) if i not in parts]
    if missing:
        raise FileNotFoundError(
            f"missing shard file(s) {', '.join(missing)}: run those shards (same command with "
            "--shard i/N), or name the files to merge"
        )
    return [parts[i] for i in range(n)]


@dataclass
class MergeReport:
    """What :func:`merge_results` did: rows added, runs already there, bad rows left out."""

    out: Path
    added: int
    repeated: int
    bad: int


def merge_results(inputs: Sequence[str | Path], out: str | Path) -> MergeReport:
    """Add the valid rows of the tables ``inputs`` to the table ``out``, each run once.

    Rows keep their text; a run already in ``out`` (or in an earlier input) is not added again;
    bad rows of an input are left out with a warning naming them (the input is not changed).
    Merging again after more shards have finished adds only what is new.
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ValueError("nothing to merge: name the shard files (or let merge find them)")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"no such results file: {p}")
    added = repeated = bad = 0
    with ResultsWriter(out, wait=True) as writer:
        for p in paths:
            if p.resolve() == writer.path.resolve():
                continue
            scan = scan_table(p.read_text())
            if scan.bad:
                warnings.warn(_describe(p, scan.bad) + "; left out", BadRowsWarning, stacklevel=2)
                bad += len(scan.bad)
            for row in scan.rows:
                if writer.append(row):
                    added += 1
                else:
                    repeated += 1
    return MergeReport(out=Path(out), added=added, repeated=repeated, bad=bad)


__all__ = [
    "CONFIG_KEYS",
    "DATA_KEYS",
    "MODEL_KEYS",
    "OPTIONAL_KEYS",
    "RESULT_COLUMNS",
    "TRAIN_KEYS",
    "BadRowsWarning",
    "MergeReport",
    "ResultsWriter",
    "Scan",
    "TableBusyError",
    "append_row",
    "check_output_path",
    "config_hash",
    "merge_results",
    "read_results",
    "rejected_path",
    "scan_table",
    "shard_files",
    "shard_path",
]
