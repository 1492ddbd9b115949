"""An exactly solvable model of knowledge overshadowing: regularised softmax regression.

The model
---------
One knowledge set (SPEC §1) is reduced to its bare bones. A prompt is a *bag of token features*:
``k = (L - 1) * span_len`` shared tokens (the span ``X_share``) plus the ``span_len`` tokens of
its distinct span. Every token ``t`` owns a weight vector ``w_t`` in ``R^K`` (one logit per
answer; answer 0 is ``Y_a``, answer 1 is ``Y_b``, answers 2..K-1 are never correct and only
take probability mass), and the model predicts

    p(y | prompt) = softmax( sum_{t in prompt} w_t )_y .

The corpus holds ``m = P * n`` dominant statements ``X_share ⊙ x_a_i -> Y_a`` and ``n``
subordinate statements ``X_share ⊙ x_b_j -> Y_b``, each distinct span with its own tokens. The
weights minimise the L2-regularised mean cross-entropy

    J(W) = (1/N) sum_statements CE(prompt, answer) + (lam / 2) * sum_t ‖w_t‖^2 ,   N = m + n.

(With several independent sets in one corpus the objective splits into one such problem per set,
with ``lam`` multiplied by the number of sets: the sets share no tokens.)

Why it is solvable
------------------
``J`` is strictly convex (cross-entropy is convex in the logits, the penalty strictly convex), so
it has one minimiser. ``J`` is unchanged when two dominant spans swap their tokens, when two
subordinate spans swap, or when two shared tokens swap; the unique minimiser is therefore fixed
by these symmetries: all shared tokens carry the same weight, all dominant spans the same, all
subordinate spans the same. Write ``v`` for the summed logit contribution of ``X_share`` and
``a``, ``b`` for the contribution of one dominant / subordinate distinct span. A span of ``k``
equal token weights ``u`` contributes ``k u`` to the logits and ``k ‖u‖^2 = ‖k u‖^2 / k`` to the
penalty, so the whole problem reduces to ``3K`` numbers:

    J(v, a, b) = (m/N) CE(v + a, Y_a) + (n/N) CE(v + b, Y_b)
                 + (lam/2) ( ‖v‖^2 / ((L-1) s) + m ‖a‖^2 / s + n ‖b‖^2 / s ),   s = span_len.

:func:`solve` minimises this with Newton's method and an exact Hessian to machine precision;
:func:`solve_full` minimises the original problem over every token's weights with SciPy, an
independent check that the reduction is right.

What it shows
-------------
The shared span is *cheap*: its penalty is divided by ``L - 1``, because ``L - 1`` tokens share
the load, while each distinct span must pay in full and serves one statement. Regularisation
therefore pushes the model to explain the answers through ``X_share``, which sees ``m`` votes for
``Y_a`` against ``n`` for ``Y_b``: the dominant answer leaks into the subordinate prompts. In the
strongly regularised limit the logits are ``-grad J(0) / lam`` and the subordinate prompt's
margin for ``Y_a`` over ``Y_b`` is proportional to ``(L - 1)(m - n) - 1``
(:func:`linear_regime_margin`): greedy decoding hallucinates as soon as ``(L-1)(P-1)n > 1``. For
two answers the weight decay at which the greedy answer flips is known in closed form
(:func:`flip_threshold`): below it the model memorises ``Y_b``, above it the model answers ``Y_a``.
Popularity and length both lower that threshold, so with any fixed weight decay the hallucination
switches on as P or L grows; a larger weight decay switches it on earlier.

Read the soft numbers with care: ``p(Y_a | sub)`` rises with P and L, and with weight decay up
to a point, but as ``lam -> infinity`` nothing is learnt and every probability returns to
``1 / n_answers``; the ratio ``soft_R = p(Y_a | sub) / p(Y_a | dom)`` and the greedy indicator HR
rise monotonically with ``lam``. A prompt with an unseen distinct span (``p_new``) gets Y_a with
high probability at every weight decay: the shared span alone votes for the majority.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from overshadow_lab.metrics import relative_hallucination_rate

FACTORS = ("P", "L", "lam", "n", "span_len", "n_answers")
CURVE_COLUMNS = [
    "factor",
    "P",
    "L",
    "lam",
    "n",
    "n_answers",
    "p_Ya_given_sub",
    "p_Yb_given_sub",
    "p_Ya_given_dom",
    "p_Ya_given_new",
    "HR",
    "RR",
    "R",
    "soft_R",
    "margin_sub",
    "converged",
]


@dataclass(frozen=True)
class SolvableConfig:
    """One knowledge set of the solvable model.

    ``P`` relative popularity (m = P * n dominant statements; need not be an integer here),
    ``L`` relative length (>= 1; ``(L - 1) * span_len`` shared tokens), ``n`` subordinate
    statements, ``lam`` L2 weight decay (> 0; per set, on the mean cross-entropy), ``span_len``
    tokens in each distinct span, ``n_answers`` answers in the softmax (>= 2).
    """

    P: float = 5.0
    L: float = 5.0
    n: int = 1
    lam: float = 0.1
    span_len: int = 1
    n_answers: int = 2

    def __post_init__(self) -> None:
        if not (self.P > 0 and math.isfinite(self.P)):
            raise ValueError(f"P must be a positive number (m = P * n statements), got {self.P}")
        if not (self.L >= 1 and math.isfinite(self.L)):
            raise ValueError(
                f"L must be >= 1 (L = 1 means no shared span; L = (|X_share| + |x_b|) / |x_b|), got {self.L}"
            )
        if not (self.lam > 0 and math.isfinite(self.lam)):
            raise ValueError(
                f"lam must be > 0: without weight decay the optimum does not exist "
                f"(the weights diverge); got {self.lam}"
            )
        if int(self.n) != self.n or self.n < 1:
            raise ValueError(f"n must be a positive integer, got {self.n}")
        if int(self.span_len) != self.span_len or self.span_len < 1:
            raise ValueError(f"span_len must be a positive integer, got {self.span_len}")
        if int(self.n_answers) != self.n_answers or self.n_answers < 2:
            raise ValueError(
                f"n_answers must be an integer >= 2 (Y_a, Y_b, ...), got {self.n_answers}"
            )

    @property
    def m(self) -> float:
        """Number of dominant statements, P * n."""
        return self.P * self.n

    @property
    def n_shared(self) -> float:
        """Number of shared tokens, (L - 1) * span_len."""
        return (self.L - 1) * self.span_len


@dataclass
class SolvableSolution:
    """The unique optimum of the solvable model, as summed logit contributions.

    ``v``: the shared span's contribution to the logits; ``a``: one dominant distinct span's;
    ``b``: one subordinate distinct span's (arrays of length ``n_answers``; index 0 = Y_a,
    1 = Y_b). The per-token weights are ``v / n_shared`` and ``a / span_len``, ``b / span_len``.
    """

    config: SolvableConfig
    v: np.ndarray
    a: np.ndarray
    b: np.ndarray
    objective: float
    grad_norm: float
    iterations: int
    converged: bool
    method: str = "reduced-newton"
    extra: dict = field(default_factory=dict)

    # -- probabilities -------------------------------------------------------------------------
    @property
    def p_sub(self) -> np.ndarray:
        """p(. | X_share ⊙ x_b): the answer distribution on a (trained) subordinate prompt."""
        return softmax(self.v + self.b)

    @property
    def p_dom(self) -> np.ndarray:
        """p(. | X_share ⊙ x_a): the answer distribution on a (trained) dominant prompt."""
        return softmax(self.v + self.a)

    @property
    def p_new(self) -> np.ndarray:
        """p(. | X_share ⊙ x_new) for a distinct span never seen in training (weight 0)."""
        return softmax(self.v)

    @property
    def HR(self) -> float:
        """Greedy hallucination indicator: 1 if the subordinate prompt's argmax is Y_a."""
        return float(np.argmax(self.v + self.b) == 0)

    @property
    def RR(self) -> float:
        """Greedy recall indicator: 1 if the dominant prompt's argmax is Y_a."""
        return float(np.argmax(self.v + self.a) == 0)

    @property
    def margin_sub(self) -> float:
        """Logit of Y_a minus logit of Y_b on the subordinate prompt (> 0: greedy hallucinates)."""
        z = self.v + self.b
        return float(z[0] - z[1])

    def as_row(self) -> dict:
        """The solution's summary as a flat dict (one row of :func:`hallucination_curve`)."""
        p_sub, p_dom = self.p_sub, self.p_dom
        c = self.config
        return {
            "P": c.P,
            "L": c.L,
            "lam": c.lam,
            "n": c.n,
            "n_answers": c.n_answers,
            "p_Ya_given_sub": float(p_sub[0]),
            "p_Yb_given_sub": float(p_sub[1]),
            "p_Ya_given_dom": float(p_dom[0]),
            "p_Ya_given_new": float(self.p_new[0]),
            "HR": self.HR,
            "RR": self.RR,
            "R": float(relative_hallucination_rate(self.HR, self.RR)),
            "soft_R": float(100.0 * p_sub[0] / p_dom[0]),
            "margin_sub": self.margin_sub,
            "converged": self.converged,
        }


