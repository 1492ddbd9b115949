"""Scan the built book for markup that did not render: the build's own check of its maths and roles.

    python tools/check_html.py [_build/html]

Sphinx reports an unknown role or a broken reference only sometimes (inside a `prf:` directive a
``$$ ... $$`` display is silently cut into stray ``$`` and inline maths, and a role the parser
did not see prints as literal text). This script reads every page's text outside maths, code and
scripts and fails, naming page and snippet, when it finds TeX delimiters (``$``, ``\\(``,
``\\[``), MyST roles or directives left as text (``{prf:ref}``, ``{cite``, ``{doc}``, ...), or
an empty citation. Uses the standard library's HTML parser: the check needs no layout, only
text and classes.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

#: Text that must never survive into a rendered page outside maths or code.
LEFTOVERS = re.compile(
    r"\$|\\\(|\\\)|\\\[|\\\]|\\frac|\\mathcal|\{(prf:\w+|cite(:\w+)?|doc|ref|numref|eq|math|"
    r"glue(:\w+)?|include|literalinclude|download|term)\}|:::\{|```\{"
)
#: Elements whose text is maths or code, where TeX and braces are expected.
SKIP_TAGS = {"pre", "code", "script", "style", "math", "svg", "kbd", "samp"}
SKIP_CLASSES = {"math", "highlight", "cell_output", "output", "MathJax", "katex", "pre", "sig"}
VOID = {"br", "img", "meta", "link", "input", "hr", "wbr", "col", "area", "base", "source"}


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.problems: list[str] = []
        self._citation_open = False
        self._citation_text = ""

    def _skipping(self) -> bool:
        return any(skip for _, skip in self.stack)

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        if tag == "span" and "bibtex-citation" in classes:
            self._citation_open, self._citation_text = True, ""
        if tag in VOID:
            return
        self.stack.append((tag, tag in SKIP_TAGS or bool(classes & SKIP_CLASSES)))

    def handle_endtag(self, tag):
        if self._citation_open and tag == "span":
            if not self._citation_text.strip():
                self.problems.append("an empty citation (a {cite} that did not resolve)")
            self._citation_open = False
        if tag in VOID:
            return
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self._citation_open:
            self._citation_text += data
        if self._skipping():
            return
        for m in LEFTOVERS.finditer(data):
            lo, hi = max(0, m.start() - 40), m.end() + 40
            self.problems.append(" ".join(data[lo:hi].split()))


def scan_page(html: str) -> list[str]:
    """The unrendered snippets of one page's HTML (empty when the page is clean)."""
    body = html.split("<body", 1)[-1]
    scanner = _Scanner()
    scanner.feed(body)
    return scanner.problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else "_build/html")
    pages = sorted(p for p in root.rglob("*.html") if "_static" not in p.parts)
    if not pages:
        print(f"check_html: no HTML pages under {root}: build the book first (make book)")
        return 2
    bad = 0
    for page in pages:
        for snippet in scan_page(page.read_text(encoding="utf-8")):
            bad += 1
            print(f"{page.relative_to(root)}: unrendered: {snippet}")
    print(f"check_html: {len(pages)} pages, {bad} unrendered snippets")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
