import pytest

from overshadow_lab.paths import cache_dir, data_dir, repo_root, results_dir


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OVERSHADOW_DATA", str(tmp_path))
    assert data_dir() == tmp_path


def test_data_dir_rejects_a_missing_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("OVERSHADOW_DATA", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="OVERSHADOW_DATA=.*not a folder"):
        data_dir()


def test_data_dir_defaults_to_shared_beside_the_checkout(monkeypatch):
    monkeypatch.delenv("OVERSHADOW_DATA", raising=False)
    root = repo_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    expected = root.parent / "shared" / "data"
    assert data_dir() == (expected if expected.is_dir() else None)


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
