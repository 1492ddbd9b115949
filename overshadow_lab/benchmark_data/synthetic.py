"""The lab's synthetic sets as a benchmark: decoding the subordinate prompts (token ids) and
diagnosing why CoDA does or does not help there.

``overshadow_lab.decoding`` (which imports torch) is imported inside the functions that decode.
"""

from __future__ import annotations

import pandas as pd


def synthetic_rows(sets, which: str = "subordinate") -> dict[str, list]:
    """Prompts, gold answers, overshadowing answers and the known distinct span of the lab's
    synthetic evaluation prompts (token ids)."""
    es = getattr(sets, which)
    spans = [[(min(d), max(d) + 1)] if d else [] for d in es.distinct_positions]
    return {
        "prompts": es.prompts,
        "golds": es.answers,
        "memorised": es.overshadow_answers or [[] for _ in es.prompts],
        "spans": spans,
        "set_ids": es.set_ids,
    }


def evaluate_synthetic(
    model,
    sets,
    method: str = "greedy",
    coda=None,
    spans: str = "all",
    batch_size: int = 64,
    progress=None,
) -> pd.DataFrame:
    """Decode the subordinate prompts of the lab's sets; EM = the subordinate answer ``Y_b``,
    ``memorised`` = the dominant answer ``Y_a`` (overshadowing). ``spans``: ``"all"`` masks every
    prompt token (the paper's vanilla CoDA), ``"known"`` only the distinct span."""
    from overshadow_lab.decoding import CoDAConfig, generate

    rows = synthetic_rows(sets)
    n = sets.config.answer_len
    known = rows["spans"] if spans == "known" else None
    res = generate(
        model,
        rows["prompts"],
        method,
        n,
        coda=coda or CoDAConfig(),
        spans=known,
        batch_size=batch_size,
        progress=progress,
    )
    out = pd.DataFrame(
        {
            "set_id": rows["set_ids"],
            "prediction": res.outputs,
            "em": [o[:n] == list(g) for o, g in zip(res.outputs, rows["golds"], strict=True)],
            "memorised": [
                o[:n] == list(g) for o, g in zip(res.outputs, rows["memorised"], strict=True)
            ],
        }
    )
    if method == "coda":
        out["alarm"] = [d.alarm for d in res.detections]
        out["indicator"] = [d.indicator for d in res.detections]
        truth = rows["spans"]
        out["found_span"] = [
            bool(d.span is not None and t and d.span[0] < t[0][1] and t[0][0] < d.span[1])
            for d, t in zip(res.detections, truth, strict=True)
        ]
    out.attrs.update(seconds=res.seconds, new_tokens=res.new_tokens)
    return out


def unused_token_id(sets) -> int:
    """A vocabulary id that never occurs in the synthetic corpus (a neutral replacement mask)."""
    used = {t for s in sets.train_sequences for t in s}
    for t in range(sets.vocab_size - 1, -1, -1):
        if t not in used:
            return t
    raise ValueError(
        "every vocabulary id occurs in the corpus; there is no neutral token to mask with"
    )


def synthetic_diagnostics(
    model, sets, mask: str = "delete", mask_token_id: int | None = None, alpha: float = 0.01
) -> pd.DataFrame:
    """Why CoDA does or does not help on the lab's sets: for every subordinate prompt, the
    probabilities of ``Y_a`` (dominant) and ``Y_b`` (subordinate) with and without the known
    distinct span, whether ``Y_b`` is plausible, the indicator and what CoDA picks."""
    from overshadow_lab.decoding import _next_logprobs, coda_step, mask_span, plausible

    rows = synthetic_rows(sets)
    out = []
    for p, yb, ya, sp in zip(
        rows["prompts"], rows["golds"], rows["memorised"], rows["spans"], strict=True
    ):
        lp = _next_logprobs(model, p)
        lpm = _next_logprobs(model, mask_span(p, sp[0], mask, mask_token_id))
        st = coda_step(lp, lpm, alpha)
        greedy, coda = (
            int(lp.argmax()),
            int(st.scores.argmax()) if bool(st.indicator > 0) else int(lp.argmax()),
        )
        a, b = ya[0], yb[0]
        out.append(
            {
                "greedy": "Y_b (right)"
                if greedy == b
                else "Y_a (overshadowed)"
                if greedy == a
                else "other",
                "p(Y_a|X)": float(lp[a].exp()),
                "p(Y_b|X)": float(lp[b].exp()),
                "p(Y_a|X')": float(lpm[a].exp()),
                "p(Y_b|X')": float(lpm[b].exp()),
                "Y_b plausible": bool(plausible(lp, alpha)[b]),
                "alarm": bool(st.indicator > 0),
                "CoDA right": coda == b,
                "indicator": float(st.indicator),
            }
        )
    return pd.DataFrame(out)
