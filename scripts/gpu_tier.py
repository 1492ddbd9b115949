"""Run the GPU tier of the chapter "Fine-tuning experiments on GPU" and record its results.

One GPU:            python scripts/gpu_tier.py --out gpu_results
Several GPUs:       accelerate launch --num_processes 4 scripts/gpu_tier.py --out gpu_results
Record for the book: add --record (writes overshadow_lab/recorded/gpu_tier.csv + .json; commit them)
CPU smoke test:     python scripts/gpu_tier.py --scale tiny --out /tmp/gpu_tier_smoke

What runs (``overshadow_lab.finetuning.gpu_tier.gpu_tier_plan``):

1. the model-size sweep of the lab, ``run_sweep("S", tier="gpu")``: GPT-NeoX shapes of the
   Pythia suite (14M ... 1B) trained from scratch on the same synthetic corpus (P = 5, L = 5);
2. with ``--pretrained`` and a reachable hub, the same protocol from the released checkpoints
   (``init="pretrained"``, EleutherAI/pythia-70m ... 1b);
3. fine-tuning ``--finetune-model`` (default SmolLM2-135M-Instruct) on the natural-language task
   families over a grid of P, R before and after;
4. with ``--benchmark``, ``benchmarks/gpu_train.py``'s tokens/s and MFU on the first GPU.

Every process of ``accelerate launch`` takes its share of the runs (independent runs, one per
GPU at a time: no gradients are exchanged), then process 0 merges the parts into
``<out>/gpu_tier.csv`` and writes ``<out>/gpu_tier.json`` with the provenance: hardware,
versions, commit and wall time. Re-running resumes: finished runs are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
from accelerate import PartialState

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from overshadow_lab.finetuning.gpu_tier import gpu_tier_plan, merge_parts, run_plan  # noqa: E402
from overshadow_lab.finetuning.speed import benchmark_training  # noqa: E402
from overshadow_lab.records import RECORDED_DIR, provenance, save_recorded  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run the GPU tier and record its results.")
    p.add_argument(
        "--out", required=True, help="folder for the per-process parts and the merged table"
    )
    p.add_argument(
        "--scale",
        choices=("gpu", "tiny"),
        default="gpu",
        help="gpu: the full tier; tiny: a CPU-sized run of the same code (tests)",
    )
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--pretrained",
        default="",
        help="comma list of hub ids for init='pretrained' (e.g. EleutherAI/pythia-70m,"
        "EleutherAI/pythia-160m,EleutherAI/pythia-410m,EleutherAI/pythia-1b)",
    )
    p.add_argument("--tasks", default=None, help="comma list of task families (default: five)")
    p.add_argument("--P", default=None, help="comma list of P for the task grid")
    p.add_argument("--finetune-model", default="smollm2-135m-instruct")
    p.add_argument("--benchmark", action="store_true", help="also time training (tokens/s, MFU)")
    p.add_argument(
        "--record",
        action="store_true",
        help="copy the merged results into overshadow_lab/recorded/ for the book",
    )
    return p.parse_args(argv)


def _state():
    """(rank, world, device, barrier) from accelerate when launched by it, else one process."""
    try:
        st = PartialState()
        return st.process_index, st.num_processes, str(st.device), st.wait_for_everyone
    except Exception:  # pragma: no cover - accelerate misconfigured
        return 0, 1, None, lambda: None


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    if args.scale == "tiny":
        os.environ.setdefault("OVERSHADOW_TIER", "cpu")
    else:
        os.environ.setdefault("OVERSHADOW_TIER", "gpu")

    rank, world, device, barrier = _state()
    plan = gpu_tier_plan(
        args.scale,
        seeds=args.seeds,
        pretrained=[s for s in args.pretrained.split(",") if s],
        tasks=args.tasks.split(",") if args.tasks else None,
        task_P=[float(x) for x in args.P.split(",")] if args.P else None,
        finetune_model=args.finetune_model,
    )
    out = Path(args.out)
    if device is not None and device.startswith("cpu"):
        device = None
    run_plan(plan, out, rank=rank, world=world, device=device)
    barrier()
    if rank != 0:
        return 0
    bench = []
    if args.benchmark:
        tiny = args.scale == "tiny"
        for name, opts in (
            ("baseline", {"fused": False}),
            ("fused", {}),
            ("compile", {"compile": True}),
        ):
            r = benchmark_training(
                size="tiny" if tiny else "pythia-160m",
                vocab_size=2000 if tiny else 50304,
                seq_len=64 if tiny else 1024,
                steps=2 if tiny else 30,
                warmup=1 if tiny else 5,
                batch_size=2 if tiny else None,
                device=device,
                **opts,
            )
            r["variant"] = name
            bench.append(r)
            if tiny:
                break
    tables = merge_parts(out)
    frames = [t.assign(kind=kind) for kind, t in tables.items()]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    prov = provenance(device=device, wall_seconds=time.perf_counter() - t0)
    prov.update(
        scale=args.scale,
        processes=world,
        seeds=args.seeds,
        command=" ".join(sys.argv),
        benchmark=bench,
    )
    csv, meta = save_recorded(table, prov, "gpu_tier", out)
    print(
        f"gpu_tier: {len(table)} rows -> {csv} (provenance {meta}) in {prov['wall_seconds']:.0f} s"
    )
    if args.record:
        save_recorded(table, prov, "gpu_tier")
        print(f"recorded into {RECORDED_DIR}: commit gpu_tier.csv and gpu_tier.json")
    print(
        json.dumps({k: prov[k] for k in ("gpus", "torch", "commit", "wall_seconds")}, default=str)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
