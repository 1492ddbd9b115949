"""The GPU tier: the lab's size comparison at the paper's scale, and the full plan of runs.

**At the paper's scale, on one GPU in minutes** (:func:`paper_scale_runs`, :func:`run_paper_scale`;
issue 13 item 6): GPT-NeoX models of the Pythia shapes (70M, 160M, 410M parameters at Pythia's
vocabulary of 50,304 tokens) trained from scratch on the lab's synthetic corpus (P = 5, L = 5,
100 sets) with the lab's own trainer under the protocol the lab's law adopts
(:data:`overshadow_lab.lab.protocols.ADOPTED`, equal exposure: every subordinate statement shown
the same number of times, at a constant learning rate after warm-up), beside the lab's recall
rule for comparison. A wall-clock budget decides how many seeds fit: runs go seed
by seed (every size and protocol of seed 0 first), and a run is started only when its expected
time fits what is left. ``scripts/gpu_tier.py`` runs it and records the table with provenance
and the throughput of ``benchmarks/gpu_train.py`` (tokens/s, MFU).

**The full plan, on one GPU or many** (``accelerate launch``): :func:`gpu_tier_plan`
lists the runs (the lab's size sweep, the same protocol from pretrained checkpoints, fine-tuning
on every task family and P), every process takes its share by rank (:func:`shard_of`,
:func:`run_plan`: the runs are independent, so no gradients are exchanged) and writes its own
part, and :func:`merge_parts` joins the parts into one table per kind. The merged table is
recorded with its provenance through :mod:`overshadow_lab.records`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from overshadow_lab.finetuning.exposure import corpus_size, statement_exposure
from overshadow_lab.finetuning.finetune import finetune_task
from overshadow_lab.finetuning.speed import model_flops_utilization, peak_flops
from overshadow_lab.hub import hub_reachable
from overshadow_lab.lab.models import SIZES, size_parameters
from overshadow_lab.lab.protocols import ADOPTED, protocol_options
from overshadow_lab.lab.sweep import append_row, config_hash, read_results, run_sweep
from overshadow_lab.lab.train import epoch_steps
from overshadow_lab.loading import load_model

#: Seconds the one-command GPU tier may take, benchmark included (issue 13: at most 8 minutes
#: on one H200, Python's start and the writing of results beside it).
DEFAULT_BUDGET_S = 450.0

GPU_TIER_TASKS = ("event-time", "negation", "logical", "math", "knowledge-conflict")


def gpu_tier_plan(
    scale: str = "gpu",
    seeds: int = 3,
    pretrained: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    task_P: Sequence[float] | None = None,
    finetune_model: str = "smollm2-135m-instruct",
) -> list[dict]:
    """The runs of the GPU tier, each a dict with ``kind`` and its settings.

    * ``size``: the lab's S sweep (``run_sweep("S")`` over the tier's size family, from scratch);
    * ``pretrained``: the same synthetic protocol starting from hub checkpoints
      (``init="pretrained"``; only where the hub is reachable);
    * ``finetune``: ``finetune_task`` of ``finetune_model`` on every task family and P.

    ``scale="tiny"`` gives a CPU-sized plan of the same code paths (used by the tests).
    """
    if scale not in ("gpu", "tiny"):
        raise ValueError(f"scale must be 'gpu' or 'tiny', got {scale!r}")
    tiny = scale == "tiny"
    plan: list[dict] = []
    sizes = ["nano", "tiny"] if tiny else None
    plan.append(
        {
            "kind": "size",
            "values": sizes,
            "seeds": 1 if tiny else seeds,
            "fixed": {"n_sets": 10, "max_steps": 60} if tiny else {},
        }
    )
    for hub_id in pretrained or ():
        plan.append({"kind": "pretrained", "model": hub_id, "seeds": seeds})
    for task in tasks if tasks is not None else (("negation",) if tiny else GPU_TIER_TASKS):
        for P in task_P if task_P is not None else ((2, 4) if tiny else (2, 5, 10, 25)):
            for seed in range(1 if tiny else seeds):
                plan.append(
                    {
                        "kind": "finetune",
                        "model": "tiny" if tiny else finetune_model,
                        "task": task,
                        "P": P,
                        "seed": seed,
                        "n_sets": 3 if tiny else 20,
                        "train_blocks": 2 if tiny else None,
                        "options": {"epochs": 2}
                        if tiny
                        else {"epochs": 20, "lr": 3e-5, "batch_size": 32},
                    }
                )
    return plan


def shard_of(items: Sequence, rank: int, world: int) -> list:
    """Every ``world``-th item starting at ``rank`` (how N processes split a plan)."""
    if not (world >= 1 and 0 <= rank < world):
        raise ValueError(f"rank {rank} / world {world} out of range: need 0 <= rank < world")
    return [it for k, it in enumerate(items) if k % world == rank]


def run_plan(
    plan: Sequence[dict],
    out_dir: str | Path,
    rank: int = 0,
    world: int = 1,
    device: str | None = None,
    tier: str | None = None,
    model_loader: Callable[[str], tuple] | None = None,
) -> dict[str, Path]:
    """Run this rank's share of ``plan``; append rows to ``out_dir/<kind>-rank<r>.csv``.

    Every run is independent (one model on one GPU), so N GPUs finish a plan about N times
    faster with no communication. ``model_loader(name) -> (model, tokenizer)`` defaults to
    :func:`overshadow_lab.loading.load_model` (a lab size such as ``"tiny"`` gives a CPU-sized
    stand-in with a byte-level tokenizer).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    # the size sweep is itself shardable by run: every rank takes its share of it
    for item in plan:
        if item["kind"] == "size":
            path = out / f"size-rank{rank}.csv"
            run_sweep(
                "S",
                values=item["values"],
                seeds=item["seeds"],
                tier=tier,
                out=path,
                progress=False,
                shard=(rank, world),
                device=device,
                workers=1,
                **item.get("fixed", {}),
            )
            files["size"] = path
    pretrained = shard_of([it for it in plan if it["kind"] == "pretrained"], rank, world)
    if pretrained:
        if hub_reachable():
            path = out / f"pretrained-rank{rank}.csv"
            for item in pretrained:
                run_sweep(
                    "S",
                    values=[item["model"]],
                    seeds=item["seeds"],
                    tier=tier,
                    out=path,
                    progress=False,
                    device=device,
                    workers=1,
                    init="pretrained",
                )
            files["pretrained"] = path
    ft = shard_of([it for it in plan if it["kind"] == "finetune"], rank, world)
    loader = model_loader or (lambda name: load_model(name, device=device))

    for item in ft:
        key = config_hash(
            {k: item[k] for k in ("model", "task", "P", "seed", "n_sets", "train_blocks")}
            | item["options"]
        )
        path = out / f"finetune-rank{rank}.csv"
        files["finetune"] = path
        if path.is_file() and key in set(pd.read_csv(path)["config_hash"].astype(str)):
            continue
        model, tok = loader(item["model"])
        res = finetune_task(
            model,
            task=item["task"],
            P=item["P"],
            n_sets=item["n_sets"],
            tokenizer=tok,
            train_blocks=item["train_blocks"],
            seed=item["seed"],
            device=device,
            **item["options"],
        )
        row = res.row()
        row.update(model=item["model"], seed=item["seed"], config_hash=key)
        append_row(path, row)
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return files


