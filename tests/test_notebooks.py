"""The Colab and student notebooks: MyST converted to plain Markdown, solutions folded or cut.

The first half tests the conversion (`tools/myst_to_colab.py`) on small inputs, one directive or
role kind at a time; the second half checks the committed notebooks themselves.
"""

import ast
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import colab_notebooks  # noqa: E402
from colab_citations import Bibliography  # noqa: E402
from myst_to_colab import Book, Converter, MystError, myst_leftovers  # noqa: E402

import notebooks  # noqa: E402

PAGES = "https://owner.github.io/repo/"
BIB = """
@article{doe2020,
  title = {A Study of {Things}}, author = {Doe, Jane and Roe, Richard},
  journal = {Journal of Things}, year = {2020}
}
@book{smith2019,
  title = {Everything}, author = {Smith, Ann and Jones, Bo and Brown, Cy},
  publisher = {Press}, year = {2019}
}
@misc{web2021,
  title = {A site}, author = {van der Berg, Ida}, year = {2021},
  howpublished = {\\url{https://example.org/site}}
}
"""
MODULE = '''import os


def f(a):
    """Doc."""
    return a + 1


class C:
    def m(self):
        return 2
'''


@pytest.fixture
def book(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "refs.bib").write_text(BIB)
    (tmp_path / "book" / "02_other.md").write_text("# The other chapter\n\nText.\n")
    (tmp_path / "book" / "_snip.md").write_text(
        ":::{note}\nIncluded, see {cite:p}`doe2020`.\n:::\n"
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(MODULE)
    bib = Bibliography(tmp_path / "book" / "refs.bib")
    return Book(tmp_path, PAGES, ["colon_fence", "dollarmath", "amsmath"], bib)


def page(book):
    return Converter(book, book.root / "book" / "01_page.md")


def md(book, text):
    """Convert text that must come back as Markdown only."""
    segments = page(book).convert(text)
    assert [s.kind for s in segments] == ["markdown"]
    return segments[0].text


def resolved(book, text):
    """Convert twice, as the tool does: once to index the labels, once to resolve them."""
    first = Converter(book, book.root / "book" / "01_page.md", resolve=False)
    first.convert(text)
    book.labels.update(first.found)
    return md(book, text)


# -- plain Markdown passes through --------------------------------------------------------


def test_markdown_without_myst_is_kept_byte_for_byte(book):
    text = (
        "# Title\n\nSome *text* with $a_b$ and\n\n$$\nx^2\n$$\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    assert md(book, text) == text


def test_role_syntax_quoted_in_a_code_span_is_left_alone(book):
    text = "Write `{doc}`x`` in MyST, see {doc}`02_other`.\n"
    out = md(book, text)
    assert out.startswith("Write `{doc}`x`` in MyST, see [The other chapter](")


# -- directives ---------------------------------------------------------------------------


def test_admonition_becomes_bold_title_over_a_blockquote(book):
    text = "```{admonition} Faster on a GPU\n:class: tip\n\nRun it with $x$.\n\nTwice.\n```\n"
    assert md(book, text) == "> **Faster on a GPU**\n>\n> Run it with $x$.\n>\n> Twice.\n\n"


def test_named_admonition_takes_its_name_as_title(book):
    assert md(book, ":::{warning}\nCareful.\n:::\n").startswith("> **Warning**\n>\n> Careful.")


def test_include_inlines_the_converted_file(book):
    out = md(book, "Before.\n\n```{include} _snip.md\n```\n\nAfter.\n")
    assert "> **Note**\n>\n> Included, see (Doe and Roe, 2020)." in out
    assert out.startswith("Before.") and out.rstrip().endswith("After.")


def test_include_of_a_missing_file_names_it(book):
    with pytest.raises(MystError, match="include nope.md: no such file"):
        md(book, "```{include} nope.md\n```\n")


def test_literalinclude_reads_the_python_object(book):
    out = md(book, "```{literalinclude} ../pkg/mod.py\n:pyobject: f\n```\n")
    assert out.startswith('```python\ndef f(a):\n    """Doc."""\n    return a + 1\n```')
    assert "import os" not in out
    method = md(book, "```{literalinclude} ../pkg/mod.py\n:pyobject: C.m\n```\n")
    assert "def m(self):\n        return 2" in method and "class C" not in method


def test_literalinclude_lines_and_missing_object(book):
    assert md(book, "```{literalinclude} ../pkg/mod.py\n:lines: 1\n```\n") == (
        "```python\nimport os\n```\n\n"
    )
    with pytest.raises(MystError, match="no function or class 'g'"):
        md(book, "```{literalinclude} ../pkg/mod.py\n:pyobject: g\n```\n")
    with pytest.raises(MystError, match="option.s. tab-width have no Colab form"):
        md(book, "```{literalinclude} ../pkg/mod.py\n:tab-width: 4\n```\n")


def test_theorems_are_bold_labelled_and_numbered_per_kind(book):
    text = (
        ":::{prf:theorem} Big\n:label: thm-a\n\nFor all $x$,\n$$f(x) \\le 1.$$\n:::\n\n"
        ":::{prf:lemma}\nSmall.\n:::\n\n:::{prf:theorem} Bigger\n:nonumber:\n\nYes.\n:::\n"
    )
    out = md(book, text)
    assert "**Theorem 1 (Big).** For all $x$,\n$$f(x) \\le 1.$$" in out
    assert "**Lemma 1.** Small." in out
    assert "**Theorem (Bigger).** Yes." in out


def test_proof_is_marked_and_closed(book):
    out = md(book, ":::{prf:proof}\nObvious: $1 = 1$.\n:::\n")
    assert out.strip() == "*Proof.* Obvious: $1 = 1$.\n\n∎"


def test_exercise_and_solution_come_back_as_segments(book):
    text = (
        ":::{exercise} Warm-up\n:label: ex-a\n\nDo it with $y$.\n:::\n\n"
        ":::{solution-start} ex-a\n:class: dropdown\n:::\n"
    )
    segments = page(book).convert(text)
    assert [(s.kind, s.number, s.title) for s in segments] == [
        ("exercise", 1, "Warm-up"),
        ("solution-start", 1, ""),
    ]
    assert segments[0].text == "Do it with $y$."
    assert [s.kind for s in page(book).convert(":::{solution-end}\n:::\n")] == ["solution-end"]


def test_solution_directive_with_a_body_is_wrapped(book):
    conv = page(book)
    conv.convert(":::{exercise}\n:label: ex-b\n\nQ.\n:::\n")
    kinds = [s.kind for s in conv.convert(":::{solution} ex-b\n\nAnswer.\n:::\n")]
    assert kinds == ["solution-start", "markdown", "solution-end"]
    with pytest.raises(MystError, match="no earlier exercise's label"):
        conv.convert(":::{solution-start} ex-zzz\n:::\n")


def test_math_directive_and_role(book):
    out = resolved(book, "```{math}\n:label: e1\n\na = b\n```\n\nSee {eq}`e1` and {math}`c^2`.\n")
    assert "$$\na = b\n\\tag{1}\n$$" in out
    assert f"See [(1)]({PAGES}book/01_page.html#equation-e1) and $c^2$." in out


def test_code_block_directive_becomes_a_fence(book):
    out = md(book, "```{code-block} bash\n:caption: x\n\nmake test\n```\n")
    assert out == "```bash\nmake test\n```\n\n"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("{code}`x = 1`", "`x = 1`"),
        ("{py:func}`f`", "`f`"),
        ("{sub}`2`", "<sub>2</sub>"),
        ("{sup}`2`", "<sup>2</sup>"),
        ("{kbd}`Ctrl`", "<kbd>Ctrl</kbd>"),
        ("{abbr}`LLM (large language model)`", "LLM"),
        ("{term}`overshadowing`", "overshadowing"),
        ("{cite:year}`doe2020`", "2020"),
        ("{cite:author}`smith2019`", "Smith et al."),
        ("{glue:text}`r_at_p10`", "`r_at_p10`"),
        ("{glue}`slope:.2f`", "`slope`"),
    ],
)
def test_inline_roles(book, role, expected):
    assert md(book, f"A {role} b.\n") == f"A {expected} b.\n"


