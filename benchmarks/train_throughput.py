"""Training throughput: the lab's loop against a plain Hugging Face Trainer and a naive loop.

Same model (GPT-NeoX ``--size``, from scratch, same seed), same synthetic corpus, same batch
size, same number of optimizer steps; prints tokens/s of each side by side and the ratios.

    .venv/bin/python benchmarks/train_throughput.py            # tiny model (the CPU tier's)
    .venv/bin/python benchmarks/train_throughput.py --size mini --steps 100

1. One run. Every contender uses torch's default threads (all cores). ``lab`` is
   ``train_model`` as the package runs it; ``lab (fast=False)`` is the same loop through the
   model's own forward and ``F.cross_entropy``, which shows what the lean GPT-NeoX forward and
   the fused output layer + loss add.
2. A sweep: ``--runs`` runs (P values x seeds, each ``--steps`` steps). The lab trains them as
   ``run_sweep`` does on a CPU, one single-threaded process per core, start-up included; with
   the Trainer, which has no such mode, they run one after another with all cores.

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
from transformers import Trainer, TrainingArguments  # noqa: E402

from overshadow_lab.lab.data import make_knowledge_sets  # noqa: E402
from overshadow_lab.lab.models import count_parameters, make_model  # noqa: E402
from overshadow_lab.lab.train import train_model  # noqa: E402


def _lab_train(sets, size, steps, batch_size, seed=0, **options):
    """``train_model`` for exactly ``steps`` steps (RR can never stop it early); the result."""
    model = make_model(size, sets.vocab_size, seed=seed)
    return train_model(
        model,
        sets,
        rule="converge",
        rr_threshold=1.0,
        max_steps=steps,
        eval_every=steps,
        patience=10**6,
        batch_size=batch_size,
        lr=3e-3,
        progress=False,
        **options,
    )


def lab(sets, args, fast: bool = True) -> float:
    r = _lab_train(sets, args.size, args.steps, args.batch_size, fast=fast)
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
        t0 = time.perf_counter()
        trainer.train()
        return time.perf_counter() - t0


def _lab_one_thread(job) -> int:
    """One sweep run as a worker does it: a single thread, the lab's loop; returns tokens."""
    size, steps, batch_size, P, L, seed = job
    torch.set_num_threads(1)
    sets = make_knowledge_sets(P=P, L=L, seed=seed)
    r = _lab_train(sets, size, steps, batch_size, seed=seed, threads=1)
    return r.tokens


def _jobs(args) -> list[tuple]:
    values = [2, 5, 10, 25]
    return [
        (args.size, args.steps, args.batch_size, values[k % len(values)], args.L, k // len(values))
        for k in range(args.runs)
    ]


def lab_sweep(args) -> tuple[int, float]:
    """Tokens and wall seconds of the sweep's runs trained one process per core (as
    ``run_sweep`` does on a CPU), the workers' start-up included."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=mp.get_context("spawn")) as ex:
        tokens = sum(ex.map(_lab_one_thread, _jobs(args)))
    return tokens, time.perf_counter() - t0


def trainer_sweep(args) -> tuple[int, float]:
    """The same runs with the Trainer, one after another (corpus building not timed)."""
    tokens, seconds = 0, 0.0
    for _, steps, batch_size, P, L, seed in _jobs(args):
        sets = make_knowledge_sets(P=P, L=L, seed=seed)
        seconds += _trainer_seconds(sets, args, seed=seed)
        tokens += steps * batch_size * len(sets.train_sequences[0])
    return tokens, seconds


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="tiny")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--P", type=float, default=5)
    p.add_argument("--L", type=float, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--runs", type=int, default=8, help="runs in the sweep comparison (0: skip)")
    args = p.parse_args(argv)
    sets = make_knowledge_sets(P=args.P, L=args.L, seed=0)
    n = count_parameters(make_model(args.size, sets.vocab_size))
    print(
        f"model {args.size} ({n:,} parameters), {len(sets.train_sequences)} sequences of "
        f"{len(sets.train_sequences[0])} tokens, batch {args.batch_size}, {args.steps} steps, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    )
    fns = {
        "lab": lab,
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
        print(f"{name:>18}: {v:10,.0f}")
    ratios = {
        "lab / HF Trainer": best["lab"] / best["HF Trainer"],
        "lab / naive loop": best["lab"] / best["naive loop"],
        "lab / lab (fast=False)": best["lab"] / best["lab (fast=False)"],
    }
    print("   " + "; ".join(f"{k} = {v:.2f}x" for k, v in ratios.items()))
    out = {**best, **ratios}
    if args.runs:
        lt, ls = lab_sweep(args)
        tt, ts = trainer_sweep(args)
        print(f"\n2. a sweep of {args.runs} runs x {args.steps} steps (P in 2, 5, 10, 25)")
        print(f"   lab, one process per core: {ls:6.1f} s ({lt / ls:10,.0f} tokens/s)")
        print(f"   HF Trainer, one by one:    {ts:6.1f} s ({tt / ts:10,.0f} tokens/s)")
        ratio = (lt / ls) / (tt / ts)
        print(f"   lab sweep / Trainer sweep = {ratio:.2f}x")
        out.update({"lab_sweep_s": ls, "trainer_sweep_s": ts, "lab sweep / Trainer sweep": ratio})
    return out


if __name__ == "__main__":
    main()
