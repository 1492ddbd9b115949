"""The log-linear law of overshadowing (SPEC §4): fitting, uncertainty and prediction.

The papers write one law per factor, ``R(x) = α log(x / x_c)`` for x = P, L or S. Written as a
straight line in ``u = log10 x`` it is

    R = a · log10(x) + b,    a = slope in points of R per decade of x,    x_c = 10^(−b / a),

so ``a`` is α (for base-10 logs) and ``x_c`` is the value of the factor at which the fitted line
reaches R = 0. Everything here works in any log base (``log_base=``); 10 is the default because
the paper's figures are drawn on decades.

The module holds

* :func:`fit_law`: ordinary least squares (or a Huber fit, ``robust=True``) with standard errors,
  t-based confidence intervals, confidence and prediction bands (:class:`LawFit`);
* :func:`bootstrap_law`: percentile bootstrap intervals over rows, over replicate runs within
  each x (seeds), or over whole clusters;
* :func:`fit_joint_law`: ``R = a·log P + b·log L + c·log S + d`` on whatever design a table holds;
* :func:`holdout_prediction`, :func:`relative_prediction_error` (the paper's Eq. 5) and
  :func:`predict_planned` ("predict before training");
* the paper's own numbers: :func:`fit_paper_panels`, :func:`paper_fig3_errors` and
  :func:`transfer_table` (keep the synthetic slope and re-anchor, or refit);
* :func:`fit_law_frame` / :func:`select_rows`, the table-level entry points the CLI uses.

Bad input is never fitted silently: x ≤ 0 and fewer than three distinct x values raise
``ValueError``; rows with a missing R, or with RR = 0 (where R is undefined), are dropped with a
:class:`LawDataWarning` that says how many.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

MIN_DISTINCT_X = 3
HUBER_K = 1.345  # 95% efficiency under normal errors


class LawDataWarning(UserWarning):
    """Rows were dropped before a fit (the message says how many and why)."""


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------
def log_base_value(log_base: float | str) -> float:
    """The numeric base of a log (``"e"`` means Euler's number); must be > 0 and ≠ 1."""
    base = math.e if str(log_base).strip().lower() in {"e", "ln"} else float(log_base)
    if not base > 0 or base == 1:
        raise ValueError(f"log base must be positive and not 1, got {log_base!r}; use 10 or e")
    return base


def to_log(x: ArrayLike, log_base: float | str = 10) -> np.ndarray:
    """``log_base(x)`` elementwise."""
    return np.log(np.asarray(x, dtype=float)) / math.log(log_base_value(log_base))


def clean_xy(
    x: ArrayLike, y: ArrayLike, rr: ArrayLike | None = None, *, name: str = "x"
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Check and clean one factor's data before a fit; return ``(x, y, dropped_counts)``.

    * rows with RR = 0 (when ``rr`` is given) are dropped: R = HR / RR is undefined there;
    * rows with a missing or infinite R, or a missing x, are dropped;
    * both drops are announced with a :class:`LawDataWarning` that gives the counts;
    * an x that is zero, negative or infinite raises ``ValueError`` (log x is undefined);
    * fewer than ``MIN_DISTINCT_X`` distinct x values raise ``ValueError``.
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"{name} and R have different lengths ({xa.size} vs {ya.size})")
    keep = np.ones(xa.size, dtype=bool)
    dropped: dict[str, int] = {}
    if rr is not None:
        rra = np.asarray(rr, dtype=float).ravel()
        if rra.shape != xa.shape:
            raise ValueError(f"RR has {rra.size} values but there are {xa.size} rows")
        zero = rra == 0
        if zero.any():
            dropped["RR = 0 (R undefined)"] = int(zero.sum())
        keep &= ~zero
    missing = keep & (np.isnan(xa) | ~np.isfinite(ya))
    if missing.any():
        dropped["missing or infinite R / x"] = int(missing.sum())
    keep &= ~missing
    if dropped:
        what = ", ".join(f"{k}: {v}" for k, v in dropped.items())
        warnings.warn(
            f"dropped {sum(dropped.values())} of {xa.size} rows before fitting ({what})",
            LawDataWarning,
            stacklevel=3,
        )
    xa, ya = xa[keep], ya[keep]
    bad = ~(np.isfinite(xa) & (xa > 0))
    if bad.any():
        examples = ", ".join(f"{v:g}" for v in np.unique(xa[bad])[:3])
        raise ValueError(
            f"{int(bad.sum())} value(s) of {name} are not positive and finite ({examples}): the law "
            f"is linear in log {name}, so every {name} must be > 0; remove or correct those rows"
        )
    distinct = np.unique(xa)
    if distinct.size < MIN_DISTINCT_X:
        shown = ", ".join(f"{v:g}" for v in distinct) or "none"
        raise ValueError(
            f"need at least {MIN_DISTINCT_X} distinct values of {name} to fit a log-linear law and "
            f"judge it, got {distinct.size} ({shown}); add runs at more values of {name}"
        )
    return xa, ya, dropped


# ----------------------------------------------------------------------------------------------
# One-factor fits
# ----------------------------------------------------------------------------------------------
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
        level = self.level if level is None else level
        if not 0 < level < 1:
            raise ValueError(f"confidence level must lie in (0, 1), got {level}")
        return float(stats.t.ppf(0.5 + level / 2, self.dof)) if self.dof > 0 else math.inf

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
            "dropped": dict(self.dropped),
        }
        return _json_safe(out)


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


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
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
    phi, cdf = stats.norm.pdf(k), stats.norm.cdf(k)
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
    xa, ya, dropped = clean_xy(x, y, rr, name=name)
    base = log_base_value(log_base)
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


