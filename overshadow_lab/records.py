"""Results on disk: atomic writes, provenance, the package's code hash and recorded results.

This is the one home for everything that writes a results file or says where a result came
from; sweeps, the fine-tuning GPU tier, the grader and the chapters all go through it.

* :func:`write_csv_atomic` / :func:`write_text_atomic` write a temporary file beside the
  target and move it into place with ``os.replace``, so a reader (or a crash) sees either the
  old file or the new one, never half of one, and no temporary file is left behind on error.
* :func:`provenance` says which code, on which machine, with which library versions, made a
  result; :data:`ROW_PROVENANCE` is the short subset stored on every row of a sweep table.
* :func:`code_hash` hashes the package's own source, so a cached result made by older code is
  recognised as stale (the book's execution cache keys on the code in the same way).
* :func:`save_recorded` / :func:`load_recorded` keep result tables that are too expensive for a
  chapter's CPU budget in ``overshadow_lab/recorded/`` with their provenance;
  :func:`load_or_compute` is the "load if present and current, else compute" of the chapters.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pandas as pd

from overshadow_lab.paths import git_commit, git_dirty

PACKAGE_DIR = Path(__file__).resolve().parent
RECORDED_DIR = PACKAGE_DIR / "recorded"

#: The provenance fields stored on every row of a sweep table (the full record is longer).
ROW_PROVENANCE = ("package", "code_hash", "torch", "transformers", "python", "device", "commit")


# ------------------------------------------------------------------------------------------
# Atomic writes
# ------------------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: str | Path, write: Callable[[object], None], mode: str = "w") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` (without its index) to ``path`` so that no reader sees a partial file."""
    return _atomic(path, lambda fh: df.to_csv(fh, index=False))


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` so that no reader sees a partial file."""
    return _atomic(path, lambda fh: fh.write(text))


# ------------------------------------------------------------------------------------------
# Provenance and the code hash
# ------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def code_hash() -> str:
    """A 12-hex-digit hash of the package's Python source (every ``*.py`` under the package).

    Two installs of the same code hash alike, whatever their paths; any edit to the package
    changes it. Cached results are keyed on it so that they are never shown as current after
    the code that made them has changed.
    """
    h = hashlib.sha256()
    for f in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(f.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name where the system says it (Linux's ``/proc/cpuinfo``), else what
    ``platform.processor()`` says. ``platform`` alone gives "x86_64" on Linux, which cannot tell
    apart CPUs whose bfloat16 products round differently (with and without AMX)."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: str | None = None, wall_seconds: float | None = None) -> dict:
    """Where a result came from: code (version, commit, code hash), machine and library versions.

    ``device`` is the torch device the work ran on (default: :func:`overshadow_lab.device.get_device`);
    ``wall_seconds`` the time it took, when known.
    """
    # Deferred on purpose, the one such place here: writing a table must not load torch, and the
    # package's __init__ imports this module's neighbours.
    import torch
    import transformers

    from overshadow_lab import __version__
    from overshadow_lab.device import get_device, get_tier

    try:
        import accelerate

        acc = accelerate.__version__
    except ImportError:  # pragma: no cover - accelerate is a dependency
        acc = None
    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "package": __version__,
        "code_hash": code_hash(),
        "commit": git_commit(short=True),
        "dirty": git_dirty(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": str(get_device(device)),
        "tier": get_tier(),
        "gpus": gpus,
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "accelerate": acc,
        "wall_seconds": wall_seconds,
    }


def row_provenance(device: str | None = None) -> dict:
    """The :data:`ROW_PROVENANCE` subset of :func:`provenance`, stored with every sweep row."""
    full = provenance(device)
    return {k: full[k] for k in ROW_PROVENANCE}


# ------------------------------------------------------------------------------------------
# Recorded results and "load if current, else compute"
# ------------------------------------------------------------------------------------------


def recorded_files(name: str, folder: str | Path | None = None) -> tuple[Path, Path]:
    """The CSV and the provenance JSON of the recorded result set ``name``."""
    folder = Path(folder) if folder is not None else RECORDED_DIR
    return folder / f"{name}.csv", folder / f"{name}.json"


def save_recorded(
    table: pd.DataFrame, prov: dict, name: str, folder: str | Path | None = None
) -> tuple[Path, Path]:
    """Write a result table and its provenance (each atomically) for :func:`load_recorded`."""
    csv, meta = recorded_files(name, folder)
    write_csv_atomic(table, csv)
    write_text_atomic(json.dumps(prov, indent=2, default=str), meta)
    return csv, meta


def load_recorded(name: str, folder: str | Path | None = None) -> tuple[pd.DataFrame, dict] | None:
    """``(table, provenance)`` of a recorded result set, or None when none has been recorded."""
    csv, meta = recorded_files(name, folder)
    if not csv.is_file():
        return None
    prov = json.loads(meta.read_text()) if meta.is_file() else {"note": "no provenance file"}
    return pd.read_csv(csv), prov


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".code")


def load_or_compute(
    path: str | Path,
    compute: Callable[[], pd.DataFrame],
    valid: Callable[[pd.DataFrame], bool] | None = None,
) -> pd.DataFrame:
    """Read the table at ``path`` if this version of the package made it, else compute it.

    A stamp file beside the table (``<name>.code``) holds the :func:`code_hash` of the code that
    wrote it; a table without a stamp, or with another hash, is recomputed and replaced, so a
    result made by older code is never shown as current. ``valid``, when given, must also accept
    the stored table (for example: it holds the rows and methods now asked for).
    """
    path = Path(path)
    stamp = _stamp_path(path)
    current = code_hash()
    if (
        path.is_file()
        and path.stat().st_size > 0
        and stamp.is_file()
        and stamp.read_text().strip() == current
    ):
        table = pd.read_csv(path)
        if valid is None or valid(table):
            return table
    table = compute()
    write_csv_atomic(table, path)
    write_text_atomic(current + "\n", stamp)
    return table
