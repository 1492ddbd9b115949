"""MemoTrap and NQ-Swap: loaders, prompts, scoring, and evaluation of a decoding method.

* **MemoTrap** (Liu & Liu 2023, :mod:`.memotrap`): every prompt invites a memorised continuation
  (a famous proverb's ending) while asking for another. Two protocols: *log-likelihood
  classification* (:func:`memotrap_loglik`) and *generation + exact match* (the papers' protocol;
  :func:`evaluate_generation`).
* **NQ-Swap** (Longpre et al. 2021, :mod:`.nq_swap`): a question with a context whose answer
  entity was swapped; the faithful answer is ``sub_answer``. Protocol (SPEC §7): ``"Context:
  {sub_context}\\nQuestion: {question}?\\nAnswer:"``, greedy, stop at newline/period/comma, text
  exact match against ``sub_answer`` ignoring case, punctuation and articles (:mod:`.scoring`).
* **synthetic** (:mod:`.synthetic`): the lab's knowledge sets and a model trained on them.

Prompts for an instruct model use its chat template (:mod:`.prompts`); recorded runs of every
method over the slices and their summary live in :mod:`.recording`.

Data: the development slices bundled with the package (``data_dir()``, overridden by
``$OVERSHADOW_DATA``) by default; ``"full"`` as the path fetches the full public sets at pinned
versions into a verified cache (:mod:`.fetch`). Every row is checked against the schema; a bad
row raises ``ValueError`` naming the file and the line. Evaluation lives in :mod:`.evaluate`.
"""

from overshadow_lab.benchmark_data.evaluate import (
    BENCH_DEFAULTS,
    benchmark_items,
    compare_methods,
    evaluate_generation,
    memotrap_loglik,
    score_outputs,
)
from overshadow_lab.benchmark_data.fetch import (
    FULL_SET,
    MEMOTRAP_COMMIT,
    MEMOTRAP_SHA256,
    NQ_SWAP_REPO,
    NQ_SWAP_REVISION,
    NQ_SWAP_SHA256,
    DownloadError,
    fetch_memotrap,
    fetch_nq_swap,
)
from overshadow_lab.benchmark_data.memotrap import (
    MEMOTRAP_FILES,
    load_memotrap,
    memotrap_plain_prompt,
)
from overshadow_lab.benchmark_data.nq_swap import NQ_SWAP_FILE, load_nq_swap, nq_swap_prompt
from overshadow_lab.benchmark_data.prompts import (
    TEMPLATES,
    Encoded,
    chat_ids,
    encode_benchmark,
    has_chat_template,
    memotrap_parts,
    nq_swap_parts,
    region_spans,
)
from overshadow_lab.benchmark_data.recording import (
    GENERATION_METHODS,
    LOGLIK_METHODS,
    RECORD_DTYPES,
    bench_summary,
    load_bench,
    load_slice,
    record_chunk,
    recorded_name,
    recording_model,
    recording_order,
    seconds_per_row,
)
from overshadow_lab.benchmark_data.sampling import sample_rows
from overshadow_lab.benchmark_data.scoring import (
    STOP_PATTERN,
    cut_answer,
    em_summary,
    em_wilson,
    mcnemar_exact,
    normalize_answer,
    paired_difference,
    table3_layout,
    text_contains_match,
    text_exact_match,
    wilson_interval,
)
from overshadow_lab.benchmark_data.synthetic import (
    evaluate_synthetic,
    synthetic_diagnostics,
    synthetic_rows,
    unused_token_id,
)

BENCHMARKS = ("memotrap", "nq_swap", "synthetic")

__all__ = [
    "BENCHMARKS",
    "BENCH_DEFAULTS",
    "FULL_SET",
    "GENERATION_METHODS",
    "LOGLIK_METHODS",
    "RECORD_DTYPES",
    "MEMOTRAP_COMMIT",
    "MEMOTRAP_FILES",
    "MEMOTRAP_SHA256",
    "NQ_SWAP_FILE",
    "NQ_SWAP_REPO",
    "NQ_SWAP_REVISION",
    "NQ_SWAP_SHA256",
    "STOP_PATTERN",
    "TEMPLATES",
    "DownloadError",
    "Encoded",
    "bench_summary",
    "benchmark_items",
    "chat_ids",
    "compare_methods",
    "cut_answer",
    "em_summary",
    "em_wilson",
    "encode_benchmark",
    "evaluate_generation",
    "evaluate_synthetic",
    "fetch_memotrap",
    "fetch_nq_swap",
    "has_chat_template",
    "load_bench",
    "load_memotrap",
    "load_nq_swap",
    "load_slice",
    "mcnemar_exact",
    "memotrap_loglik",
    "memotrap_parts",
    "memotrap_plain_prompt",
    "normalize_answer",
    "nq_swap_parts",
    "nq_swap_prompt",
    "paired_difference",
    "record_chunk",
    "recorded_name",
    "recording_model",
    "recording_order",
    "region_spans",
    "sample_rows",
    "score_outputs",
    "seconds_per_row",
    "synthetic_diagnostics",
    "synthetic_rows",
    "table3_layout",
    "text_contains_match",
    "text_exact_match",
    "unused_token_id",
    "wilson_interval",
]
