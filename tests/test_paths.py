import hashlib

import platformdirs
import pytest

from overshadow_lab.paths import (
    CorruptCacheError,
    bundled_data_dir,
    cache_dir,
    check_cached,
    data_dir,
    file_sha256,
    repo_root,
    results_dir,
)


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OVERSHADOW_DATA", str(tmp_path))
    assert data_dir() == tmp_path


def test_data_dir_rejects_a_missing_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("OVERSHADOW_DATA", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="OVERSHADOW_DATA=.*not a folder"):
        data_dir()


def test_data_dir_defaults_to_the_folder_bundled_in_the_package(monkeypatch):
    monkeypatch.delenv("OVERSHADOW_DATA", raising=False)
    root = repo_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    assert data_dir() == bundled_data_dir() == root / "overshadow_lab" / "data"
    assert (data_dir() / "memotrap").is_dir() and (data_dir() / "paper_law_figures.csv").is_file()


def test_cache_defaults_to_the_platform_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("OVERSHADOW_CACHE", raising=False)
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda app, author: str(tmp_path / app))
    assert cache_dir("benchmarks") == tmp_path / "overshadow_lab" / "benchmarks"


def test_check_cached_names_the_file_to_delete(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n1,2\n")
    sha = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert check_cached(path, sha) == path and file_sha256(path) == sha
    path.write_bytes(b"a,b\n1,3\n")
    with pytest.raises(CorruptCacheError, match=rf"corrupt.*delete {path} and run again") as err:
        check_cached(path, sha)
    assert "\n" not in str(err.value)


def test_cache_and_results_dirs_are_created(monkeypatch, tmp_path):
    monkeypatch.setenv("OVERSHADOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OVERSHADOW_RESULTS", str(tmp_path / "res"))
    assert cache_dir("models", "x").is_dir()
    assert results_dir("lab") == tmp_path / "res" / "lab"
    assert (tmp_path / "res" / "lab").is_dir()


def test_git_provenance_of_the_checkout():
    from overshadow_lab.paths import git_commit, git_dirty

    full, short = git_commit(), git_commit(short=True)
    assert len(full) == 40 and int(full, 16) >= 0
    assert full.startswith(short) and len(short) == 12
    assert git_dirty() in (True, False)
