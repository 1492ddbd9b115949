"""The papers' own numbers, for comparison beside ours.

``paper_figures()`` loads the digitised points and law lines of Fig. 2 (synthetic) and Fig. 3
(fine-tuned) of Zhang et al. 2025 from ``paper_law_figures.csv`` in the data folder. These are
the paper's measurements, not ours: every figure that shows them labels them so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from overshadow_lab.paths import data_dir

PAPER_FIGURES_FILE = "paper_law_figures.csv"
PAPER_FIGURE_COLUMNS = ("figure", "task", "factor", "model", "x", "observed_R_pct", "law_R_pct")
PAPER_LABEL = "paper (Zhang et al. 2025, digitised)"


def paper_figures(path: str | Path | None = None) -> pd.DataFrame:
    """The digitised Fig. 2 / Fig. 3 points of [B] as a DataFrame (R in percent).

    ``x`` is the factor's value: P and L as ratios, S in millions of parameters. Raises
    ``FileNotFoundError`` with the fix when ``$OVERSHADOW_DATA`` names a folder without the file
    (by default the copy bundled with the package is read).
    """
    if path is None:
        folder = data_dir()
        if not (folder / PAPER_FIGURES_FILE).is_file():
            raise FileNotFoundError(
                f"{PAPER_FIGURES_FILE} not found in {folder}: put it there, or unset "
                "OVERSHADOW_DATA to use the copy bundled with the package"
            )
        path = folder / PAPER_FIGURES_FILE
    df = pd.read_csv(path)
    missing = [c for c in PAPER_FIGURE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(PAPER_FIGURE_COLUMNS)}")
    return df


# Table 3 of the law paper [B]: exact match (%) of decoding methods, as printed in the paper.
# These are the paper's numbers (Llama-2-7b-chat and Mistral-7b), not measurements of ours.
PAPER_TABLE3_LABEL = "paper (Zhang et al. 2025, Table 3)"
PAPER_TABLE3_COLUMNS = ("proverb", "translate", "hate", "science", "NQ-Swap", "Overshadow time", "syn")
_PAPER_TABLE3_ROWS = (
    ("Llama-2-7b-chat", "greedy", (28.8, 47.5, 9.0, 33.4, 8.5, 41.4, 20.8)),
    ("Llama-2-7b-chat", "DoLa", (32.5, 50.9, 10.0, 33.0, 13.8, 53.6, 31.8)),
    ("Llama-2-7b-chat", "CoDA", (41.9, 56.2, 16.0, 38.9, 26.8, 65.0, 46.8)),
    ("Mistral-7b", "greedy", (31.3, 49.4, 14.0, 36.7, 12.6, 39.5, 21.6)),
    ("Mistral-7b", "CoDA", (42.5, 58.6, 22.0, 43.7, 27.7, 61.2, 49.5)),
)


def paper_table3() -> pd.DataFrame:
    """Table 3 of [B] (EM in percent): one row per (model, method), one column per task."""
    rows = [{"model": m, "method": meth, **dict(zip(PAPER_TABLE3_COLUMNS, vals, strict=True))}
            for m, meth, vals in _PAPER_TABLE3_ROWS]
    return pd.DataFrame(rows)