# -- the objective ------------------------------------------------------------------------------
def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _logsumexp(z: np.ndarray) -> float:
    zmax = float(np.max(z))
    return zmax + math.log(float(np.sum(np.exp(z - zmax))))


def reduced_objective(
    x: np.ndarray, config: SolvableConfig
) -> tuple[float, np.ndarray, np.ndarray]:
    """The symmetry-reduced objective J(v, a, b), its gradient and its Hessian.

    ``x`` concatenates ``v, a, b`` (each of length ``K = n_answers``); when ``L == 1`` there is
    no shared span and ``x`` is ``a, b`` only. Returns ``(J, grad, Hessian)``.
    """
    c = config
    K = c.n_answers
    has_shared = c.n_shared > 0
    x = np.asarray(x, dtype=float)
    if has_shared:
        v, a, b = x[:K], x[K : 2 * K], x[2 * K :]
    else:
        v, a, b = np.zeros(K), x[:K], x[K:]
    m, n, s = c.m, float(c.n), float(c.span_len)
    N = m + n
    wd, ws = m / N, n / N
    zd, zs = v + a, v + b
    pd_, ps = softmax(zd), softmax(zs)
    ea, eb = np.eye(K)[0], np.eye(K)[1]
    f = wd * (_logsumexp(zd) - zd[0]) + ws * (_logsumexp(zs) - zs[1])
    f += 0.5 * c.lam * (m * a @ a / s + n * b @ b / s)
    gd, gs = wd * (pd_ - ea), ws * (ps - eb)
    Hd = wd * (np.diag(pd_) - np.outer(pd_, pd_))
    Hs = ws * (np.diag(ps) - np.outer(ps, ps))
    eye = np.eye(K)
    g_a = gd + c.lam * m * a / s
    g_b = gs + c.lam * n * b / s
    H_aa = Hd + c.lam * m / s * eye
    H_bb = Hs + c.lam * n / s * eye
    zero = np.zeros((K, K))
    if not has_shared:
        return float(f), np.concatenate([g_a, g_b]), np.block([[H_aa, zero], [zero, H_bb]])
    k = c.n_shared
    f += 0.5 * c.lam * v @ v / k
    g_v = gd + gs + c.lam * v / k
    H_vv = Hd + Hs + c.lam / k * eye
    grad = np.concatenate([g_v, g_a, g_b])
    hess = np.block([[H_vv, Hd, Hs], [Hd, H_aa, zero], [Hs, zero, H_bb]])
    return float(f), grad, hess


