"""The book's frame: table of contents, chapters, Colab notebooks."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

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
    # the rest is the chapter itself: its code cell for cell, its Markdown converted for Colab
    # (tests/test_notebooks.py checks the conversion and the stale and orphan notebooks)
    chapter = notebooks.read_chapter(ROOT / "book" / "01_introduction.md")
    code = ["".join(c["source"]) for c in nb["cells"][1:] if c["cell_type"] == "code"]
    assert code == [c["source"] for c in chapter.cells if c["cell_type"] == "code"]


def test_every_notebook_chapter_has_an_opening_in_the_committed_notebooks():
    stems = {md.stem for md in notebooks.chapters()}
    assert {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")} == stems
    assert {p.stem for p in (ROOT / "notebooks" / "student").glob("*.ipynb")} == stems


def test_colab_badge_links_the_chapter_and_its_student_notebook(tmp_path):
    import colab_badge
    from docutils import nodes

    (tmp_path / "notebooks" / "student").mkdir(parents=True)
    for name in ("notebooks/01_x.ipynb", "notebooks/student/01_x.ipynb"):
        (tmp_path / name).write_text("{}")
    options = {"repository_url": "https://github.com/o/r", "repository_branch": "dev"}
    app = SimpleNamespace(
        config=SimpleNamespace(html_theme_options=options, colab_notebooks_dir="notebooks"),
        env=SimpleNamespace(docname="book/01_x"),
        srcdir=str(tmp_path),
    )
    section = nodes.section("", nodes.title("", "Title"))
    colab_badge.add_badge(app, section)
    html = section.children[1].astext()
    base = "https://colab.research.google.com/github/o/r/blob/dev/notebooks"
    assert f'href="{base}/01_x.ipynb"' in html
    assert f'href="{base}/student/01_x.ipynb"' in html
    # and both as downloads, relative to the page, copied into the built book at the end
    assert 'href="../_notebooks/01_x.ipynb" download' in html
    assert 'href="../_notebooks/student/01_x.ipynb" download' in html
    app.outdir = str(tmp_path / "html")
    app.builder = SimpleNamespace(format="html")
    colab_badge.copy_notebooks(app, None)
    assert (tmp_path / "html" / "_notebooks" / "student" / "01_x.ipynb").read_text() == "{}"
