"""Record the runs behind "predict before training" (issue 17) for the chapter "The law".

    python scripts/record_transfer.py --part synthetic --workers 2  # the synthetic laws (P and L)
    python scripts/record_transfer.py --part scratch --workers 2    # 7 task families from scratch
    python scripts/record_transfer.py --part smollm2 --tasks negation,math   # from SmolLM2

Each part writes ``overshadow_lab/recorded/transfer_<part>.csv`` (one row per run: the cell's
grid and settings, RR, HR, R with its bootstrap interval over knowledge sets, steps, exposures,
seconds) and ``transfer_<part>.json`` (provenance from :func:`overshadow_lab.records.provenance`,
the settings and the accumulated wall time) after every finished run, each file atomically, so
a killed run loses at most the runs in flight and a rerun resumes (rows whose settings match
are kept, the rest redone). ``--workers N`` trains N runs at once, one single-threaded process
each. Wrap long parts in ``flock /tmp/overshadow-heavy.lock`` on a shared machine.

**Protocol: the lab's adopted one** (:data:`overshadow_lab.lab.protocols.ADOPTED`, equal
exposure). Every run, synthetic or natural-language, at every P and L, stops when each
subordinate statement has been presented ``exposures`` times, at a constant learning rate after
warm-up, so a subordinate fact is shown equally often whatever the popularity of its dominant
rival; the number of optimizer steps grows with the corpus, as in the lab's own grids
(:mod:`overshadow_lab.lab.protocols` gives the rationale). Model size, number of knowledge sets,
batch size and learning rate are those of the lab's recorded grids, except that the corpora have
200 knowledge sets instead of 400 (the natural-language runs at P = 64 take minutes each).

**Grids.** A P grid of five values over 1.5 decades (:data:`P_GRID`) at each family's natural
distinct-span length, and an L grid at P = :data:`L_GRID_P`: for the synthetic corpora
:data:`SYNTHETIC_L_GRID`, for a task family the smallest whole L its sentences allow and two and
four and eight times that (:func:`task_l_grid`: the distinct span keeps its length, the shared context is
padded with filler words). Both grids are trained from scratch; the SmolLM2 part runs the P grid
only (its runs cost a hundred times as much on this CPU).

The from-scratch runs follow :func:`overshadow_lab.finetuning.finetune.run_task_grid` (a
word-level tokenizer per corpus, one distinct-span length per family for the whole grid, so that
L stays fixed while P varies), cell by cell so that they resume. The SmolLM2 runs fine-tune
SmolLM2-135M-Instruct (offline), its last two blocks only, on two knowledge sets per corpus.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import multiprocessing as mp
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from overshadow_lab.finetuning.finetune import freeze_all_but_last  # noqa: E402
from overshadow_lab.finetuning.tasks import TASKS, make_task  # noqa: E402
from overshadow_lab.finetuning.tokenizers import WordTokenizer  # noqa: E402
from overshadow_lab.lab.models import count_parameters, make_model  # noqa: E402
from overshadow_lab.lab.protocols import ADOPTED, get_protocol, protocol_options  # noqa: E402
from overshadow_lab.lab.sweep import plan_runs, run_one  # noqa: E402
from overshadow_lab.lab.train import train_model  # noqa: E402
from overshadow_lab.metrics import evaluate  # noqa: E402
from overshadow_lab.records import (  # noqa: E402
    RECORDED_DIR,
    load_recorded,
    provenance,
    save_recorded,
)

PARTS = ("synthetic", "scratch", "smollm2")
P_GRID = (2, 4, 8, 16, 64)  # five values over 1.5 decades
L_GRID_P = 16  # the P at which the L grids run
SYNTHETIC_L_GRID = (2, 4, 8, 16, 32)  # 1.2 decades
#: A task family's L grid, in multiples of its smallest whole L (0.9 decades).
L_MULTIPLES = (1, 2, 4, 8)
SEEDS = 3
METRICS = ("RR", "HR", "R", "sub_acc", "R_lo", "R_hi", "RR_lo", "RR_hi")

#: The lab's recorded grids train the ``pico`` model on 400 sets at batch 64 and lr 0.01 with 10
#: exposures (``scripts/record_lab_grids.py``); the transfer keeps all of it but the set count.
_LAB = {"size": "pico", "n_sets": 200, "batch_size": 64, "lr": 1e-2, "exposures": 10}

#: The settings of each part (part of every row's identity: a row made with other settings is
#: redone on resume).
SETTINGS: dict[str, dict] = {
    "synthetic": {**_LAB, "L": 5, "n_boot": 1000},
    "scratch": {**_LAB, "n_boot": 500},
    "smollm2": {
        "model": "smollm2-135m-instruct",
        "n_sets": 2,
        "batch_size": 8,
        "lr": 2e-3,
        "exposures": 3,
        "train_blocks": 2,
        "n_boot": 200,
        "shape": "span and L fixed per family over every P and seed",
    },
}
#: What the provenance calls the protocol (the lab's adopted one, by name).
PROTOCOL = f"{ADOPTED}: {get_protocol(ADOPTED).holds_equal}"


def settings_key(part: str) -> str:
    """The settings of ``part`` as one string, stored on every row (resume keys on it)."""
    return json.dumps(SETTINGS[part], sort_keys=True)


def adopted(exposures: int) -> dict:
    """The training options of the lab's adopted protocol with ``exposures`` presentations of
    each subordinate statement (no recall checks on the way: only the stop rule decides)."""
    return protocol_options(ADOPTED, exposures=int(exposures), eval_every=10_000)


# ------------------------------------------------------------------------------------------
# One run of each part (the tests re-run a seeded few of these)
# ------------------------------------------------------------------------------------------


def synthetic_run(P: float, seed: int, L: float | None = None) -> dict:
    """One run of the lab's synthetic corpora (``lab.sweep.run_one``) under the adopted
    protocol; ``L=None`` is the P grid's fixed L."""
    s = SETTINGS["synthetic"]
    (run,) = plan_runs(
        "P",
        [P],
        seeds=[seed],
        tier="cpu",
        size=s["size"],
        n_sets=s["n_sets"],
        batch_size=s["batch_size"],
        lr=s["lr"],
        L=s["L"] if L is None else L,
        **adopted(s["exposures"]),
    )
    row = run_one(run, device="cpu", threads=1)
    return {
        "task": "synthetic",
        "grid": "P" if L is None else "L",
        "P": float(P),
        "seed": seed,
        "L": float(row["L"]),
        "S": row["S"],
        "steps": row["steps"],
        "sub_exposures": row["sub_exposures"],
        "seconds": row["seconds"],
        **{k: row[k] for k in METRICS},
    }


