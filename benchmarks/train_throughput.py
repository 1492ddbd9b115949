"""Training throughput: the lab's loop against a plain Hugging Face Trainer and a naive loop.

Same model (GPT-NeoX ``--size``, from scratch, same seed), same synthetic corpus, same batch
size, same number of optimizer steps; prints tokens/s of each side by side and the ratios.

    .venv/bin/python benchmarks/train_throughput.py            # tiny model (the CPU tier's)
    .venv/bin/python benchmarks/train_throughput.py --size mini --steps 100

1. One run. Every contender uses torch's default threads (all cores). ``lab`` is
   ``train_model`` as the package runs it; ``lab stacked (1 model)`` is
   :func:`~overshadow_lab.lab.stacked.train_stacked` with one member (the stacked trainer's
   output layer computes its gradient while the logits are in cache, see its module);
   ``lab (fast=False)`` is ``train_model`` through the model's own forward and
   ``F.cross_entropy``, which shows what the lean GPT-NeoX forward and the fused output layer +
   loss add.
2. A sweep: ``--runs`` runs (P values x seeds, each ``--steps`` steps). ``lab, stacked`` trains
   them with one call of :func:`~overshadow_lab.lab.stacked.train_stacked` from this process,
   as a notebook would: runs that share a model shape and sequence length form one stack
   (:func:`~overshadow_lab.lab.stacked.plan_stacks`), which it splits into one lane per core,
   each lane a stack trained on one intra-op thread by a forked process of its own (a thread
   where fork is not used; :func:`~overshadow_lab.lab.stacked.plan_lanes`).
   ``lab, one process per core`` is how ``run_sweep`` trains them today, one run at a time
   per single-threaded spawned worker. Both include building corpora and models, and the
   second the workers' start-up. With the Trainer, which has neither mode, the runs go one
   after another with all cores. The three run
   ``--sweep-repeats`` rounds, interleaved, and the fastest round of each counts. Each lab
   contender also reports its seconds of training alone (for the workers, the busiest one's),
   and the last ratios put those against the Trainer's seconds, which count training only.

The lab's contenders use the short-attention C kernel where it can be built (the header says
whether it is; ``OVERSHADOW_KERNELS=0`` turns it off, see
:mod:`overshadow_lab.lab.short_attention`).

Each single-run contender runs ``--repeats`` times, interleaved; the best run counts (timings
on a shared machine are noisy, and the best run is the least disturbed). Only training is
timed: building the corpus and the model is excluded for everyone.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from overshadow_lab.lab import short_attention  # noqa: E402
from overshadow_lab.lab.data import make_knowledge_sets  # noqa: E402
from overshadow_lab.lab.models import count_parameters, make_model  # noqa: E402
from overshadow_lab.lab.stacked import plan_stacks, train_stacked  # noqa: E402
from overshadow_lab.lab.train import TrainConfig, train_model  # noqa: E402

#: ``train_model`` options that make a run exactly ``steps`` steps long (RR can never stop it).
FIXED = {"rule": "converge", "rr_threshold": 1.0, "patience": 10**6, "lr": 3e-3, "progress": False}


def _lab_train(sets, size, steps, batch_size, seed=0, **options):
    """``train_model`` for exactly ``steps`` steps (RR can never stop it early); the result."""
    model = make_model(size, sets.vocab_size, seed=seed)
    return train_model(
        model, sets, max_steps=steps, eval_every=steps, batch_size=batch_size, **FIXED, **options
    )


def lab(sets, args, fast: bool = True) -> float:
    r = _lab_train(sets, args.size, args.steps, args.batch_size, fast=fast)
    return r.tokens / r.seconds


def _config(args, seed: int) -> TrainConfig:
    return TrainConfig(
        max_steps=args.steps, eval_every=args.steps, batch_size=args.batch_size, seed=seed, **FIXED
    )


def lab_stacked_one(sets, args) -> float:
    """``train_stacked`` with one member: the single-run speed of the stacked trainer."""
    (r,) = train_stacked([make_model(args.size, sets.vocab_size, seed=0)], [sets], _config(args, 0))
    return r.tokens / r.seconds


def naive(sets, args) -> float:
    """The textbook loop: DataLoader, model(labels=...), torch AdamW, default threads."""
    model = make_model(args.size, sets.vocab_size, seed=0)
    model.train()
    data = torch.tensor(sets.train_sequences)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    steps = tokens = 0
    t0 = time.perf_counter()
    while steps < args.steps:
        for batch in loader:
            loss = model(input_ids=batch, labels=batch).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            tokens += batch.numel()
            if steps == args.steps:
                break
    return tokens / (time.perf_counter() - t0)


def hf_trainer(sets, args) -> float:
    """A plain ``transformers.Trainer`` with the default collator on the same sequences."""
    return (
        args.steps * args.batch_size * len(sets.train_sequences[0]) / _trainer_seconds(sets, args)
    )


def _trainer_seconds(sets, args, seed: int = 0) -> float:
    # imported here, not at the top: the sweep's spawned workers import this module, and
    # transformers' Trainer took them 2.7 of 4.1 s to import, a start-up run_sweep's workers
    # (which import the lab's modules only, 1.4 s) never pay
    from transformers import PrinterCallback, Trainer, TrainingArguments

    model = make_model(args.size, sets.vocab_size, seed=seed)
    ds = [{"input_ids": s, "labels": s} for s in sets.train_sequences]
    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            learning_rate=3e-3,
            weight_decay=1e-2,
            warmup_steps=max(1, args.steps // 20),
            lr_scheduler_type="constant_with_warmup",
            logging_steps=10**6,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=seed,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=ds)
        trainer.remove_callback(PrinterCallback)  # no metrics printed between the results
        t0 = time.perf_counter()
        trainer.train()
        return time.perf_counter() - t0


def _lab_one_thread(job) -> tuple[int, float, float, int]:
    """One sweep run as a worker does it: a single thread, the lab's loop; returns tokens, the
    seconds of training, the seconds of the whole task (building corpus and model too) and the
    worker's pid."""
    t0 = time.perf_counter()
    size, steps, batch_size, P, L, seed = job
    torch.set_num_threads(1)
    sets = make_knowledge_sets(P=P, L=L, seed=seed)
    r = _lab_train(sets, size, steps, batch_size, seed=seed, threads=1)
    return r.tokens, r.seconds, time.perf_counter() - t0, os.getpid()


