"""Where the lab finds its data and keeps its caches, and how it trusts what it cached.

* Data: ``$OVERSHADOW_DATA`` if set, else the folder bundled inside the package
  (``overshadow_lab/data``: the MemoTrap and NQ-Swap development slices and the paper's digitised
  figures, with their licences), so a clone, a wheel and Colab all have it. The full public sets
  are fetched by name into the cache (:mod:`overshadow_lab.benchmark_data.fetch`).
* Cache: ``$OVERSHADOW_CACHE`` if set, else the user cache folder of the platform
  (``platformdirs``; ``~/.cache/overshadow_lab`` on Linux). Where ``platformdirs`` is not
  installed (the bare GPU node of the GPU tier has only torch, transformers, accelerate, pandas
  and scipy) the XDG rule it applies on Linux is used: ``$XDG_CACHE_HOME`` or ``~/.cache``.
* Verified cache: :func:`check_cached` compares a cached file with its pinned sha256, so a torn
  or doctored download is refused with the name of the file to delete instead of being used.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

try:  # a dependency everywhere except the bare GPU node (see the module docstring)
    import platformdirs
except ImportError:  # pragma: no cover - exercised on the GPU node
    platformdirs = None

DATA_ENV = "OVERSHADOW_DATA"
CACHE_ENV = "OVERSHADOW_CACHE"
APP_NAME = "overshadow_lab"
BUNDLED_DATA = Path(__file__).resolve().parent / "data"


def repo_root() -> Path | None:
    """The repository root when the package runs from a checkout (editable install), else None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def bundled_data_dir() -> Path:
    """The data folder shipped inside the package (the slices, the figures, their licences)."""
    return BUNDLED_DATA


def data_dir() -> Path:
    """The folder holding the benchmark slices and the paper's digitised figures:
    ``$OVERSHADOW_DATA`` when set (it must be a folder), else the bundled one."""
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"{DATA_ENV}={env!r} is not a folder; point it at the data folder"
            )
        return path
    return BUNDLED_DATA


def cache_dir(*parts: str) -> Path:
    """A folder under the lab's cache (created on demand)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        base = Path(env).expanduser()
    elif platformdirs is not None:
        base = Path(platformdirs.user_cache_dir(APP_NAME, False))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / APP_NAME
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class CorruptCacheError(ValueError):
    """A cached file whose bytes differ from its pinned checksum (torn, doctored or replaced)."""


def check_cached(path: str | Path, sha256: str) -> Path:
    """``path`` when its sha256 equals ``sha256``; otherwise raise :class:`CorruptCacheError`
    naming the file to delete (the next load downloads it again)."""
    path = Path(path)
    got = file_sha256(path)
    if got != sha256.lower():
        raise CorruptCacheError(
            f"cached file {path} is corrupt or was modified (sha256 {got[:16]}..., pinned "
            f"{sha256[:16]}...): delete {path} and run again to download it afresh"
        )
    return path


RESULTS_ENV = "OVERSHADOW_RESULTS"


def results_dir(*parts: str) -> Path:
    """Where chapters and sweeps keep the results they compute (created on demand).

    ``$OVERSHADOW_RESULTS`` if set; in a checkout ``_build/results`` (so that one chapter can
    reuse a sweep that an earlier chapter ran, and `make clean` removes them); otherwise the
    cache's ``results`` folder.
    """
    env = os.environ.get(RESULTS_ENV)
    root = repo_root()
    if env:
        base = Path(env).expanduser()
    elif root is not None:
        base = root / "_build" / "results"
    else:
        base = cache_dir("results")
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _git(*args: str) -> str | None:
    root = repo_root()
    if root is None:
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except Exception:  # noqa: BLE001 - no git, not a repository, a timeout: provenance unknown
        return None
    return out.stdout.strip()


def git_commit(short: bool = False) -> str:
    """The checkout's commit (for provenance), or ``"unknown"`` outside a git checkout."""
    out = _git("rev-parse", "--short=12" if short else "--verify", "HEAD")
    return out or "unknown"


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit; None when that cannot be known."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out)
