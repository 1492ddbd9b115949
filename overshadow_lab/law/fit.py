"""One factor's law: ``R = slope · log_base(x) + intercept`` by least squares or Huber.

The papers write one law per factor, ``R(x) = α log(x / x_c)`` for x = P, L or S. Written as a
straight line in ``u = log10 x`` it is

    R = a · log10(x) + b,    a = slope in points of R per decade of x,    x_c = 10^(−b / a),

so ``a`` is α (for base-10 logs) and ``x_c`` is the value of the factor at which the fitted line
reaches R = 0. Everything here works in any log base (``log_base=``); 10 is the default because
the paper's figures are drawn on decades.

:func:`fit_law` gives a :class:`LawFit` with standard errors, t-based confidence intervals and
confidence and prediction bands; :func:`reanchor_law` keeps a slope and refits the intercept on
new data (carrying a synthetic law over to a fine-tuned task).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from overshadow_lab.law.distributions import normal_cdf, normal_pdf, t_quantile
from overshadow_lab.law.inputs import LawFitWarning, check_level, clean_xy, log_base_value, to_log

HUBER_K = 1.345  # 95% efficiency under normal errors


@dataclass
class LawFit:
    """A fitted line ``R = slope · log_base(x) + intercept`` with its uncertainty.

    ``cov`` is the 2×2 covariance of (slope, intercept); ``sigma`` the residual standard deviation
    (points of R) on ``dof`` degrees of freedom; intervals use Student's t with ``dof``.
    """

    slope: float
    intercept: float
    cov: np.ndarray
    sigma: float
    dof: int
    r2: float
    x: np.ndarray
    y: np.ndarray
    log_base: float = 10.0
    level: float = 0.95
    method: str = "ols"
    dropped: dict[str, int] = field(default_factory=dict)
    slope_ci_override: tuple[float, float] | None = None
    ci_scheme: str | None = None  # what the bootstrap resampled, when slope_ci_override is set

    # -- derived quantities --------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.x.size)

    @property
    def n_x(self) -> int:
        """Number of distinct x values."""
        return int(np.unique(self.x).size)

    @property
    def se_slope(self) -> float:
        return float(math.sqrt(max(self.cov[0, 0], 0.0)))

    @property
    def se_intercept(self) -> float:
        return float(math.sqrt(max(self.cov[1, 1], 0.0)))

    @property
    def x_c(self) -> float:
        """The factor value where the line crosses R = 0: ``base^(−intercept / slope)``."""
        return critical_value(self.slope, self.intercept, self.log_base, strict=False)

    def t_crit(self, level: float | None = None) -> float:
        level = check_level(self.level if level is None else level)
        return float(t_quantile(0.5 + level / 2, self.dof)) if self.dof > 0 else math.inf

    @property
    def slope_ci(self) -> tuple[float, float]:
        """Confidence interval of the slope (t-based, or the bootstrap one when attached)."""
        if self.slope_ci_override is not None:
            return self.slope_ci_override
        h = self.t_crit() * self.se_slope
        return (self.slope - h, self.slope + h)

    @property
    def intercept_ci(self) -> tuple[float, float]:
        h = self.t_crit() * self.se_intercept
        return (self.intercept - h, self.intercept + h)

    @property
    def residuals(self) -> np.ndarray:
        return self.y - self.predict(self.x)

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, x: ArrayLike) -> np.ndarray:
        """The line's R at x (x > 0)."""
        return self.slope * to_log(x, self.log_base) + self.intercept

    def _se_mean(self, x: ArrayLike) -> np.ndarray:
        u = to_log(x, self.log_base)
        var = self.cov[0, 0] * u**2 + 2 * self.cov[0, 1] * u + self.cov[1, 1]
        return np.sqrt(np.maximum(var, 0.0))

    def confidence_band(self, x: ArrayLike, level: float | None = None):
        """``(lo, hi)``: interval for the mean R at x (where the true line lies)."""
        h = self.t_crit(level) * self._se_mean(x)
        mid = self.predict(x)
        return mid - h, mid + h

    def prediction_interval(self, x: ArrayLike, level: float | None = None, n_runs: ArrayLike = 1):
        """``(lo, hi)``: interval for a new run's R at x (line uncertainty plus run noise).

        ``n_runs`` > 1 gives the interval for the mean R of that many new runs at x.
        """
        noise = self.sigma**2 / np.asarray(n_runs, dtype=float)
        h = self.t_crit(level) * np.sqrt(self._se_mean(x) ** 2 + noise)
        mid = self.predict(x)
        return mid - h, mid + h

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (NaN and infinities become ``None``)."""
        out = {
            "slope": self.slope,
            "intercept": self.intercept,
            "x_c": self.x_c,
            "r2": self.r2,
            "slope_ci": list(self.slope_ci),
            "intercept_ci": list(self.intercept_ci),
            "se_slope": self.se_slope,
            "se_intercept": self.se_intercept,
            "sigma": self.sigma,
            "n": self.n,
            "n_x": self.n_x,
            "level": self.level,
            "log_base": self.log_base,
            "method": self.method,
            "ci": "bootstrap" if self.slope_ci_override is not None else "t",
            "ci_scheme": self.ci_scheme,
            "dropped": dict(self.dropped),
            # enough to rebuild the line and its bands later (law_from_dict)
            "cov": self.cov.tolist(),
            "dof": self.dof,
            "x_range": [float(self.x.min()), float(self.x.max())] if self.n else None,
        }
        return json_safe(out)


def law_from_dict(d: dict[str, Any]) -> LawFit:
    """Rebuild a fitted law from :meth:`LawFit.to_dict` (e.g. ``overshadow-lab law fit --json``).

    The line, its covariance, residual scale and degrees of freedom come back, so predictions
    and their intervals are the original's. The runs themselves are not in the dictionary:
    ``x`` holds the two ends of the fitted range (for extrapolation checks) and ``y`` the line
    there. Raises ``ValueError`` naming the missing keys for a dictionary that is not a fit.
    """
    if not isinstance(d, dict):
        raise ValueError(
            "a fitted law is a JSON object as printed by 'overshadow-lab law fit --json'"
        )
    need = ("slope", "intercept", "cov", "sigma", "dof", "x_range")
    missing = [k for k in need if d.get(k) is None]
    if missing:
        raise ValueError(
            f"the fitted law lacks {', '.join(missing)}: give one object printed by "
            "'overshadow-lab law fit --json' (without --group-by), or a CSV table to fit"
        )
    cov = np.asarray(d["cov"], dtype=float)
    if cov.shape != (2, 2):
        raise ValueError(f"the fitted law's cov must be 2x2, got shape {cov.shape}")
    x = np.asarray(d["x_range"], dtype=float)
    if x.shape != (2,) or not np.all(x > 0):
        raise ValueError("the fitted law's x_range must be two positive numbers [min, max]")
    base = log_base_value(d.get("log_base", 10))
    slope, intercept = float(d["slope"]), float(d["intercept"])
    return LawFit(
        slope=slope,
        intercept=intercept,
        cov=cov,
        sigma=float(d["sigma"]),
        dof=int(d["dof"]),
        r2=float(d["r2"]) if d.get("r2") is not None else math.nan,
        x=x,
        y=slope * to_log(x, base) + intercept,
        log_base=base,
        level=check_level(d.get("level", 0.95)),
        method=str(d.get("method", "ols")),
    )


def critical_value(
    slope: float, intercept: float, log_base: float | str = 10, strict: bool = True
) -> float:
    """``x_c = base^(−intercept / slope)``: where ``R = slope·log x + intercept`` reaches 0.

    With ``strict`` a zero slope raises ``ValueError`` (the line never crosses 0); otherwise it
    gives NaN. Values beyond the float range come back as 0 or inf.
    """
    if slope == 0 or not np.isfinite(slope):
        if strict:
            raise ValueError("x_c is undefined for a zero slope: a flat law never reaches R = 0")
        return math.nan
    expo = -intercept / slope * math.log(log_base_value(log_base))
    if expo > 700:
        return math.inf
    return math.exp(expo)


def json_safe(obj: Any) -> Any:
    """``obj`` with NumPy scalars made plain and NaN or infinities made ``None`` (for JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _ols_line(u: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray, float, int]:
    """Slope, intercept, covariance, residual sd and dof of OLS of y on u (closed form)."""
    n = u.size
    ubar, ybar = u.mean(), y.mean()
    sxx = float(np.sum((u - ubar) ** 2))
    slope = float(np.sum((u - ubar) * (y - ybar)) / sxx)
    intercept = float(ybar - slope * ubar)
    resid = y - (slope * u + intercept)
    dof = n - 2
    sigma = float(math.sqrt(np.sum(resid**2) / dof)) if dof > 0 else math.nan
    var_a = sigma**2 / sxx
    cov = np.array(
        [[var_a, -ubar * var_a], [-ubar * var_a, sigma**2 / n + ubar**2 * var_a]], dtype=float
    )
    return slope, intercept, cov, sigma, dof


def _huber_line(u: np.ndarray, y: np.ndarray, k: float = HUBER_K, max_iter: int = 200):
    """Huber M-estimate of the line, with Huber's "proposal 2" scale, by reweighted LS.

    Each step updates the scale ``s`` so that ``Σ ψ(r/s)² = (n − 2) · E[ψ(Z)²]`` (Z normal), then
    the weights ``min(1, k·s/|r|)``. This joint scale stays stable for the few points a law has,
    where the MAD of residuals collapses. The covariance is Huber's asymptotic one,
    ``s² · mean(ψ²) / mean(ψ')² · (XᵀX)⁻¹``, scaled by n/(n − 2).
    """
    X = np.column_stack([u, np.ones_like(u)])
    n = u.size
    dof = n - 2
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ beta
    scale = float(math.sqrt(np.sum(r**2) / max(dof, 1))) or 1e-12
    phi, cdf = normal_pdf(k), normal_cdf(k)
    e_psi2 = (2 * cdf - 1) - 2 * k * phi + 2 * k**2 * (1 - cdf)
    for _ in range(max_iter):
        r = y - X @ beta
        psi = np.clip(r / scale, -k, k)
        new_scale = float(math.sqrt(np.sum((psi * scale) ** 2) / (max(dof, 1) * e_psi2))) or 1e-12
        z = np.abs(r) / new_scale
        w = np.where(z <= k, 1.0, k / np.maximum(z, 1e-300))
        sw = np.sqrt(w)
        new = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
        done = (
            np.allclose(new, beta, rtol=1e-10, atol=1e-10)
            and abs(new_scale - scale) < 1e-10 * scale
        )
        beta, scale = new, new_scale
        if done:
            break
    r = y - X @ beta
    z = r / scale
    psi = np.clip(z, -k, k)
    dpsi = (np.abs(z) <= k).astype(float)
    factor = scale**2 * np.mean(psi**2) / max(np.mean(dpsi), 1e-12) ** 2 * n / max(dof, 1)
    cov = factor * np.linalg.inv(X.T @ X)
    return float(beta[0]), float(beta[1]), cov, float(scale), dof


def fit_law(
    x: ArrayLike,
    y: ArrayLike,
    *,
    rr: ArrayLike | None = None,
    log_base: float | str = 10,
    level: float = 0.95,
    robust: bool = False,
    name: str = "x",
) -> LawFit:
    """Fit ``R = slope · log_base(x) + intercept`` to one factor's runs.

    ``x``: the factor's values (> 0); ``y``: R in percent, one value per run; ``rr``: the runs'
    recall rates, to drop RR = 0 rows. ``robust=True`` uses a Huber fit instead of OLS. The
    result carries standard errors, t intervals at ``level`` and R² (1 − SSR/SST of the fit).
    """
    level = check_level(level)
    base = log_base_value(log_base)
    xa, ya, dropped = clean_xy(x, y, rr, name=name)
    _warn_if_constant(ya)
    u = to_log(xa, base)
    if robust:
        slope, intercept, cov, sigma, dof = _huber_line(u, ya)
    else:
        slope, intercept, cov, sigma, dof = _ols_line(u, ya)
    resid = ya - (slope * u + intercept)
    sst = float(np.sum((ya - ya.mean()) ** 2))
    r2 = 1 - float(np.sum(resid**2)) / sst if sst > 0 else math.nan
    return LawFit(
        slope=slope,
        intercept=intercept,
        cov=cov,
        sigma=sigma,
        dof=dof,
        r2=r2,
        x=xa,
        y=ya,
        log_base=base,
        level=level,
        method="huber" if robust else "ols",
        dropped=dropped,
    )


def _warn_if_constant(y: np.ndarray) -> None:
    """Say so when R takes one value in every row: the fit is then a flat line with no scatter."""
    if np.ptp(y) == 0:
        warnings.warn(
            f"R is {y[0]:g} in every row: the fitted line is flat (slope 0) with no scatter, so "
            "R^2 and x_c are undefined and the slope's interval has zero width; R pinned at one "
            "value (often the floor) says nothing about how R changes with the factor",
            LawFitWarning,
            stacklevel=3,
        )


def reanchor_law(source: LawFit, x: ArrayLike, y: ArrayLike, *, name: str = "x") -> LawFit:
    """Keep ``source``'s slope and refit only the intercept on new data (one free parameter).

    The intercept is ``mean(y − slope·log x)``. Its covariance combines the new data's scatter
    with the source slope's own uncertainty (``source.se_slope``), so prediction intervals widen
    away from the new data's mean log x.
    """
    xa, ya, dropped = clean_xy(x, y, name=name)
    u = to_log(xa, source.log_base)
    a = source.slope
    b = float(np.mean(ya - a * u))
    resid = ya - (a * u + b)
    n = u.size
    dof = n - 1
    sigma = float(math.sqrt(np.sum(resid**2) / dof))
    var_a = source.se_slope**2
    ubar = float(u.mean())
    cov = np.array(
        [[var_a, -ubar * var_a], [-ubar * var_a, sigma**2 / n + ubar**2 * var_a]], dtype=float
    )
    sst = float(np.sum((ya - ya.mean()) ** 2))
    r2 = 1 - float(np.sum(resid**2)) / sst if sst > 0 else math.nan
    return LawFit(
        a, b, cov, sigma, dof, r2, xa, ya, source.log_base, source.level, "reanchored", dropped
    )
