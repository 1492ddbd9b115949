"""Sweeps over one factor (P, L or model size S) with several seeds, resumable and shardable.

``run_sweep("P", [2, 10, 100], seeds=2, out="results.csv")`` trains one model per (value, seed)
and appends one row per finished run to ``out``. Each run is keyed by ``config_hash``, a hash of
everything that determines its result (data, model and training settings, seed), so a restarted
sweep (even after ``kill -9``) skips the runs already in the file and redoes none. ``shard=(i, N)``
keeps every N-th run, so N machines or job-array tasks can share one sweep.

Appends are atomic: under an exclusive lock, the file is rewritten to a temporary file beside it
and moved into place with ``os.replace``, so a reader (or a crash) only ever sees whole rows.
On a CPU, runs of small models go to a pool of single-threaded worker processes, one per core.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from overshadow_lab.device import get_device, get_tier
from overshadow_lab.paths import git_commit

FACTORS = ("P", "L", "S")

_TIER_DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": {
        "P": 5,
        "L": 5,
        "n": 1,
        "n_sets": 50,
        "span_len": 1,
        "answer_len": 1,
        "position": "end",
        "vocab": 2000,
        "size": "tiny",
        "init": "scratch",
        "rule": "converge",
        "epochs": 10,
        "max_steps": 1500,
        "min_steps": 0,
        "rr_threshold": 0.95,
        "eval_every": 25,
        "patience": 8,
        "lr": 3e-3,
        "weight_decay": 1e-2,
        "batch_size": 64,
        "warmup": 0.05,
    },
    "gpu": {
        "P": 5,
        "L": 5,
        "n": 1,
        "n_sets": 100,
        "span_len": 1,
        "answer_len": 1,
        "position": "end",
        "vocab": 2000,
        "size": "pythia-70m",
        "init": "scratch",
        "rule": "converge",
        "epochs": 40,
        "max_steps": 4000,
        "min_steps": 0,
        "rr_threshold": 0.95,
        "eval_every": 50,
        "patience": 8,
        "lr": 1e-3,
        "weight_decay": 1e-2,
        "batch_size": 64,
        "warmup": 0.05,
    },
}
_GRIDS: dict[str, dict[str, list]] = {
    # the cpu tier is a documented subset of the paper's grid, sized for 2 CPU cores: the Data
    # imbalance chapter runs both sweeps in about two minutes, and the Law and Generalization
    # bound chapters reuse the same results file (same configuration hashes)
    "cpu": {
        "P": [2, 5, 10, 25, 100],
        "L": [2, 5, 10],
        "S": ["pico", "nano", "tiny", "mini", "small", "medium"],
    },
    "gpu": {
        "P": [2, 5, 10, 25, 50, 100],
        "L": [2, 5, 10, 25, 50, 100],
        "S": ["pythia-14m", "pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b"],
    },
}
DATA_KEYS = ("P", "L", "n", "n_sets", "span_len", "answer_len", "position", "vocab")
TRAIN_KEYS = (
    "rule",
    "epochs",
    "max_steps",
    "min_steps",
    "rr_threshold",
    "eval_every",
    "patience",
    "lr",
    "weight_decay",
    "batch_size",
    "warmup",
)
MODEL_KEYS = ("size", "init")
RESULT_COLUMNS = (
    "factor",
    "value",
    "P",
    "L",
    "S",
    "size",
    "seed",
    "RR",
    "HR",
    "R",
    "sub_acc",
    "R_lo",
    "R_hi",
    "HR_lo",
    "HR_hi",
    "RR_lo",
    "RR_hi",
    "sub_acc_lo",
    "sub_acc_hi",
    "steps",
    "epochs_run",
    "seconds",
    "tokens",
    "converged",
    "stop_reason",
    "config_hash",
)


def tier_defaults(tier: str | None = None) -> dict:
    """The fixed settings of a tier: data (P, L, n_sets ...), model size and training options."""
    return dict(_TIER_DEFAULTS[get_tier(tier)])


def default_grid(factor: str, tier: str | None = None) -> list:
    """The values a sweep over ``factor`` takes by default (S: the tier's family of sizes)."""
    _check_factor(factor)
    return list(_GRIDS[get_tier(tier)][factor])


def _check_factor(factor: str) -> None:
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {', '.join(FACTORS)}, got {factor!r}")


def config_hash(config: dict) -> str:
    """A short stable hash of a run's configuration (keys sorted, values JSON-encoded)."""
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def plan_runs(
    factor: str,
    values: Sequence | None = None,
    seeds: int | Sequence[int] = 3,
    tier: str | None = None,
    **fixed: Any,
) -> list[dict]:
    """The list of run configurations of a sweep (each a dict with ``config_hash``)."""
    _check_factor(factor)
    base = tier_defaults(tier)
    unknown = [k for k in fixed if k not in base]
    if unknown:
        raise ValueError(
            f"unknown sweep setting(s) {', '.join(unknown)}; fixed settings are {', '.join(base)}"
        )
    base.update(fixed)
    if values is None:
        values = default_grid(factor, tier)
    values = list(values)
    if not values:
        raise ValueError("values is empty: give at least one value (e.g. values=[2, 10, 100])")
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (the number of repeats), got {seeds}")
        seed_list = list(range(int(seeds)))
    else:
        seed_list = [int(s) for s in seeds]
        if not seed_list:
            raise ValueError("seeds is an empty list: give a count (seeds=3) or seed values")
    runs = []
    for v in values:
        for seed in seed_list:
            cfg = {k: base[k] for k in (*DATA_KEYS, *TRAIN_KEYS, *MODEL_KEYS)}
            if factor == "S":
                cfg["size"] = str(v)
            else:
                cfg[factor] = float(v) if not float(v).is_integer() else int(v)
            cfg["seed"] = int(seed)
            _validate_run(cfg)
            run = {"factor": factor, "value": v, **cfg}
            run["config_hash"] = config_hash(cfg)
            runs.append(run)
    return runs


def _validate_run(cfg: dict) -> None:
    from overshadow_lab.lab.data import SyntheticConfig, validate_config
    from overshadow_lab.lab.models import SIZES

    validate_config(SyntheticConfig(**{k: cfg[k] for k in DATA_KEYS}, seed=cfg["seed"]))
    if cfg["size"] not in SIZES and not os.path.isdir(cfg["size"]) and "/" not in cfg["size"]:
        raise ValueError(
            f"unknown model size {cfg['size']!r}: use one of {', '.join(SIZES)}, a hub id or a folder"
        )


def provenance(device: str | None = None) -> dict:
    """Versions, device and commit, stored with every row."""
    import torch
    import transformers

    import overshadow_lab

    return {
        "package": overshadow_lab.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": str(get_device(device)),
        "commit": git_commit(short=True),
    }


def run_one(run: dict, device: str | None = None, threads: int | None = None) -> dict:
    """Train and evaluate one run of a sweep; returns its result row (without provenance)."""
    from overshadow_lab.lab.data import make_knowledge_sets
    from overshadow_lab.lab.models import count_parameters, make_model
    from overshadow_lab.lab.train import TrainConfig, train_model
    from overshadow_lab.metrics import evaluate

    sets = make_knowledge_sets(**{k: run[k] for k in DATA_KEYS}, seed=run["seed"])
    model = make_model(run["size"], sets.vocab_size, init=run["init"], seed=run["seed"])
    tc = TrainConfig(
        **{k: run[k] for k in TRAIN_KEYS},
        seed=run["seed"],
        device=device,
        progress=False,
        threads=threads,
    )
    res = train_model(model, sets, tc)
    ev = evaluate(res.model, sets, n_boot=1000, seed=run["seed"])
    row = {k: run[k] for k in ("factor", "value", "P", "L", "size", "seed")}
    row["S"] = count_parameters(res.model)
    row.update({k: v for k, v in ev.items()})
    per_epoch = len(sets.train_sequences) / run["batch_size"]
    row.update(
        steps=res.steps,
        epochs_run=res.steps / max(1.0, np.ceil(per_epoch)),
        seconds=res.seconds,
        tokens=res.tokens,
        converged=res.converged,
        stop_reason=res.stop_reason,
        config_hash=run["config_hash"],
    )
    row.update({k: run[k] for k in (*DATA_KEYS, *TRAIN_KEYS, "init") if k not in row})
    return row


def _worker(run: dict, device: str | None) -> dict:
    import torch

    torch.set_num_threads(1)
    return run_one(run, device=device, threads=1)


_POOL: dict[str, Any] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    """A pool of spawned worker processes, kept for the next sweep of this Python session.

    Starting a worker imports torch and transformers (seconds); a chapter that runs several
    sweeps pays that once.
    """
    pool = _POOL.get("pool")
    if pool is not None and (_POOL.get("workers") != workers or getattr(pool, "_broken", False)):
        pool.shutdown(wait=False, cancel_futures=True)
        pool = None
    if pool is None:
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
        _POOL.update(pool=pool, workers=workers)
    return pool


def shutdown_workers() -> None:
    """Stop the kept worker processes (they also stop when Python exits)."""
    pool = _POOL.pop("pool", None)
    _POOL.pop("workers", None)
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_results(path: str | Path) -> pd.DataFrame:
    """The results table of a sweep file (empty frame if it does not exist yet)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    return pd.read_csv(path)


def append_row(path: str | Path, row: dict) -> None:
    """Append one row to a CSV atomically (lock, write a temporary copy, ``os.replace``).

    A row whose ``config_hash`` is already in the file is not added twice.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        old = read_results(path)
        if "config_hash" in old and row.get("config_hash") in set(old["config_hash"].astype(str)):
            return
        new = pd.DataFrame([row])
        df = new if old.empty else pd.concat([old, new], ignore_index=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", newline="") as fh:
            df.to_csv(fh, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"i/N"`` or ``(i, N)`` -> ``(i, N)`` with 0 <= i < N."""
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise ValueError(f"shard must look like i/N (e.g. 0/4), got {shard!r}") from None
    else:
        i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard {i}/{n} is out of range: use i/N with N >= 1 and 0 <= i < N")
    return int(i), int(n)


def run_sweep(
    factor: str,
    values: Sequence | None = None,
    seeds: int | Sequence[int] = 3,
    tier: str | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    shard: str | tuple[int, int] | None = None,
    workers: int | None = None,
    device: str | None = None,
    **fixed: Any,
) -> pd.DataFrame:
    """Run (or resume) a sweep over ``factor`` and return its tidy results table.

    ``values=None`` takes :func:`default_grid`; ``fixed`` overrides :func:`tier_defaults`
    (``P=``, ``L=``, ``size=``, ``n_sets=``, ``rule=``, ``lr=`` ...). With ``out``, every finished
    run is appended to that CSV at once, and runs already there are skipped. ``workers`` is the
    number of parallel CPU processes (default: one per core for small CPU models, 1 otherwise).
    The returned table holds this sweep's runs (of this shard) with provenance columns.
    """
    from overshadow_lab.lab.train import progress_enabled

    runs = plan_runs(factor, values, seeds, tier, **fixed)
    sh = parse_shard(shard)
    if sh is not None:
        runs = [r for k, r in enumerate(runs) if k % sh[1] == sh[0]]
    prov = provenance(device)
    prov["tier"] = get_tier(tier)
    rows: dict[str, dict] = {}
    if out is not None:
        done = read_results(out)
        for rec in done.to_dict("records"):
            rows[str(rec["config_hash"])] = rec
    pending = [r for r in runs if r["config_hash"] not in rows]
    dev = get_device(device)
    if workers is None:
        from overshadow_lab.lab.models import SIZES, size_parameters

        small = all(r["size"] in SIZES and size_parameters(r["size"], 2000) < 3e6 for r in pending)
        workers = min(os.cpu_count() or 1, len(pending)) if (dev.type == "cpu" and small) else 1
    workers = max(1, int(workers))

    def finish(row: dict) -> None:
        row = {**row, **prov, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        rows[row["config_hash"]] = row
        if out is not None:
            append_row(out, row)

    bar = None
    if progress_enabled(progress) and pending:
        from tqdm import tqdm

        bar = tqdm(total=len(pending), desc=f"sweep {factor}", unit="run")
    try:
        if workers == 1 or len(pending) <= 1:
            for r in pending:
                finish(run_one(r, device=device))
                if bar is not None:
                    bar.update(1)
        else:
            pool = _pool(workers)
            futs = [pool.submit(_worker, r, device) for r in pending]
            for f in as_completed(futs):
                try:
                    row = f.result()
                except BrokenProcessPool as err:
                    shutdown_workers()
                    raise RuntimeError(
                        "a sweep worker process died. Sweeps start worker processes with "
                        "'spawn': in a script, put the code that calls run_sweep under "
                        "`if __name__ == '__main__':`, or pass workers=1 (finished runs are "
                        "kept; re-run to resume)"
                    ) from err
                finish(row)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    order = [r["config_hash"] for r in runs]
    if out is not None:  # read back, so that fresh and resumed rows have the same types
        rows = {str(rec["config_hash"]): rec for rec in read_results(out).to_dict("records")}
    table = pd.DataFrame([rows[h] for h in order if h in rows])
    if not table.empty:
        first = [c for c in RESULT_COLUMNS if c in table.columns]
        table = table[first + [c for c in table.columns if c not in first]]
    return table


def summarize(table: pd.DataFrame, by: str | None = None, metric: str = "R") -> pd.DataFrame:
    """Mean, standard error and a 95% t-interval of ``metric`` over seeds, per factor value."""
    from scipy import stats

    if table.empty:
        raise ValueError("the results table is empty: run the sweep first")
    by = by or ("S" if table["factor"].iloc[0] == "S" else table["factor"].iloc[0])
    g = table.groupby(by)[metric]
    out = g.agg(["mean", "std", "count"]).reset_index()
    sem = out["std"] / np.sqrt(out["count"])
    t = stats.t.ppf(0.975, np.maximum(out["count"] - 1, 1))
    out["sem"] = sem
    out["lo"] = out["mean"] - t * sem
    out["hi"] = out["mean"] + t * sem
    if (table[metric].dropna() >= 0).all():  # rates and R cannot be negative
        out["lo"] = out["lo"].clip(lower=0.0)
    return out.rename(columns={"mean": metric})


__all__ = [
    "FACTORS",
    "append_row",
    "config_hash",
    "default_grid",
    "parse_shard",
    "plan_runs",
    "provenance",
    "read_results",
    "run_one",
    "run_sweep",
    "shutdown_workers",
    "summarize",
    "tier_defaults",
]