def merge_parts(out_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Concatenate the per-rank CSVs of :func:`run_plan` into one table per kind."""
    out = Path(out_dir)
    tables: dict[str, pd.DataFrame] = {}
    for kind in ("size", "pretrained", "finetune"):
        parts = sorted(out.glob(f"{kind}-rank*.csv"))
        frames = [pd.read_csv(p) for p in parts if p.stat().st_size > 0]
        if frames:
            tables[kind] = pd.concat(frames, ignore_index=True)
    return tables


# ------------------------------------------------------------------------------------------
# The size comparison at the paper's scale
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperScale:
    """Settings of the size comparison at the paper's scale (each documented where it differs).

    ``protocols`` maps a label to the lab's training settings: ``"exposure-<E>"`` is the adopted
    protocol (:data:`~overshadow_lab.lab.protocols.ADOPTED`) with a budget of ``E``
    presentations of every subordinate statement, the same for every size (the paper trained 40
    epochs); ``"recall"`` stops at RR >= 0.95 as the CPU chapters' recall rule does, capped at
    the steps of the largest budget.
    """

    sizes: tuple[str, ...] = ("pythia-70m", "pythia-160m", "pythia-410m")
    epochs: tuple[int, ...] = (10, 40)
    recall: bool = True
    seeds: int = 3
    n_sets: int = 100  # the paper's 100 sets per setting
    vocab: int = 50304  # Pythia's vocabulary, so S matches the released models' sizes
    lr: float = 1e-3  # the lab's gpu tier (TIER_OVERRIDES["gpu"]); the paper's 1e-5 fine-tunes
    batch_size: int = 64  # the lab's gpu tier
    eval_every: int = 10  # recall checks of the recall rule: once an epoch at 100 sets

    def protocols(self) -> dict[str, dict]:
        out = {f"exposure-{e}": protocol_options(ADOPTED, exposures=int(e)) for e in self.epochs}
        if self.recall:
            statements = self.n_sets * 6  # P * n + n statements per set, at P = 5 and n = 1
            cap = epoch_steps(statements, self.batch_size, max(self.epochs))
            out["recall"] = {
                "rule": "converge",
                "max_steps": max(cap, self.eval_every),
                "eval_every": self.eval_every,
            }
        return out


#: The CPU-sized stand-in of :class:`PaperScale` that the tests run (same code paths).
TINY_SCALE = PaperScale(
    sizes=("pico", "nano"),
    epochs=(2,),
    recall=True,
    seeds=1,
    n_sets=8,
    vocab=200,
    lr=3e-3,
    batch_size=16,
    eval_every=2,
)


def paper_scale_runs(scale: PaperScale) -> list[dict]:
    """The runs of the comparison in the order they are run: seed by seed, then protocol, size.

    Each is ``{"protocol", "size", "seed", "fixed"}`` where ``fixed`` are the settings passed
    to :func:`overshadow_lab.lab.sweep.run_sweep`.
    """
    if scale.seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {scale.seeds}")
    if not scale.sizes:
        raise ValueError("sizes is empty: name at least one size (e.g. 'pythia-70m')")
    common = {
        "P": 5,
        "L": 5,
        "n_sets": scale.n_sets,
        "vocab": scale.vocab,
        "lr": scale.lr,
        "batch_size": scale.batch_size,
    }
    return [
        {"protocol": name, "size": size, "seed": seed, "fixed": {**common, **settings}}
        for seed in range(scale.seeds)
        for name, settings in scale.protocols().items()
        for size in scale.sizes
    ]


def run_paper_scale(
    scale: PaperScale,
    out: str | Path,
    budget_s: float = 330.0,
    device: str | None = None,
    tier: str = "gpu",
    clock: Callable[[], float] = time.perf_counter,
) -> pd.DataFrame:
    """Run :func:`paper_scale_runs` within ``budget_s`` seconds; return the results table.

    A run starts only if the time it is expected to take (the same protocol and size in an
    earlier seed, else the largest run seen so far scaled by parameters) fits in what is left of
    the budget, so the command ends on time and a partial result still covers every size of the
    seeds it reached. Results are appended to ``out`` (a lab results table: a re-run resumes).
    The returned table has one row per run with ``protocol``, ``exposure`` (epochs run) and
    ``mfu`` (of the training run itself, on a GPU with a known peak) added.
    """
    out = Path(out)
    start = clock()
    took: dict[tuple[str, str], float] = {}
    per_param: list[float] = []
    skipped = 0
    for run in paper_scale_runs(scale):
        key = (run["protocol"], run["size"])
        if key in took:
            expect = took[key]
        elif per_param:
            expect = max(per_param) * size_parameters(run["size"], scale.vocab)
        else:
            expect = 0.0
        if clock() - start + expect > budget_s:
            skipped += 1
            continue
        t0 = clock()
        run_sweep(
            "S",
            values=[run["size"]],
            seeds=[run["seed"]],
            tier=tier,
            out=out,
            progress=False,
            device=device,
            workers=1,
            **run["fixed"],
        )
        took[key] = clock() - t0
        per_param.append(took[key] / size_parameters(run["size"], scale.vocab))
    return paper_scale_table(out, scale, device=device, skipped=skipped)


def paper_scale_table(
    path: str | Path, scale: PaperScale, device: str | None = None, skipped: int = 0
) -> pd.DataFrame:
    """The results at ``path`` labelled by protocol, with exposure and the runs' own MFU.

    ``exposure`` is the number of times the least-seen subordinate statement was shown (the
    trainer's count, ``sub_exposures``); for a table without that count, the epochs run.
    """
    table = read_results(path)
    if table.empty:
        return table
    rows = table.to_dict("records")
    table = table.assign(
        protocol=[_protocol_label(r) for r in rows],
        exposure=[
            float(r["sub_exposures"])
            if pd.notna(r.get("sub_exposures"))
            else statement_exposure(int(r["steps"]), corpus_size(r), int(r["batch_size"]))
            for r in rows
        ],
        tokens_per_s=table["tokens"] / table["seconds"],
    )
    # MFU counts the parameters in matrix products: all but the (untied) input embedding table
    n_matmul = [
        int(r["S"]) - int(r["vocab"]) * SIZES[r["size"]]["hidden_size"]
        if r["size"] in SIZES
        else int(r["S"])
        for r in rows
    ]
    peak = peak_flops(device)
    table["mfu"] = [
        model_flops_utilization(n, float(t), peak)
        for n, t in zip(n_matmul, table["tokens_per_s"], strict=True)
    ]
    table.attrs["skipped"] = skipped
    return table


def _protocol_label(run: dict) -> str:
    """A results row's label in :meth:`PaperScale.protocols` (``epochs-<E>`` for the paper's
    fixed epoch budget, which the comparison no longer runs but older tables hold)."""
    if run["rule"] == "exposure":
        return f"exposure-{int(run['exposures'])}"
    if run["rule"] == "epochs":
        return f"epochs-{int(run['epochs'])}"
    return "recall"


def paper_scale_problems(table: pd.DataFrame) -> list[str]:
    """What is wrong with a table of :func:`paper_scale_table` (an empty list when nothing is).

    Checks what the comparison rests on: the columns are there, rates are fractions, every
    equal-exposure run showed each statement exactly its budget of times, and every size of a
    protocol and seed trained on the same corpus (same P, L, sets and vocabulary).
    """
    need = {"protocol", "size", "seed", "S", "RR", "HR", "R", "steps", "exposure", "mfu"}
    missing = sorted(need - set(table.columns))
    if missing:
        return [f"missing column(s): {', '.join(missing)}"]
    problems = []
    for col in ("RR", "HR"):
        bad = table[(table[col] < 0) | (table[col] > 1)]
        if len(bad):
            problems.append(f"{col} outside [0, 1] in {len(bad)} row(s)")
    for name, part in table.groupby("protocol"):
        if str(name).startswith("exposure-"):
            budget = float(str(name).removeprefix("exposure-"))
            off = part[(part.exposure - budget).abs() > 1e-9]
            if len(off):
                problems.append(
                    f"{name}: {len(off)} run(s) did not show each statement {budget:g} times"
                )
        corpus = part[["P", "L", "n_sets", "vocab"]].drop_duplicates()
        if len(corpus) > 1:
            problems.append(f"{name}: the sizes trained on different corpora")
    return problems


def paper_scale_summary(table: pd.DataFrame, min_rr: float = 0.5) -> pd.DataFrame:
    """One row per protocol and size of a :func:`paper_scale_table`: means over seeds.

    Columns: ``seeds`` (runs), ``S``, ``exposure``, ``RR``, ``HR``, ``sub_acc``, ``mfu`` (means),
    and ``R`` with its spread over seeds, ``R_min`` and ``R_max``, taken over the runs that
    recall at least ``min_rr`` of the dominant set (``R_runs`` of them; R = HR / RR means little
    where RR is small, so the other runs give no R and a row with none has R = NaN).
    """
    if not 0 <= min_rr <= 1:
        raise ValueError(f"min_rr is a recall rate in [0, 1], got {min_rr}")
    keys = ["protocol", "size"]
    grouped = table.groupby(keys, sort=False)
    out = grouped[["S", "exposure", "RR", "HR", "sub_acc", "mfu"]].mean()
    out.insert(0, "seeds", grouped.size())
    learned = table[table["RR"] >= min_rr].groupby(keys, sort=False)["R"]
    r = pd.DataFrame(
        {
            "R_runs": learned.size(),
            "R": learned.mean(),
            "R_min": learned.min(),
            "R_max": learned.max(),
        }
    )
    out = out.join(r)
    out["R_runs"] = out["R_runs"].fillna(0).astype(int)
    return out


def log10_span(values: Sequence[float]) -> float:
    """Orders of magnitude spanned by positive values (``log10(max / min)``): how far the size
    sweep's parameter counts S reach, the axis the GPU tier exists to extend."""
    v = np.asarray(values, dtype=float)
    if v.size == 0 or (v <= 0).any():
        raise ValueError("log10_span needs positive values")
    return float(math.log10(v.max() / v.min()))
