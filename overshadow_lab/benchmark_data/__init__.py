"""MemoTrap and NQ-Swap: loaders, prompts, scoring, and evaluation of a decoding method.

* **MemoTrap** (Liu & Liu 2023): four CSVs (``prompt``, ``classes`` = a Python list literal of two
  endings, ``answer_index``). Every prompt invites a memorised continuation (a famous proverb's
  ending) while asking for another. Two protocols: *log-likelihood classification* (which of the
  two endings gets the higher log-probability; :func:`memotrap_loglik`) and *generation + exact
  match* (the papers' protocol; :func:`evaluate_generation`).
* **NQ-Swap** (Longpre et al. 2021): a question with a context whose answer entity was swapped
  for another; the faithful answer is ``sub_answer``. Protocol (SPEC §7): ``"Context: {sub_context}
  \\nQuestion: {question}?\\nAnswer:"``, greedy, stop at newline/period/comma, exact match against
  ``sub_answer`` ignoring case, punctuation and articles.
* **synthetic**: the lab's knowledge sets and a model trained on them (:func:`synthetic_rows`).

Files come from a local folder (``data_dir()``: ``../shared/data`` in a checkout) or, with the
internet, from their public homes, cached under ``cache_dir("benchmarks")``. Every row is checked
against the schema; a bad row raises ``ValueError`` naming the file and the line.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import string
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from overshadow_lab.paths import cache_dir, data_dir

MEMOTRAP_FILES: dict[str, str] = {
    "proverb": "1-proverb-ending.csv",
    "translate": "2-proverb-translation.csv",
    "hate": "3-hate-speech-ending.csv",
    "science": "4-history-of-science-qa.csv",
}
MEMOTRAP_URL = "https://raw.githubusercontent.com/liujch1998/memo-trap/{branch}/data/{file}"
NQ_SWAP_FILE = "nq_swap_dev.jsonl"
NQ_SWAP_HUB = "pminervini/NQ-Swap"
NQ_SWAP_ROWS_API = (
    "https://datasets-server.huggingface.co/rows?dataset=pminervini%2FNQ-Swap"
    "&config=default&split=dev&offset={offset}&length=100"
)
BENCHMARKS = ("memotrap", "nq_swap", "synthetic")
STOP_PATTERN = r"\n|[.,!?;](?=\s|$)"  # newline, or sentence punctuation not inside a number/name


# --------------------------------------------------------------------------------------------
# fetching (only when no local copy exists)
# --------------------------------------------------------------------------------------------
def _download(url: str, timeout: float = 20.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - fixed public https URLs
        return r.read()


def fetch_memotrap(
    folder: str | Path | None = None, download: Callable[[str], bytes] = _download
) -> Path:
    """Download the four MemoTrap CSVs from GitHub into ``folder`` (default: the cache)."""
    folder = Path(folder) if folder else cache_dir("benchmarks", "memotrap")
    for file in MEMOTRAP_FILES.values():
        target = folder / file
        if target.is_file():
            continue
        errors = []
        for branch in ("main", "master"):
            try:
                data = download(MEMOTRAP_URL.format(branch=branch, file=file))
                break
            except OSError as err:
                errors.append(f"{branch}: {err}")
        else:
            raise FileNotFoundError(
                f"could not download MemoTrap {file} ({'; '.join(errors)}); "
                "pass --data with a local copy"
            )
        target.with_suffix(".part").write_bytes(data)
        target.with_suffix(".part").replace(target)
    return folder


def fetch_nq_swap(
    folder: str | Path | None = None, download: Callable[[str], bytes] = _download
) -> Path:
    """Download NQ-Swap's 4,746-row dev split from the Hugging Face datasets server as JSONL."""
    folder = Path(folder) if folder else cache_dir("benchmarks", "nq_swap")
    target = folder / NQ_SWAP_FILE
    if target.is_file():
        return target
    rows, offset = [], 0
    while True:
        try:
            page = json.loads(download(NQ_SWAP_ROWS_API.format(offset=offset)))
        except OSError as err:
            raise FileNotFoundError(
                f"could not download NQ-Swap from {NQ_SWAP_HUB} ({err}); "
                "pass --data with a local JSONL copy"
            ) from err
        batch = [r["row"] for r in page.get("rows", [])]
        rows.extend(batch)
        offset += len(batch)
        if not batch or offset >= int(page.get("num_rows_total", offset)):
            break
    tmp = target.with_suffix(".part")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(target)
    return target


