"""Colab notebooks of the chapters: one that runs end to end, one for students.

`notebook(md, student=False)` reads a chapter as the book does (myst-nb's reader), converts its
Markdown with `myst_to_colab`, and lays the exercises out as Colab sections:

* each exercise opens a heading cell ("Exercise 2 (title)") one level below its section;
* in the chapter notebook its solution follows under a "Solution to Exercise 2" heading cell
  one level deeper, listed in ``metadata.colab.collapsed_sections`` (how Colab itself records
  a folded section: the ids of the heading cells, kept in each cell's ``metadata.id``; Colab
  folds everything up to the next heading of the same or a higher level). JupyterLab's own
  flag, ``jp-MarkdownHeadingCollapsed``, is set on the same cells. Cell-level
  ``"collapsed": true`` is the classic Notebook's flag for a code cell's *output*; Colab ignores
  it for headings, so it is not used;
* in the student notebook the solution is gone: a stub cell takes its place, with the
  solution's imports, each function's signature raising ``NotImplementedError``, and the
  solution's own check call (``check_insert_span(insert_span)``);
* prose that follows a solution inside the same section gets a "(continued)" heading of that
  section's level, so that folding the solution never hides it and Colab's table of contents
  does not file it under the exercise.

The first cell installs the package on Colab only (`install_cell`); the last lists the works
the chapter cites.
"""

from __future__ import annotations

import ast
import functools
import textwrap
from pathlib import Path

import jupytext
import nbformat
import yaml
from myst_to_colab import Bibliography, Book, Converter, MystError, myst_leftovers

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_TAG = {"tags": ["solution"]}  # on every cell under a "Solution to Exercise" heading


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def repository() -> tuple[str, str]:
    """The repository URL and branch set once in ``_config.yml`` (``repository:``)."""
    cfg = _config().get("repository") or {}
    url = str(cfg.get("url", "")).rstrip("/")
    if not url.startswith("https://github.com/") or url.count("/") != 4:
        raise MystError(
            f"repository.url in _config.yml is {url!r}: set it to https://github.com/OWNER/REPO"
        )
    return url, str(cfg.get("branch") or "main")


def pages_url(repo_url: str) -> str:
    """The rendered book's address: GitHub Pages of the repository (``OWNER.github.io/REPO/``)."""
    owner, name = repo_url.removeprefix("https://github.com/").split("/")
    if name.lower() == f"{owner.lower()}.github.io":
        return f"https://{owner.lower()}.github.io/"
    return f"https://{owner.lower()}.github.io/{name}/"


@functools.cache
def book(chapter_files: tuple[Path, ...]) -> Book:
    """The book's context, with every label the given chapters define (a first pass)."""
    cfg = _config()
    parse = cfg.get("parse") or {}
    extensions = parse.get("myst_enable_extensions") or []
    options = {k.removeprefix("myst_"): v for k, v in parse.items()
               if k.startswith("myst_dmath_") or k == "myst_heading_anchors"}  # fmt: skip
    bibfile = ROOT / (cfg.get("bibtex_bibfiles") or ["book/references.bib"])[0]
    the_book = Book(ROOT, pages_url(repository()[0]), extensions, Bibliography(bibfile),
                    parser_options=options)  # fmt: skip
    for md in chapter_files:
        converter = Converter(the_book, md, resolve=False)
        for cell in read_chapter(md, lines=True).cells:
            if cell.cell_type == "markdown":
                converter.convert(cell.source, offset=cell.metadata.pop("line") - 1)
        the_book.labels.update(converter.found)
    return the_book


def read_chapter(md: Path, lines: bool = False) -> nbformat.NotebookNode:
    """Read a MyST chapter with jupytext, the tool that owns the chapters' format.

    Its cells are the ones the book build (myst-nb) reads from the same file, which
    ``tests/test_notebooks.py`` checks. ``lines=True`` keeps, in each cell's ``metadata.line``,
    the page line its source starts on (for error messages that name a chapter line).
    """
    text = md.read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="md:myst")
    if lines:
        page = text.splitlines()
        at = 0
        for cell in nb.cells:
            first = cell.source.split("\n", 1)[0]
            found = next((i for i in range(at, len(page)) if page[i] == first), None)
            cell.metadata["line"] = (found if found is not None else at) + 1
            at = found + 1 if found is not None else at
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def install_cell() -> nbformat.NotebookNode:
    """Colab only: install the package from the repository, keeping Colab's own torch."""
    url, branch = repository()
    source = textwrap.dedent(f"""\
        # On Colab: install the companion package from the book's repository. Colab's own torch
        # build stays: a constraints file pins it, so pip never replaces it.
        # Anywhere else this cell does nothing (install the project as its README says).
        import os
        import sys

        if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:
            import importlib
            import importlib.metadata
            import subprocess
            import tempfile

            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as keep:
                keep.write(f"torch=={{importlib.metadata.version('torch')}}\\n")
            package = "overshadow-lab[gpu] @ git+{url}@{branch}"
            pip = [sys.executable, "-m", "pip", "install", "-q", "-c", keep.name, package]
            subprocess.run(pip, check=True)
            importlib.invalidate_caches()""")
    return nbformat.v4.new_code_cell(source=source, metadata={"tags": ["colab-setup"]})


