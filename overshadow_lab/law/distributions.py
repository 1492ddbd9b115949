"""The few quantiles and tail areas the law's intervals need, from ``scipy.special``.

They are the same functions ``scipy.stats`` evaluates for ``t.ppf``, ``t.sf``, ``norm.ppf``,
``norm.pdf`` and ``norm.cdf`` (so every number is identical), without importing ``scipy.stats``,
which takes most of a second and would make ``overshadow-lab law`` slow to start.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special


def t_quantile(p: ArrayLike, dof: ArrayLike):
    """Quantile of Student's t with ``dof`` degrees of freedom (``scipy.stats.t.ppf``)."""
    return special.stdtrit(dof, p)


def t_two_sided_p(t: float, dof: float) -> float:
    """Two-sided p-value of a t statistic: ``2 · P(T > |t|)``."""
    return float(2 * special.stdtr(dof, -abs(t)))


def normal_quantile(p: ArrayLike):
    """Quantile of the standard normal (``scipy.stats.norm.ppf``)."""
    return special.ndtri(p)


def normal_pdf(z: float) -> float:
    """Density of the standard normal at ``z``."""
    return float(np.exp(-(z**2) / 2.0) / np.sqrt(2 * np.pi))


def normal_cdf(z: float) -> float:
    """Distribution function of the standard normal at ``z``."""
    return float(special.ndtr(z))
