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
            Case((np.array([0.2, 0.4]), np.array([0.0, 0.8])), label="edge case: arrays with RR = 0"),
            Case((1.5, 0.5), label="edge case: HR above 1", raises=ValueError),
        ],
        mistakes=[
            Mistake(lambda hr, rr: np.asarray(hr, float) / np.asarray(rr, float),
                    "R is reported in percent: multiply the ratio by 100"),
            Mistake(lambda hr, rr: 100 * np.asarray(rr, float) / np.asarray(hr, float),
                    "the ratio is upside down: R = HR / RR, hallucination over recall"),
            Mistake(lambda hr, rr: 100 * (np.asarray(hr, float) - np.asarray(rr, float)),
                    "R is a ratio of the two rates, not their difference"),
            Mistake(lambda hr, rr: np.where(np.asarray(rr) > 0, 100 * np.asarray(hr, float) / np.where(np.asarray(rr) > 0, rr, 1), 0.0),
                    "where RR = 0 the ratio is undefined: return NaN, not 0"),
        ],
    )
)
