"""Citations for the Colab notebooks: author-year labels and a reference list.

The book cites with sphinxcontrib-bibtex in its ``author_year`` style and lists the works with
pybtex's ``unsrt`` style. A notebook cannot run Sphinx, so this module reads the same BibTeX
file with pybtex (the library sphinxcontrib-bibtex is built on) and writes the same labels,
"Zhang et al. (2025)", and a Markdown list of the works a chapter cites.
"""

from __future__ import annotations

import re
from pathlib import Path

from pybtex.backends.markdown import Backend as MarkdownBackend
from pybtex.database import parse_file
from pybtex.plugin import find_plugin
from pybtex.richtext import Text


class MystError(ValueError):
    """A construct with no Colab form, or one that points at something missing."""


class Bibliography:
    """The book's BibTeX file: author-year labels and a Markdown reference list."""

    def __init__(self, path: Path):
        self.path = path
        self.entries = parse_file(str(path)).entries if path.is_file() else {}
        # pybtex looks plugins up through entry points on every call: find them once
        self._text = find_plugin("pybtex.backends", "text")()
        self._style = find_plugin("pybtex.style.formatting", "unsrt")()
        self._authors: dict[str, str] = {}

    def _plain(self, latex: str) -> str:
        return Text.from_latex(latex).render(self._text)

    def entry(self, key: str):
        if key not in self.entries:
            raise MystError(f"citation key {key!r} is not in {self.path.name}")
        return self.entries[key]

    def authors(self, key: str) -> str:
        """Zhang / Liu and Liu / Zhang et al., as sphinxcontrib-bibtex's author_year style."""
        if key not in self._authors:
            entry = self.entry(key)
            people = entry.persons.get("author") or entry.persons.get("editor")
            if not people:
                self._authors[key] = self._plain(entry.fields.get("title", key))
                return self._authors[key]
            names = [self._plain(" ".join(p.prelast_names + p.last_names)) for p in people]
            if len(names) >= 3 or names[-1] == "others":
                self._authors[key] = f"{names[0]} et al."
            else:
                self._authors[key] = " and ".join(names)
        return self._authors[key]

    def year(self, key: str) -> str:
        return self.entry(key).fields.get("year", "n.d.")

    def references(self, keys: list[str]) -> str:
        """A Markdown list of the entries, sorted by author and year, in the book's style."""
        backend = _PlainMarkdown()
        keys = sorted(set(keys), key=lambda k: (self.authors(k), self.year(k), k))
        entries = [self._clean(self.entry(k)) for k in keys]
        lines = []
        for key, formatted in zip(keys, self._style.format_entries(entries), strict=True):
            label = f"{self.authors(key)} ({self.year(key)})"
            lines.append(f"- **{label}.** {formatted.text.render(backend).strip()}")
        return "\n".join(lines)

    @staticmethod
    def _clean(entry):
        """The entry with ``\\url{...}`` as an autolink (pybtex's LaTeX reader keeps the macro)."""
        for name, value in list(entry.fields.items()):
            entry.fields[name] = re.sub(r"\\url\{([^{}]*)\}", r"<\1>", value)
        return entry


class _PlainMarkdown(MarkdownBackend):
    """pybtex's Markdown backend escaping only what Markdown would misread, on one line."""

    symbols = {"ndash": "–", "newblock": " ", "nbsp": " "}

    def format_str(self, text):
        return re.sub(r"([\\`*_\[\]])", r"\\\1", text)
