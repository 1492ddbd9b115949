"""Training throughput: the lab's loop against a plain Hugging Face Trainer and a naive loop.

Same model (GPT-NeoX ``--size``, from scratch, same seed), same synthetic corpus, same batch
size, same number of optimizer steps; prints tokens/s of each side by side and the ratio.

    .venv/bin/python benchmarks/train_throughput.py            # tiny model, 200 steps
    .venv/bin/python benchmarks/train_throughput.py --size mini --steps 100

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
    return {**best, "ratio_hf": ratio_hf, "ratio_naive": ratio_naive}


if __name__ == "__main__":
    main()
