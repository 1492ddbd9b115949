"""The module map (``overshadow_lab/_modules.py``) is the one list of the package's modules:
it must name every ``*.py`` file and nothing else, and README, CONTRIBUTING and the package
docstring must show what it says. A failure names the modules or the document concerned."""

import importlib
import shutil
from pathlib import Path

import pytest

import overshadow_lab
from overshadow_lab import _modules
from tools.module_map import write_documents

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(overshadow_lab.__file__).resolve().parent


def test_every_module_has_an_entry_and_every_entry_a_module():
    problems = _modules.map_problems(PACKAGE_DIR)
    assert not problems, "\n".join(problems) + f"\nthen run `{_modules.WRITE_COMMAND}`"


def test_readme_and_contributing_show_the_map():
    problems = _modules.document_problems(ROOT)
    assert not problems, "\n".join(problems)


def test_no_module_is_in_two_parts_and_every_purpose_is_one_line():
    names = [m for part in _modules.PARTS.values() for m in part]
    assert len(names) == len(set(names)), sorted({m for m in names if names.count(m) > 1})
    for name, what in _modules.MODULES.items():
        assert what and "\n" not in what and not what.endswith("."), name


def test_package_docstring_lists_every_module():
    doc = overshadow_lab.__doc__
    for title, modules in _modules.PARTS.items():
        assert f"\n{title}\n" in doc
        for name in modules:
            assert f"    {_modules._short(name)} " in doc, name


def test_checker_names_a_missing_and_a_stale_module(tmp_path):
    """The check fails, naming the module, for a file the map lacks and an entry with no file."""
    copy = tmp_path / "overshadow_lab"
    shutil.copytree(
        PACKAGE_DIR,
        copy,
        ignore=lambda _, names: [n for n in names if n.endswith((".pyc", ".csv", ".json"))],
    )
    assert _modules.map_problems(copy) == []
    (copy / "law" / "plots.py").touch()
    (copy / "paper.py").unlink()
    assert _modules.map_problems(copy) == [
        f"missing from the map: overshadow_lab.law.plots (add it to PARTS in {_modules.__name__})",
        "stale in the map: overshadow_lab.paper (no such file; remove it from PARTS)",
    ]


def test_an_edited_document_block_is_reported_and_rewritten(tmp_path):
    for document in _modules.DOCUMENTS:
        (tmp_path / document).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / document).write_text((ROOT / document).read_text())
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("`lab/`", "`lab_old/`"))
    assert _modules.document_problems(tmp_path) == [
        f"README.md: the module list is out of date; run `{_modules.WRITE_COMMAND}`"
    ]
    assert write_documents(tmp_path) == ["README.md"]
    assert _modules.document_problems(tmp_path) == []
    readme.write_text("no markers here\n")
    message = "README.md must hold exactly one <!-- modules:start --> ... <!-- modules:end -->"
    assert _modules.document_problems(tmp_path) == [
        f"{message} block, found 0; add the markers where the module list belongs"
    ]
    with pytest.raises(ValueError, match=message):
        write_documents(tmp_path)


def test_the_api_page_documents_every_module_once():
    page = (ROOT / "book" / "98_api.md").read_text()
    documented = [
        line.split("::", 1)[1].strip()
        for line in page.splitlines()
        if line.startswith(".. automodule::")
    ]
    assert sorted(documented) == sorted(m for m in _modules.MODULES if not m.endswith("__main__"))
    assert "book/98_api" in (ROOT / "_toc.yml").read_text()


@pytest.mark.parametrize("name", [m for m in _modules.MODULES if not m.endswith("__main__")])
def test_every_mapped_module_imports(name):
    """An import smoke test of the whole package (the entry points, which run the command line
    when imported, are left out): it also runs against the lowest supported dependencies."""
    importlib.import_module(name)
