"""Exercises of the chapter "Introduction"."""

from __future__ import annotations

import numpy as np

from overshadow_lab.exercises.framework import Case, Exercise, Mistake, register
from overshadow_lab.metrics import relative_hallucination_rate

check_relative_hallucination_rate = register(
    Exercise(
        name="relative_hallucination_rate",
        chapter="introduction",
        reference=relative_hallucination_rate,
        description="R = HR / RR in percent, NaN where RR = 0, for scalars and arrays.",
        cases=[
            Case((0.5, 1.0), label="half the subordinate prompts hallucinate, perfect recall"),
            Case((0.3, 0.6), label="imperfect recall"),
            Case((0.0, 0.9), label="no hallucination"),
            Case((np.array([0.1, 0.45, 0.8]), np.array([0.5, 0.9, 0.8])), label="arrays"),
            Case((0.2, 0.0), label="edge case: nothing recalled"),
            Case(
                (np.array([0.2, 0.4]), np.array([0.0, 0.8])), label="edge case: arrays with RR = 0"
            ),
            Case((1.5, 0.5), label="edge case: HR above 1", raises=ValueError),
        ],
        mistakes=[
            Mistake(
                lambda hr, rr: np.asarray(hr, float) / np.asarray(rr, float),
                "R is reported in percent: multiply the ratio by 100",
            ),
            Mistake(
                lambda hr, rr: 100 * np.asarray(rr, float) / np.asarray(hr, float),
                "the ratio is upside down: R = HR / RR, hallucination over recall",
            ),
            Mistake(
                lambda hr, rr: 100 * (np.asarray(hr, float) - np.asarray(rr, float)),
                "R is a ratio of the two rates, not their difference",
            ),
            Mistake(
                lambda hr, rr: np.where(
                    np.asarray(rr) > 0,
                    100 * np.asarray(hr, float) / np.where(np.asarray(rr) > 0, rr, 1),
                    0.0,
                ),
                "where RR = 0 the ratio is undefined: return NaN, not 0",
            ),
        ],
    )
)


# -- 2. an experiment: does popularity in context move a pretrained model? -------------------------
def _popularity_slope(P, position, margin):
    """Slope of the margin against log2 P with the position of the subordinate statement held
    fixed: least squares of margin on log2 P plus one indicator per position. In a balanced table
    this is the slope of the position-averaged margins; in an unbalanced one it still is not
    confounded by where the statement sat."""
    P = np.asarray(P, dtype=float)
    position = np.asarray(position, dtype=str)
    margin = np.asarray(margin, dtype=float)
    if not len(P) == len(position) == len(margin):
        raise ValueError("P, position and margin must have one entry per row")
    if np.any(P <= 0):
        raise ValueError("popularity P must be positive")
    if len(np.unique(P)) < 2:
        raise ValueError("a slope needs at least two distinct values of P")
    indicators = [(position == pos).astype(float) for pos in np.unique(position)]
    design = np.column_stack([np.log2(P), *indicators])
    coef, *_ = np.linalg.lstsq(design, margin, rcond=None)
    return float(coef[0])


def _naive_slope(P, position, margin):
    return float(np.polyfit(np.log2(np.asarray(P, float)), np.asarray(margin, float), 1)[0])


def _slope_first_only(P, position, margin):
    keep = np.asarray(position, dtype=str) == "first"
    return _naive_slope(np.asarray(P)[keep], None, np.asarray(margin)[keep])


def _slope_log10(P, position, margin):
    return _popularity_slope(P, position, margin) * np.log(10) / np.log(2)


def _slope_of_means(P, position, margin):
    """Mean margin at each P (whichever positions it has), then a line through the means."""
    P, margin = np.asarray(P, float), np.asarray(margin, float)
    levels = np.unique(P)
    means = [margin[P == p].mean() for p in levels]
    return float(np.polyfit(np.log2(levels), means, 1)[0])


def _slope_cases():
    rng = np.random.default_rng(3)
    m = [1, 2, 4, 8]
    both = ["first", "last"]
    grid_P = [p for p in m for _ in both]
    grid_pos = [pos for _ in m for pos in both]
    # a model that copies the latest statement: big position effect, small popularity effect
    recency = [
        0.3 * np.log2(p) + (2.0 if pos == "first" else -3.0)
        for p, pos in zip(grid_P, grid_pos, strict=True)
    ]
    noisy = list(np.asarray(recency) + rng.normal(scale=0.2, size=len(recency)))
    # an unbalanced table: the large P were only scored with the subordinate statement first
    un_P = [1, 1, 1, 2, 2, 4, 8, 8]
    un_pos = ["first", "last", "last", "last", "last", "first", "first", "first"]
    un_margin = [
        0.5 * np.log2(p) + (2.0 if pos == "first" else -3.0)
        for p, pos in zip(un_P, un_pos, strict=True)
    ]
    return [
        Case((grid_P, grid_pos, recency), label="balanced table, strong position effect"),
        Case((grid_P, grid_pos, noisy), label="balanced table with noise"),
        Case((un_P, un_pos, un_margin), label="unbalanced table: large P scored first only"),
        Case(([1, 2, 4], ["last"] * 3, [-1.0, -1.0, -1.0]), label="no popularity effect"),
        Case(
            ([4, 4], ["first", "last"], [1.0, 2.0]),
            label="edge case: one value of P",
            raises=ValueError,
        ),
        Case(
            ([1, 2], ["first"], [1.0, 2.0]),
            label="edge case: columns of different lengths",
            raises=ValueError,
        ),
    ]


check_popularity_slope = register(
    Exercise(
        name="popularity_slope",
        chapter="introduction",
        reference=_popularity_slope,
        description="Slope of the margin against log2 P with a position indicator (nats per doubling).",
        cases=_slope_cases,
        mistakes=[
            Mistake(
                _naive_slope,
                "hold the position fixed: without a position indicator, a table where the "
                "large P were scored only with the subordinate statement first confounds P "
                "with position",
            ),
            Mistake(
                _slope_first_only,
                "keep both positions: one position alone measures popularity plus recency",
            ),
            Mistake(
                _slope_of_means,
                "averaging the rows at each P does not balance positions when a P lacks one: "
                "put an indicator for the position in the regression",
            ),
            Mistake(_slope_log10, "the slope is per doubling of P: regress on log2 P, not log10"),
        ],
    )
)
