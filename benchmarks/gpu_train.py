"""Training throughput of the GPU-tier model: tokens/s and model FLOPs utilisation (MFU).

    python benchmarks/gpu_train.py                 # every variant, on the available device
    python benchmarks/gpu_train.py --variants baseline,compile --steps 50
    python benchmarks/gpu_train.py --peak-flops 312e12   # an A100, or any card not in the table

On a GPU it times the ``pythia-160m`` shape (GPT-NeoX, ~160M parameters with a 50,304-token
vocabulary) one optimisation at a time, so each one's effect is measured:

* ``unpacked``: one synthetic statement per row (rows of ~6 tokens, as the lab trains them);
* ``baseline``: packed rows of ``--seq-len`` tokens, bf16 autocast, plain (for-loop) AdamW;
* ``fused``: + fused AdamW;
* ``compile``: + ``torch.compile`` of the model.

MFU = 6 · N · tokens/s ÷ the device's dense bf16 peak, with N the parameters that take part in
matrix products. On a CPU the same code times the tiny tier (size ``tiny``) and prints tokens/s
only: a CPU has no meaningful bf16 tensor-core peak, so MFU is not reported there.
"""

from __future__ import annotations

import argparse
import json
import sys

from overshadow_lab.device import get_device
from overshadow_lab.finetuning.speed import BENCHMARK_VARIANTS as VARIANTS
from overshadow_lab.finetuning.speed import benchmark_variants


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--size", default=None, help="model size (default: pythia-160m on a GPU, tiny on a CPU)"
    )
    p.add_argument(
        "--vocab", type=int, default=None, help="vocabulary size (default 50304 GPU, 2000 CPU)"
    )
    p.add_argument(
        "--seq-len",
        type=int,
        default=None,
        help="tokens per packed row (default 1024 GPU, 128 CPU)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="rows per batch (default: the largest that fits)",
    )
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 30 GPU, 5 CPU)")
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed steps first (default 5 GPU, 1 CPU)"
    )
    p.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}"
    )
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument(
        "--peak-flops", type=float, default=None, help="override the device's peak bf16 FLOP/s"
    )
    p.add_argument("--device", default=None)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    dev = get_device(args.device)
    gpu = dev.type == "cuda"
    size = args.size or ("pythia-160m" if gpu else "tiny")
    vocab = args.vocab or (50304 if gpu else 2000)
    seq_len = args.seq_len or (1024 if gpu else 128)
    steps = args.steps or (30 if gpu else 5)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        print(
            f"gpu_train.py: error: unknown variant(s) {', '.join(unknown)}; use {', '.join(VARIANTS)}",
            file=sys.stderr,
        )
        return 2
    results = []
    for name in names:
        (r,) = benchmark_variants(
            [name],
            size=size,
            vocab_size=vocab,
            seq_len=seq_len,
            batch_size=args.batch_size,
            steps=steps,
            warmup=warmup,
            device=str(dev),
            peak=args.peak_flops,
            gradient_checkpointing=args.gradient_checkpointing,
        )
        results.append(r)
        mfu = f"MFU {100 * r['mfu']:5.1f}%" if r["mfu"] == r["mfu"] else "MFU n/a (no GPU peak)"
        print(
            f"{name:9s} {size} on {r['device']}: {r['tokens_per_s']:12,.0f} tokens/s  {mfu}  "
            f"(rows {r['batch_size']} x {r['seq_len']} tokens, N = {r['params_matmul']:,})",
            flush=True,
        )
    if not gpu:
        print("on a CPU MFU is not meaningful (no bf16 tensor-core peak); tokens/s only")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