# --------------------------------------------------------------------------------------------
# loading with schema validation
# --------------------------------------------------------------------------------------------
def _subtask_of(path: Path) -> str:
    for short, file in MEMOTRAP_FILES.items():
        if path.name == file or path.stem == short:
            return short
    return path.stem


def _read_memotrap_csv(path: Path) -> list[dict[str, Any]]:
    rows = []
    text = path.read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != ["prompt", "classes", "answer_index"]:
        raise ValueError(f"{path}:1: expected the header prompt,classes,answer_index, got {header}")
    line = reader.line_num + 1
    subtask = _subtask_of(path)
    for rec in reader:
        where = f"{path}:{line}"
        line = reader.line_num + 1
        if not rec:
            continue
        if len(rec) != 3:
            raise ValueError(
                f"{where}: expected 3 fields (prompt, classes, answer_index), got {len(rec)}"
            )
        prompt, classes_text, idx_text = rec
        if not prompt.strip():
            raise ValueError(f"{where}: empty prompt")
        try:
            classes = ast.literal_eval(classes_text)
        except (ValueError, SyntaxError) as err:
            raise ValueError(
                f"{where}: classes is not a Python list literal ({err}): {classes_text!r}"
            ) from None
        if not (
            isinstance(classes, list)
            and len(classes) >= 2
            and all(isinstance(c, str) and c.strip() for c in classes)
        ):
            raise ValueError(
                f"{where}: classes must list at least two non-empty strings, got {classes_text!r}"
            )
        try:
            answer_index = int(idx_text)
        except ValueError:
            raise ValueError(
                f"{where}: answer_index must be an integer, got {idx_text!r}"
            ) from None
        if not 0 <= answer_index < len(classes):
            raise ValueError(
                f"{where}: answer_index {answer_index} is outside 0..{len(classes) - 1}"
            )
        rows.append(
            {
                "subtask": subtask,
                "prompt": prompt,
                "classes": classes,
                "answer_index": answer_index,
                "answer": classes[answer_index],
                "memorised": [c for i, c in enumerate(classes) if i != answer_index],
                "source": where,
            }
        )
    return rows


def load_memotrap(
    path: str | Path | None = None, subtasks: list[str] | None = None
) -> pd.DataFrame:
    """MemoTrap rows from a folder of the four CSVs, or one CSV (default: the data folder, else
    downloaded). Columns: subtask, prompt, classes, answer_index, answer, memorised, source."""
    if path is None:
        local = data_dir()
        path = local / "memotrap" if local and (local / "memotrap").is_dir() else fetch_memotrap()
    path = Path(path)
    if path.is_dir():
        files = [path / f for s, f in MEMOTRAP_FILES.items() if (path / f).is_file()]
        if not files:
            raise FileNotFoundError(
                f"{path} holds none of the MemoTrap CSVs ({', '.join(MEMOTRAP_FILES.values())})"
            )
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(
            f"MemoTrap data not found at {path}: give the folder of its CSVs or one CSV"
        )
    rows = [r for f in files for r in _read_memotrap_csv(f)]
    df = pd.DataFrame(rows)
    if subtasks:
        unknown = sorted(set(subtasks) - set(df["subtask"]))
        if unknown:
            raise ValueError(
                f"unknown MemoTrap subtask(s) {', '.join(unknown)}: "
                f"the data holds {', '.join(sorted(set(df['subtask'])))}"
            )
        df = df[df["subtask"].isin(subtasks)].reset_index(drop=True)
    return df


def _answer_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return value
    return None


