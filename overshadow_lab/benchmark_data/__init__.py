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
from overshadow_lab.benchmark_data.sampling import sample_rows
from overshadow_lab.benchmark_data.scoring import (
    STOP_PATTERN,
    cut_answer,
    em_summary,
    normalize_answer,
    paired_difference,
    table3_layout,
    text_exact_match,
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
    "MEMOTRAP_COMMIT",
    "MEMOTRAP_FILES",
    "MEMOTRAP_SHA256",
    "NQ_SWAP_FILE",
    "NQ_SWAP_REPO",
    "NQ_SWAP_REVISION",
    "NQ_SWAP_SHA256",
    "STOP_PATTERN",
    "DownloadError",
    "benchmark_items",
    "compare_methods",
    "cut_answer",
    "em_summary",
    "evaluate_generation",
    "evaluate_synthetic",
    "fetch_memotrap",
    "fetch_nq_swap",
    "load_memotrap",
    "load_nq_swap",
    "memotrap_loglik",
    "memotrap_plain_prompt",
    "normalize_answer",
    "nq_swap_prompt",
    "paired_difference",
    "sample_rows",
    "synthetic_diagnostics",
    "synthetic_rows",
    "table3_layout",
    "text_exact_match",
    "unused_token_id",
]
