"""The book's frame: table of contents, chapters, Colab notebooks."""

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import notebooks  # noqa: E402


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for c in toc["chapters"]]


def test_every_page_in_the_toc_exists_and_every_page_is_in_the_toc():
    files = _toc_files()
    for f in files:
        assert (ROOT / f"{f}.md").is_file(), f"{f}.md is in _toc.yml but missing"
    pages = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.md")}
    assert pages == set(files), f"pages outside the toc: {sorted(pages - set(files))}"


def test_colab_notebook_starts_with_the_install_cell_from_config():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    nb = json.loads(notebooks.colab_notebook(ROOT / "book" / "01_introduction.md"))
    first = "".join(nb["cells"][0]["source"])
    assert '"google.colab" in sys.modules' in first
    assert f"git+{cfg['url']}@{cfg['branch']}" in first
    # the rest is the chapter itself, cell for cell
    chapter = notebooks.read_chapter(ROOT / "book" / "01_introduction.md")
    assert ["".join(c["source"]) for c in nb["cells"][1:]] == [c["source"] for c in chapter.cells]


def test_stale_colab_notebook_is_detected(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(notebooks, "COLAB_DIR", tmp_path)
    assert notebooks.cmd_colab(check=False) == 0
    assert notebooks.cmd_colab(check=True) == 0
    target = tmp_path / "01_introduction.ipynb"
    target.write_text(target.read_text().replace("Introduction", "Intro"))
    (tmp_path / "99_orphan.ipynb").write_text("{}")
    assert notebooks.cmd_colab(check=True) == 1
    err = capsys.readouterr().err
    assert "stale or missing: notebooks/01_introduction.ipynb" in err
    assert "no chapter for: notebooks/99_orphan.ipynb" in err


def test_every_notebook_chapter_has_an_opening_in_the_committed_notebooks():
    committed = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert {md.stem for md in notebooks.chapters()} == committed
