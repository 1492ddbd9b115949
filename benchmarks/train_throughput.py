"""Training throughput: the lab's loop against a plain Hugging Face Trainer and a naive loop.

Same model (GPT-NeoX ``--size``, from scratch, same seed), same synthetic corpus, same batch
size, same number of optimizer steps; prints tokens/s of each side by side and the ratio.

    .venv/bin/python benchmarks/train_throughput.py            # tiny model, 200 steps
    .venv/bin/python benchmarks/train_throughput.py --size mini --steps 100

It then trains ``2 x cores`` models at once, one single-threaded process per core, as
``run_sweep`` does on a CPU, and compares that aggregate throughput with the Trainer's (a sweep
with the Trainer runs its models one after another).

Each contender runs ``--repeats`` times; the best run counts (timings on a shared machine are
noisy, and the best run is the least disturbed). Only the training loop is timed: building the
corpus and the model is excluded for everyone.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

from overshadow_lab.data import make_knowledge_sets  # noqa: E402
from overshadow_lab.models import count_parameters, make_model  # noqa: E402
from overshadow_lab.train import train_model  # noqa: E402


def lab(sets, args) -> float:
    model = make_model(args.size, sets.vocab_size, seed=0)
    r = train_model(
        model,
        sets,
        rule="converge",
        rr_threshold=1.0,
        max_steps=args.steps,
        eval_every=args.steps,
        patience=10**6,
        batch_size=args.batch_size,
        lr=3e-3,
        progress=False,
    )
    return r.tokens / r.seconds


def naive(sets, args) -> float:
    """The textbook loop: DataLoader, model(labels=...), torch AdamW, default threads."""
    from torch.utils.data import DataLoader

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
    import tempfile

    from transformers import Trainer, TrainingArguments

    model = make_model(args.size, sets.vocab_size, seed=0)
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
            seed=0,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=ds)
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    return args.steps * args.batch_size * len(sets.train_sequences[0]) / seconds


def _lab_one_thread(job) -> tuple[int, float]:
    """One sweep run as a worker does it: a single thread, the lab's loop."""
    size, steps, batch_size, P, L, seed = job
    torch.set_num_threads(1)
    sets = make_knowledge_sets(P=P, L=L, seed=seed)
    model = make_model(size, sets.vocab_size, seed=seed)
    r = train_model(model, sets, rule="converge", rr_threshold=1.0, max_steps=steps,
                    eval_every=steps, patience=10**6, batch_size=batch_size, lr=3e-3,
                    progress=False)
    return r.tokens, r.seconds


def lab_sweep(args, n_runs: int) -> float:
    """Aggregate tokens/s of ``n_runs`` sweep runs trained at once, one process per core
    (what ``run_sweep`` does on a CPU), wall time including the workers' start-up."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(args.size, args.steps, args.batch_size, args.P, args.L, k) for k in range(n_runs)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=mp.get_context("spawn")) as ex:
        tokens = sum(t for t, _ in ex.map(_lab_one_thread, jobs))
    return tokens / (time.perf_counter() - t0)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="tiny")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--P", type=float, default=5)
    p.add_argument("--L", type=float, default=5)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    sets = make_knowledge_sets(P=args.P, L=args.L, seed=0)
    n = count_parameters(make_model(args.size, sets.vocab_size))
    print(
        f"model {args.size} ({n:,} parameters), {len(sets.train_sequences)} sequences of "
        f"{len(sets.train_sequences[0])} tokens, batch {args.batch_size}, {args.steps} steps, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads available"
    )
    best = {"lab": 0.0, "hf_trainer": 0.0, "naive_loop": 0.0}
    fns = {"lab": lab, "hf_trainer": hf_trainer, "naive_loop": naive}
    for _ in range(args.repeats):
        for name, fn in fns.items():  # interleaved, so load changes hit everyone alike
            best[name] = max(best[name], fn(sets, args))
    for name, v in best.items():
        print(f"{name:>11}: {v:10,.0f} tokens/s")
    ratio_hf = best["lab"] / best["hf_trainer"]
    ratio_naive = best["lab"] / best["naive_loop"]
    print(f"lab / HF Trainer = {ratio_hf:.2f}x; lab / naive loop = {ratio_naive:.2f}x")
    # A sweep trains many small models; the lab runs them side by side, one per core. The
    # Trainer has no such mode, so a sweep with it runs its models one after another at the
    # single-run speed measured above.
    n_runs = 2 * (os.cpu_count() or 1)
    sweep = lab_sweep(args, n_runs)
    ratio_sweep = sweep / best["hf_trainer"]
    print(f"sweep of {n_runs} runs, one process per core ({os.cpu_count()} cores): "
          f"{sweep:10,.0f} tokens/s in aggregate")
    print(f"lab sweep / HF Trainer sweep (one run after another) = {ratio_sweep:.2f}x")
    return {**best, "lab_sweep": sweep, "ratio_hf": ratio_hf, "ratio_naive": ratio_naive,
            "ratio_sweep": ratio_sweep}


if __name__ == "__main__":
    main()