def span_lengths(tasks) -> dict[str, int]:
    """One distinct-span length per family: the one the largest P of the grid needs."""
    n_sets = SETTINGS["scratch"]["n_sets"]
    return {
        t: make_task(t, tokenizer=WordTokenizer(), P=max(P_GRID), n_sets=n_sets).span_len
        for t in tasks
    }


def task_l_grid(task: str, span_len: int) -> list[float]:
    """The L grid of a family: its smallest whole L at ``span_len`` times :data:`L_MULTIPLES`."""
    sets = make_task(
        task, tokenizer=WordTokenizer(), P=L_GRID_P, n_sets=SETTINGS["scratch"]["n_sets"],
        span_len=span_len,
    )  # fmt: skip
    first = math.ceil(sets.L_actual - 1e-9)
    return [float(first * k) for k in L_MULTIPLES]


def scratch_run(task: str, P: float, seed: int, span_len: int, L: float | None = None) -> dict:
    """A from-scratch model on one natural-language corpus, under the adopted protocol;
    ``L=None`` keeps the family's natural shared context, a number pads it to that L."""
    s = SETTINGS["scratch"]
    sets = make_task(
        task, tokenizer=WordTokenizer(), P=P, n_sets=s["n_sets"], seed=seed, span_len=span_len,
        L=L,
    )  # fmt: skip
    model = make_model(s["size"], vocab_size=sets.vocab_size, seed=seed)
    res = train_model(
        model,
        sets,
        seed=seed,
        device="cpu",
        threads=1,
        progress=False,
        batch_size=s["batch_size"],
        lr=s["lr"],
        **adopted(s["exposures"]),
    )
    return _scored_row(task, "P" if L is None else "L", P, seed, sets, res, s["n_boot"])