def load_nq_swap(path: str | Path | None = None) -> pd.DataFrame:
    """NQ-Swap rows from a JSONL file (default: the data folder, else downloaded). Columns:
    question, org_context, org_answer, sub_context, sub_answer (answers as lists), source."""
    if path is None:
        local = data_dir()
        path = (
            local / "nq_swap" / NQ_SWAP_FILE
            if local and (local / "nq_swap" / NQ_SWAP_FILE).is_file()
            else fetch_nq_swap()
        )
    path = Path(path)
    if path.is_dir():
        path = path / NQ_SWAP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"NQ-Swap data not found at {path}: give its JSONL file")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for i, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            where = f"{path}:{i}"
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not valid JSON ({err.msg})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{where}: expected a JSON object per line")
            for key in ("question", "sub_context", "org_context"):
                if not isinstance(rec.get(key), str) or not rec[key].strip():
                    raise ValueError(f"{where}: field {key!r} must be a non-empty string")
            for key in ("sub_answer", "org_answer"):
                answers = _answer_list(rec.get(key))
                if answers is None:
                    raise ValueError(f"{where}: field {key!r} must be a non-empty list of strings")
                rec[key] = answers
            rows.append(
                {
                    k: rec[k]
                    for k in ("question", "org_context", "org_answer", "sub_context", "sub_answer")
                }
                | {"source": where}
            )
    if not rows:
        raise ValueError(f"{path}: no rows")
    return pd.DataFrame(rows)


def sample_rows(
    df: pd.DataFrame, limit: int | None, seed: int = 0, by: str | None = None
) -> pd.DataFrame:
    """A seeded random sample of ``limit`` rows (all rows if None), spread evenly over the groups
    of column ``by`` (a group smaller than its share gives the rest to the others)."""
    if limit is None or limit >= len(df):
        return df.reset_index(drop=True)
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    rng = np.random.default_rng(seed)
    if by is None or by not in df.columns:
        return df.iloc[np.sort(rng.choice(len(df), size=limit, replace=False))].reset_index(
            drop=True
        )
    groups = {g: rng.permutation(np.flatnonzero(df[by].to_numpy() == g)) for g in pd.unique(df[by])}
    quota = dict.fromkeys(groups, 0)
    left = limit
    while left:
        open_groups = [g for g in groups if quota[g] < len(groups[g])]
        for g in open_groups[:left]:
            quota[g] += 1
            left -= 1
    take = np.sort(np.concatenate([groups[g][: quota[g]] for g in groups]))
    return df.iloc[take].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# prompts and scoring
# --------------------------------------------------------------------------------------------
def nq_swap_prompt(row: Any, with_context: bool = True) -> str:
    """The SPEC §7 prompt; ``with_context=False`` drops the context (CAD's second input)."""
    q = str(row["question"]).strip().rstrip("?")
    if not with_context:
        return f"Question: {q}?\nAnswer:"
    return f"Context: {row['sub_context']}\nQuestion: {q}?\nAnswer:"


def memotrap_plain_prompt(prompt: str) -> str:
    """MemoTrap prompt without its instruction (CAD's context-free input): the last line when the
    prompt has several lines, else the text after the first colon."""
    if "\n" in prompt:
        return prompt.rsplit("\n", 1)[1]
    head, sep, tail = prompt.partition(": ")
    return tail if sep and tail.strip() else prompt


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT_TABLE = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str, articles: bool = True) -> str:
    """Lower case, drop punctuation (and, by default, the articles a/an/the), squeeze spaces."""
    text = str(text).lower().translate(_PUNCT_TABLE)
    if articles:
        text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def cut_answer(text: str, pattern: str = STOP_PATTERN) -> str:
    """The generated answer up to the first newline or sentence punctuation."""
    m = re.search(pattern, text)
    return text[: m.start()] if m else text


def exact_match(prediction: str, golds: list[str] | str, articles: bool = True) -> bool:
    """Exact match of the cut, normalised prediction against any gold answer."""
    golds = [golds] if isinstance(golds, str) else list(golds)
    pred = normalize_answer(cut_answer(prediction), articles)
    return bool(pred) and any(pred == normalize_answer(g, articles) for g in golds)


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------
BENCH_DEFAULTS: dict[str, dict[str, Any]] = {
    # MemoTrap answers are one or two words: mask words; NQ-Swap contexts are long: mask entities
    "memotrap": {"max_new_tokens": 8, "candidates": "word", "articles": False},
    "nq_swap": {"max_new_tokens": 10, "candidates": "entity", "articles": True},
}