# ----------------------------------------------------------------------------------------------
# Bootstrap
# ----------------------------------------------------------------------------------------------
def _weighted_lines(u: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts of weighted LS for every row of the weight matrix ``w`` (B × n)."""
    sw = w.sum(axis=1, keepdims=True)
    ub = (w * u).sum(axis=1, keepdims=True) / sw
    yb = (w * y).sum(axis=1, keepdims=True) / sw
    sxx = (w * (u - ub) ** 2).sum(axis=1)
    sxy = (w * (u - ub) * (y - yb)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 1e-12, sxy / np.where(sxx > 1e-12, sxx, 1.0), np.nan)
    return slope, yb[:, 0] - slope * ub[:, 0]


def bootstrap_weights(
    n: int,
    n_boot: int,
    *,
    scheme: str = "rows",
    x: ArrayLike | None = None,
    clusters: ArrayLike | None = None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Resampling counts (``n_boot`` × ``n``) for the three bootstrap schemes.

    * ``"rows"``: resample all rows with replacement (pairs bootstrap);
    * ``"within-x"``: at each distinct x, resample that x's replicate runs (e.g. its seeds);
    * ``"clusters"``: resample whole clusters (e.g. every run of one seed) with replacement.
    """
    if scheme == "rows":
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    if scheme == "within-x":
        if x is None:
            raise ValueError("scheme='within-x' needs the x values")
        groups = np.unique(np.asarray(x), return_inverse=True)[1]
    elif scheme == "clusters":
        if clusters is None:
            raise ValueError("scheme='clusters' needs a cluster label per row (e.g. the seed)")
        labels, idx = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
        counts = rng.multinomial(labels.size, np.full(labels.size, 1.0 / labels.size), size=n_boot)
        return counts[:, idx].astype(float)
    else:
        raise ValueError(f"unknown bootstrap scheme {scheme!r}: use rows, within-x or clusters")
    w = np.zeros((n_boot, n))
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        k = members.size
        w[:, members] = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot)
    return w


@dataclass
class BootstrapLaw:
    """Percentile bootstrap of a law fit: the replicate slopes/intercepts and their intervals."""

    slopes: np.ndarray
    intercepts: np.ndarray
    level: float
    scheme: str
    n_failed: int
    log_base: float = 10.0

    def _ci(self, v: np.ndarray) -> tuple[float, float]:
        q = [(1 - self.level) / 2, (1 + self.level) / 2]
        lo, hi = np.quantile(v[np.isfinite(v)], q)
        return float(lo), float(hi)

    @property
    def slope_ci(self) -> tuple[float, float]:
        return self._ci(self.slopes)

    @property
    def intercept_ci(self) -> tuple[float, float]:
        return self._ci(self.intercepts)

    @property
    def se_slope(self) -> float:
        return float(np.nanstd(self.slopes, ddof=1))

    @property
    def x_c_ci(self) -> tuple[float, float]:
        """Percentile interval of x_c over the replicates with a non-zero slope."""
        ok = np.isfinite(self.slopes) & (self.slopes != 0)
        with np.errstate(over="ignore"):
            xc = np.power(self.log_base, -self.intercepts[ok] / self.slopes[ok])
        return self._ci(xc)