def test_unknown_directive_and_role_are_named_with_their_page_line(book):
    with pytest.raises(MystError, match=r"01_page.md:3: directive \{figure\} has no Colab form"):
        md(book, "Text.\n\n```{figure} a.png\n```\n")
    with pytest.raises(MystError, match=r"01_page.md:13: role \{download\} has no Colab form"):
        page(book).convert("A.\n\nValue {download}`x`.\n", offset=10)
    with pytest.raises(MystError, match=r"01_page.md:1: role \{download\} has no Colab form"):
        md(book, ":::{note}\nSee {download}`x`.\n:::\n")


# -- roles --------------------------------------------------------------------------------


def test_citations_are_author_year(book):
    conv = page(book)
    out = conv.convert("As {cite:p}`doe2020,smith2019` and {cite:t}`web2021` said.\n")[0].text
    assert out == "As (Doe and Roe, 2020; Smith et al., 2019) and van der Berg (2021) said.\n"
    assert conv.cited == ["doe2020", "smith2019", "web2021"]
    with pytest.raises(MystError, match="citation key 'nobody' is not in refs.bib"):
        md(book, "{cite:p}`nobody`\n")


def test_reference_list_is_sorted_and_plain_markdown(book):
    refs = book.bibliography.references(["smith2019", "doe2020", "web2021"])
    lines = refs.splitlines()
    assert [line.split(".**")[0] for line in lines] == [
        "- **Doe and Roe (2020)",
        "- **Smith et al. (2019)",
        "- **van der Berg (2021)",
    ]
    assert "*Journal of Things*" in lines[0]
    assert "<https://example.org/site>" in lines[2] and "\\url" not in refs