def benchmark_items(benchmark: str, df: pd.DataFrame) -> dict[str, list]:
    """Prompts (text), context-free prompts, gold answers and memorised answers of each row."""
    if benchmark == "memotrap":
        return {
            "prompts": df["prompt"].tolist(),
            "plain": [memotrap_plain_prompt(p) for p in df["prompt"]],
            "golds": [[a] for a in df["answer"]],
            "memorised": df["memorised"].tolist(),
        }
    if benchmark == "nq_swap":
        return {
            "prompts": [nq_swap_prompt(r) for _, r in df.iterrows()],
            "plain": [nq_swap_prompt(r, with_context=False) for _, r in df.iterrows()],
            "golds": df["sub_answer"].tolist(),
            "memorised": df["org_answer"].tolist(),
        }
    raise ValueError(
        f"unknown benchmark {benchmark!r}: use memotrap or nq_swap (synthetic has token ids)"
    )


def evaluate_generation(
    model,
    tokenizer,
    benchmark: str,
    df: pd.DataFrame,
    method: str = "greedy",
    coda=None,
    max_new_tokens: int | None = None,
    batch_size: int = 8,
    cad_alpha: float = 0.5,
    amateur=None,
    progress: Callable[[int], Any] | None = None,
) -> pd.DataFrame:
    """Generate an answer for every row with ``method`` and score it. One row per input with the
    prediction, ``em`` (faithful answer), ``memorised`` (the prediction is the memorised or
    original answer: overshadowing) and, for CoDA, ``alarm`` and ``indicator``."""
    from overshadow_lab.decoding import CoDAConfig, generate, with_options

    spec = BENCH_DEFAULTS[benchmark]
    items = benchmark_items(benchmark, df)
    enc = lambda texts: [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]  # noqa: E731
    prompts = enc(items["prompts"])
    coda = coda if coda is not None else CoDAConfig(candidates=spec["candidates"])
    if coda.mask == "replace" and coda.mask_token_id is None:
        coda = with_options(coda, mask_token_id=tokenizer.unk_token_id or tokenizer.pad_token_id)
    res = generate(
        model,
        prompts,
        method,
        max_new_tokens or spec["max_new_tokens"],
        tokenizer=tokenizer,
        coda=coda,
        plain_prompts=enc(items["plain"]) if method == "cad" else None,
        cad_alpha=cad_alpha,
        amateur=amateur,
        stop_pattern=STOP_PATTERN,
        batch_size=batch_size,
        progress=progress,
    )
    texts = tokenizer.batch_decode(res.outputs, skip_special_tokens=True)
    out = pd.DataFrame(
        {
            "prediction": [cut_answer(t).strip() for t in texts],
            "em": [
                exact_match(t, g, spec["articles"])
                for t, g in zip(texts, items["golds"], strict=True)
            ],
            "memorised": [
                exact_match(t, g, spec["articles"])
                for t, g in zip(texts, items["memorised"], strict=True)
            ],
        }
    )
    if "subtask" in df.columns:
        out.insert(0, "subtask", df["subtask"].to_numpy())
    if method == "coda":
        out["alarm"] = [d.alarm for d in res.detections]
        out["indicator"] = [d.indicator for d in res.detections]
    out.attrs.update(seconds=res.seconds, new_tokens=res.new_tokens)
    return out