def _kept_rows(x: ArrayLike, y: ArrayLike, rr: ArrayLike | None) -> np.ndarray:
    """The mask of rows that :func:`clean_xy` keeps (it raises on the rest)."""
    xr = np.asarray(x, dtype=float).ravel()
    yr = np.asarray(y, dtype=float).ravel()
    mask = ~(np.isnan(xr) | ~np.isfinite(yr))
    if rr is not None:
        mask &= np.asarray(rr, dtype=float).ravel() != 0
    return mask


def bootstrap_law(
    x: ArrayLike,
    y: ArrayLike,
    *,
    scheme: str = "rows",
    clusters: ArrayLike | None = None,
    rr: ArrayLike | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    log_base: float | str = 10,
    seed: int = 0,
    y_sd: ArrayLike | None = None,
) -> BootstrapLaw:
    """Percentile bootstrap of the OLS slope and intercept (vectorised: weighted refits).

    ``scheme`` picks what is resampled (see :func:`bootstrap_weights`); for sweeps with a few
    seeds per x, ``"within-x"`` resamples each x's seeds. Replicates whose resample holds a single
    x value cannot be fitted: they are left out and counted in ``n_failed``.

    ``y_sd`` (one standard deviation per row, e.g. from a run's bootstrap interval over knowledge
    sets) adds a second level: each replicate also perturbs every run's R by normal noise of that
    size, so the interval carries the set-level uncertainty of each measurement too.
    """
    xa, ya, _ = clean_xy(x, y, rr)
    kept = _kept_rows(x, y, rr)
    keep_clusters = None
    if clusters is not None:
        c = np.asarray(clusters).ravel()
        if c.size != kept.size:
            raise ValueError("clusters must have one label per row")
        keep_clusters = c[kept]
    rng = np.random.default_rng(seed)
    u = to_log(xa, log_base)
    w = bootstrap_weights(xa.size, n_boot, scheme=scheme, x=xa, clusters=keep_clusters, rng=rng)
    yy = ya
    if y_sd is not None:
        sd = np.asarray(y_sd, dtype=float).ravel()
        if sd.size != kept.size:
            raise ValueError("y_sd must have one value per row")
        sd = sd[kept]
        if np.any(~np.isfinite(sd) | (sd < 0)):
            raise ValueError("y_sd must be finite and non-negative (fill missing ones with 0)")
        yy = ya + rng.normal(size=(n_boot, ya.size)) * sd
    slopes, intercepts = _weighted_lines(u, yy, w)
    failed = int(np.sum(~np.isfinite(slopes)))
    if failed > n_boot // 2:
        raise ValueError(
            f"{failed} of {n_boot} bootstrap resamples could not be fitted: too few distinct "
            "clusters or x values for this scheme; use scheme='rows' or add runs"
        )
    return BootstrapLaw(slopes, intercepts, level, scheme, failed, log_base_value(log_base))


def ci_coverage(
    true_slope: float = 10.0,
    true_intercept: float = 30.0,
    noise: float = 3.0,
    x: Sequence[float] = (2, 5, 10, 25, 50, 100),
    seeds: int = 1,
    n_sim: int = 200,
    level: float = 0.95,
    method: str = "t",
    n_boot: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """How often a slope interval contains the true slope, by simulation.

    Draws ``n_sim`` data sets from the line ``true_slope·log10 x + true_intercept`` plus normal
    noise (sd ``noise``), with ``seeds`` runs at each x, fits each, and counts the intervals at
    ``level`` that contain ``true_slope``. ``method`` is ``"t"`` (the OLS interval) or a bootstrap
    scheme (``"rows"``, ``"within-x"``, ``"clusters"``, clusters being the seeds). Returns the
    coverage with a 95% Wilson interval and the mean interval width.
    """
    rng = np.random.default_rng(seed)
    xs = np.repeat(np.asarray(x, dtype=float), seeds)
    seed_ids = np.tile(np.arange(seeds), len(x))
    hits = 0
    widths = []
    for i in range(n_sim):
        y = true_slope * np.log10(xs) + true_intercept + rng.normal(0, noise, xs.size)
        if method == "t":
            lo, hi = fit_law(xs, y, level=level).slope_ci
        else:
            lo, hi = bootstrap_law(
                xs, y, scheme=method, clusters=seed_ids, n_boot=n_boot, level=level, seed=seed + i
            ).slope_ci
        hits += lo <= true_slope <= hi
        widths.append(hi - lo)
    p = hits / n_sim
    z = stats.norm.ppf(0.975)
    centre = (p + z**2 / (2 * n_sim)) / (1 + z**2 / n_sim)
    half = z * math.sqrt(p * (1 - p) / n_sim + z**2 / (4 * n_sim**2)) / (1 + z**2 / n_sim)
    return {
        "method": method,
        "coverage": p,
        "coverage_lo": float(centre - half),
        "coverage_hi": float(centre + half),
        "n_sim": n_sim,
        "mean_width": float(np.mean(widths)),
    }


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
        "p_value": float(2 * stats.t.sf(abs(t), dof)),
        "dof": dof,
    }