def test_doc_links_to_the_rendered_page_with_its_title(book):
    out = md(book, "Next: {doc}`02_other`, or {doc}`that one <02_other>`.\n")
    url = f"{PAGES}book/02_other.html"
    assert out == f"Next: [The other chapter]({url}), or [that one]({url}).\n"
    with pytest.raises(MystError, match="03_gone.md does not exist"):
        md(book, "{doc}`03_gone`\n")


def test_cross_references_link_to_their_anchor(book):
    text = (
        "(sec-a)=\n## Section A\n\n:::{prf:lemma} Key\n:label: lem-key\n\nTrue.\n:::\n\n"
        "By {prf:ref}`lem-key`, {numref}`Lemma %s <lem-key>` and {ref}`sec-a`.\n"
    )
    out = resolved(book, text)
    url = f"{PAGES}book/01_page.html"
    assert "(sec-a)=" not in out and out.startswith("## Section A")
    assert (
        f"By [Lemma 1]({url}#lem-key), [Lemma 1]({url}#lem-key) and [Section A]({url}#sec-a)."
        in out
    )
    with pytest.raises(MystError, match="unknown label 'nowhere'"):
        md(book, "{ref}`nowhere`\n")


def test_roles_in_tables_lists_and_headings(book):
    text = (
        "## See {doc}`02_other`\n\n| a | {cite:t}`doe2020` |\n|---|---|\n"
        "| {cite:p}`smith2019` | x |\n\n- one {math}`x`\n  two {code}`y`\n"
    )
    out = md(book, text)
    assert out.startswith(f"## See [The other chapter]({PAGES}book/02_other.html)")
    assert "| a | Doe and Roe (2020) |" in out and "| (Smith et al., 2019) | x |" in out
    assert "- one $x$\n  two `y`" in out
    assert myst_leftovers(book.md, out) == []


def test_leftovers_are_found_by_the_parser(book):
    left = myst_leftovers(book.md, "A {doc}`x`.\n\n:::{note}\nB\n:::\n\n```python\n{doc}`y`\n```\n")
    assert left == ["role {doc}`x`", "directive {note} (line 3)"]


# -- notebook layout ----------------------------------------------------------------------


SOLUTION = '''import math

from overshadow_lab.exercises import check_steps


def steps(n, batch,
          epochs=1):
    """How many steps."""
    return epochs * math.ceil(n / batch)


check_steps(steps)
print(steps(10, 3))
'''


def test_stub_keeps_imports_signature_and_check_only():
    stub = colab_notebooks.stub([SOLUTION], 3)
    assert stub.startswith("# Exercise 3:")
    assert "import math\nfrom overshadow_lab.exercises import check_steps" in stub
    assert (
        'def steps(n, batch,\n          epochs=1):\n    raise NotImplementedError("write steps")'
        in stub
    )
    assert stub.rstrip().endswith("check_steps(steps)")
    assert "math.ceil" not in stub and "print(" not in stub
    ast.parse(stub)


