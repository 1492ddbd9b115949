"""Record the runs behind "predict before training" (issue 17) for the chapter "The law".

    python scripts/record_transfer.py --part synthetic   # the synthetic law (lab sweep over P)
    python scripts/record_transfer.py --part scratch     # 7 task families from scratch
    python scripts/record_transfer.py --part smollm2 --tasks negation,math   # from SmolLM2

Each part writes ``overshadow_lab/recorded/transfer_<part>.csv`` (one row per run: the cell's
settings, RR, HR, R with its bootstrap interval over knowledge sets, steps, seconds) and
``transfer_<part>.json`` (provenance from :func:`overshadow_lab.records.provenance`, the
settings and the accumulated wall time) after every finished run, each file atomically, so a
killed run loses at most the run in flight and a rerun resumes (rows whose settings match are
kept, the rest redone). Wrap long parts in ``flock /tmp/overshadow-heavy.lock`` on a shared
machine.

**Protocol: equal exposure.** Every run, synthetic or natural-language, at every P, takes the
same number of optimizer steps at the same batch size (``TrainConfig(min_steps = max_steps =
steps)``: the recall check cannot stop it early), so the corpus's size does not decide how long
a model trains. A fixed number of *epochs* would give a P = 64 corpus thirty times the steps of a
P = 2 corpus (measured: 40 epochs of the tiny model memorise every statement at P = 64, R = 0,
and leave P = 2 unlearnt), confounding popularity with training length (SPEC §3).

The from-scratch runs follow :func:`overshadow_lab.finetuning.finetune.run_task_grid` (a
word-level tokenizer per corpus, the lab's ``tiny`` model, one distinct-span length per family for
the whole P grid, so that L stays fixed while P varies), cell by cell so that they resume. The
SmolLM2 runs fine-tune SmolLM2-135M-Instruct (offline) for a few steps, its last two blocks only,
on two knowledge sets per corpus: the CPU is shared, so these are small by design.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
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
SEEDS = 3
METRICS = ("RR", "HR", "R", "sub_acc", "R_lo", "R_hi", "RR_lo", "RR_hi")

#: The settings of each part (part of every row's identity: a row made with other settings is
#: redone on resume).
SETTINGS: dict[str, dict] = {
    "synthetic": {
        "size": "tiny",
        "n_sets": 20,
        "batch_size": 32,
        "lr": 3e-3,
        "steps": 150,
        "L": 5,
        "n_boot": 1000,
    },
    "scratch": {
        "size": "tiny",
        "n_sets": 20,
        "batch_size": 32,
        "lr": 3e-3,
        "steps": 150,
        "n_boot": 500,
    },
    "smollm2": {
        "model": "smollm2-135m-instruct",
        "n_sets": 2,
        "batch_size": 8,
        "lr": 2e-3,
        "steps": 8,
        "train_blocks": 2,
        "n_boot": 200,
    },
}


def settings_key(part: str) -> str:
    """The settings of ``part`` as one string, stored on every row (resume keys on it)."""
    return json.dumps(SETTINGS[part], sort_keys=True)


def equal_exposure(steps: int) -> dict:
    """Training options that run exactly ``steps`` optimizer steps whatever the recall."""
    return {"rule": "converge", "min_steps": steps, "max_steps": steps, "eval_every": steps}


# ------------------------------------------------------------------------------------------
# One run of each part (the tests re-run a seeded few of these)
# ------------------------------------------------------------------------------------------


def synthetic_run(P: float, seed: int) -> dict:
    """One run of the lab's synthetic P sweep under equal exposure (lab.sweep.run_one)."""
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
        L=s["L"],
        **equal_exposure(s["steps"]),
    )
    row = run_one(run, device="cpu", threads=1)
    return {
        "task": "synthetic",
        "P": float(P),
        "seed": seed,
        "L": float(row["L"]),
        "S": row["S"],
        "steps": row["steps"],
        "seconds": row["seconds"],
        **{k: row[k] for k in METRICS},
    }


def span_lengths(tasks) -> dict[str, int]:
    """One distinct-span length per family: the one the largest P of the grid needs."""
    return {
        t: make_task(t, tokenizer=WordTokenizer(), P=max(P_GRID), n_sets=20).span_len for t in tasks
    }


