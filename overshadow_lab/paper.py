"""The papers' own numbers, for comparison beside ours.

``paper_figures()`` loads the digitised points and law lines of Fig. 2 (synthetic) and Fig. 3
(fine-tuned) of Zhang et al. 2025 from ``paper_law_figures.csv`` in the data folder. These are
the paper's measurements, not ours: every figure that shows them labels them so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from overshadow_lab.law.fit import LawFit, fit_law, reanchor_law
from overshadow_lab.law.predict import loo_relative_error, relative_prediction_error
from overshadow_lab.law.transfer import METHODS, score_transfer, transfer_predictions
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
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(PAPER_FIGURE_COLUMNS)}"
        )
    return df


# Table 3 of the law paper [B]: exact match (%) of decoding methods, as printed in the paper.
# These are the paper's numbers (Llama-2-7b-chat and Mistral-7b), not measurements of ours.
PAPER_TABLE3_LABEL = "paper (Zhang et al. 2025, Table 3)"
PAPER_TABLE3_COLUMNS = (
    "proverb",
    "translate",
    "hate",
    "science",
    "NQ-Swap",
    "Overshadow time",
    "syn",
)
_PAPER_TABLE3_ROWS = (
    ("Llama-2-7b-chat", "greedy", (28.8, 47.5, 9.0, 33.4, 8.5, 41.4, 20.8)),
    ("Llama-2-7b-chat", "DoLa", (32.5, 50.9, 10.0, 33.0, 13.8, 53.6, 31.8)),
    ("Llama-2-7b-chat", "CoDA", (41.9, 56.2, 16.0, 38.9, 26.8, 65.0, 46.8)),
    ("Mistral-7b", "greedy", (31.3, 49.4, 14.0, 36.7, 12.6, 39.5, 21.6)),
    ("Mistral-7b", "CoDA", (42.5, 58.6, 22.0, 43.7, 27.7, 61.2, 49.5)),
)


def paper_table3() -> pd.DataFrame:
    """Table 3 of [B] (EM in percent): one row per (model, method), one column per task."""
    rows = [
        {"model": m, "method": meth, **dict(zip(PAPER_TABLE3_COLUMNS, vals, strict=True))}
        for m, meth, vals in _PAPER_TABLE3_ROWS
    ]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Our re-analysis of the paper's law figures (the statistics are overshadow_lab.law's; these
# functions only know how the paper's panels are laid out)
# ----------------------------------------------------------------------------------------------
# Which Fig. 2 (synthetic) law a Fig. 3 (fine-tuned) panel would inherit its slope from. The
# paper does not say; sizes are matched to the nearest synthetic model it reports.
FIG3_SOURCE: dict[tuple[str, str], tuple[str, str]] = {
    ("P", "Llama-2-7B"): ("P", "Llama-2-7B"),
    ("S", "fine-tuned"): ("S", "pooled (Pythia-160M..Llama-13B)"),
    ("L", "GPT-J-6B"): ("L", "Llama-2-7B"),
    ("L", "Pythia-410M"): ("L", "Pythia-160M"),
}


def fit_paper_panels(
    paper: pd.DataFrame, figure: str = "fig2", y: str = "observed_R_pct", level: float = 0.95
) -> pd.DataFrame:
    """Our OLS fit of every panel (factor × model × task) of one of the paper's figures."""
    rows = []
    part = paper[paper["figure"] == figure]
    for (task, factor, model), g in part.groupby(["task", "factor", "model"], sort=False):
        fit = fit_law(g["x"], g[y], level=level, name=factor)
        lo, hi = fit.slope_ci
        rows.append(
            {
                "task": task,
                "factor": factor,
                "model": model,
                "slope": fit.slope,
                "slope_lo": lo,
                "slope_hi": hi,
                "intercept": fit.intercept,
                "x_c": fit.x_c,
                "r2": fit.r2,
                "n": fit.n,
            }
        )
    return pd.DataFrame(rows)