def _jobs(args) -> list[tuple]:
    values = [2, 5, 10, 25]
    return [
        (args.size, args.steps, args.batch_size, values[k % len(values)], args.L, k // len(values))
        for k in range(args.runs)
    ]


def _pooled(fn, tasks: list) -> dict:
    """Run ``tasks`` on one spawned single-threaded worker per core, as ``run_sweep`` does.
    Returns the tokens, the wall seconds (the workers' start-up included) and, for the worker
    that was busy longest, its seconds of training and its seconds inside its tasks (training
    plus building corpora and models); each task reports its timings and its worker's pid."""
    t0 = time.perf_counter()
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
        done = list(ex.map(fn, tasks))
    wall = time.perf_counter() - t0
    train: dict[int, float] = {}
    inside: dict[int, float] = {}
    for _, trained, task, pid in done:
        train[pid] = train.get(pid, 0.0) + trained
        inside[pid] = inside.get(pid, 0.0) + task
    busiest = max(inside, key=inside.get)
    return {
        "tokens": sum(d[0] for d in done),
        "wall": wall,
        "train": train[busiest],
        "inside": inside[busiest],
    }


def lab_sweep(args) -> dict:
    """The sweep's runs trained one process per core (as ``run_sweep`` does on a CPU), the
    workers' start-up included; see :func:`_pooled`."""
    return _pooled(_lab_one_thread, _jobs(args))


def lab_stacked_sweep(args) -> dict:
    """The sweep's runs trained by one call of :func:`train_stacked` per stack: runs that
    share a model shape and sequence length form one stack (:func:`plan_stacks`), which trains
    in one lane per core (forked from this process on Linux); building corpora and models
    included."""
    t0 = time.perf_counter()
    runs = [
        {"size": size, "P": P, "L": L, "seed": seed, "span_len": 1, "answer_len": 1}
        for size, _, _, P, L, seed in _jobs(args)
    ]
    tokens, train = 0, 0.0
    for stack in plan_stacks(runs, 1):
        sets = [make_knowledge_sets(P=r["P"], L=r["L"], seed=r["seed"]) for r in stack]
        models = [
            make_model(r["size"], s.vocab_size, seed=r["seed"])
            for r, s in zip(stack, sets, strict=True)
        ]
        results = train_stacked(models, sets, [_config(args, r["seed"]) for r in stack])
        tokens += sum(r.tokens for r in results)
        train += max(r.seconds for r in results)  # the stack trains until its last lane ends
    wall = time.perf_counter() - t0
    return {"tokens": tokens, "wall": wall, "train": train, "inside": wall}


def trainer_sweep(args) -> dict:
    """The same runs with the Trainer, one after another (corpus building not timed)."""
    tokens, seconds = 0, 0.0
    for _, steps, batch_size, P, L, seed in _jobs(args):
        sets = make_knowledge_sets(P=P, L=L, seed=seed)
        seconds += _trainer_seconds(sets, args, seed=seed)
        tokens += steps * batch_size * len(sets.train_sequences[0])
    return {"tokens": tokens, "wall": seconds, "train": seconds, "inside": seconds}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="tiny")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--P", type=float, default=5)
    p.add_argument("--L", type=float, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--runs", type=int, default=8, help="runs in the sweep comparison (0: skip)")
    p.add_argument(
        "--sweep-repeats",
        type=int,
        default=2,
        help="rounds of the sweep comparison (fastest counts)",
    )
    args = p.parse_args(argv)
    sets = make_knowledge_sets(P=args.P, L=args.L, seed=0)
    n = count_parameters(make_model(args.size, sets.vocab_size))
    print(
        f"model {args.size} ({n:,} parameters), {len(sets.train_sequences)} sequences of "
        f"{len(sets.train_sequences[0])} tokens, batch {args.batch_size}, {args.steps} steps, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, lab attention: "
        f"{'C kernel' if short_attention.library() else 'torch (no C kernel)'}"
    )
    fns = {
        "lab": lab,
        "lab stacked (1 model)": lab_stacked_one,
        "lab (fast=False)": lambda sets, args: lab(sets, args, fast=False),
        "HF Trainer": hf_trainer,
        "naive loop": naive,
    }
    best = dict.fromkeys(fns, 0.0)
    for _ in range(args.repeats):
        for name, fn in fns.items():  # interleaved, so load changes hit everyone alike
            best[name] = max(best[name], fn(sets, args))
    print(f"\n1. one run (tokens/s, best of {args.repeats})")
    for name, v in best.items():
        print(f"{name:>22}: {v:10,.0f}")
    ratios = {
        "lab / HF Trainer": best["lab"] / best["HF Trainer"],
        "lab stacked (1 model) / HF Trainer": best["lab stacked (1 model)"] / best["HF Trainer"],
        "lab / naive loop": best["lab"] / best["naive loop"],
        "lab / lab (fast=False)": best["lab"] / best["lab (fast=False)"],
    }
    for k, v in ratios.items():
        print(f"   {k} = {v:.2f}x")
    out = {**best, **ratios}
    if args.runs:
        sweeps = {
            "lab, stacked": lab_stacked_sweep,
            "lab, one process per core": lab_sweep,
            "HF Trainer, one by one": trainer_sweep,
        }
        fastest: dict[str, dict] = {}
        for _ in range(args.sweep_repeats):  # interleaved like part 1; the fastest round counts
            for name, fn in sweeps.items():
                r = fn(args)
                if name not in fastest or r["wall"] < fastest[name]["wall"]:
                    fastest[name] = r
        print(
            f"\n2. a sweep of {args.runs} runs x {args.steps} steps (P in 2, 5, 10, 25), "
            f"fastest of {args.sweep_repeats}"
        )
        for name, r in fastest.items():
            line = (
                f"   {name + ':':27} {r['wall']:6.1f} s ({r['tokens'] / r['wall']:10,.0f} tokens/s)"
            )
            if name == "lab, one process per core":
                line += (
                    f"; busiest worker: {r['inside']:.1f} s in its tasks, {r['train']:.1f} training"
                )
            elif name.startswith("lab"):
                line += f"; {r['train']:.1f} s of it training"
            print(line)
        trainer = fastest["HF Trainer, one by one"]
        ratios = {}
        for name, key in (("lab, stacked", "stacked"), ("lab, one process per core", "per-core")):
            lab_r = fastest[name]
            per_s = (lab_r["tokens"] / lab_r["wall"]) / (trainer["tokens"] / trainer["wall"])
            ratios[f"lab {key} sweep / Trainer sweep"] = per_s
            # like for like with the Trainer's seconds, which count training only: the lab's
            # training seconds (what no start-up or building cost would leave)
            ratios[f"lab {key} sweep, training only / Trainer sweep"] = (
                lab_r["tokens"] / lab_r["train"]
            ) / (trainer["tokens"] / trainer["wall"])
        for k, v in ratios.items():
            print(f"   {k} = {v:.2f}x")
        out.update({f"{name} s": r["wall"] for name, r in fastest.items()})
        out.update(ratios)
    return out


if __name__ == "__main__":
    main()