def _scored_row(task: str, grid: str, P: float, seed: int, sets, res, n_boot: int) -> dict:
    """One recorded row: the run's key, its size and steps, and R with the other metrics."""
    ev = evaluate(res.model, sets, n_boot=n_boot, seed=seed)
    return {
        "task": task,
        "grid": grid,
        "P": float(P),
        "seed": seed,
        "L": sets.L_actual,
        "S": count_parameters(res.model),
        "steps": res.steps,
        "sub_exposures": res.exposure.get("subordinate_min"),
        "seconds": res.seconds,
        **{k: ev[k] for k in METRICS},
    }


@functools.cache
def smollm2_shape(tokenizer, task: str, seeds: int = SEEDS) -> tuple[int, float]:
    """``(span_len, L)`` that every run of ``task`` along the P grid meets with SmolLM2's
    tokenizer: the span length that the most runs would pick by themselves among those every
    run can meet, and the smallest whole L that no run's sentences exceed. With two sets per
    corpus each seed and P draws its own sentences, so left alone both would vary from run to
    run (L between 2.5 and 35 for one family in an earlier recording)."""
    n_sets = SETTINGS["smollm2"]["n_sets"]
    runs = [(P, s) for P in P_GRID for s in range(seeds)]

    def corpus(P, seed, span=None):
        return make_task(task, tokenizer=tokenizer, P=P, n_sets=n_sets, seed=seed, span_len=span)

    picked = Counter(corpus(P, s).span_len for P, s in runs)
    for span, _ in picked.most_common() + [(k, 0) for k in range(1, 13) if k not in picked]:
        try:
            natural = [corpus(P, s, span).L_actual for P, s in runs]
        except ValueError:  # some run's sets offer too few spans of this length
            continue
        return span, float(math.ceil(max(natural) - 1e-9))
    raise ValueError(f"no span length of 1-12 tokens suits every run of {task!r} with SmolLM2")


def smollm2_run(base, tokenizer, task: str, P: float, seed: int) -> dict:
    """SmolLM2 fine-tuned (last blocks only) on one corpus under the adopted protocol; R after.
    Every run of a family has the same span length and L (:func:`smollm2_shape`)."""
    s = SETTINGS["smollm2"]
    model = copy.deepcopy(base)
    span, L = smollm2_shape(tokenizer, task)
    sets = make_task(
        task, tokenizer=tokenizer, P=P, n_sets=s["n_sets"], seed=seed, span_len=span, L=L
    )
    freeze_all_but_last(model, s["train_blocks"])
    res = train_model(
        model,
        sets,
        seed=seed,
        device="cpu",
        progress=False,
        warmup=0.0,
        batch_size=s["batch_size"],
        lr=s["lr"],
        **adopted(s["exposures"]),
    )
    return _scored_row(task, "P", P, seed, sets, res, s["n_boot"])


# ------------------------------------------------------------------------------------------
# Resumable recording
# ------------------------------------------------------------------------------------------


def _key(task: str, grid: str, P: float, L: float | None, seed: int) -> tuple:
    """A cell's identity: the P grid's cells have no set L (the family's natural one)."""
    return (task, grid, float(P), None if grid == "P" else round(float(L), 3), int(seed))


def _row_key(row) -> tuple:
    return _key(row.task, row.grid, row.P, row.L, row.seed)


def _done(part: str, folder: Path) -> tuple[pd.DataFrame, float]:
    """The rows already recorded with the current settings, and the wall time they took."""
    found = load_recorded(f"transfer_{part}", folder)
    if found is None:
        return pd.DataFrame(), 0.0
    table, prov = found
    if "settings" not in table.columns or "grid" not in table.columns:
        return pd.DataFrame(), 0.0
    keep = table[table["settings"] == settings_key(part)]
    return keep.reset_index(drop=True), float(prov.get("wall_seconds") or 0.0)