def newton_minimize(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]],
    x0: np.ndarray,
    tol: float = 1e-12,
    max_iter: int = 200,
) -> tuple[np.ndarray, float, np.ndarray, int, bool]:
    """Damped Newton's method with Armijo backtracking for a smooth strictly convex function.

    ``fun(x) -> (f, grad, hess)``. Stops when the largest gradient entry is below ``tol``.
    Returns ``(x, f, grad, iterations, converged)``.
    """
    x = np.asarray(x0, dtype=float).copy()
    f, g, H = fun(x)
    for it in range(max_iter):
        if np.max(np.abs(g)) < tol:
            return x, f, g, it, True
        step = np.linalg.solve(H, -g)
        slope = float(g @ step)
        if -slope < 1e-13 * max(1.0, abs(f)):
            # the decrease is below the precision of f: take the full step (quadratic
            # convergence) if it shrinks the gradient, else stop at machine precision
            x_new = x + step
            f_new, g_new, H_new = fun(x_new)
            if np.max(np.abs(g_new)) >= np.max(np.abs(g)):
                break
        else:
            t = 1.0
            while True:
                x_new = x + t * step
                f_new, g_new, H_new = fun(x_new)
                if f_new <= f + 1e-4 * t * slope or t < 1e-10:
                    break
                t *= 0.5
        x, f, g, H = x_new, f_new, g_new, H_new
    return x, f, g, it, bool(np.max(np.abs(g)) < 1e3 * tol)