def test_pages_url_is_derived_from_the_repository():
    assert (
        colab_notebooks.pages_url("https://github.com/Owner/Repo")
        == "https://owner.github.io/Repo/"
    )
    assert (
        colab_notebooks.pages_url("https://github.com/me/me.github.io") == "https://me.github.io/"
    )


def test_repository_must_be_a_github_address(monkeypatch):
    monkeypatch.setattr(colab_notebooks, "_config", lambda: {"repository": {"url": "x"}})
    with pytest.raises(MystError, match="repository.url in _config.yml is 'x'"):
        colab_notebooks.repository()


def _run_install_cell(monkeypatch, on_colab):
    calls = []
    monkeypatch.setattr("subprocess.run", lambda args, **kw: calls.append(args))
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(colab_notebooks.install_cell().source, {})
    return calls


def test_install_cell_does_nothing_outside_colab(monkeypatch):
    assert _run_install_cell(monkeypatch, on_colab=False) == []


def test_install_cell_installs_from_the_repository_and_pins_colab_torch(monkeypatch):
    url, branch = colab_notebooks.repository()
    (args,) = _run_install_cell(monkeypatch, on_colab=True)
    assert args[1:4] == ["-m", "pip", "install"]
    assert args[-1] == f"overshadow-lab[gpu] @ git+{url}@{branch}"
    constraints = Path(args[args.index("-c") + 1]).read_text()
    assert re.fullmatch(r"torch==\S+\n", constraints)


# -- the committed notebooks --------------------------------------------------------------

CHAPTERS = notebooks.chapters()
MYST_SYNTAX = re.compile(r"```\{|:::\{|\{[a-z][\w:-]*\}`")


def committed(stem, student=False):
    path = ROOT / "notebooks" / ("student" if student else "") / f"{stem}.ipynb"
    return nbformat.read(str(path), as_version=4)


def markdown_of(nb):
    return [cell.source for cell in nb.cells if cell.cell_type == "markdown"]


@pytest.fixture(scope="module")
def generated():
    return notebooks.wanted_notebooks()


def test_committed_notebooks_are_those_the_chapters_make(generated):
    on_disk = {
        p.relative_to(ROOT / "notebooks").as_posix(): p.read_text(encoding="utf-8")
        for p in [
            *(ROOT / "notebooks").glob("*.ipynb"),
            *(ROOT / "notebooks/student").glob("*.ipynb"),
        ]
    }
    assert set(on_disk) == set(generated), "run `make notebooks` and commit the result"
    stale = sorted(name for name, text in generated.items() if on_disk[name] != text)
    assert not stale, f"stale notebooks: {stale}; run `make notebooks` and commit the result"


