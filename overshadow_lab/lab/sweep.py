"""Sweeps over one factor with several seeds, resumable and shardable.

The factors are the law's three, P, L and model size S (:data:`FACTORS`, each with a default
grid per tier), and the settings that decide *where* the lab sits (:data:`EXTRA_FACTORS`:
capacity through ``n_sets``, the ``position`` of the distinct span, ``weight_decay``, the
learning rate ``lr`` and the ``exposures`` budget), which take the values given.

``run_sweep("P", [2, 10, 100], seeds=2, out="results.csv")`` trains one model per (value, seed)
and appends one row per finished run to ``out``. Each run is keyed by ``config_hash``, a hash of
everything that determines its result (data, model and training settings, seed), so a restarted
sweep (even after ``kill -9``) skips the runs already in the file and redoes none.

**Settings.** A sweep's fixed settings (:func:`tier_defaults`) are the library's own defaults
(:class:`~overshadow_lab.lab.data.SyntheticConfig`, :class:`~overshadow_lab.lab.train.TrainConfig`
and :func:`~overshadow_lab.lab.models.make_model`) with the per-tier overrides of
:data:`TIER_OVERRIDES`, each documented there, so they cannot drift apart; ``fixed`` arguments
override both.

**The results table** (:mod:`overshadow_lab.lab.results`): every row is written whole in one
append and flushed; on resuming, every row is checked (complete, parseable, its ``config_hash``
the hash of its own settings), bad rows are moved to ``<name>.rejected.csv`` with a warning naming
them and their runs are redone once. The output path is checked before any training, and a
table is written by one sweep at a time (a second one is refused at once).

**Processes.** On a CPU, runs of small models go to a pool of single-threaded worker processes,
one per CPU this process may use (:func:`~overshadow_lab.lab.workers.available_cpus`: affinity
and cgroup quota, so a batch job uses what it was granted). The workers die with the sweep, even
under ``kill -9`` (:mod:`overshadow_lab.lab.workers`).

**On a cluster.** ``shard=(i, N)`` keeps every N-th run, so N jobs share one sweep; each shard
writes a table of its own (the command line names it ``results.shard-i-of-N.csv`` from
``--out results.csv``; in Python use :func:`shard_path`), so no two jobs ever write one file, on
a network file system or anywhere. ``overshadow-lab sweep merge --out results.csv`` (or
:func:`merge_results`) then checks the shard tables, finds that none is missing and adds every
run once to ``results.csv``; it may run again when more shards have finished. A shard that was
killed or pre-empted resumes from its own table when its command runs again. With Slurm, an
array job (``sbatch sweep.sh``), and the merge once the array has finished::

    #!/bin/bash
    #SBATCH --array=0-7
    #SBATCH --cpus-per-task=4
    #SBATCH --time=02:00:00
    overshadow-lab sweep --factor P --seeds 5 --tier cpu --out results/sweep_P.csv \\
        --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" --no-progress

    # after: sbatch --dependency=afterok:<array job id> \\
    #            --wrap "overshadow-lab sweep merge --out results/sweep_P.csv"

Each task trains with as many workers as the CPUs Slurm granted it (``--cpus-per-task``). The
same on one machine with plain bash, one shard per CPU (``taskset`` pins each to its CPU, so each
uses one worker)::

    N=4
    for i in $(seq 0 $((N - 1))); do
        taskset -c "$i" overshadow-lab sweep --factor P --tier cpu --out results.csv \\
            --shard "$i/$N" --no-progress &
    done
    wait
    overshadow-lab sweep merge --out results.csv
"""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from collections.abc import Sequence
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm import tqdm

from overshadow_lab.device import get_device, get_tier
from overshadow_lab.lab.data import SyntheticConfig, make_knowledge_sets, validate_config
from overshadow_lab.lab.models import SIZES, count_parameters, make_model, size_parameters
from overshadow_lab.lab.results import (
    DATA_KEYS,
    MODEL_KEYS,
    OPTIONAL_KEYS,
    RESULT_COLUMNS,
    TRAIN_KEYS,
    ResultsWriter,
    append_row,
    config_hash,
    merge_results,
    read_results,
    shard_path,
)
from overshadow_lab.lab.train import TrainConfig, progress_enabled, train_model
from overshadow_lab.lab.workers import available_cpus, shutdown_workers, worker_pool
from overshadow_lab.metrics import evaluate
from overshadow_lab.records import code_hash, row_provenance

