"""Recorded benchmark runs: every method over the bundled development slices, in resumable
chunks, and the summary the chapter shows (EM with Wilson intervals, CoDA against greedy with a
paired interval and McNemar's exact test).

A run is too long for a chapter's CPU budget, so ``scripts/record_benchmarks.py`` records it
with :func:`record_chunk` into ``overshadow_lab/recorded/bench_<benchmark>.csv`` (provenance
beside it, :mod:`overshadow_lab.records`), a few rows at a time: every method decodes the same
rows in a chunk, so a recording stopped at any point holds paired results. Rows are taken in a
seeded random order (:func:`recording_order`), so a partial recording is a random sample of the
slice, not its first rows. :func:`load_bench` reads a recording; :func:`bench_summary` sums it
up per subtask.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from overshadow_lab.benchmark_data.evaluate import evaluate_generation, memotrap_loglik
from overshadow_lab.benchmark_data.memotrap import load_memotrap
from overshadow_lab.benchmark_data.nq_swap import load_nq_swap
from overshadow_lab.benchmark_data.scoring import em_wilson, mcnemar_exact, paired_difference
from overshadow_lab.records import code_hash, load_recorded

GENERATION_METHODS = ("greedy", "cad", "coda")
LOGLIK_METHODS = ("loglik", "loglik_coda")  # MemoTrap only: classification by log-likelihood
RECORD_SEED = 0
RECORD_COLUMNS = (
    "benchmark",
    "row",
    "method",
    "subtask",
    "prediction",
    "output",
    "em",
    "contains",
    "memorised",
    "memorised_contains",
    "alarm",
    "indicator",
    "masked",
    "code_hash",
)


def recorded_name(benchmark: str) -> str:
    """The name of a benchmark's recording under ``overshadow_lab/recorded/``."""
    return f"bench_{benchmark}"


def load_slice(benchmark: str) -> pd.DataFrame:
    """The bundled development slice of a benchmark, in its file order (``row`` indexes it)."""
    if benchmark == "memotrap":
        return load_memotrap()
    if benchmark == "nq_swap":
        return load_nq_swap()
    raise ValueError(f"unknown benchmark {benchmark!r}: use memotrap or nq_swap")


#: The floating-point types a recording may decode in (``--dtype`` of the recording script).
RECORD_DTYPES = ("float32", "bfloat16")


def recording_model(name: str, dtype: str = "float32"):
    """``(model, tokenizer)`` as a recording decodes with them, on the CPU.

    ``dtype="bfloat16"`` runs the model's body in bfloat16 (about 3x faster than float32 on a CPU
    with AMX, which makes NQ-Swap's long contexts affordable) and keeps its output layer in
    float32 (:func:`~overshadow_lab.loading.float32_output_layer`), so that the log-probabilities
    that CoDA and CAD contrast are not rounded to bfloat16's steps. Every method of a recording
    uses the same model, so the comparison between methods stays like with like.
    """
    import torch

    from overshadow_lab.loading import float32_output_layer, load_model

    if dtype not in RECORD_DTYPES:
        raise ValueError(f"dtype={dtype!r}: use one of {', '.join(RECORD_DTYPES)}")
    model, tok = load_model(name, device="cpu", dtype=getattr(torch, dtype))
    return (float32_output_layer(model) if dtype != "float32" else model), tok


def recording_order(n_rows: int, seed: int = RECORD_SEED) -> np.ndarray:
    """The seeded order in which a recording visits the rows of a slice of ``n_rows`` rows."""
    return np.random.default_rng(seed).permutation(n_rows)


