"""One look for every figure in the book: theme, and one colour per method, series and source.

A reader follows a method across chapters by its colour, so the colours live here and nowhere
else: greedy decoding is the same grey in every panel, CoDA the same orange, the paper's points
the same black. Chapters call :func:`use_book_style` once and take colours from
:data:`COLOURS` (or a seaborn palette from :func:`palette`).
"""

from __future__ import annotations

from collections.abc import Iterable

#: name -> colour (matplotlib's tab10, so figures stay readable for the common colour-blindness)
COLOURS: dict[str, str] = {
    # decoding methods
    "greedy": "#7f7f7f",
    "sampling": "#bcbd22",
    "CoDA": "#ff7f0e",
    "CAD": "#1f77b4",
    "DoLa": "#2ca02c",
    "SCD": "#9467bd",
    "prompt": "#8c564b",
    "oracle": "#d62728",
    # sources of a number
    "ours": "#9467bd",
    "paper": "#000000",
    "law": "#ff7f0e",
    "bound": "#d62728",
    # stopping protocols of the lab
    "epochs": "#1f77b4",
    "exposure": "#2ca02c",
    "plateau": "#9467bd",
    "recall": "#ff7f0e",
    # carrying a synthetic law over to a task (chapter "The law"): the law as it is keeps the
    # law's colour, the oracle its own; the baselines take the two colours tab10 had left
    "synthetic": "#ff7f0e",
    "keep": "#17becf",
    "refit": "#e377c2",
    "constant": "#7f7f7f",
    "loto": "#8c564b",
}


def colour(name: str) -> str:
    """The colour of ``name``; a one-line error lists the known names when it has none."""
    try:
        return COLOURS[name]
    except KeyError:
        raise KeyError(
            f"no book colour for {name!r}; add it to overshadow_lab.style.COLOURS "
            f"(known: {', '.join(sorted(COLOURS))})"
        ) from None


def palette(names: Iterable[str]) -> dict[str, str]:
    """A seaborn ``palette=`` mapping for ``names``, each in its book colour."""
    return {name: colour(name) for name in names}


def use_book_style() -> None:
    """The book's theme: seaborn's white grid, notebook context, tight layout by default."""
    import matplotlib as mpl  # deferred: the package imports without matplotlib loaded
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    mpl.rcParams["figure.autolayout"] = True
    mpl.rcParams["legend.framealpha"] = 0.9


__all__ = ["COLOURS", "colour", "palette", "use_book_style"]