def paper_fig3_errors(paper: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Eq. 5 between the paper's Fig. 3 law lines and its observed points, read from the CSV.

    Returns the per-panel mean errors and a summary: the mean over panels (each panel of the
    figure weighted equally), the mean over points, and the mean per factor.
    """
    f3 = paper[paper["figure"] == "fig3"].copy()
    f3["rel_error"] = relative_prediction_error(f3["law_R_pct"], f3["observed_R_pct"])
    panels = (
        f3.groupby(["factor", "task", "model"], sort=False)["rel_error"]
        .agg(["mean", "count"])
        .reset_index()
    )
    summary = {
        "mean_over_panels": float(panels["mean"].mean()),
        "mean_over_points": float(f3["rel_error"].mean()),
    }
    for factor, g in f3.groupby("factor"):
        summary[f"mean_{factor}"] = float(g["rel_error"].mean())
    return panels, summary


def transfer_table(
    paper: pd.DataFrame, source_map: Mapping[tuple[str, str], tuple[str, str]] | None = None
) -> pd.DataFrame:
    """The two ways to carry a synthetic law over to a fine-tuned task, for each Fig. 3 panel.

    * ``keep``: the Fig. 2 panel's slope (via ``source_map``, default :data:`FIG3_SOURCE`) with
      the intercept re-anchored on the task's points (one free parameter);
    * ``refit``: slope and intercept fitted on the task's points (two free parameters).

    Both are scored with Eq. 5 in-sample and leave-one-out (each point predicted by a law fitted
    without it), beside the paper's own law line.
    """
    source_map = FIG3_SOURCE if source_map is None else source_map
    fig2 = paper[paper["figure"] == "fig2"]
    rows = []
    for (task, factor, model), g in paper[paper["figure"] == "fig3"].groupby(
        ["task", "factor", "model"], sort=False
    ):
        src_factor, src_model = source_map[(factor, model)]
        src = fig2[(fig2["factor"] == src_factor) & (fig2["model"] == src_model)]
        source = fit_law(src["x"], src["observed_R_pct"])
        x, y = g["x"].to_numpy(float), g["observed_R_pct"].to_numpy(float)
        keep = reanchor_law(source, x, y)
        refit = fit_law(x, y)
        rows.append(
            {
                "task": task,
                "factor": factor,
                "model": model,
                "source": f"{src_factor}: {src_model}",
                "source_slope": source.slope,
                "refit_slope": refit.slope,
                "paper_line_slope": fit_law(x, g["law_R_pct"]).slope,
                "err_paper_line": float(np.mean(relative_prediction_error(g["law_R_pct"], y))),
                "err_keep": float(np.mean(relative_prediction_error(keep.predict(x), y))),
                "err_refit": float(np.mean(relative_prediction_error(refit.predict(x), y))),
                "loo_keep": loo_relative_error(x, y, lambda a, b, s=source: reanchor_law(s, a, b)),
                "loo_refit": loo_relative_error(x, y, fit_law),
            }
        )
    return pd.DataFrame(rows)


def _panel(task: str, model: str, factor: str) -> str:
    return f"{task} ({model}, {factor})"


def fig3_points(paper: pd.DataFrame) -> pd.DataFrame:
    """The Fig. 3 points as transfer points: one row per point, ``task`` naming its panel.

    Columns ``task`` (``"<task> (<model>, <factor>)"``), ``factor``, ``x``, ``R`` (observed) and
    ``law_R`` (the paper's own law line at that point).
    """
    f3 = paper[paper["figure"] == "fig3"]
    return pd.DataFrame(
        {
            "task": [_panel(t, m, f) for t, m, f in zip(f3.task, f3.model, f3.factor, strict=True)],
            "factor": f3["factor"].to_numpy(),
            "x": f3["x"].to_numpy(float),
            "R": f3["observed_R_pct"].to_numpy(float),
            "law_R": f3["law_R_pct"].to_numpy(float),
        }
    )


def fig3_sources(
    paper: pd.DataFrame, source_map: Mapping[tuple[str, str], tuple[str, str]] | None = None
) -> dict[str, LawFit]:
    """Each Fig. 3 panel's synthetic law: our fit of the Fig. 2 panel :data:`FIG3_SOURCE` names."""
    source_map = FIG3_SOURCE if source_map is None else source_map
    fig2 = paper[paper["figure"] == "fig2"]
    out = {}
    for (task, factor, model), _ in paper[paper["figure"] == "fig3"].groupby(
        ["task", "factor", "model"], sort=False
    ):
        src_factor, src_model = source_map[(factor, model)]
        src = fig2[(fig2["factor"] == src_factor) & (fig2["model"] == src_model)]
        out[_panel(task, model, factor)] = fit_law(src["x"], src["observed_R_pct"])
    return out


def fig3_in_sample(paper: pd.DataFrame) -> dict[str, float]:
    """Eq. 5 on the Fig. 3 points for lines that have seen every point (means over panels).

    ``paper_line``: the paper's own law lines; ``refit``: our least-squares line per panel;
    ``panel_mean``: each panel's mean R, a flat line. None of them predicts anything unseen:
    they say how close a line *can* come, the frame in which to read the paper's 8.0%.
    """
    pts = fig3_points(paper)
    out = {"paper_line": [], "refit": [], "panel_mean": []}
    for _, g in pts.groupby("task", sort=False):
        y = g["R"].to_numpy(float)
        out["paper_line"].append(np.mean(relative_prediction_error(g["law_R"], y)))
        out["refit"].append(
            np.mean(relative_prediction_error(fit_law(g["x"], y).predict(g["x"]), y))
        )
        out["panel_mean"].append(np.mean(relative_prediction_error(np.full(y.size, y.mean()), y)))
    return {k: float(np.mean(v)) for k, v in out.items()}


def fig3_transfer(
    paper: pd.DataFrame,
    *,
    methods=METHODS,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The transfer pipeline (:mod:`overshadow_lab.law.transfer`) on the paper's Fig. 3.

    Every point is predicted without its panel's points at that x, each panel's synthetic law
    being its :func:`fig3_sources` fit; leave-one-task-out pools the other panels *of the same
    factor* (x is a ratio for P and L and a size for S). Returns ``(predictions, scores)``, the
    scores averaged over panels (as the paper's 8.0% is) with bootstrap intervals over panels.
    """
    pts = fig3_points(paper)
    sources = fig3_sources(paper)
    pred = pd.concat(
        [
            transfer_predictions(g, sources, methods=methods, level=level).assign(factor=factor)
            for factor, g in pts.groupby("factor", sort=False)
        ],
        ignore_index=True,
    )
    scores = score_transfer(pred, level=level, n_boot=n_boot, seed=seed).set_index("method")
    return pred, scores
