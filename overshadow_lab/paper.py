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
    ``FileNotFoundError`` with the fix when the file is not available (for example on Colab,
    where the project's data folder is not present).
    """
    if path is None:
        folder = data_dir()
        if folder is None or not (folder / PAPER_FIGURES_FILE).is_file():
            raise FileNotFoundError(
                f"{PAPER_FIGURES_FILE} not found: set OVERSHADOW_DATA to the folder that holds it "
                "(in a checkout it is ../shared/data)"
            )
        path = folder / PAPER_FIGURES_FILE
    df = pd.read_csv(path)
    missing = [c for c in PAPER_FIGURE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(PAPER_FIGURE_COLUMNS)}")
    return df
