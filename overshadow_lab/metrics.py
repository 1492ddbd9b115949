"""Metrics of overshadowing (SPEC §2): recall rate RR, hallucination rate HR, R = HR / RR."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def relative_hallucination_rate(hr: ArrayLike, rr: ArrayLike) -> np.ndarray | float:
    """Relative hallucination rate ``R = HR / RR`` in percent.

    ``hr`` and ``rr`` are fractions in [0, 1] (scalars or arrays of the same shape). Where the
    dominant set is not recalled at all (``rr == 0``) R is undefined and returned as NaN: the
    model has not learnt the knowledge that could overshadow anything, so no ratio is reported.
    """
    hr_arr = np.asarray(hr, dtype=float)
    rr_arr = np.asarray(rr, dtype=float)
    if np.any((hr_arr < 0) | (hr_arr > 1)) or np.any((rr_arr < 0) | (rr_arr > 1)):
        raise ValueError(
            "hr and rr are fractions and must lie in [0, 1]; divide counts by set sizes first"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(rr_arr > 0, 100.0 * hr_arr / np.where(rr_arr > 0, rr_arr, 1.0), np.nan)
    return float(r) if r.ndim == 0 else r


# --------------------------------------------------------------------------------------------
# Model-based metrics: greedy answers, exact-match rates, RR / HR / R with bootstrap intervals.
# --------------------------------------------------------------------------------------------


def _model_device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        import torch

        return torch.device("cpu")


def _logits(model, ids):
    out = model(input_ids=ids, use_cache=False)
    return out.logits if hasattr(out, "logits") else out[0]


def _by_length(seqs: list[list[int]]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        groups.setdefault(len(s), []).append(i)
    return groups


def greedy_answers(
    model, prompts: list[list[int]], answer_len: int, batch_size: int = 256
) -> list[list[int]]:
    """Greedy continuation of ``answer_len`` tokens for every prompt (token id lists).

    Prompts are grouped by length, so no padding ever enters the model; each group is decoded
    in batches by repeated full forward passes (answers are a few tokens long). This is the
    readable reference; :func:`answer_matches` gets exact-match rates in one forward pass.
    """
    import torch

    if answer_len < 1:
        raise ValueError(f"answer_len must be >= 1, got {answer_len}")
    device = _model_device(model)
    out: list[list[int] | None] = [None] * len(prompts)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for _, idx in _by_length(prompts).items():
            for b in range(0, len(idx), batch_size):
                chunk = idx[b : b + batch_size]
                ids = torch.tensor([prompts[i] for i in chunk], dtype=torch.long, device=device)
                for _ in range(answer_len):
                    nxt = _logits(model, ids)[:, -1, :].argmax(-1, keepdim=True)
                    ids = torch.cat([ids, nxt], dim=1)
                gen = ids[:, -answer_len:].tolist()
                for i, g in zip(chunk, gen, strict=True):
                    out[i] = g
    model.train(was_training)
    return out  # type: ignore[return-value]


def answer_matches(
    model,
    prompts: list[list[int]],
    targets: list[list[int]],
    batch_size: int = 512,
) -> np.ndarray:
    """Whether greedy decoding of each prompt reproduces its target exactly (bool array).

    One teacher-forced forward pass per batch: greedy output equals the target iff at every
    answer position the arg-max next token, given the prompt and the target's prefix, is the
    target's token. Equal to ``greedy_answers(...) == target`` (tested), but cheaper.
    """
    import torch

    if len(prompts) != len(targets):
        raise ValueError(
            f"{len(prompts)} prompts but {len(targets)} targets; pass one target per prompt"
        )
    device = _model_device(model)
    res = np.zeros(len(prompts), dtype=bool)
    seqs = [list(p) + list(t) for p, t in zip(prompts, targets, strict=True)]
    keys = [(len(p), len(t)) for p, t in zip(prompts, targets, strict=True)]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for (lp, lt), idx in groups.items():
            for b in range(0, len(idx), batch_size):
                chunk = idx[b : b + batch_size]
                full = torch.tensor([seqs[i] for i in chunk], dtype=torch.long, device=device)
                logits = _logits(model, full[:, :-1])
                pred = logits[:, lp - 1 : lp - 1 + lt, :].argmax(-1)
                ok = (pred == full[:, lp : lp + lt]).all(dim=1)
                res[chunk] = ok.cpu().numpy()
    model.train(was_training)
    return res


def token_exact_match_rate(predictions: list[list[int]], targets: list[list[int]]) -> float:
    """Fraction of predictions equal to their target token-id sequence (SPEC §2's matching rule).

    This is the *token* exact match of the lab's synthetic sets; the *text* exact match of the
    benchmarks (case, punctuation and articles ignored) is
    :func:`overshadow_lab.benchmark_data.scoring.text_exact_match`.
    """
    if len(predictions) != len(targets):
        raise ValueError(
            f"{len(predictions)} predictions but {len(targets)} targets; pass one target per prediction"
        )
    if not predictions:
        raise ValueError("no predictions: the rate of an empty set is undefined; pass at least one")
    hits = [list(p) == list(t) for p, t in zip(predictions, targets, strict=True)]
    return float(np.mean(hits))


def bootstrap_ci(
    values: ArrayLike, stat=np.mean, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``stat`` over the items of ``values``."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("bootstrap_ci needs at least one value; got an empty array")
    if not 0 < level < 1:
        raise ValueError(f"level is a coverage in (0, 1), got {level}; e.g. level=0.95")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(int(n_boot), len(v)))
    stats = np.array([stat(v[i]) for i in idx], dtype=float)
    a = (1 - level) / 2
    return float(np.nanquantile(stats, a)), float(np.nanquantile(stats, 1 - a))


def rates_from_matches(
    dom_ok: ArrayLike,
    dom_sets: ArrayLike,
    sub_hall: ArrayLike,
    sub_ok: ArrayLike,
    sub_sets: ArrayLike,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """RR, HR, R (percent) and subordinate accuracy, with bootstrap CIs resampling whole sets."""
    dom_ok, sub_hall, sub_ok = (np.asarray(a, dtype=float) for a in (dom_ok, sub_hall, sub_ok))
    dom_sets, sub_sets = np.asarray(dom_sets), np.asarray(sub_sets)
    sets = np.unique(np.concatenate([dom_sets, sub_sets]))
    pos = {s: i for i, s in enumerate(sets)}

    def per_set(vals, ids):
        tot = np.zeros(len(sets))
        cnt = np.zeros(len(sets))
        np.add.at(tot, [pos[s] for s in ids], vals)
        np.add.at(cnt, [pos[s] for s in ids], 1)
        return tot, cnt

    d_tot, d_cnt = per_set(dom_ok, dom_sets)
    h_tot, s_cnt = per_set(sub_hall, sub_sets)
    a_tot, _ = per_set(sub_ok, sub_sets)

    def stats(w):
        # w: (draws, sets) multiplicities of each set in a bootstrap sample
        with np.errstate(divide="ignore", invalid="ignore"):
            rr = (w @ d_tot) / (w @ d_cnt)
            hr = (w @ h_tot) / (w @ s_cnt)
            acc = (w @ a_tot) / (w @ s_cnt)
            r = np.where(rr > 0, 100.0 * hr / np.where(rr > 0, rr, 1.0), np.nan)
        return rr, hr, r, acc

    rr, hr, r, acc = (float(x[0]) for x in stats(np.ones((1, len(sets)))))
    out = {
        "RR": float(rr),
        "HR": float(hr),
        "R": float(r),
        "sub_acc": float(acc),
        "n_dominant": int(d_cnt.sum()),
        "n_subordinate": int(s_cnt.sum()),
        "n_sets": len(sets),
    }
    if n_boot:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, len(sets), size=(int(n_boot), len(sets)))
        w = np.zeros((int(n_boot), len(sets)))
        np.add.at(w, (np.repeat(np.arange(int(n_boot)), len(sets)), draws.ravel()), 1.0)
        a = (1 - level) / 2
        for name, arr in zip(("RR", "HR", "R", "sub_acc"), stats(w), strict=True):
            arr = np.asarray(arr, dtype=float)
            ok = np.isfinite(arr)
            lo, hi = np.quantile(arr[ok], [a, 1 - a]) if ok.any() else (np.nan, np.nan)
            out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    return out


def evaluate(
    model,
    sets,
    n_boot: int = 1000,
    seed: int = 0,
    method: str = "forced",
    batch_size: int = 512,
    level: float = 0.95,
) -> dict:
    """RR, HR, R (percent), sub_acc and bootstrap CIs (over knowledge sets) for a trained model.

    ``method="forced"`` scores exact greedy matches by teacher forcing (one forward pass);
    ``method="greedy"`` decodes with :func:`greedy_answers` and compares (same numbers, slower).
    Keys: RR, HR, R, sub_acc, n_dominant, n_subordinate, n_sets and ``<key>_lo`` / ``<key>_hi``.
    """
    dom, sub = sets.dominant, sets.subordinate
    if method == "forced":
        dom_ok = answer_matches(model, dom.prompts, dom.answers, batch_size)
        sub_hall = answer_matches(model, sub.prompts, sub.overshadow_answers, batch_size)
        sub_ok = answer_matches(model, sub.prompts, sub.answers, batch_size)
    elif method == "greedy":
        la = max(len(a) for a in dom.answers + sub.answers)
        gd = greedy_answers(model, dom.prompts, la, batch_size)
        gs = greedy_answers(model, sub.prompts, la, batch_size)
        dom_ok = np.array([g[: len(a)] == list(a) for g, a in zip(gd, dom.answers, strict=True)])
        sub_hall = np.array(
            [g[: len(a)] == list(a) for g, a in zip(gs, sub.overshadow_answers, strict=True)]
        )
        sub_ok = np.array([g[: len(a)] == list(a) for g, a in zip(gs, sub.answers, strict=True)])
    else:
        raise ValueError(f"method must be 'forced' or 'greedy', got {method!r}")
    return rates_from_matches(
        dom_ok, dom.set_ids, sub_hall, sub_ok, sub.set_ids, n_boot=n_boot, level=level, seed=seed
    )
