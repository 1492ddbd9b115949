"""The log-linear law of overshadowing (SPEC §4): fitting, uncertainty and prediction.

The papers write one law per factor, ``R(x) = α log(x / x_c)``, a straight line in log x with a
slope (points of R per decade) and a critical value x_c where it reaches R = 0. The package:

* :mod:`~overshadow_lab.law.inputs`: checks and cleaning before any fit (x > 0, at least three
  distinct x values, rows with a missing R or RR = 0 dropped with a :class:`LawDataWarning`);
* :mod:`~overshadow_lab.law.fit`: :func:`fit_law` (least squares or Huber) giving a
  :class:`LawFit` with t intervals and bands, :func:`reanchor_law`, :func:`critical_value`;
* :mod:`~overshadow_lab.law.bootstrap`: :func:`bootstrap_law` over rows, runs within each x,
  clusters or residuals, and :func:`ci_coverage`, which checks an interval by simulation;
* :mod:`~overshadow_lab.law.joint`: :func:`fit_joint_law` over P, L and S at once and
  :func:`curvature_check`;
* :mod:`~overshadow_lab.law.predict`: the paper's Eq. 5 (:func:`relative_prediction_error`),
  :func:`holdout_prediction` and :func:`predict_planned` ("predict before training");
* :mod:`~overshadow_lab.law.transfer`: "predict before training" across tasks: a synthetic law
  carried over to natural-language tasks (:func:`transfer_predictions`, keep the slope or refit)
  beside constant, leave-one-task-out and oracle baselines, scored by :func:`score_transfer`;
* :mod:`~overshadow_lab.law.query`: the tables the command line fits (``--where``,
  ``--group-by``, and the refusal of rows that mix configurations);
* :mod:`~overshadow_lab.law.plot`: :func:`plot_law_fit` and :func:`log_axis`;
* :mod:`~overshadow_lab.law.distributions`: the t and normal quantiles, from ``scipy.special``.

Our fits of the paper's own figures live with its digitised points in :mod:`overshadow_lab.paper`.
Nothing here imports torch, and matplotlib only when something is drawn, so that
``overshadow-lab law`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from overshadow_lab.law.bootstrap import (
    SCHEMES,
    BootstrapLaw,
    bootstrap_law,
    bootstrap_weights,
    check_scheme,
    ci_coverage,
    residual_resamples,
)
from overshadow_lab.law.fit import (
    LawFit,
    critical_value,
    fit_law,
    json_safe,
    law_from_dict,
    reanchor_law,
)
from overshadow_lab.law.inputs import (
    MIN_BOOT,
    MIN_DISTINCT_X,
    LawDataWarning,
    LawFitWarning,
    check_factor_value,
    check_level,
    check_n_boot,
    clean_xy,
    log_base_value,
    to_log,
)
from overshadow_lab.law.joint import JointLawFit, curvature_check, fit_joint_law
from overshadow_lab.law.predict import (
    holdout_prediction,
    loo_relative_error,
    predict_planned,
    relative_prediction_error,
)
from overshadow_lab.law.query import (
    check_one_configuration,
    differing_settings,
    fit_law_frame,
    parse_where,
    select_rows,
)
from overshadow_lab.law.transfer import (
    METHOD_LABELS,
    METHODS,
    predict_tasks_at,
    score_transfer,
    task_points,
    transfer_predictions,
    transfer_report,
)

# The plotting functions answer here but are imported on first use, in this one place: the
# command line does not need their matplotlib import. (The re-analysis of the paper's figures
# lives in overshadow_lab.paper, which builds on this package.)
_ON_FIRST_USE = {
    "log_axis": "overshadow_lab.law.plot",
    "plot_law_fit": "overshadow_lab.law.plot",
}


def __getattr__(name: str) -> Any:
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module(_ON_FIRST_USE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "MIN_BOOT",
    "MIN_DISTINCT_X",
    "SCHEMES",
    "BootstrapLaw",
    "JointLawFit",
    "LawDataWarning",
    "LawFit",
    "LawFitWarning",
    "bootstrap_law",
    "bootstrap_weights",
    "check_factor_value",
    "check_level",
    "check_n_boot",
    "check_one_configuration",
    "check_scheme",
    "ci_coverage",
    "clean_xy",
    "critical_value",
    "curvature_check",
    "differing_settings",
    "fit_joint_law",
    "fit_law",
    "fit_law_frame",
    "holdout_prediction",
    "json_safe",
    "law_from_dict",
    "log_axis",
    "log_base_value",
    "loo_relative_error",
    "parse_where",
    "plot_law_fit",
    "predict_planned",
    "predict_tasks_at",
    "reanchor_law",
    "relative_prediction_error",
    "residual_resamples",
    "score_transfer",
    "select_rows",
    "task_points",
    "to_log",
    "transfer_predictions",
    "transfer_report",
]
