"""The build checks the book's claims: glued numbers resolve, qualitative claims are asserted.

Every ``{glue:text}`name``` (or ``{glue}``) role in a chapter's prose must be glued by a code
cell of the same chapter (a literal name, or an f-string whose fields match any text), and every
chapter holds at least three ``claim(...)`` assertions in hidden cells (``remove-cell`` or
``remove-input``), so that a change which flips a result fails ``make test``.
"""

import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("0[1-9]_*.md"))
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`")
GLUE_CALL = re.compile(r"glue\(\s*(f?)([\"'])(.+?)\2")
MIN_CLAIMS = 3


def _cells(text: str) -> list[str]:
    return CELL.findall(text)


def _glued_patterns(text: str) -> list[re.Pattern]:
    patterns = []
    for cell in _cells(text):
        for is_f, _, name in GLUE_CALL.findall(cell):
            if is_f:
                parts = re.split(r"\{[^}]*\}", name)
                patterns.append(re.compile(".+".join(map(re.escape, parts)) + "$"))
            else:
                patterns.append(re.compile(re.escape(name) + "$"))
    return patterns


def _cell_header(cell: str) -> str:
    """A code cell's options: a YAML block between ``---`` lines, or the leading ``:key: value``
    lines (MyST's short form, ``:tags: [remove-cell]``)."""
    if cell.startswith("---"):
        return cell.split("---", 2)[1]
    lines = []
    for line in cell.splitlines():
        if not re.match(r"^:[\w-]+:", line):
            break
        lines.append(line)
    return "\n".join(lines)


def _hidden_claims(text: str) -> int:
    count = 0
    for cell in _cells(text):
        header = _cell_header(cell)
        if "remove-cell" in header or "remove-input" in header:
            count += len(re.findall(r"\bclaim\(", cell))
    return count


def test_both_forms_of_cell_options_hide_a_claim():
    yaml_form = "```{code-cell} ipython3\n---\ntags: [remove-cell]\n---\nclaim(True, 'a')\n```\n"
    short_form = "```{code-cell} ipython3\n:tags: [remove-cell]\nclaim(True, 'b')\n```\n"
    shown = "```{code-cell} ipython3\nx = 1\n:tags: [remove-cell]\nclaim(True, 'c')\n```\n"
    assert _hidden_claims(yaml_form) == 1
    assert _hidden_claims(short_form) == 1
    assert _hidden_claims(shown) == 0


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_glued_name_in_prose_is_glued_by_the_chapter(chapter):
    text = chapter.read_text()
    prose = CELL.sub("", text)
    patterns = _glued_patterns(text)
    missing = sorted({n for n in ROLE.findall(prose) if not any(p.match(n) for p in patterns)})
    assert not missing, f"{chapter.name}: prose refers to names no cell glues: {missing}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_asserts_its_qualitative_claims(chapter):
    n = _hidden_claims(chapter.read_text())
    assert n >= MIN_CLAIMS, (
        f"{chapter.name} asserts {n} claims in hidden cells; at least {MIN_CLAIMS} are required "
        "(overshadow_lab.claims.claim in a cell tagged remove-cell)"
    )
