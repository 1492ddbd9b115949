"""Packaging metadata: the version is written once, and the package says it is typed."""

import re
from importlib import metadata
from pathlib import Path

import tomllib

import overshadow_lab

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_written_once_in_the_package():
    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, re.M), "pyproject.toml must not repeat it"
    assert 'dynamic = ["version"]' in project
    assert 'version = { attr = "overshadow_lab.__version__" }' in text
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*", overshadow_lab.__version__)


def test_installed_distribution_reports_the_package_version():
    """What pip shows is what the code says (reinstall when this fails after a version bump)."""
    assert metadata.version("overshadow-lab") == overshadow_lab.__version__


def test_package_is_marked_typed_and_ships_the_marker():
    assert (Path(overshadow_lab.__file__).parent / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["overshadow_lab"]