def test_stale_or_orphan_notebooks_are_reported(generated, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(notebooks, "COLAB_DIR", tmp_path)
    monkeypatch.setattr(notebooks, "wanted_notebooks", lambda: generated)
    assert notebooks.cmd_colab(check=False) == 0
    assert notebooks.cmd_colab(check=True) == 0
    target = tmp_path / "student" / "01_introduction.ipynb"
    target.write_text(target.read_text().replace("Introduction", "Intro"))
    (tmp_path / "99_orphan.ipynb").write_text("{}")
    assert notebooks.cmd_colab(check=True) == 1
    err = capsys.readouterr().err
    assert "stale or missing: notebooks/student/01_introduction.ipynb" in err
    assert "no chapter for: notebooks/99_orphan.ipynb" in err


@pytest.mark.parametrize("student", [False, True], ids=["colab", "student"])
@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_no_myst_syntax_left_in_the_markdown(md, student):
    nb = committed(md.stem, student)
    parser = colab_notebooks.book(tuple(CHAPTERS)).md
    for i, source in enumerate(markdown_of(nb)):
        outside_code = re.sub(r"(?ms)^(`{3,})[^`\n{]*\n.*?^\1\s*$", "", source)
        assert not MYST_SYNTAX.search(outside_code), f"{md.stem} markdown cell {i}: {source[:200]}"
        assert myst_leftovers(parser, source) == [], f"{md.stem} markdown cell {i}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_are_the_chapters_after_the_install_cell(md):
    nb = committed(md.stem)
    chapter = colab_notebooks.read_chapter(md)
    assert nb.cells[0].metadata["tags"] == ["colab-setup"]
    code = [c.source for c in nb.cells[1:] if c.cell_type == "code"]
    assert code == [c.source for c in chapter.cells if c.cell_type == "code"]


def _solution_groups(nb):
    """The folded sections of a Colab notebook: (heading cell, the cells under it)."""
    folded = nb.metadata["colab"]["collapsed_sections"]
    groups = []
    for i, cell in enumerate(nb.cells):
        if cell.get("id") in folded:
            j = i + 1
            while j < len(nb.cells) and not nb.cells[j].source.lstrip().startswith("#"):
                j += 1
            groups.append((cell, nb.cells[i + 1 : j]))
    return groups


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_solutions_are_marked_and_folded_without_hiding_prose(md):
    nb = committed(md.stem)
    n_exercises = md.read_text().count(":::{exercise}")
    groups = _solution_groups(nb)
    assert len(groups) == n_exercises
    for head, under in groups:
        assert re.fullmatch(r"#{3,6} Solution to Exercise \d+", head.source)
        assert head.metadata["id"] == head["id"]
        assert under and all("solution" in c.metadata.get("tags", []) for c in under)


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebook_has_stubs_instead_of_solutions(md):
    colab, student = committed(md.stem), committed(md.stem, student=True)
    text = json.dumps([c.source for c in student.cells])
    assert "Solution to Exercise" not in text
    assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
    stubs = [c.source for c in student.cells if "stub" in c.metadata.get("tags", [])]
    groups = _solution_groups(colab)
    assert len(stubs) == len([g for g in groups if any(c.cell_type == "code" for c in g[1])])
    student_code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    for _, under in groups:
        for cell in (c for c in under if c.cell_type == "code"):
            tree = ast.parse(cell.source)
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    for statement in node.body:
                        body = ast.get_source_segment(cell.source, statement)
                        assert body not in student_code, f"{md.stem}: solution line {body!r}"
                    assert re.search(
                        rf"def {node.name}\(.*?\n\s+raise NotImplementedError", student_code, re.S
                    )
                elif isinstance(node, ast.Expr) and "check_" in ast.unparse(node):
                    assert ast.get_source_segment(cell.source, node) in student_code


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_maths_comes_through_verbatim(md):
    nb = committed(md.stem)
    parser = colab_notebooks.book(tuple(CHAPTERS)).md
    source = md.read_text()
    found = 0
    for text in markdown_of(nb):
        for tok in parser.parse(text):
            for t in [tok, *(tok.children or [])]:
                if t.type.startswith("math"):
                    found += 1
                    assert t.content.strip() in source, f"{md.stem}: math changed: {t.content!r}"
    assert found >= source.count("$$") // 2


def test_gpu_admonition_text_is_visible():
    snippet = (ROOT / "book" / "_snippets" / "gpu_admonition.md").read_text()
    first_line = snippet.split("\n\n", 1)[1].splitlines()[0]
    with_snippet = [md for md in CHAPTERS if "gpu_admonition.md" in md.read_text()]
    assert with_snippet
    for md in with_snippet:
        text = "\n".join(markdown_of(committed(md.stem)))
        assert "> **Faster on a GPU**" in text and f"> {first_line}" in text


def test_references_close_every_notebook_that_cites():
    for md in CHAPTERS:
        if "{cite:" in md.read_text():
            last = committed(md.stem).cells[-1]
            assert last.source.startswith("## References\n\n- **"), md.stem


def test_cells_know_the_page_line_they_start_on():
    md = ROOT / "book" / "03_generalization_bound.md"
    page_lines = md.read_text().splitlines()
    for cell in colab_notebooks.read_chapter(md, lines=True).cells:
        assert page_lines[cell.metadata["line"] - 1] == cell.source.split("\n", 1)[0]


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_jupytext_reads_the_cells_the_book_build_reads(md):
    """Notebooks come from jupytext; the book from myst-nb: both must see the same cells."""
    from myst_nb.core.read import read_myst_markdown_notebook

    ours = colab_notebooks.read_chapter(md)
    book = read_myst_markdown_notebook(md.read_text(encoding="utf-8"), path=md)
    assert [(c.cell_type, c.source, dict(c.metadata)) for c in ours.cells] == [
        (c.cell_type, c.source, dict(c.metadata)) for c in book.cells
    ]