# ----------------------------------------------------------------------------------------------
# Joint law
# ----------------------------------------------------------------------------------------------
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
        level = self.level if level is None else level
        return float(stats.t.ppf(0.5 + level / 2, self.dof)) if self.dof > 0 else math.inf

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
        if np.any(vals <= 0):
            raise ValueError("factor values must be positive (the law uses their logs)")
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


# ----------------------------------------------------------------------------------------------
# Prediction
# ----------------------------------------------------------------------------------------------
def relative_prediction_error(predicted: ArrayLike, actual: ArrayLike) -> np.ndarray | float:
    """The paper's Eq. 5, ``|predicted − actual| / actual``, as a fraction (0.08 = 8%).

    ``actual`` must be positive: the relative error of predicting an R of 0 is undefined.
    """
    p = np.asarray(predicted, dtype=float)
    a = np.asarray(actual, dtype=float)
    if np.any(~(a > 0)):
        raise ValueError(
            "actual R must be positive for a relative error (Eq. 5 divides by it); drop the "
            "rows with R = 0 or NaN, or use the absolute error |predicted − actual|"
        )
    e = np.abs(p - a) / a
    return float(e) if e.ndim == 0 else e


def holdout_prediction(
    x: ArrayLike,
    y: ArrayLike,
    train: ArrayLike | Callable[[np.ndarray], np.ndarray],
    *,
    rr: ArrayLike | None = None,
    average_test: bool = False,
    log_base: float | str = 10,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Fit on the training rows, predict the others; Eq. 5 errors with intervals.

    ``train`` is a boolean mask or a function of x (e.g. ``lambda x: x <= 25``). With
    ``average_test`` the held-out runs at each x are averaged first (the paper's points are
    means over repeats) and the prediction interval is the one for a mean of that many runs.
    Rows with a missing R or RR = 0 are dropped first (with a warning).

    Returns one row per held-out point (x, runs, actual, predicted, pi_lo, pi_hi, covered,
    rel_error) and a summary: the mean relative error with a percentile bootstrap interval that
    resamples the training rows (refitting the line) and the held-out points together.
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    mask = np.asarray(train(xa) if callable(train) else train, dtype=bool).ravel()
    if mask.shape != xa.shape:
        raise ValueError("the training mask must have one entry per row")
    clean_xy(xa, ya, rr)  # validates x and announces dropped rows
    kept = _kept_rows(xa, ya, rr)
    xa, ya, mask = xa[kept], ya[kept], mask[kept]
    if mask.all() or not mask.any():
        raise ValueError("the split must leave at least one training and one held-out row")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LawDataWarning)
        fit = fit_law(xa[mask], ya[mask], log_base=log_base, level=level)
    test = pd.DataFrame({"x": xa[~mask], "actual": ya[~mask]})
    if average_test:
        test = test.groupby("x", sort=True)["actual"].agg(["mean", "size"]).reset_index()
        test.columns = ["x", "actual", "runs"]
    else:
        test["runs"] = 1
    zero = test["actual"] <= 0
    if zero.any():
        warnings.warn(
            f"dropped {int(zero.sum())} held-out point(s) with R = 0: Eq. 5 divides by the actual "
            "R, so their relative error is undefined",
            LawDataWarning,
            stacklevel=2,
        )
        test = test[~zero]
        if test.empty:
            raise ValueError("every held-out point has R = 0: Eq. 5 is undefined for all of them")
    xt, yt, runs = (test[c].to_numpy(dtype=float) for c in ("x", "actual", "runs"))
    pred = fit.predict(xt)
    lo, hi = fit.prediction_interval(xt, n_runs=runs)
    err = np.asarray(relative_prediction_error(pred, yt), dtype=float).ravel()
    table = pd.DataFrame(
        {
            "x": xt,
            "runs": runs.astype(int),
            "actual": yt,
            "predicted": pred,
            "pi_lo": lo,
            "pi_hi": hi,
            "covered": (yt >= lo) & (yt <= hi),
            "rel_error": err,
        }
    )
    rng = np.random.default_rng(seed)
    u_train = to_log(fit.x, log_base)
    w = bootstrap_weights(fit.n, n_boot, scheme="rows", rng=rng)
    slopes, intercepts = _weighted_lines(u_train, fit.y, w)
    ok = np.isfinite(slopes)
    idx = rng.integers(0, xt.size, size=(n_boot, xt.size))
    u_test = to_log(xt, log_base)
    boot_pred = slopes[:, None] * u_test[idx] + intercepts[:, None]
    boot_err = np.mean(np.abs(boot_pred - yt[idx]) / yt[idx], axis=1)[ok]
    q = np.quantile(boot_err, [(1 - level) / 2, (1 + level) / 2])
    summary = {
        "mean_rel_error": float(err.mean()),
        "ci_lo": float(q[0]),
        "ci_hi": float(q[1]),
        "coverage": float(table["covered"].mean()),
        "n_train": int(mask.sum()),
        "n_test": int(xt.size),
        "slope": fit.slope,
        "intercept": fit.intercept,
    }
    return table, summary