def plan_cells(part: str, tasks, seeds: int) -> list[tuple]:
    """Every cell of ``part``: ``(task, grid, P, L, seed, span_len)``, the P grid first."""
    seeds_ = range(seeds)
    if part == "synthetic":
        cells = [("synthetic", "P", P, None, s, None) for P in P_GRID for s in seeds_]
        cells += [
            ("synthetic", "L", L_GRID_P, L, s, None) for L in SYNTHETIC_L_GRID for s in seeds_
        ]
        return cells
    if part == "smollm2":
        return [(t, "P", P, None, s, None) for t in tasks for P in P_GRID for s in seeds_]
    spans = span_lengths(tasks)
    cells = [(t, "P", P, None, s, spans[t]) for t in tasks for P in P_GRID for s in seeds_]
    for t in tasks:
        grid = task_l_grid(t, spans[t])
        cells += [(t, "L", L_GRID_P, L, s, spans[t]) for L in grid for s in seeds_]
    return cells


_BASE: tuple | None = None  # SmolLM2 and its tokenizer, loaded once per process


def run_cell(part: str, cell: tuple) -> dict:
    """Train and score one cell (in a worker process or in this one)."""
    global _BASE
    torch.set_num_threads(1)
    task, grid, P, L, seed, span = cell
    if part == "synthetic":
        return synthetic_run(P, seed, L)
    if part == "scratch":
        return scratch_run(task, P, seed, span, L)
    if _BASE is None:
        from overshadow_lab.loading import load_model  # deferred: only this part needs it

        _BASE = load_model(SETTINGS["smollm2"]["model"], device="cpu")
    return smollm2_run(*_BASE, task, P, seed)


def record(
    part: str,
    tasks,
    seeds: int,
    folder: Path,
    limit: int | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Run every missing cell of ``part`` and rewrite its recorded table after each one."""
    table, wall = _done(part, folder)
    have = {_row_key(r) for r in table.itertuples()} if not table.empty else set()
    cells = plan_cells(part, tasks, seeds)
    todo = [c for c in cells if _key(*c[:5]) not in have][:limit]
    if not todo:
        print(f"transfer_{part}: all {len(cells)} runs recorded", file=sys.stderr)
        return table
    rows = table.to_dict("records")
    started = time.perf_counter()

    def save(row: dict, cell: tuple) -> None:
        nonlocal table
        rows.append({"part": part, **row, "settings": settings_key(part)})
        table = pd.DataFrame(rows)
        prov = provenance("cpu", wall_seconds=round(wall + time.perf_counter() - started, 1))
        prov.update(
            part=part,
            settings=SETTINGS[part],
            protocol=PROTOCOL,
            protocol_name=ADOPTED,
            workers=workers,
            command=" ".join(sys.argv),
        )
        save_recorded(table, prov, f"transfer_{part}", folder)
        task, grid, P, L, seed, _ = cell
        print(
            f"transfer_{part}: {task} {grid} P={P} L={row['L']:.1f} seed={seed} "
            f"R={row['R']:.1f} ({row['seconds']:.1f}s; {len(table)}/{len(cells)})",
            file=sys.stderr,
        )

    if workers <= 1:
        for cell in todo:
            save(run_cell(part, cell), cell)
        return table
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(run_cell, part, cell): cell for cell in todo}
        try:
            for done in as_completed(futures):
                save(done.result(), futures[done])
        except BaseException:  # one failed run (or Ctrl-C) stops the rest instead of waiting
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=PARTS, required=True)
    p.add_argument("--tasks", default=",".join(TASKS), help="comma list of task families")
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--limit", type=int, help="run at most this many missing cells, then stop")
    p.add_argument("--workers", type=int, default=1, help="runs trained at once (one per core)")
    p.add_argument("--out", default=str(RECORDED_DIR), help="folder of the recorded tables")
    args = p.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {', '.join(unknown)}; use {', '.join(TASKS)}")
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    record(args.part, tasks, args.seeds, Path(args.out), args.limit, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
