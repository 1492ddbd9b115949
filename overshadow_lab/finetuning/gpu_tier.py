"""The GPU tier as a plan of runs that N processes share, and the merge of their parts.

``scripts/gpu_tier.py`` runs it on one GPU or many (``accelerate launch``): :func:`gpu_tier_plan`
lists the runs (the lab's size sweep, the same protocol from pretrained checkpoints, fine-tuning
on every task family and P), every process takes its share by rank (:func:`shard_of`,
:func:`run_plan`: the runs are independent, so no gradients are exchanged) and writes its own
part, and :func:`merge_parts` joins the parts into one table per kind. The merged table is
recorded with its provenance through :mod:`overshadow_lab.records`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from overshadow_lab.finetuning.finetune import finetune_task
from overshadow_lab.hub import hub_reachable
from overshadow_lab.lab.sweep import append_row, config_hash, run_sweep
from overshadow_lab.loading import load_model

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


def log10_span(values: Sequence[float]) -> float:
    """Orders of magnitude spanned by positive values (``log10(max / min)``): how far the size
    sweep's parameter counts S reach, the axis the GPU tier exists to extend."""
    v = np.asarray(values, dtype=float)
    if v.size == 0 or (v <= 0).any():
        raise ValueError("log10_span needs positive values")
    return float(math.log10(v.max() / v.min()))
