"""pytest plugin: spread the chapters over parallel nbval workers in the groups `tools/notebooks.py
stage` chose (``groups.json`` beside the staged notebooks).

Loaded by `make` with ``-p nbval_groups`` under pytest-xdist. It hands xdist a scheduler whose
unit of work is a group of chapters: every cell of a group runs on one worker, in the order the
command line names the notebooks, so chapters that share results run one after another, and a
chapter's cells stay in one kernel. Groups go to whichever worker is free, in command-line order
(with ``--no-loadscope-reorder``).

Written here because xdist's own ``--dist loadgroup`` (an ``xdist_group`` mark per cell) does not
group anything with pytest 9.2: xdist 3.8 renames the marked items through ``Item._nodeid``, which
pytest 9.2 no longer reads. ``pytest_xdist_make_scheduler`` is xdist's hook for this.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _groups(config) -> dict[str, str]:
    path = Path(str(config.rootpath)) / "groups.json"
    return json.loads(path.read_text()) if path.is_file() else {}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    groups = _groups(config)

    class ChapterGroups(LoadScopeScheduling):
        """One unit of work per group of notebooks (a notebook outside every group: itself)."""

        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return groups.get(Path(file).name, file)

    return ChapterGroups(config, log)
