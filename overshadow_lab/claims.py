"""Numbers in the book's prose, taken from the notebook that computed them.

A chapter never types a computed number into its prose. It computes the number in a code cell,
hands it to :func:`glue` under a name, and the prose refers to it with myst-nb's role,
``{glue:text}`name```. The book build then fails (strict mode) when a name is missing, and a
change in the computation changes the prose with it. Qualitative claims ("R rises with P") are
backed by :func:`claim`, an assertion in a hidden cell (``tags: [remove-cell]``), so a result
that flips fails ``make test`` instead of leaving the prose wrong.

myst-nb's ``glue`` is used when it is installed (the book build); on Colab or in a plain
Jupyter, where it usually is not, the value is printed instead so the reader still sees it.
Formatting happens here, once: :func:`glue` stores the *text* the prose shows (``fmt`` is a
format spec such as ``".1f"``), so the prose needs no format specs and every chapter rounds
the same way.
"""

from __future__ import annotations

from typing import Any

try:  # the book build has myst-nb; Colab and plain Jupyter usually do not
    from myst_nb import glue as _myst_glue
except ImportError:  # pragma: no cover - exercised on Colab
    _myst_glue = None

#: every name glued in this process, with the text it was given (for tests and for `claims()`)
GLUED: dict[str, str] = {}


class ClaimFailed(AssertionError):
    """A qualitative claim in a chapter's prose no longer holds for the chapter's outputs."""


def format_value(value: Any, fmt: str = "") -> str:
    """Render ``value`` as the prose shows it: ``format(value, fmt)``, intervals as ``[lo, hi]``.

    A pair or a tuple is written as an interval, ``[lo, hi]``, each end with ``fmt``.
    """
    if isinstance(value, tuple | list) and len(value) == 2:
        lo, hi = value
        return f"[{format(lo, fmt)}, {format(hi, fmt)}]"
    return format(value, fmt)


def glue(name: str, value: Any, fmt: str = "") -> str:
    """Store ``value`` (formatted with ``fmt``) under ``name`` for ``{glue:text}`name``` in prose.

    Returns the text, so a cell can also use it. Gluing a name again replaces its text (a reader
    who re-runs a cell with other settings sees the new value), as in myst-nb.
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"glue name {name!r} must be letters, digits, '_' or '-'")
    text = format_value(value, fmt)
    GLUED[name] = text
    if _myst_glue is not None:
        _myst_glue(name, _Text(text), display=False)
    else:  # pragma: no cover - Colab
        print(f"{name} = {text}")
    return text


def claim(condition: bool, statement: str) -> None:
    """Assert a qualitative claim the prose makes; ``statement`` quotes or paraphrases it.

    Raises :class:`ClaimFailed` naming the statement, so a failing build says which sentence of
    the chapter its outputs no longer support.
    """
    if not bool(condition):
        raise ClaimFailed(f"the chapter claims {statement!r}, but its outputs no longer show it")


class _Text(str):
    """A string whose notebook display is the bare text (no quotes), as prose wants it."""

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's text/plain
        printer.text(str(self))

    def __repr__(self) -> str:
        return str(self)


__all__ = ["GLUED", "ClaimFailed", "claim", "format_value", "glue"]
