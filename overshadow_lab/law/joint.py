"""Several factors at once: ``R = Σ_f a_f · log x_f + d``, and a test of the line for a bend.

:func:`fit_joint_law` fits whatever factors vary in a table (the others are held and recorded),
so one law can predict R at a planned (P, L, S); :func:`curvature_check` adds a quadratic term in
log x to ask whether one factor's points bend away from a straight line.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from overshadow_lab.law.distributions import t_quantile, t_two_sided_p
from overshadow_lab.law.inputs import (
    LawDataWarning,
    check_level,
    clean_xy,
    log_base_value,
    to_log,
)


def curvature_check(x: ArrayLike, y: ArrayLike, *, log_base: float | str = 10) -> dict[str, float]:
    """Test the straight line against a bend: add ``c·(u − ū)²`` (u = log x) and test c ≠ 0.

    Returns the curvature ``c`` (points of R per decade squared), its standard error, the t
    statistic and two-sided p-value. Needs at least four distinct x values. A clearly non-zero
    c says R saturates (c < 0) or accelerates (c > 0) on the log scale.
    """
    xa, ya, _ = clean_xy(x, y)
    u = to_log(xa, log_base)
    if np.unique(u).size < 4:
        raise ValueError("a curvature check needs at least 4 distinct x values")
    X = np.column_stack([np.ones_like(u), u, (u - u.mean()) ** 2])
    beta, *_ = np.linalg.lstsq(X, ya, rcond=None)
    resid = ya - X @ beta
    dof = u.size - 3
    if dof < 1:
        raise ValueError("a curvature check needs more runs than 3")
    s2 = float(resid @ resid) / dof
    se = float(math.sqrt(s2 * np.linalg.inv(X.T @ X)[2, 2]))
    t = float(beta[2]) / se if se > 0 else math.inf
    return {
        "curvature": float(beta[2]),
        "se": se,
        "t": t,
        "p_value": t_two_sided_p(t, dof),
        "dof": dof,
    }


@dataclass
class JointLawFit:
    """``R = Σ_f coef[f] · log_base(f) + intercept`` over the factors that vary in the data."""

    factors: list[str]
    coef: dict[str, float]
    intercept: float
    cov: np.ndarray  # over (factors..., intercept)
    sigma: float
    dof: int
    r2: float
    n: int
    log_base: float
    level: float
    held: dict[str, float]  # factors that did not vary, and the value they were held at
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # fitted range per factor

    def extrapolates(self, **values: float) -> bool:
        """Whether a configuration lies outside the range of some varying factor's data."""
        return any(
            not (lo <= float(values[f]) <= hi) for f, (lo, hi) in self.ranges.items() if f in values
        )

    def t_crit(self, level: float | None = None) -> float:
        level = check_level(self.level if level is None else level)
        return float(t_quantile(0.5 + level / 2, self.dof)) if self.dof > 0 else math.inf

    @property
    def se(self) -> dict[str, float]:
        names = [*self.factors, "intercept"]
        return {k: float(math.sqrt(max(self.cov[i, i], 0))) for i, k in enumerate(names)}

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        t = self.t_crit()
        est = {**self.coef, "intercept": self.intercept}
        return {k: (est[k] - t * s, est[k] + t * s) for k, s in self.se.items()}

    def _row(self, values: Mapping[str, float]) -> np.ndarray:
        for name, held in self.held.items():
            if name in values and not np.isclose(float(values[name]), held):
                raise ValueError(
                    f"{name} was held at {held:g} in every run, so the data say nothing about "
                    f"R at {name} = {values[name]:g}; drop {name} or add runs that vary it"
                )
        unknown = sorted(set(values) - set(self.factors) - set(self.held))
        if unknown:
            raise ValueError(f"unknown factor(s) {', '.join(unknown)}; the law has {self.factors}")
        missing = [f for f in self.factors if f not in values]
        if missing:
            raise ValueError(f"give a value for every varying factor; missing {', '.join(missing)}")
        vals = np.array([float(values[f]) for f in self.factors])
        if np.any(~(np.isfinite(vals) & (vals > 0))):
            raise ValueError("factor values must be positive and finite (the law uses their logs)")
        return np.append(to_log(vals, self.log_base), 1.0)

    def predict(self, **values: float) -> float:
        g = self._row(values)
        beta = np.array([*(self.coef[f] for f in self.factors), self.intercept])
        return float(g @ beta)

    def prediction_interval(self, level: float | None = None, **values: float):
        g = self._row(values)
        se = math.sqrt(float(g @ self.cov @ g) + self.sigma**2)
        mid = self.predict(**values)
        h = self.t_crit(level) * se
        return mid - h, mid + h


def fit_joint_law(
    df: pd.DataFrame,
    factors: Sequence[str] = ("P", "L", "S"),
    y: str = "R",
    *,
    rr_col: str | None = "RR",
    log_base: float | str = 10,
    level: float = 0.95,
) -> JointLawFit:
    """OLS of ``y`` on the logs of every factor in ``factors`` that varies in ``df``.

    Factors that take a single value are held (recorded in ``held``) and left out of the design;
    the fit refuses a design whose varying factors are collinear in log space.
    """
    level = check_level(level)
    missing = [c for c in [*factors, y] if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the table; it has {list(df.columns)}")
    data = df[[*factors, y]].astype(float)
    rr = df[rr_col].astype(float).to_numpy() if rr_col and rr_col in df.columns else None
    keep = np.isfinite(data[y].to_numpy()) & data[list(factors)].notna().all(axis=1).to_numpy()
    if rr is not None:
        keep &= rr != 0
    n_drop = int((~keep).sum())
    if n_drop:
        warnings.warn(
            f"dropped {n_drop} of {len(df)} rows before the joint fit (missing R, or RR = 0)",
            LawDataWarning,
            stacklevel=2,
        )
    data = data[keep]
    vals = data[list(factors)].to_numpy()
    if np.any(~(vals > 0)):
        raise ValueError("every factor value must be positive: the joint law uses their logs")
    varying = [f for f in factors if data[f].nunique() > 1]
    held = {f: float(data[f].iloc[0]) for f in factors if f not in varying and len(data)}
    if not varying:
        raise ValueError(f"none of {list(factors)} varies in the table: nothing to fit")
    base = log_base_value(log_base)
    X = np.column_stack([to_log(data[f].to_numpy(), base) for f in varying] + [np.ones(len(data))])
    yy = data[y].to_numpy()
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(
            f"the factors {varying} are collinear in this design (they change together), so their "
            "effects cannot be separated; vary one factor at a time"
        )
    n, p = X.shape
    if n <= p:
        raise ValueError(f"{n} runs cannot fit {p} coefficients; add runs")
    beta, *_ = np.linalg.lstsq(X, yy, rcond=None)
    resid = yy - X @ beta
    dof = n - p
    sigma = float(math.sqrt(resid @ resid / dof))
    cov = sigma**2 * np.linalg.inv(X.T @ X)
    sst = float(np.sum((yy - yy.mean()) ** 2))
    r2 = 1 - float(resid @ resid) / sst if sst > 0 else math.nan
    return JointLawFit(
        factors=varying,
        coef={f: float(b) for f, b in zip(varying, beta[:-1], strict=True)},
        intercept=float(beta[-1]),
        cov=cov,
        sigma=sigma,
        dof=dof,
        r2=r2,
        n=n,
        log_base=base,
        level=level,
        held=held,
        ranges={f: (float(data[f].min()), float(data[f].max())) for f in varying},
    )