FACTORS = ("P", "L", "S")
#: Settings that can be swept like a factor (no default grid: give the values).
EXTRA_FACTORS = ("n_sets", "position", "weight_decay", "lr", "exposures")

#: How each tier's sweeps differ from the library's defaults (see :func:`library_defaults`),
#: each with the default it replaces. These are the values every sweep of the lab has used; each
#: is part of a run's configuration hash, so changing one re-runs every sweep and changes the
#: chapters' results. Settings not listed here follow the library's defaults.
TIER_OVERRIDES: dict[str, dict[str, Any]] = {
    "cpu": {
        "n_sets": 50,  # sets per corpus (SyntheticConfig: 100): sweeps that fit 2 CPU cores
        "epochs": 10,  # the budget of rule="epochs" runs (TrainConfig: 40)
        "max_steps": 1500,  # the step cap of a run (TrainConfig: 2000)
        "eval_every": 25,  # steps between recall checks (TrainConfig: 50)
        "patience": 8,  # checks without progress before a plateau stops a run (TrainConfig: 5)
        "batch_size": 64,  # sequences per step (TrainConfig: 16)
    },
    "gpu": {
        "size": "pythia-70m",  # a Pythia-70M-shaped model (make_model: "tiny")
        "max_steps": 4000,  # the step cap of a run (TrainConfig: 2000)
        "patience": 8,  # as on the cpu tier (TrainConfig: 5)
        "lr": 1e-3,  # the learning rate for the larger model (TrainConfig: 3e-3)
        "batch_size": 64,  # as on the cpu tier (TrainConfig: 16)
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


def library_defaults() -> dict:
    """The defaults a sweep starts from: data (SyntheticConfig), model (make_model), training
    (TrainConfig), in that order, for the keys of a run's configuration (seed excepted)."""
    data, train = SyntheticConfig(), TrainConfig()
    model = inspect.signature(make_model).parameters
    return {
        **{k: getattr(data, k) for k in DATA_KEYS},
        **{k: model[k].default for k in MODEL_KEYS},
        **{k: getattr(train, k) for k in TRAIN_KEYS},
    }


def tier_defaults(tier: str | None = None) -> dict:
    """The fixed settings of a tier: :func:`library_defaults` with the tier's
    :data:`TIER_OVERRIDES` (data: P, L, n_sets ...; model size; training options)."""
    return library_defaults() | TIER_OVERRIDES[get_tier(tier)]


def default_grid(factor: str, tier: str | None = None) -> list:
    """The values a sweep over ``factor`` takes by default (S: the tier's family of sizes)."""
    _check_factor(factor)
    if factor not in FACTORS:
        raise ValueError(f"factor {factor!r} has no default grid: give its values")
    return list(_GRIDS[get_tier(tier)][factor])


def _check_factor(factor: str) -> None:
    if factor not in (*FACTORS, *EXTRA_FACTORS):
        raise ValueError(
            f"factor must be one of {', '.join((*FACTORS, *EXTRA_FACTORS))}, got {factor!r}"
        )


def _cast(factor: str, v: Any) -> Any:
    """A factor value as the configuration stores it (names stay text, counts whole numbers)."""
    if factor in ("S", "position"):
        return str(v)
    if factor in ("n_sets", "exposures"):
        if float(v) != int(float(v)):
            raise ValueError(f"{factor} is a count, got {v!r}; give whole numbers")
        return int(float(v))
    return float(v) if not float(v).is_integer() else int(v)


def plan_runs(
    factor: str,
    values: Sequence | None = None,
    seeds: int | Sequence[int] = 3,
    tier: str | None = None,
    **fixed: Any,
) -> list[dict]:
    """The list of run configurations of a sweep (each a dict with ``config_hash``)."""
    _check_factor(factor)
    base = tier_defaults(tier) | {k: getattr(TrainConfig(), k) for k in OPTIONAL_KEYS}
    unknown = [k for k in fixed if k not in base]
    if unknown:
        raise ValueError(
            f"unknown sweep setting(s) {', '.join(unknown)}; fixed settings are {', '.join(base)}"
        )
    base.update({k: v.item() if isinstance(v, np.generic) else v for k, v in fixed.items()})
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
            cfg["exposures"] = base["exposures"]
            cfg["size" if factor == "S" else factor] = _cast(factor, v)
            if cfg["rule"] != "exposure":  # the budget of the exposure rule only: not hashed
                del cfg["exposures"]  # otherwise, so other rules keep their hashes
            cfg["seed"] = int(seed)
            _validate_run(cfg)
            run = {"factor": factor, "value": v, **cfg}
            run["config_hash"] = config_hash(cfg)
            runs.append(run)
    return runs


def _validate_run(cfg: dict) -> None:
    validate_config(SyntheticConfig(**{k: cfg[k] for k in DATA_KEYS}, seed=cfg["seed"]))
    if cfg["size"] not in SIZES and not os.path.isdir(cfg["size"]) and "/" not in cfg["size"]:
        raise ValueError(
            f"unknown model size {cfg['size']!r}: use one of {', '.join(SIZES)}, a hub id or a folder"
        )


def run_one(run: dict, device: str | None = None, threads: int | None = None) -> dict:
    """Train and evaluate one run of a sweep; returns its result row (without provenance)."""
    sets = make_knowledge_sets(**{k: run[k] for k in DATA_KEYS}, seed=run["seed"])
    model = make_model(run["size"], sets.vocab_size, init=run["init"], seed=run["seed"])
    tc = TrainConfig(
        **{k: run[k] for k in TRAIN_KEYS},
        **{k: run[k] for k in OPTIONAL_KEYS if k in run},
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
        sub_exposures=res.exposure.get("subordinate_min"),
        config_hash=run["config_hash"],
    )
    keys = (*DATA_KEYS, *TRAIN_KEYS, *(k for k in OPTIONAL_KEYS if k in run), "init")
    row.update({k: run[k] for k in keys if k not in row})
    return row


def _worker(run: dict, device: str | None) -> dict:
    torch.set_num_threads(1)
    return run_one(run, device=device, threads=1)


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
    run is appended to that CSV at once, and runs already there are skipped (bad rows are moved
    aside first and their runs redone, see :mod:`overshadow_lab.lab.results`); ``out`` is checked
    before any training. ``shard=(i, N)`` (or ``"i/N"``) runs every N-th run only; give each
    shard its own ``out`` (:func:`shard_path`) and merge them with :func:`merge_results`.
    ``workers`` is the number of parallel CPU processes (default: one per CPU this process may
    use, for small models on a CPU; 1 otherwise). The returned table holds this sweep's runs (of
    this shard) with provenance columns.
    """
    runs = plan_runs(factor, values, seeds, tier, **fixed)
    sh = parse_shard(shard)
    if sh is not None:
        runs = [r for k, r in enumerate(runs) if k % sh[1] == sh[0]]
    # Rows that other package code made are set aside and redone (records.code_hash), so a
    # resumed table never shows an old result as current.
    writer = ResultsWriter(out, code=code_hash()) if out is not None else None
    prov = {**row_provenance(device), "tier": get_tier(tier)}
    dev = get_device(device)
    rows: dict[str, dict] = {}
    with writer if writer is not None else contextlib.nullcontext():
        done = writer.hashes if writer is not None else set()
        pending = [r for r in runs if r["config_hash"] not in done]
        if workers is None:
            small = all(r["size"] in SIZES and size_parameters(r["size"]) < 3e6 for r in pending)
            workers = min(available_cpus(), len(pending)) if dev.type == "cpu" and small else 1
        workers = max(1, int(workers))

        def finish(row: dict) -> None:
            row = {**row, **prov, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            rows[row["config_hash"]] = row
            if writer is not None:
                writer.append(row)

        bar = None
        if progress_enabled(progress) and pending:
            bar = tqdm(total=len(pending), desc=f"sweep {factor}", unit="run")
        try:
            if workers == 1 or len(pending) <= 1:
                for r in pending:
                    finish(run_one(r, device=device))
                    if bar is not None:
                        bar.update(1)
            else:
                pool = worker_pool(workers)
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
    "DATA_KEYS",
    "EXTRA_FACTORS",
    "FACTORS",
    "MODEL_KEYS",
    "RESULT_COLUMNS",
    "TIER_OVERRIDES",
    "TRAIN_KEYS",
    "append_row",
    "available_cpus",
    "config_hash",
    "default_grid",
    "library_defaults",
    "merge_results",
    "parse_shard",
    "plan_runs",
    "read_results",
    "run_one",
    "run_sweep",
    "shard_path",
    "shutdown_workers",
    "summarize",
    "tier_defaults",
]