def solve(
    config: SolvableConfig | None = None, tol: float = 1e-12, **overrides
) -> SolvableSolution:
    """The exact optimum of the solvable model (symmetry-reduced problem, Newton's method).

    ``solve(P=10, L=5, lam=0.1)`` or ``solve(SolvableConfig(...))``. ``converged`` says the
    gradient's largest entry fell below ``tol`` (``grad_norm`` is that entry).
    """
    config = (
        replace(config or SolvableConfig(), **overrides)
        if overrides
        else config or SolvableConfig()
    )
    K = config.n_answers
    n_blocks = 3 if config.n_shared > 0 else 2
    x, f, g, it, ok = newton_minimize(
        lambda z: reduced_objective(z, config), np.zeros(n_blocks * K), tol=tol
    )
    if n_blocks == 3:
        v, a, b = x[:K], x[K : 2 * K], x[2 * K :]
    else:
        v, a, b = np.zeros(K), x[:K], x[K:]
    return SolvableSolution(config, v, a, b, f, float(np.max(np.abs(g))), it, ok)


# -- brute force: every token's weights -----------------------------------------------------------
def full_problem(config: SolvableConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """The unreduced problem: design matrix X (statements x tokens, 0/1), labels, token groups.

    Needs integer ``m = P * n`` and integer ``(L - 1) * span_len``. Row order: the m dominant
    statements, then the n subordinate ones. Column order: shared tokens, then each dominant
    span's tokens, then each subordinate span's tokens (``groups`` gives the column slices).
    """
    c = config
    m, k = c.m, c.n_shared
    if abs(m - round(m)) > 1e-9 or abs(k - round(k)) > 1e-9:
        raise ValueError(
            f"the full problem needs integer m = P*n (got {m}) and integer (L-1)*span_len "
            f"(got {k}); pick P and L accordingly or use solve() for the reduced problem"
        )
    m, k, n, s = int(round(m)), int(round(k)), c.n, c.span_len
    F = k + (m + n) * s
    X = np.zeros((m + n, F))
    X[:, :k] = 1.0
    for i in range(m + n):
        X[i, k + i * s : k + (i + 1) * s] = 1.0
    y = np.array([0] * m + [1] * n)
    groups = {
        "shared": slice(0, k),
        "dominant": slice(k, k + m * s),
        "subordinate": slice(k + m * s, F),
    }
    return X, y, groups


def full_objective(w: np.ndarray, X: np.ndarray, y: np.ndarray, lam: float, K: int):
    """Mean cross-entropy of softmax(X W) plus (lam/2)|W|^2, and its gradient (W flattened)."""
    W = w.reshape(X.shape[1], K)
    Z = X @ W
    Zmax = Z.max(axis=1, keepdims=True)
    lse = Zmax[:, 0] + np.log(np.exp(Z - Zmax).sum(axis=1))
    N = X.shape[0]
    f = float(np.mean(lse - Z[np.arange(N), y])) + 0.5 * lam * float(w @ w)
    G = softmax(Z)
    G[np.arange(N), y] -= 1.0
    grad = (X.T @ G) / N + lam * W
    return f, grad.ravel()


def solve_full(config: SolvableConfig, gtol: float = 1e-11) -> SolvableSolution:
    """Brute force: minimise over every token's weight vector with SciPy's L-BFGS.

    Independent of the symmetry argument; used to check :func:`solve`. The returned
    ``v, a, b`` are the mean contributions of the shared span, the dominant spans and the
    subordinate spans; ``extra["W"]`` holds the full weight matrix.
    """
    from scipy.optimize import minimize

    X, y, groups = full_problem(config)
    K = config.n_answers
    res = minimize(
        full_objective,
        np.zeros(X.shape[1] * K),
        args=(X, y, config.lam, K),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": gtol, "ftol": 1e-15, "maxiter": 20000, "maxcor": 50},
    )
    W = res.x.reshape(X.shape[1], K)
    s = config.span_len
    v = W[groups["shared"]].sum(axis=0)
    a = W[groups["dominant"]].reshape(-1, s, K).sum(axis=1).mean(axis=0)
    b = W[groups["subordinate"]].reshape(-1, s, K).sum(axis=1).mean(axis=0)
    _, g = full_objective(res.x, X, y, config.lam, K)
    gmax = float(np.max(np.abs(g)))
    return SolvableSolution(
        config, v, a, b, float(res.fun), gmax, int(res.nit), gmax < 1e-8, "full-lbfgs", {"W": W}
    )


# -- closed forms ---------------------------------------------------------------------------------
def linear_regime_margin(P: float, L: float, n: int = 1) -> float:
    """Sign of the greedy hallucination when weight decay dominates (lam -> infinity).

    There the optimum is ``-grad J(0) / lam`` and the subordinate prompt's logit margin
    ``z_a - z_b`` equals ``span_len / (lam N) * ((L - 1)(m - n) - 1)`` (any number of answers).
    Returns ``(L - 1)(m - n) - 1`` with ``m = P n``: positive means the greedy answer is Y_a.
    """
    return (L - 1) * (P * n - n) - 1


def flip_threshold(P: float, L: float, n: int = 1, span_len: int = 1) -> float:
    """The weight decay above which the greedy answer on a subordinate prompt is Y_a (2 answers).

    With two answers the stationarity conditions at the flip (``v + b`` has equal logits) solve
    in closed form: with ``q = (n + 1/(L-1)) / (2m)`` and ``N = m + n``,

        lam* = 2 s (1/2 + q) / (N log((1 - q) / q)).

    Returns ``inf`` when ``q >= 1/2``, i.e. ``(L - 1)(m - n) <= 1``: no weight decay makes the
    greedy answer flip.
    """
    if L <= 1:
        return math.inf
    m = P * n
    q = (n + 1.0 / (L - 1)) / (2.0 * m)
    if q >= 0.5:
        return math.inf
    return 2.0 * span_len * (0.5 + q) / ((m + n) * math.log((1.0 - q) / q))


# -- curves -------------------------------------------------------------------------------------
def hallucination_curve(factor: str, values: Sequence[float], **fixed) -> pd.DataFrame:
    """Solve the model along one factor and tabulate the overshadowing it predicts.

    ``factor`` in ``P, L, lam, n, span_len, n_answers``; ``fixed`` sets the other
    :class:`SolvableConfig` fields (defaults otherwise). Columns: factor, P, L, lam, n,
    n_answers, p_Ya_given_sub, p_Yb_given_sub, p_Ya_given_dom, p_Ya_given_new, HR, RR (greedy
    indicators), R (= HR/RR in percent), soft_R (= 100 p(Y_a|sub) / p(Y_a|dom)), margin_sub,
    converged.
    """
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}: use one of {', '.join(FACTORS)}")
    unknown = set(fixed) - set(asdict(SolvableConfig()))
    if unknown:
        raise ValueError(
            f"unknown settings {sorted(unknown)}; SolvableConfig has {list(asdict(SolvableConfig()))}"
        )
    if factor in fixed:
        raise ValueError(f"{factor!r} is the factor being varied; do not also fix it")
    rows = []
    for value in values:
        sol = solve(SolvableConfig(**{**fixed, factor: value}))
        rows.append({"factor": factor, **sol.as_row()})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


__all__ = [
    "CURVE_COLUMNS",
    "SolvableConfig",
    "SolvableSolution",
    "flip_threshold",
    "full_objective",
    "full_problem",
    "hallucination_curve",
    "linear_regime_margin",
    "newton_minimize",
    "reduced_objective",
    "softmax",
    "solve",
    "solve_full",
]