def memotrap_loglik(model, tokenizer, df: pd.DataFrame, batch_size: int = 16) -> pd.DataFrame:
    """Log-likelihood classification: the ending with the higher summed log-probability given the
    prompt is the prediction. Columns: subtask, pred_index, correct, margin (gold minus other)."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    seqs, owners, lens = [], [], []
    for i, (p, classes) in enumerate(zip(df["prompt"], df["classes"], strict=True)):
        pids = tokenizer(p, add_special_tokens=False)["input_ids"]
        for c in classes:
            cids = tokenizer(c, add_special_tokens=False)["input_ids"]
            seqs.append(pids + cids)
            owners.append(i)
            lens.append(len(cids))
    scores = np.zeros(len(seqs))
    with torch.no_grad():
        for lo in range(0, len(seqs), batch_size):
            chunk = seqs[lo : lo + batch_size]
            width = max(len(s) for s in chunk)
            ids = torch.full(
                (len(chunk), width), tokenizer.pad_token_id or 0, dtype=torch.long, device=device
            )
            mask = torch.zeros_like(ids)
            for j, s in enumerate(chunk):
                ids[j, width - len(s) :] = torch.as_tensor(s)
                mask[j, width - len(s) :] = 1
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            logp = F.log_softmax(
                model(ids, attention_mask=mask, position_ids=pos).logits.float(), -1
            )
            tok_lp = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
            for j in range(len(chunk)):
                k = lens[lo + j]
                scores[lo + j] = float(tok_lp[j, -k:].sum())
    rows = []
    owners_arr = np.asarray(owners)
    for i, gold in enumerate(df["answer_index"]):
        s = scores[owners_arr == i]
        pred = int(np.argmax(s))
        rows.append(
            {
                "pred_index": pred,
                "correct": pred == int(gold),
                "margin": float(s[int(gold)] - np.max(np.delete(s, int(gold)))),
            }
        )
    out = pd.DataFrame(rows)
    if "subtask" in df.columns:
        out.insert(0, "subtask", df["subtask"].to_numpy())
    return out


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


def em_summary(em, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """EM as a fraction with a percentile-bootstrap 95% interval over rows."""
    from overshadow_lab.metrics import bootstrap_ci

    v = np.asarray(em, dtype=float)
    lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed) if len(v) else (np.nan, np.nan)
    return {"em": float(v.mean()) if len(v) else np.nan, "em_lo": lo, "em_hi": hi, "n": int(len(v))}


def paired_difference(a, b, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of ``a - b`` over paired rows with a bootstrap 95% interval (rows resampled together)."""
    from overshadow_lab.metrics import bootstrap_ci

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    lo, hi = bootstrap_ci(d, n_boot=n_boot, seed=seed)
    return {"diff": float(d.mean()), "diff_lo": lo, "diff_hi": hi, "n": int(len(d))}


def compare_methods(
    model,
    tokenizer,
    benchmark: str,
    df: pd.DataFrame,
    methods=("greedy", "coda", "cad"),
    coda=None,
    cache: str | Path | None = None,
    progress: bool = False,
    **kwargs,
) -> pd.DataFrame:
    """Per-row results of several methods on the same rows (long format, column ``method``).

    With ``cache`` (a CSV path) the table is loaded when it exists and holds the same rows and
    methods, else computed and written there ("load if computed, else compute").
    """
    if cache is not None and Path(cache).is_file():
        old = pd.read_csv(cache)
        if set(old["method"]) == set(methods) and len(old) == len(methods) * len(df):
            return old
    parts = []
    for method in methods:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(df), desc=f"{benchmark} {method}", mininterval=5)
        res = evaluate_generation(
            model,
            tokenizer,
            benchmark,
            df,
            method,
            coda=coda,
            progress=bar.update if bar else None,
            **kwargs,
        )
        if bar:
            bar.close()
        res.insert(0, "method", method)
        res.insert(1, "row", range(len(df)))
        if "subtask" not in res.columns:
            res.insert(2, "subtask", "NQ-Swap" if benchmark == "nq_swap" else benchmark)
        res["seconds"] = res.attrs.get("seconds", np.nan)
        parts.append(res)
    out = pd.concat(parts, ignore_index=True)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(cache, index=False)
    return out


def table3_layout(
    results: pd.DataFrame, model_name: str, value: str = "em", n_boot: int = 1000
) -> pd.DataFrame:
    """EM in percent in the layout of the paper's Table 3: one row per method, one column per task,
    each cell ``"EM [lo, hi]"`` (bootstrap 95% interval over rows)."""
    rows = []
    for method, g in results.groupby("method", sort=False):
        row = {"model": model_name, "method": method}
        for task, t in g.groupby("subtask", sort=False):
            s = em_summary(t[value].astype(float), n_boot=n_boot)
            row[task] = f"{100 * s['em']:.1f} [{100 * s['em_lo']:.0f}, {100 * s['em_hi']:.0f}]"
        rows.append(row)
    return pd.DataFrame(rows)


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
