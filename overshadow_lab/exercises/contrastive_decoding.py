"""Exercises of the chapter "Contrastive decoding": the plausibility mask, R-PMI and ERM, and an
experiment: where does CoDA's detection rank the overshadowed token (:func:`check_true_span_rank`
grades the analysis function; the interpretation is graded with the rubric in the chapter)."""

from __future__ import annotations

import math

import numpy as np
import torch

from overshadow_lab.decoding import coda_step, plausible
from overshadow_lab.exercises.framework import Case, Exercise, Mistake, register


def _pair(seed: int, vocab: int = 12, sharp: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    a = torch.log_softmax(sharp * torch.randn(vocab, generator=g, dtype=torch.float64), -1)
    b = torch.log_softmax(a + 1.5 * torch.randn(vocab, generator=g, dtype=torch.float64), -1)
    return a, b


def _hand_pair():
    p = torch.tensor([0.4, 0.35, 0.245, 0.005], dtype=torch.float64).log()
    pm = torch.tensor([0.8895, 0.001, 0.1, 0.0095], dtype=torch.float64).log()
    return p, pm


def _ref_plausible_set(logp, alpha=0.01):
    return plausible(torch.as_tensor(logp), alpha)


def _ref_rpmi_sum(logp, logp_masked, alpha=0.01):
    return float(coda_step(torch.as_tensor(logp), torch.as_tensor(logp_masked), alpha).rpmi_sum)


def _ref_erm(logp, logp_masked, alpha=0.01):
    """ERM; S (negative R-PMI on the common set) is never empty in the cases below."""
    return float(coda_step(torch.as_tensor(logp), torch.as_tensor(logp_masked), alpha).erm)


def _plausible_cases():
    cases = [
        Case((_hand_pair()[0],), label="four tokens, alpha 0.01"),
        Case((_hand_pair()[1], 0.05), label="alpha 0.05"),
    ]
    cases += [
        Case((_pair(s)[0], a), label=f"random distribution (seed {s}), alpha {a}")
        for s, a in ((0, 0.01), (1, 0.1), (2, 0.3))
    ]
    flat = torch.full((5,), -math.log(5), dtype=torch.float64)
    cases.append(Case((flat, 0.5), label="edge case: uniform distribution, every token plausible"))
    cases.append(Case((_hand_pair()[0], 1.0), label="edge case: alpha = 1 keeps the top token"))
    return cases


def _pair_cases():
    cases = [Case(_hand_pair(), label="the chapter's four-token example")]
    for s in range(6):
        a, b = _pair(s)
        if (plausible(a, 0.01) & plausible(b, 0.01) & (a < b)).any():  # S non-empty
            cases.append(Case((a, b), label=f"random pair (seed {s})"))
    same = _hand_pair()[0]
    cases.append(Case((same, same - 0.0), label="edge case: X' = X (no escaping tokens)"))
    # token 1 is plausible under X only, yet X' gives it more probability than X does
    sharp = (
        torch.tensor([0.5, 0.006, 0.494], dtype=torch.float64).log(),
        torch.tensor([0.99, 0.008, 0.002], dtype=torch.float64).log(),
    )
    cases.append(Case(sharp, label="edge case: an escaping token that X' likes more than X"))
    return cases


check_plausible_set = register(
    Exercise(
        name="plausible_set",
        chapter="contrastive_decoding",
        reference=_ref_plausible_set,
        description="Li et al.'s plausibility head: tokens with p(y) >= alpha * max p, from log-probs.",
        cases=_plausible_cases,
        mistakes=[
            Mistake(
                lambda lp, alpha=0.01: torch.as_tensor(lp).exp() >= alpha,
                "the threshold is relative: alpha times the largest probability, not alpha itself",
            ),
            Mistake(
                lambda lp, alpha=0.01: torch.as_tensor(lp) >= alpha * torch.as_tensor(lp).max(),
                "in log space the threshold is max log p + log(alpha), not alpha * max log p",
            ),
            Mistake(
                lambda lp, alpha=0.01: (
                    torch.as_tensor(lp) > torch.as_tensor(lp).max() + math.log(alpha)
                ),
                "keep tokens exactly at the threshold (>=), and the top token when alpha = 1",
            ),
        ],
    )
)

check_relative_pmi_sum = register(
    Exercise(
        name="relative_pmi_sum",
        chapter="contrastive_decoding",
        reference=_ref_rpmi_sum,
        description="R-PMI_sum: the sum of min(log p(y|X) - log p(y|X'), 0) over V_top(X) ∩ V_top(X').",
        cases=_pair_cases,
        rtol=1e-6,
        atol=1e-9,
        mistakes=[
            Mistake(
                lambda a, b, alpha=0.01: float(((a - b).clamp(max=0)).sum()),
                "sum only over the common plausible set V_top(X) ∩ V_top(X'), not the whole vocabulary",
            ),
            Mistake(
                lambda a, b, alpha=0.01: float(
                    torch.where(plausible(a, alpha) & plausible(b, alpha), a - b, 0).sum()
                ),
                "R-PMI_sum keeps only the negative R-PMI values: sum min(R-PMI, 0)",
            ),
            Mistake(
                lambda a, b, alpha=0.01: float(
                    torch.where(
                        plausible(a, alpha) & plausible(b, alpha), (b - a).clamp(max=0), 0
                    ).sum()
                ),
                "R-PMI is log p(y|X) - log p(y|X'): the full prompt first, the masked prompt second",
            ),
            Mistake(
                lambda a, b, alpha=0.01: float(
                    torch.where(plausible(a, alpha), (a - b).clamp(max=0), 0).sum()
                ),
                "the common set needs the token to be plausible under X' too",
            ),
        ],
    )
)

check_escape_reward = register(
    Exercise(
        name="escape_reward",
        chapter="contrastive_decoding",
        reference=_ref_erm,
        description="ERM: sum over V_esc = V_top(X) minus V_top(X') of log p(y|X) - min over S of log p(y'|X').",
        cases=_pair_cases,
        rtol=1e-6,
        atol=1e-9,
        mistakes=[
            Mistake(
                lambda a, b, alpha=0.01: float(
                    torch.where(
                        plausible(a, alpha) & ~plausible(b, alpha),
                        a - torch.where(plausible(b, alpha), b, math.inf).min(),
                        0,
                    ).sum()
                ),
                "the minimum runs over S (common tokens with negative R-PMI), not all of V_top(X')",
            ),
            Mistake(
                lambda a, b, alpha=0.01: float(
                    torch.where(
                        plausible(a, alpha) & ~plausible(b, alpha),
                        a
                        - torch.where(
                            plausible(a, alpha) & plausible(b, alpha) & (a < b), a, math.inf
                        ).min(),
                        0,
                    ).sum()
                ),
                "the minimum is of log p(y'|X'), the masked prompt's log-probabilities",
            ),
            Mistake(
                lambda a, b, alpha=0.01: float(
                    torch.where(
                        plausible(b, alpha) & ~plausible(a, alpha),
                        b
                        - torch.where(
                            plausible(a, alpha) & plausible(b, alpha) & (a < b), b, math.inf
                        ).min(),
                        0,
                    ).sum()
                ),
                "escaping tokens are plausible under X but not under X' (V_top(X) minus V_top(X'))",
            ),
        ],
    )
)


# -- an experiment: does detection find the overshadowed token? ------------------------------------
def _ref_true_span_rank(indicators, true_pos):
    """Rank (1 = first) of candidate ``true_pos`` when the candidates are sorted by indicator,
    largest first; a candidate tied with it counts half (it is ahead half the time)."""
    ind = np.asarray(indicators, dtype=float)
    if not 0 <= int(true_pos) < len(ind):
        raise IndexError(f"true_pos={true_pos} is not a candidate index (0..{len(ind) - 1})")
    mine = ind[int(true_pos)]
    others = np.delete(ind, int(true_pos))
    return float(1 + np.sum(others > mine) + 0.5 * np.sum(others == mine))


def _rank_cases():
    inf = math.inf
    return [
        Case(([0.5, 2.0, 1.0], 1), label="the true candidate has the largest indicator"),
        Case(([3.0, 2.0, 1.0, -1.0], 3), label="the true candidate comes last"),
        Case(([-2.0, -0.5, -1.0], 2), label="every indicator negative (no alarm)"),
        Case(([2.0, 2.0, 3.0], 0), label="a tie with another candidate, one ahead"),
        Case(([1.0, 1.0, 0.0], 0), label="a tie with another candidate"),
        Case(([-inf, -inf, -3.0], 0), label="edge case: -inf indicators (empty S), tied"),
        Case(([2.0], 0), label="edge case: a single candidate"),
        Case(
            ([1.0, 2.0], 2), label="edge case: true_pos outside the candidates", raises=IndexError
        ),
    ]


check_true_span_rank = register(
    Exercise(
        name="true_span_rank",
        chapter="contrastive_decoding",
        reference=_ref_true_span_rank,
        description="Rank (1 = first, ties count half) of the true span among CoDA's candidates.",
        cases=_rank_cases,
        mistakes=[
            Mistake(
                lambda ind, k: float(1 + np.sum(np.delete(np.asarray(ind, float), k) < ind[k])),
                "rank by the largest indicator first: CoDA contrasts the span with the maximum",
            ),
            Mistake(
                lambda ind, k: float(np.sum(np.delete(np.asarray(ind, float), k) > ind[k])),
                "ranks start at 1 (the best candidate has rank 1), not 0",
            ),
            Mistake(
                lambda ind, k: float(1 + np.sum(np.delete(np.asarray(ind, float), k) > ind[k])),
                "a candidate tied with the true one is ahead half the time: count ties as 0.5",
            ),
            Mistake(
                lambda ind, k: float(1 + np.sum(np.delete(np.asarray(ind, float), k) >= ind[k])),
                "a candidate tied with the true one is ahead half the time: count ties as 0.5",
            ),
        ],
    )
)
