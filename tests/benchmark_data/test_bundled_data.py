"""The data bundled inside the package: checksums and counts as its README states, shipped in the
wheel, and no path outside the package left to read."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

from overshadow_lab import benchmark_data as bm
from overshadow_lab.paths import bundled_data_dir, data_dir

ROOT = Path(__file__).resolve().parents[2]  # the checkout holding these tests
SOURCE = ROOT / "overshadow_lab"
DATA = bundled_data_dir()
BUNDLED = [
    "README.md",
    "paper_law_figures.csv",
    "memotrap/LICENSE",
    *(f"memotrap/{f}" for f in bm.MEMOTRAP_FILES.values()),
    "nq_swap/LICENSE",
    "nq_swap/nq_swap_dev.jsonl.gz",
]


def _readme_rows() -> dict[str, tuple[int | None, str]]:
    """``{file: (rows, sha256)}`` from the README's tables."""
    rows = {}
    pattern = re.compile(r"^\| `([^`]+)` \| ([\d-]+) \|.*?`([0-9a-f]{64})`", re.M)
    for name, count, sha in pattern.findall((DATA / "README.md").read_text(encoding="utf-8")):
        rows[name] = (None if count == "-" else int(count), sha)
    return rows


def test_the_readme_states_every_checksum_and_count():
    table = _readme_rows()
    assert set(table) == set(BUNDLED) - {"README.md"}
    for name, (count, sha) in table.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == sha, name
        if name.endswith(".csv"):
            assert len(pd.read_csv(DATA / name)) == count, name
        elif name.endswith(".jsonl.gz"):
            assert len(gzip.decompress((DATA / name).read_bytes()).splitlines()) == count


def test_the_compressed_slice_stays_small():
    assert (DATA / "nq_swap" / "nq_swap_dev.jsonl.gz").stat().st_size < 2_000_000


def test_data_dir_is_the_bundled_folder_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("OVERSHADOW_DATA", raising=False)
    assert data_dir() == DATA and DATA.parent.name == "overshadow_lab"
    monkeypatch.setenv("OVERSHADOW_DATA", str(tmp_path))
    assert data_dir() == tmp_path


def test_nothing_in_the_package_reads_a_folder_beside_the_checkout():
    offenders = []
    for path in SOURCE.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".md", ".json", ".toml", ".txt", ".cfg"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            if "../shared" in text or "shared/data" in text:
                offenders.append(str(path.relative_to(SOURCE)))
    assert offenders == []


def test_a_wheel_built_from_the_project_contains_the_data(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        SOURCE, src / "overshadow_lab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    done = subprocess.run(
        [*cmd, "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("overshadow_lab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"overshadow_lab/data/{name}" for name in BUNDLED} <= names
    assert "overshadow_lab/benchmark_data/fetch.py" in names