def scratch_run(task: str, P: float, seed: int, span_len: int) -> dict:
    """A from-scratch tiny model on one natural-language corpus, under equal exposure."""
    s = SETTINGS["scratch"]
    sets = make_task(
        task, tokenizer=WordTokenizer(), P=P, n_sets=s["n_sets"], seed=seed, span_len=span_len
    )
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
        **equal_exposure(s["steps"]),
    )
    return _scored_row(task, P, seed, sets, res, s["n_boot"])


def _scored_row(task: str, P: float, seed: int, sets, res, n_boot: int) -> dict:
    """One recorded row: the run's key, its size and steps, and R with the other metrics."""
    ev = evaluate(res.model, sets, n_boot=n_boot, seed=seed)
    return {
        "task": task,
        "P": float(P),
        "seed": seed,
        "L": sets.L_actual,
        "S": count_parameters(res.model),
        "steps": res.steps,
        "seconds": res.seconds,
        **{k: ev[k] for k in METRICS},
    }


def smollm2_run(base, tokenizer, task: str, P: float, seed: int) -> dict:
    """SmolLM2 fine-tuned for a few steps (last blocks only) on one corpus; R after."""
    s = SETTINGS["smollm2"]
    model = copy.deepcopy(base)
    sets = make_task(task, tokenizer=tokenizer, P=P, n_sets=s["n_sets"], seed=seed)
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
        **equal_exposure(s["steps"]),
    )
    return _scored_row(task, P, seed, sets, res, s["n_boot"])


# ------------------------------------------------------------------------------------------
# Resumable recording
# ------------------------------------------------------------------------------------------


def _done(part: str, folder: Path) -> tuple[pd.DataFrame, float]:
    """The rows already recorded with the current settings, and the wall time they took."""
    found = load_recorded(f"transfer_{part}", folder)
    if found is None:
        return pd.DataFrame(), 0.0
    table, prov = found
    if "settings" not in table.columns:
        return pd.DataFrame(), 0.0
    keep = table[table["settings"] == settings_key(part)]
    return keep.reset_index(drop=True), float(prov.get("wall_seconds") or 0.0)


def record(part: str, tasks, seeds: int, folder: Path, limit: int | None = None) -> pd.DataFrame:
    """Run every missing cell of ``part`` and rewrite its recorded table after each one."""
    table, wall = _done(part, folder)
    have = set()
    if not table.empty:
        have = {(r.task, float(r.P), int(r.seed)) for r in table.itertuples()}
    cells = (
        [("synthetic", P, s) for P in P_GRID for s in range(seeds)]
        if part == "synthetic"
        else [(t, P, s) for t in tasks for P in P_GRID for s in range(seeds)]
    )
    todo = [c for c in cells if (c[0], float(c[1]), c[2]) not in have][:limit]
    if not todo:
        print(f"transfer_{part}: all {len(cells)} runs recorded", file=sys.stderr)
        return table
    spans = span_lengths(tasks) if part == "scratch" else {}
    base = tok = None
    if part == "smollm2":
        from overshadow_lab.loading import load_model  # deferred: only this part needs it

        base, tok = load_model(SETTINGS["smollm2"]["model"], device="cpu")
    torch.set_num_threads(1)
    rows = table.to_dict("records")
    for task, P, seed in todo:
        t0 = time.perf_counter()
        if part == "synthetic":
            row = synthetic_run(P, seed)
        elif part == "scratch":
            row = scratch_run(task, P, seed, spans[task])
        else:
            row = smollm2_run(base, tok, task, P, seed)
        wall += time.perf_counter() - t0
        rows.append({"part": part, **row, "settings": settings_key(part)})
        table = pd.DataFrame(rows)
        prov = provenance("cpu", wall_seconds=round(wall, 1))
        prov.update(
            part=part,
            settings=SETTINGS[part],
            protocol="equal exposure",
            command=" ".join(sys.argv),
        )
        save_recorded(table, prov, f"transfer_{part}", folder)
        print(
            f"transfer_{part}: {task} P={P} seed={seed} R={row['R']:.1f} "
            f"({time.perf_counter() - t0:.1f}s; {len(table)}/{len(cells)})",
            file=sys.stderr,
        )
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=PARTS, required=True)
    p.add_argument("--tasks", default=",".join(TASKS), help="comma list of task families")
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--limit", type=int, help="run at most this many missing cells, then stop")
    p.add_argument("--out", default=str(RECORDED_DIR), help="folder of the recorded tables")
    args = p.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {', '.join(unknown)}; use {', '.join(TASKS)}")
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    record(args.part, tasks, args.seeds, Path(args.out), args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