def record_chunk(
    model,
    tokenizer,
    benchmark: str,
    df: pd.DataFrame,
    rows,
    methods=GENERATION_METHODS,
    batch_size: int = 8,
    coda=None,
) -> pd.DataFrame:
    """Decode ``df``'s rows ``rows`` with every method; one record per row and method
    (columns :data:`RECORD_COLUMNS`, plus ``seconds``: each method's time on the chunk).

    MemoTrap's ``loglik`` and ``loglik_coda`` classify by log-likelihood
    (:func:`~overshadow_lab.benchmark_data.evaluate.memotrap_loglik`); ``loglik_coda`` contrasts
    with the span that the chunk's ``coda`` generation chose, so it needs ``coda`` among the
    methods before it.
    """
    rows = [int(r) for r in rows]
    sub = df.iloc[rows].reset_index(drop=True)
    parts, spans = [], None
    for method in methods:
        start = time.perf_counter()
        if method in LOGLIK_METHODS:
            if benchmark != "memotrap":
                raise ValueError(f"method {method!r} is MemoTrap's log-likelihood protocol only")
            if method == "loglik_coda" and spans is None:
                raise ValueError("loglik_coda uses the coda run's spans: list 'coda' before it")
            ll = memotrap_loglik(
                model, tokenizer, sub, batch_size=batch_size, coda=coda, spans=spans
            )
            pre = "coda_" if method == "loglik_coda" else ""
            res = pd.DataFrame(
                {
                    "subtask": sub["subtask"].to_numpy(),
                    "prediction": [
                        c[i].strip()
                        for c, i in zip(sub["classes"], ll[pre + "pred_index"], strict=True)
                    ],
                    "em": ll[pre + "correct"].to_numpy(),
                    "memorised": ~ll[pre + "correct"].to_numpy(),
                    "indicator": ll[pre + "margin"].to_numpy(),
                }
            )
            if method == "loglik_coda":
                res["alarm"] = ll["alarm"].to_numpy()
        else:
            res = evaluate_generation(
                model, tokenizer, benchmark, sub, method, coda=coda, batch_size=batch_size
            )
            if method == "coda":
                spans = [
                    (int(a), int(b)) if alarm else None
                    for a, b, alarm in zip(
                        res["span_start"], res["span_end"], res["alarm"], strict=True
                    )
                ]
        res = res.drop(columns=["span_start", "span_end"], errors="ignore")
        res.insert(0, "benchmark", benchmark)
        res.insert(1, "row", rows)
        res.insert(2, "method", method)
        if "subtask" not in res.columns:
            res.insert(3, "subtask", "NQ-Swap")
        res["code_hash"] = code_hash()
        res["seconds"] = time.perf_counter() - start
        parts.append(res)
    out = pd.concat(parts, ignore_index=True)
    for col in RECORD_COLUMNS:
        if col not in out.columns:
            out[col] = np.nan
    return out[[*RECORD_COLUMNS, "seconds"]]


def seconds_per_row(prov: dict) -> pd.Series:
    """Each method's seconds per row over a recording's chunks (their own timings, from the
    provenance :func:`load_bench` returns), indexed by method."""
    chunks = prov["chunks"]
    rows = sum(len(c["rows"]) for c in chunks)
    return pd.DataFrame([c["seconds"] for c in chunks]).sum() / rows


def load_bench(benchmark: str, folder=None) -> tuple[pd.DataFrame, dict] | None:
    """``(table, provenance)`` of a benchmark's recording, or None when none was recorded.

    Only rows that every recorded method decoded are kept (a chunk interrupted half-way leaves
    none: chunks are saved whole), so comparisons between methods are paired.
    """
    found = load_recorded(recorded_name(benchmark), folder)
    if found is None:
        return None
    table, prov = found
    methods = table["method"].unique()
    per_row = table.groupby("row")["method"].nunique()
    complete = per_row.index[per_row == len(methods)]
    table = table[table["row"].isin(complete)].reset_index(drop=True)
    for col in ("em", "contains", "memorised", "memorised_contains"):
        if col in table.columns:
            table[col] = table[col].astype("boolean")
    return table, prov


def bench_summary(
    table: pd.DataFrame,
    value: str = "em",
    baseline: str = "greedy",
    overall: bool = True,
    n_boot: int = 2000,
) -> pd.DataFrame:
    """One row per subtask and method: ``value`` (EM by default; columns ``em``, ``em_lo``,
    ``em_hi`` and ``n`` hold it whatever it is) as a fraction with its Wilson 95% interval, and for every method but ``baseline`` the paired difference to it on the same
    rows (``diff`` with a paired-bootstrap 95% interval) and McNemar's exact p-value
    (``p_mcnemar``; ``only_method`` and ``only_baseline`` count the rows right by one only).
    ``overall`` adds the subtask ``"all"`` when there are several."""
    groups = [(s, g) for s, g in table.groupby("subtask", sort=False)]
    if overall and len(groups) > 1:
        groups.append(("all", table))
    out = []
    for subtask, g in groups:
        wide = g.pivot_table(index="row", columns="method", values=value, aggfunc="first")
        for method in [m for m in g["method"].unique() if m in wide.columns]:  # has ``value``
            col = wide[method].dropna().astype(bool)
            rec = {"subtask": subtask, "method": method, **em_wilson(col)}
            if method != baseline and baseline in wide.columns:
                pair = wide[[method, baseline]].dropna().astype(bool)
                d = paired_difference(pair[method], pair[baseline], n_boot=n_boot)
                t = mcnemar_exact(pair[method], pair[baseline])
                rec |= {
                    "diff": d["diff"],
                    "diff_lo": d["diff_lo"],
                    "diff_hi": d["diff_hi"],
                    "p_mcnemar": t["p"],
                    "only_method": t["only_a"],
                    "only_baseline": t["only_b"],
                }
            out.append(rec)
    return pd.DataFrame(out)