def predict_planned(
    fit: LawFit | JointLawFit, level: float | None = None, **values: float
) -> dict[str, float]:
    """Predict R for a planned configuration, before training anything.

    A :class:`LawFit` takes the factor's value as ``x=``; a :class:`JointLawFit` takes every
    varying factor by name (``P=40, L=10``). Returns the predicted R with a prediction interval
    for one new run; values outside the fitted range are extrapolations, marked as such.
    """
    level = fit.level if level is None else level
    if isinstance(fit, LawFit):
        if set(values) != {"x"}:
            raise ValueError("a one-factor law takes one value: predict_planned(fit, x=...)")
        x0 = float(values["x"])
        if not x0 > 0:
            raise ValueError(f"x must be positive, got {x0:g}")
        lo, hi = fit.prediction_interval(np.array([x0]), level)
        extrapolated = not (fit.x.min() <= x0 <= fit.x.max())
        return {
            "predicted": float(fit.predict(np.array([x0]))[0]),
            "pi_lo": float(lo[0]),
            "pi_hi": float(hi[0]),
            "level": level,
            "extrapolated": extrapolated,
        }
    lo, hi = fit.prediction_interval(level, **values)
    return {
        "predicted": fit.predict(**values),
        "pi_lo": lo,
        "pi_hi": hi,
        "level": level,
        "extrapolated": fit.extrapolates(**values),
    }


# ----------------------------------------------------------------------------------------------
# Tables: row selection and grouped fits (what the CLI calls)
# ----------------------------------------------------------------------------------------------
def parse_where(items: Sequence[str] | None) -> dict[str, list[str]]:
    """``["figure=fig2", "factor=P"]`` -> ``{"figure": ["fig2"], "factor": ["P"]}``."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        col, sep, val = item.partition("=")
        if not sep or not col.strip():
            raise ValueError(f"--where takes COL=VALUE, got {item!r}")
        out.setdefault(col.strip(), []).append(val.strip())
    return out


def select_rows(df: pd.DataFrame, where: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows matching every ``column: value`` condition (a list of values means any of them).

    Numeric columns compare numerically (``P=5`` matches 5.0), others as text.
    """
    mask = pd.Series(True, index=df.index)
    for col, wanted in (where or {}).items():
        if col not in df.columns:
            raise ValueError(
                f"no column {col!r} to select on; columns: {', '.join(map(str, df.columns))}"
            )
        values = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
        series = df[col]
        if pd.api.types.is_numeric_dtype(series):
            try:
                nums = [float(v) for v in values]
            except (TypeError, ValueError):
                raise ValueError(
                    f"column {col!r} is numeric; got non-numeric value(s) {values}"
                ) from None
            m = np.zeros(len(df), dtype=bool)
            for v in nums:
                m |= np.isclose(series.to_numpy(dtype=float), v)
            mask &= m
        else:
            mask &= series.astype(str).isin([str(v) for v in values])
    out = df[mask]
    if out.empty:
        raise ValueError(f"no rows match {dict(where or {})}")
    return out