def stub(sources: list[str], number: int) -> str:
    """A student's starting cell: imports, signatures raising NotImplementedError, the checks."""
    keep = [f"# Exercise {number}: replace each `raise NotImplementedError` with your code,",
            "# then run this cell: the check compares your function with the reference."]  # fmt: skip
    for source in sources:
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                keep.append(ast.get_source_segment(source, node))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.body[0].lineno > node.lineno:
                    signature = "\n".join(lines[first - 1 : node.body[0].lineno - 1])
                else:
                    signature = ast.unparse(node).split("\n", 1)[0]
                keep.append(
                    f'\n\n{signature}\n    raise NotImplementedError("write {node.name}")\n\n'
                )
            elif (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                  and isinstance(node.value.func, ast.Name)
                  and node.value.func.id.startswith("check_")):  # fmt: skip
                keep.append(ast.get_source_segment(source, node))
    return "\n".join(keep).replace("\n\n\n\n\n", "\n\n\n").strip()


def _headings(the_book: Book, text: str) -> list[tuple[int, str]]:
    tokens = the_book.md.parse(text)
    return [(int(t.tag[1:]), tokens[i + 1].content) for i, t in enumerate(tokens)
            if t.type == "heading_open"]  # fmt: skip


class _Layout:
    """Lays converted segments and code cells out as notebook cells (see the module doc)."""

    def __init__(self, the_book: Book, student: bool):
        self.book, self.student = the_book, student
        self.cells: list[nbformat.NotebookNode] = []
        self.section = (1, "")
        self.level = 2  # the current exercise's heading level
        self.number = 0
        self.in_solution = False
        self.solution_code: list[str] = []
        self.resume = False
        self.folded: list[nbformat.NotebookNode] = []

    def _continue(self, text: str = "") -> str:
        """After a solution: ``text`` under a "(continued)" heading, unless it opens a section
        that ends the exercise anyway; before a code cell, the heading as a cell of its own."""
        if not self.resume:
            return text
        self.resume = False
        heads = _headings(self.book, text) if text else []
        if heads and text.lstrip().startswith("#") and heads[0][0] <= self.level:
            return text
        title = f"{self.section[1]} (continued)" if self.section[1] else "Continued"
        head = "#" * self.section[0] + " " + title
        if not text:
            self.cells.append(nbformat.v4.new_markdown_cell(head))
        return f"{head}\n\n{text}" if text else text

    def markdown(self, text: str) -> None:
        text = text.strip("\n")
        if not text.strip():
            return
        if self.in_solution:
            if not self.student:
                self.cells.append(nbformat.v4.new_markdown_cell(text, metadata=SOLUTION_TAG))
            return
        self.cells.append(nbformat.v4.new_markdown_cell(self._continue(text)))
        heads = _headings(self.book, text)
        if heads:
            self.section = heads[-1]

    def code(self, cell: nbformat.NotebookNode) -> None:
        if self.in_solution:
            if self.student:
                self.solution_code.append(cell.source)
            else:
                cell.metadata.setdefault("tags", []).extend(SOLUTION_TAG["tags"])
                self.cells.append(cell)
            return
        self._continue()
        self.cells.append(cell)

    def exercise(self, number: int, title: str, body: str) -> None:
        self.resume = False
        self.level = min(self.section[0] + 1, 5)
        self.number = number
        head = "#" * self.level + f" Exercise {number}" + (f" ({title})" if title else "")
        self.cells.append(nbformat.v4.new_markdown_cell(f"{head}\n\n{body}"))

    def solution_start(self, number: int) -> None:
        self.in_solution, self.solution_code = True, []
        if not self.student:
            head = nbformat.v4.new_markdown_cell(
                "#" * (self.level + 1) + f" Solution to Exercise {number}",
                metadata={"jp-MarkdownHeadingCollapsed": True},
            )
            self.cells.append(head)
            self.folded.append(head)

    def solution_end(self) -> None:
        self.in_solution = False
        if self.student and self.solution_code:
            source = stub(self.solution_code, self.number)
            self.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": ["stub"]}))
        self.resume = True


def notebook(md: Path, chapter_files: tuple[Path, ...], student: bool = False) -> str:
    """The Colab notebook of a chapter (or its student version) as .ipynb text."""
    the_book = book(chapter_files)
    converter = Converter(the_book, md)
    layout = _Layout(the_book, student)
    layout.cells.append(install_cell())
    for cell in read_chapter(md, lines=True).cells:
        line = cell.metadata.pop("line")
        if cell.cell_type != "markdown":
            layout.code(cell)
            continue
        for seg in converter.convert(cell.source, offset=line - 1):
            if seg.kind == "markdown":
                layout.markdown(seg.text)
            elif seg.kind == "exercise":
                layout.exercise(seg.number, seg.title, seg.text)
            elif seg.kind == "solution-start":
                layout.solution_start(seg.number)
            else:
                layout.solution_end()
    if layout.in_solution:
        raise MystError(f"{md.name}: a solution-start has no solution-end")
    if converter.cited:
        refs = the_book.bibliography.references(converter.cited)
        layout.markdown(f"## References\n\n{refs}")
    nb = nbformat.v4.new_notebook(cells=layout.cells, metadata=read_chapter(md).metadata)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
        left = myst_leftovers(the_book.md, cell.source) if cell.cell_type == "markdown" else []
        if left:
            raise MystError(f"{md.name}, cell {i}: MyST left after conversion: {'; '.join(left)}")
    for head in layout.folded:
        head.metadata["id"] = head["id"]
    nb.metadata["colab"] = {
        "provenance": [],
        "name": f"{md.stem}{'_student' if student else ''}.ipynb",
        "toc_visible": True,
        "collapsed_sections": [head["id"] for head in layout.folded],
    }
    nb.metadata["accelerator"] = "GPU"
    nb.metadata.pop("jupytext", None)  # the MyST front matter's; meaningless in an .ipynb
    return nbformat.writes(nb) + "\n"
