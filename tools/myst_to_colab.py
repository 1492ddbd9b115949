"""MyST Markdown to the plain Markdown that Colab renders.

The book's chapters are MyST: directives (```` ```{name} ````, ``:::{name}``), roles
(``{name}`text```), targets and citations. Sphinx turns them into HTML; Colab shows them as raw
text. `Converter.convert` rewrites one Markdown cell of a chapter into plain Markdown:

* admonitions become a bold title over a blockquote; ``include`` inlines the file (converted
  too); ``literalinclude`` becomes a fenced code block read from the checkout (``:pyobject:``,
  ``:lines:``, ``:start-after:``, ``:end-before:`` honoured); ``math`` becomes ``$$ ... $$``;
* ``prf:`` directives (theorems, lemmas, definitions, proofs ...) become bold-labelled
  paragraphs numbered per kind, as sphinx-proof numbers them;
* exercises and solutions come back as structural `Segment`s, so that the notebook builder can
  give them heading cells, collapse the solutions or cut them out;
* citations become author-year text (``{cite:p}`` "(Zhang et al., 2025)", ``{cite:t}``
  "Zhang et al. (2025)"), collected for the reference list that
  `colab_citations.Bibliography.references` writes;
* ``{doc}``, ``{ref}``, ``{numref}``, ``{prf:ref}`` and ``{eq}`` become links to the rendered
  page of the book (``Book.pages_url``);
* glued numbers (``{glue:text}`name```) become the name in code, ``name``: the notebook has no
  outputs yet, and on Colab `overshadow_lab.claims.glue` prints ``name = value`` in the cell
  that computes it, so the reader finds the value under the same name.

Parsing is myst-parser's own markdown-it configuration with the book's extensions, so a
directive is exactly what the book build sees as one. The rewrite splices the source: block
tokens carry their line range, a directive's range is replaced by its conversion (its body
converted recursively), and every other line is kept byte for byte. Roles are inline tokens
without columns; they are located by walking the inline children in order through the source
of their line range (code spans and inline maths are stepped over, so role syntax quoted in
code stays). Regular expressions appear only inside one token's text, never for Markdown
structure: a role's ``text <target>`` form, a fence long enough for the code it holds, whether a
body opens with a paragraph, and Sphinx's id normalisation of labels; a directive's
``:key: value`` option lines and a citation's comma-separated keys are split with plain string
operations.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from colab_citations import Bibliography, MystError
from markdown_it.renderer import RendererHTML
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.mdit import create_md_parser

ADMONITIONS = {
    "note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error",
    "seealso", "admonition", "dropdown", "margin", "sidebar", "topic", "epigraph",
}  # fmt: skip
PRF_KINDS = {
    "theorem", "lemma", "definition", "assumption", "corollary", "proposition", "remark",
    "example", "conjecture", "axiom", "criterion", "observation", "property", "algorithm",
}  # fmt: skip
GLUE_ROLES = {"glue", "glue:", "glue:any", "glue:text", "glue:md"}
CITE_ROLES = {"cite", "cite:p", "cite:ps", "cite:t", "cite:ts", "cite:year", "cite:author"}
CODE_ROLES = {"code", "literal", "command", "file", "samp", "envvar", "program", "option"}
LINK_ROLES = {"doc", "ref", "numref", "prf:ref", "eq"}
LANGUAGES = {".py": "python", ".toml": "toml", ".yml": "yaml", ".yaml": "yaml", ".json": "json",
             ".sh": "bash", ".md": "markdown", ".csv": "text", ".cfg": "ini"}  # fmt: skip


@dataclass
class Segment:
    """One piece of a converted cell: Markdown, or an exercise/solution boundary."""

    kind: str  # "markdown" | "exercise" | "solution-start" | "solution-end"
    text: str = ""
    number: int = 0
    title: str = ""


@dataclass
class Target:
    """Where a label points: a page of the book, an anchor on it, and the link text."""

    page: str
    anchor: str
    text: str
    title: str = ""


def make_id(label: str) -> str:
    """The HTML id Sphinx gives a label (docutils' ``make_id``, for the labels the book uses)."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


# jupyter-book's defaults for the parser (its default_config.yml); `_config.yml` may override.
JUPYTER_BOOK_PARSER = {"dmath_double_inline": True}


def markdown_parser(extensions: list[str], **options):
    """myst-parser's markdown-it parser configured as the book build configures it.

    ``options`` are ``MdParserConfig`` fields (``dmath_double_inline`` ...), on top of
    jupyter-book's defaults: a chapter must split into the same tokens here as in the book.
    """
    config = MdParserConfig(enable_extensions=set(extensions), **{**JUPYTER_BOOK_PARSER, **options})
    return create_md_parser(config, RendererHTML)


def myst_leftovers(md, text: str) -> list[str]:
    """The MyST constructs ``md`` (a `markdown_parser`) still finds in ``text``: none is wanted."""
    found = []
    for tok in md.parse(text):
        if tok.type in ("fence", "colon_fence") and tok.info.startswith("{"):
            found.append(f"directive {tok.info.split()[0]} (line {tok.map[0] + 1})")
        elif tok.type in ("myst_target", "myst_line_comment", "math_block_label"):
            found.append(f"{tok.type} (line {tok.map[0] + 1})")
        for child in tok.children or []:
            if child.type == "myst_role":
                found.append(f"role {{{child.meta['name']}}}`{child.content}`")
    return found


def split_directive(content: str) -> tuple[dict[str, str], str]:
    """A directive body's options (``:key: value`` lines or a ``---`` block) and the rest."""
    lines = content.splitlines()
    options: dict[str, str] = {}
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            raise MystError("directive options start with '---' but never close it")
        for line in lines[1:end]:
            key, _, value = line.partition(":")
            options[key.strip()] = value.strip()
        lines = lines[end + 1 :]
    else:
        while lines and lines[0].startswith(":") and lines[0].count(":") >= 2:
            key, _, value = lines.pop(0)[1:].partition(":")
            options[key.strip()] = value.strip()
    return options, "\n".join(lines).strip("\n")


def python_object(source: str, dotted: str, path: str) -> str:
    """The source lines of a function or class (``Class.method`` allowed), with decorators."""
    body, node = ast.parse(source).body, None
    for part in dotted.split("."):
        node = next(
            (
                n
                for n in body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and n.name == part
            ),
            None,
        )
        if node is None:
            raise MystError(f"{path}: no function or class {dotted!r} (literalinclude :pyobject:)")
        body = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "\n".join(source.splitlines()[start - 1 : node.end_lineno])


def blockquote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


def fence(code: str, language: str) -> str:
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", code)), default=0) + 1)
    return f"{ticks}{language}\n{code.rstrip()}\n{ticks}"


def with_label(label: str, body: str) -> str:
    """``label`` in front of the body's first paragraph, or as its own paragraph."""
    first = body.lstrip("\n").split("\n", 1)[0]
    if first and not re.match(r"(\$\$|#|>|[-*+] |\d+[.)] |`{3}|~{3}|\||\\begin)", first):
        return f"{label} {body.lstrip()}"
    return f"{label}\n\n{body}" if body else label


@dataclass
class Book:
    """What converting needs to know about the whole book: files, URL, labels, citations."""

    root: Path
    pages_url: str
    extensions: list[str]
    bibliography: Bibliography
    labels: dict[str, Target] = field(default_factory=dict)
    parser_options: dict = field(default_factory=dict)

    def __post_init__(self):
        self.md = markdown_parser(self.extensions, **self.parser_options)
        self._titles: dict[str, str] = {}

    def page_url(self, page: str, anchor: str = "") -> str:
        return f"{self.pages_url}{page}.html" + (f"#{anchor}" if anchor else "")

    def page_title(self, page: str) -> str:
        """The page's first level-1 heading (what Sphinx shows for a ``{doc}`` link)."""
        if page not in self._titles:
            path = self.root / f"{page}.md"
            if not path.is_file():
                raise MystError(f"{{doc}} points at {page}, but {page}.md does not exist")
            tokens = self.md.parse(path.read_text(encoding="utf-8"))
            titles = [tokens[i + 1].content for i, tok in enumerate(tokens)
                      if tok.type == "heading_open" and tok.tag == "h1"]  # fmt: skip
            self._titles[page] = titles[0] if titles else Path(page).name
        return self._titles[page]


class Converter:
    """Converts the Markdown cells of one page, in order (numbering runs across the page)."""

    def __init__(self, book: Book, page: Path, resolve: bool = True):
        self.book, self.page, self.resolve = book, page, resolve
        self.name = page.relative_to(book.root).with_suffix("").as_posix()
        self.counters: dict[str, int] = {}
        self.exercises: dict[str, int] = {}
        self.cited: list[str] = []
        self.found: dict[str, Target] = {}  # the labels this page defines, for the book's index

    def _define(self, label: str, anchor: str, text: str, title: str = "") -> None:
        if label:
            self.found[label] = Target(self.name, anchor, text, title)

    # -- entry point -----------------------------------------------------------------------

    def convert(
        self, text: str, base: Path | None = None, top: bool = True, offset: int = 0
    ) -> list[Segment]:
        """The Markdown of ``text`` (relative paths against ``base``), as segments.

        ``offset`` is the line of the page where ``text`` starts, for error messages; errors
        inside a directive's body (``top=False``) are located at the directive.
        """
        base = base or self.page.parent
        self._where = (lambda line: f"{self.name}.md:{line + offset}: ") if top else (lambda _: "")
        lines = text.splitlines(keepends=True)
        tokens = self.book.md.parse(text)
        roles = self._inline_runs(tokens)
        out: list[Segment] = []
        pos = 0
        for i, tok in enumerate(tokens):
            if tok.level != 0 or tok.map is None:
                continue
            start, end = tok.map
            if tok.type == "myst_target":
                heading = next((t.content for t in tokens[i:] if t.type == "inline"), "")
                self._define(tok.content, make_id(tok.content), heading, heading)
            where = self._where(start + 1)
            try:
                replacement = self._block(tok, base, top)
            except MystError as error:
                raise MystError(f"{where}{error}") from None
            if replacement is None:
                continue
            out.append(Segment("markdown", self._roles_in(lines, pos, start, roles, self._where)))
            out.extend(replacement)
            pos = end
        out.append(Segment("markdown", self._roles_in(lines, pos, len(lines), roles, self._where)))
        return merge(out)

    def markdown(self, text: str, base: Path | None = None) -> str:
        """Convert text that may hold no exercise or solution (an admonition's body ...)."""
        parts = self.convert(text, base, top=False)
        return "".join(s.text for s in parts)

    # -- blocks ----------------------------------------------------------------------------

    def _block(self, tok, base: Path, top: bool) -> list[Segment] | None:
        if tok.type == "myst_target":
            return [Segment("markdown", "")]
        if tok.type == "myst_line_comment" or tok.type == "myst_block_break":
            return [Segment("markdown", "")]
        if tok.type == "math_block_label":
            number = self._count("equation")
            self._define(tok.info, f"equation-{make_id(tok.info)}", f"({number})")
            return [Segment("markdown", f"$$\n{tok.content.strip()}\n\\tag{{{number}}}\n$$\n")]
        if tok.type not in ("fence", "colon_fence") or not tok.info.startswith("{"):
            return None
        name, _, argument = tok.info[1:].partition("}")
        options, body = split_directive(tok.content)
        return self._directive(name.strip(), argument.strip(), options, body, base, top)

    def _directive(self, name, argument, options, body, base, top) -> list[Segment]:
        md = Segment("markdown")
        if options.get("name"):
            self._define(options["name"], make_id(options["name"]), argument or name, argument)
        if name in ADMONITIONS:
            title = argument if name == "admonition" and argument else name.capitalize()
            if name != "admonition" and argument:
                body = f"{argument}\n{body}"
            md.text = f"> **{title}**\n>\n{blockquote(self.markdown(body, base))}\n\n"
        elif name.startswith("prf:"):
            md.text = self._proof(name[4:], argument, options, body, base) + "\n\n"
        elif name == "exercise":
            if not top:
                raise MystError("an exercise inside another directive has no Colab form")
            number = self._count("exercise")
            label = options.get("label", "")
            self.exercises[label] = number
            self._define(label, make_id(label), f"Exercise {number}", argument)
            return [Segment("exercise", self.markdown(body, base).strip(), number, argument)]
        elif name in ("solution-start", "solution"):
            if not top:
                raise MystError("a solution inside another directive has no Colab form")
            if argument not in self.exercises:
                raise MystError(f"solution for {argument!r}, which is no earlier exercise's label")
            start = Segment("solution-start", number=self.exercises[argument])
            if name == "solution-start":
                return [start]
            inner = Segment("markdown", self.markdown(body, base).strip() + "\n")
            return [start, inner, Segment("solution-end")]
        elif name == "solution-end":
            return [Segment("solution-end")]
        elif name == "include":
            md.text = self._include(argument, options, base)
        elif name == "literalinclude":
            md.text = self._literalinclude(argument, options, base) + "\n\n"
        elif name in ("code-block", "code", "sourcecode"):
            md.text = fence(body, argument) + "\n\n"
        elif name == "math":
            tag, label = "", options.get("label", "")
            if label:
                number = self._count("equation")
                self._define(label, f"equation-{make_id(label)}", f"({number})")
                tag = f"\n\\tag{{{number}}}"
            md.text = f"$$\n{body.strip()}{tag}\n$$\n\n"
        else:
            raise MystError(
                f"directive {{{name}}} has no Colab form; add one to tools/myst_to_colab.py"
            )
        return [md]

    def _proof(self, kind: str, title: str, options: dict, body: str, base: Path) -> str:
        text = self.markdown(body, base).strip()
        if kind == "proof":
            return with_label("*Proof.*", text) + "\n\n∎"
        if kind not in PRF_KINDS:
            raise MystError(f"directive {{prf:{kind}}} has no Colab form")
        name = kind.capitalize()
        if "nonumber" not in options:
            name = f"{name} {self._count(kind)}"
        self._define(options.get("label", ""), make_id(options.get("label", "")), name, title)
        return with_label(f"**{name}" + (f" ({title})" if title else "") + ".**", text)

    def _read(self, argument: str, base: Path, directive: str) -> tuple[Path, str]:
        path = (self.book.root / argument[1:]) if argument.startswith("/") else base / argument
        path = path.resolve()
        if not path.is_file():
            raise MystError(f"{directive} {argument}: no such file ({path})")
        return path, path.read_text(encoding="utf-8")

    def _include(self, argument: str, options: dict, base: Path) -> str:
        path, text = self._read(argument, base, "include")
        text = cut(
            text, options, "include", {"start-after", "end-before", "start-line", "end-line"}
        )
        return self.markdown(text, path.parent).rstrip("\n") + "\n\n"

    def _literalinclude(self, argument: str, options: dict, base: Path) -> str:
        path, text = self._read(argument, base, "literalinclude")
        known = {
            "pyobject",
            "lines",
            "start-after",
            "end-before",
            "language",
            "caption",
            "dedent",
            "linenos",
            "emphasize-lines",
            "name",
            "class",
        }
        if "pyobject" in options:
            text = python_object(text, options["pyobject"], argument)
        text = cut(text, options, "literalinclude", known)
        if "lines" in options:
            text = "\n".join(pick_lines(text.splitlines(), options["lines"]))
        if "dedent" in options:
            text = textwrap.dedent(text)
        code = fence(text, options.get("language") or LANGUAGES.get(path.suffix, ""))
        caption = options.get("caption")
        return f"**{caption}**\n\n{code}" if caption else code

    def _count(self, kind: str) -> int:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return self.counters[kind]

    # -- roles -----------------------------------------------------------------------------

    def _inline_runs(self, tokens) -> dict[int, list]:
        """For each first line of a block holding roles: its code spans, maths and roles in order."""
        runs: dict[int, list] = {}
        for tok in tokens:
            if tok.type != "inline" or not tok.children or tok.map is None:
                continue
            items = []
            for child in tok.children:
                if child.type == "myst_role":
                    items.append((tok.map, f"{{{child.meta['name']}}}`{child.content}`", child))
                elif child.type == "code_inline":
                    items.append((tok.map, f"{child.markup}{child.content}{child.markup}", None))
                elif child.type in ("math_inline", "math_inline_double"):
                    items.append((tok.map, f"{child.markup}{child.content}{child.markup}", None))
            if any(item[2] is not None for item in items):
                runs.setdefault(tok.map[0], []).extend(items)
        return runs

    def _roles_in(self, lines: list[str], start: int, end: int, runs: dict, where) -> str:
        """Lines ``start:end`` of the source with every role in them replaced."""
        out, pos = [], start
        for first in sorted(k for k in runs if start <= k < end):
            lo, hi = runs[first][0][0]
            out.append("".join(lines[pos:lo]))
            chunk, cursor, done = "".join(lines[lo:hi]), 0, []
            for _, raw, role in runs[first]:
                at = chunk.find(raw, cursor)
                if at < 0:
                    if role is None:
                        continue  # a code span spread over lines: nothing to replace in it
                    raise MystError(f"{where(lo + 1)}cannot locate {raw} in the source")
                try:
                    new = raw if role is None else self.role(role.meta["name"], role.content)
                except MystError as error:
                    raise MystError(f"{where(lo + 1)}{error}") from None
                done.append(chunk[cursor:at] + new)
                cursor = at + len(raw)
            out.append("".join(done) + chunk[cursor:])
            pos = hi
        out.append("".join(lines[pos:end]))
        return "".join(out)

    def role(self, name: str, content: str) -> str:
        """The Markdown for one role."""
        if name in CITE_ROLES:
            return self._cite(name, content)
        if name in LINK_ROLES:
            return self._link(name, content)
        if name == "math":
            return f"${content}$"
        if name in GLUE_ROLES:
            return f"`{content.split(':', 1)[0].strip()}`"
        if name in CODE_ROLES or name.startswith("py:") or name in ("func", "class", "meth", "mod"):
            return f"`{content}`"
        if name in ("sub", "sup", "kbd"):
            return f"<{name}>{content}</{name}>"
        if name in ("abbr", "term"):
            return re.sub(r"\s*[(<][^()<>]*[)>]$", "", content)
        raise MystError(f"role {{{name}}} has no Colab form; add one to tools/myst_to_colab.py")

    def _cite(self, name: str, content: str) -> str:
        keys = [k.strip() for k in content.split(",") if k.strip()]
        bib = self.book.bibliography
        for key in keys:
            bib.entry(key)
            if key not in self.cited:
                self.cited.append(key)
        if name in ("cite:t", "cite:ts"):
            return ", ".join(f"{bib.authors(k)} ({bib.year(k)})" for k in keys)
        if name == "cite:year":
            return ", ".join(bib.year(k) for k in keys)
        if name == "cite:author":
            return ", ".join(bib.authors(k) for k in keys)
        return "(" + "; ".join(f"{bib.authors(k)}, {bib.year(k)}" for k in keys) + ")"

    def _link(self, name: str, content: str) -> str:
        text, target = explicit(content)
        if name == "doc":
            page = resolve_page(self.name, target)
            return f"[{text or self.book.page_title(page)}]({self.book.page_url(page)})"
        found = self.book.labels.get(target)
        if found is None:
            if not self.resolve:
                return text or target
            raise MystError(f"{{{name}}} points at unknown label {target!r}")
        if name == "eq":
            shown = text or found.text
        elif name == "ref":
            shown = text or found.title or found.text
        else:
            shown = (
                (text or found.text)
                .replace("%s", found.text.split()[-1])
                .replace("{number}", found.text.split()[-1])
            )
        return f"[{shown}]({self.book.page_url(found.page, found.anchor)})"


def explicit(content: str) -> tuple[str, str]:
    """``text <target>`` as (text, target); a bare target as ("", target)."""
    match = re.fullmatch(r"(.*?)\s*<([^<>]+)>", content.strip(), flags=re.S)
    return (match.group(1).strip(), match.group(2).strip()) if match else ("", content.strip())


def resolve_page(current: str, target: str) -> str:
    """A ``{doc}`` target as a page path from the book's root (``book/02_data_imbalance``)."""
    target = target.removesuffix(".md")
    if target.startswith("/"):
        return target[1:]
    parts = Path(current).parent.joinpath(target).as_posix().split("/")
    resolved: list[str] = []
    for part in parts:
        if part == "..":
            resolved.pop()
        elif part not in (".", ""):
            resolved.append(part)
    return "/".join(resolved)


def pick_lines(lines: list[str], spec: str) -> list[str]:
    """Sphinx's ``:lines:`` selection ("1-3,7,10-"), 1-based."""
    chosen = []
    for part in spec.split(","):
        lo, dash, hi = part.strip().partition("-")
        a = int(lo) if lo else 1
        b = (int(hi) if hi else len(lines)) if dash else a
        chosen.extend(lines[a - 1 : b])
    return chosen


def cut(text: str, options: dict, directive: str, known: set[str]) -> str:
    """Apply ``start-after``/``end-before``/``start-line``/``end-line``; reject other options."""
    unknown = sorted(set(options) - known)
    if unknown:
        raise MystError(f"{directive}: option(s) {', '.join(unknown)} have no Colab form")
    if "start-after" in options:
        text = text.split(options["start-after"], 1)[-1]
    if "end-before" in options:
        text = text.split(options["end-before"], 1)[0]
    if "start-line" in options or "end-line" in options:
        lines = text.splitlines()
        lo = int(options.get("start-line", 0))
        hi = int(options["end-line"]) if "end-line" in options else len(lines)
        text = "\n".join(lines[lo:hi])
    return text


def merge(segments: list[Segment]) -> list[Segment]:
    """Adjacent Markdown segments joined; blank ones (between exercise parts) dropped."""
    out: list[Segment] = []
    for seg in segments:
        if seg.kind == "markdown":
            if not seg.text:
                continue
            if out and out[-1].kind == "markdown":
                out[-1] = Segment("markdown", out[-1].text + seg.text)
                continue
        out.append(seg)
    return [seg for seg in out if seg.kind != "markdown" or seg.text.strip()]