def fit_law_frame(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    where: Mapping[str, Any] | None = None,
    group_by: str | None = None,
    rr_col: str | None = "RR",
    log_base: float | str = 10,
    level: float = 0.95,
    robust: bool = False,
    ci: str = "t",
    scheme: str = "within-x",
    cluster: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> LawFit | dict[str, LawFit]:
    """Fit the law to a table: rows chosen by ``where``, one fit per ``group_by`` value.

    ``rr_col`` names the recall-rate column used to drop RR = 0 rows (ignored when absent).
    ``ci="bootstrap"`` replaces the slope interval by a percentile bootstrap (``scheme``: rows,
    within-x or clusters; ``cluster`` names the cluster column, e.g. ``seed``).
    """
    for col in (x, y):
        if col not in df.columns:
            raise ValueError(f"no column {col!r}; columns: {', '.join(map(str, df.columns))}")
    if ci not in {"t", "bootstrap"}:
        raise ValueError(f"ci must be 't' or 'bootstrap', got {ci!r}")
    data = select_rows(df, where) if where else df
    if group_by is not None and group_by not in data.columns:
        raise ValueError(f"no column {group_by!r} to group by")

    def one(part: pd.DataFrame) -> LawFit:
        xs = pd.to_numeric(part[x], errors="coerce").to_numpy(dtype=float)
        ys = pd.to_numeric(part[y], errors="coerce").to_numpy(dtype=float)
        rr = (
            pd.to_numeric(part[rr_col], errors="coerce").to_numpy(dtype=float)
            if rr_col and rr_col in part.columns and rr_col != y
            else None
        )
        fit = fit_law(xs, ys, rr=rr, log_base=log_base, level=level, robust=robust, name=x)
        if ci == "bootstrap":
            clusters = part[cluster].to_numpy() if cluster else None
            if cluster and cluster not in part.columns:
                raise ValueError(f"no column {cluster!r} to bootstrap over")
            sch = "clusters" if cluster else scheme
            boot = bootstrap_law(
                xs,
                ys,
                scheme=sch,
                clusters=clusters,
                rr=rr,
                n_boot=n_boot,
                level=level,
                log_base=log_base,
                seed=seed,
            )
            fit.slope_ci_override = boot.slope_ci
        return fit

    if group_by is None:
        return one(data)
    return {str(k): one(g) for k, g in data.groupby(group_by, sort=True)}


# ----------------------------------------------------------------------------------------------
# The paper's own figures
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


def _loo_error(x: np.ndarray, y: np.ndarray, make: Callable[[np.ndarray, np.ndarray], LawFit]):
    errs = []
    for i in range(x.size):
        m = np.arange(x.size) != i
        if np.unique(x[m]).size < MIN_DISTINCT_X:
            continue
        errs.append(relative_prediction_error(make(x[m], y[m]).predict(x[i : i + 1])[0], y[i]))
    return float(np.mean(errs)) if errs else math.nan


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
                "loo_keep": _loo_error(x, y, lambda a, b, s=source: reanchor_law(s, a, b)),
                "loo_refit": _loo_error(x, y, fit_law),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Plotting
# ----------------------------------------------------------------------------------------------
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
    import matplotlib.pyplot as plt

    ax = plt.gca() if ax is None else ax
    lo_x, hi_x = x_range or (float(fit.x.min()), float(fit.x.max()))
    grid = np.geomspace(lo_x, hi_x, 200)
    (line,) = ax.plot(grid, fit.predict(grid), color=color, label=label)
    color = line.get_color()
    if band is not None:
        if band not in {"prediction", "confidence"}:
            raise ValueError("band must be 'prediction', 'confidence' or None")
        lo, hi = (fit.prediction_interval if band == "prediction" else fit.confidence_band)(grid)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.15, linewidth=0)
    if points:
        ax.scatter(fit.x, fit.y, color=color, s=18, marker=marker, alpha=0.8, zorder=3)
    log_axis(ax)
    return ax


def log_axis(ax, which: str = "x"):
    """Make an axis logarithmic with plain labels at 1, 2 and 5 times powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
    return ax


__all__ = [
    "FIG3_SOURCE",
    "BootstrapLaw",
    "JointLawFit",
    "LawDataWarning",
    "LawFit",
    "bootstrap_law",
    "bootstrap_weights",
    "ci_coverage",
    "clean_xy",
    "critical_value",
    "curvature_check",
    "fit_joint_law",
    "fit_law",
    "fit_law_frame",
    "fit_paper_panels",
    "holdout_prediction",
    "log_base_value",
    "paper_fig3_errors",
    "log_axis",
    "plot_law_fit",
    "parse_where",
    "predict_planned",
    "reanchor_law",
    "relative_prediction_error",
    "select_rows",
    "to_log",
    "transfer_table",
]
