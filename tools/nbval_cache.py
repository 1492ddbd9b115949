"""pytest plugin: store what nbval executed in the book's jupyter-cache.

Loaded by `make` with ``-p nbval_cache`` (``tools/`` on PYTHONPATH). After each nbval cell runs, its outputs are
written back into the notebook object; when the session ends, every notebook whose cells all
passed is added to `_build/.jupyter_cache` under the chapter's source path, with its execution
time. The book build then finds each chapter in the cache and does not execute it again.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

_runs: dict[int, dict] = {}


def _to_output(out) -> nbformat.NotebookNode | None:
    kind = out.get("output_type")
    if kind == "stream":
        return nbformat.v4.new_output("stream", name=out["name"], text=out["text"])
    if kind == "display_data":
        return nbformat.v4.new_output(
            "display_data", data=out["data"], metadata=out.get("metadata", {})
        )
    if kind == "execute_result":
        return nbformat.v4.new_output(
            "execute_result",
            data=out["data"],
            metadata=out.get("metadata", {}),
            execution_count=out.get("execution_count"),
        )
    if kind == "error":
        return nbformat.v4.new_output(
            "error", ename=out["ename"], evalue=out["evalue"], traceback=out["traceback"]
        )
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not hasattr(item, "test_outputs") or not hasattr(item, "cell"):
        return
    parent = item.parent
    run = _runs.setdefault(id(parent), {"file": parent, "passed": 0, "failed": 0, "seconds": 0.0})
    run["seconds"] += report.duration
    if report.passed:
        run["passed"] += 1
        item.cell.execution_count = run["passed"]
        item.cell.outputs = [o for o in map(_to_output, item.test_outputs or []) if o is not None]
    else:
        run["failed"] += 1


def pytest_sessionfinish(session, exitstatus):
    from filelock import FileLock

    if not _runs:
        return
    # `make` runs nbval outside the checkout (from the installed wheel) and names the book here.
    root = Path(os.environ.get("OVERSHADOW_BOOK_ROOT") or session.config.rootpath)
    # Under pytest-xdist every worker stores its own chapters when it finishes, often at once:
    # one at a time, so that no worker meets the cache's database in the middle of a write.
    (root / "_build").mkdir(exist_ok=True)
    with FileLock(str(root / "_build" / ".jupyter_cache.lock")):
        _store(root)


def _store(root: Path) -> None:
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(root / "_build" / ".jupyter_cache"))
    for run in _runs.values():
        nb = getattr(run["file"], "nb", None)
        if nb is None or run["failed"]:
            continue
        n_code = sum(1 for c in nb.cells if c.cell_type == "code")
        source = nb.metadata.get("overshadow_source")
        if run["passed"] != n_code or not source:
            continue
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(root / source), data={"execution_seconds": run["seconds"]}),
            check_validity=False,
            overwrite=True,
        )
