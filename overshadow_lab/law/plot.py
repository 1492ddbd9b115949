"""Drawing a law: its points, the fitted line and a band, on a log axis with plain labels."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from overshadow_lab.law.fit import LawFit


def plot_law_fit(
    fit: LawFit,
    ax=None,
    *,
    label: str | None = None,
    color=None,
    band: str | None = "prediction",
    x_range: tuple[float, float] | None = None,
    points: bool = True,
    marker: str = "o",
):
    """Draw a fit on log-x axes: its points, the fitted line and a shaded band.

    ``band`` is ``"prediction"`` (where a new run would fall, at the fit's level),
    ``"confidence"`` (where the line itself lies) or None. Returns the axes.
    """
    if band not in {"prediction", "confidence", None}:
        raise ValueError(f"band must be 'prediction', 'confidence' or None, got {band!r}")
    if ax is None:
        # pyplot is imported only when no axes are given: importing it picks a plotting backend
        # and takes a noticeable part of a second, which the command line does not need.
        import matplotlib.pyplot as plt

        ax = plt.gca()
    lo_x, hi_x = x_range or (float(fit.x.min()), float(fit.x.max()))
    grid = np.geomspace(lo_x, hi_x, 200)
    (line,) = ax.plot(grid, fit.predict(grid), color=color, label=label)
    color = line.get_color()
    if band is not None:
        lo, hi = (fit.prediction_interval if band == "prediction" else fit.confidence_band)(grid)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.15, linewidth=0)
    if points:
        ax.scatter(fit.x, fit.y, color=color, s=18, marker=marker, alpha=0.8, zorder=3)
    log_axis(ax)
    return ax


def log_axis(ax, which: str = "x"):
    """Make an axis logarithmic with plain labels at 1, 2 and 5 times powers of ten."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
    return ax
