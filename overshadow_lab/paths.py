"""Where the lab finds its data and keeps its caches.

* Data: ``$OVERSHADOW_DATA`` if set, else ``../shared/data`` beside the repository (the layout
  of a development checkout and of CI). ``data_dir()`` returns ``None`` when neither exists, and
  the loaders in :mod:`overshadow_lab.benchmark_data` then fetch the public copies into the cache.
* Cache: ``$OVERSHADOW_CACHE`` if set, else ``~/.cache/overshadow_lab``.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "OVERSHADOW_DATA"
CACHE_ENV = "OVERSHADOW_CACHE"


def repo_root() -> Path | None:
    """The repository root when the package runs from a checkout (editable install), else None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def data_dir(required: bool = False) -> Path | None:
    """The folder holding the benchmark slices and the paper's digitised figures."""
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{DATA_ENV}={env!r} is not a folder; point it at the data folder")
        return path
    root = repo_root()
    if root is not None and (root.parent / "shared" / "data").is_dir():
        return root.parent / "shared" / "data"
    if required:
        raise FileNotFoundError(
            "no local data folder: set OVERSHADOW_DATA to the folder holding memotrap/, nq_swap/ "
            "and paper_law_figures.csv, or let the loaders download the public copies"
        )
    return None


def cache_dir(*parts: str) -> Path:
    """A folder under the lab's cache (created on demand)."""
    base = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "overshadow_lab").expanduser()
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
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
    import subprocess

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
