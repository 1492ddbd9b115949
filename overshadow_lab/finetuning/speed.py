"""Training speed: tokens per second and model FLOPs utilisation (MFU).

:func:`benchmark_training` times training steps of a GPT-NeoX size with ``torch.compile``, fused
AdamW and sequence packing switchable one by one, so each one's effect is measured; it is what
``benchmarks/gpu_train.py`` and the GPU tier's ``--benchmark`` run. MFU compares the useful work
with the hardware's peak: :func:`model_flops_utilization` is ``6 N tokens/s / peak`` with N from
:func:`matmul_parameters` and the peak from :data:`PEAK_BF16_FLOPS` (:func:`peak_flops`).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence

import torch

from overshadow_lab.device import get_device
from overshadow_lab.finetuning.finetune import enable_gradient_checkpointing, fit_batch_size
from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.models import count_parameters, make_model
from overshadow_lab.lab.train import make_optimizer

# Dense peak bf16 (fp16 for the T4) tensor-core FLOP/s per device, from the vendors' data sheets.
PEAK_BF16_FLOPS: dict[str, float] = {
    "H200": 989e12,
    "H100 SXM": 989e12,
    "H100 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "A10G": 125e12,
    "A10": 125e12,
    "L40S": 362e12,
    "L4": 121e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
    "V100": 125e12,
    "T4": 65e12,
}


def peak_flops(
    device: str | torch.device | None = None, override: float | None = None
) -> float | None:
    """Dense bf16 peak FLOP/s of the device (from :data:`PEAK_BF16_FLOPS`), or None on a CPU
    or an unknown GPU (then pass ``override``)."""
    if override:
        return float(override)
    dev = get_device(device)
    if dev.type != "cuda":
        return None
    name = torch.cuda.get_device_name(dev)
    for key in sorted(PEAK_BF16_FLOPS, key=len, reverse=True):
        if all(part.lower() in name.lower() for part in key.split()):
            return PEAK_BF16_FLOPS[key]
    return None


def matmul_parameters(model) -> int:
    """Parameters that take part in matrix products: all but the input embedding table (a
    lookup costs no multiply-adds; an output head tied to it does, and is counted)."""
    n = count_parameters(model)
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    tied = out is not None and out.weight.data_ptr() == emb.data_ptr()
    return n if tied else n - emb.numel()


def model_flops_utilization(n_params: int, tokens_per_second: float, peak: float | None) -> float:
    """MFU = 6 · N · tokens/s ÷ peak FLOP/s (forward 2N + backward 4N per token)."""
    if peak is None or not peak > 0:
        return float("nan")
    if n_params < 0 or tokens_per_second < 0:
        raise ValueError("n_params and tokens_per_second must be >= 0")
    return 6.0 * n_params * tokens_per_second / peak


def pack_sequences(sequences: Sequence[Sequence[int]], length: int, sep: int = 0) -> torch.Tensor:
    """Concatenate sequences (each followed by ``sep``) and cut the stream into rows of
    ``length`` tokens, dropping the last partial row. Packing fills every position with work;
    with a plain causal mask, a statement can then attend to the ones before it in its row."""
    if length < 2:
        raise ValueError(f"length must be >= 2 tokens, got {length}")
    stream: list[int] = []
    for s in sequences:
        stream.extend(int(t) for t in s)
        stream.append(int(sep))
    rows = len(stream) // length
    if rows == 0:
        raise ValueError(
            f"the {len(stream)} tokens do not fill one row of {length}; use a shorter length"
        )
    return torch.tensor(stream[: rows * length], dtype=torch.long).view(rows, length)


#: The optimisations ``benchmarks/gpu_train.py`` times one at a time, each adding one to the last:
#: one statement per row as the lab trains (``unpacked``), packed rows with plain AdamW
#: (``baseline``), fused AdamW (``fused``), and ``torch.compile`` of the model (``compile``).
BENCHMARK_VARIANTS: dict[str, dict[str, bool]] = {
    "unpacked": {"packing": False, "fused": True, "compile": False},
    "baseline": {"packing": True, "fused": False, "compile": False},
    "fused": {"packing": True, "fused": True, "compile": False},
    "compile": {"packing": True, "fused": True, "compile": True},
}


def benchmark_variants(names: Sequence[str] | None = None, **options) -> list[dict]:
    """:func:`benchmark_training` of each named :data:`BENCHMARK_VARIANTS` entry, in order.

    ``options`` are passed to every run (size, vocab_size, seq_len, steps, device ...). Each
    result carries its ``variant``. Unknown names raise before anything runs.
    """
    names = list(BENCHMARK_VARIANTS) if names is None else list(names)
    unknown = [n for n in names if n not in BENCHMARK_VARIANTS]
    if unknown:
        raise ValueError(
            f"unknown variant(s) {', '.join(unknown)}; use {', '.join(BENCHMARK_VARIANTS)}"
        )
    results = []
    for name in names:
        result = benchmark_training(**options, **BENCHMARK_VARIANTS[name])
        result["variant"] = name
        results.append(result)
    return results


def benchmark_training(
    size: str = "pythia-160m",
    vocab_size: int = 50304,
    seq_len: int = 512,
    batch_size: int | None = None,
    steps: int = 20,
    warmup: int = 3,
    device: str | None = None,
    bf16: bool | None = None,
    compile: bool = False,
    fused: bool = True,
    packing: bool = True,
    statement_len: int = 6,
    gradient_checkpointing: bool = False,
    peak: float | None = None,
    seed: int = 0,
) -> dict:
    """Time training steps of a GPT-NeoX size; return tokens/s, MFU and the settings.

    ``packing=True`` trains on rows of ``seq_len`` tokens (short statements packed together);
    ``packing=False`` on rows of ``statement_len`` tokens (one synthetic statement each, as the
    lab's trainer does), at the same number of tokens per batch. MFU counts
    :func:`matmul_parameters` and is NaN on a CPU (no meaningful peak).
    """
    dev = get_device(device)
    bf16 = (dev.type == "cuda") if bf16 is None else bool(bf16)
    torch.manual_seed(seed)
    model = make_model(size, vocab_size=vocab_size, seed=seed).to(dev).train()
    if gradient_checkpointing:
        enable_gradient_checkpointing(model)
    if batch_size is None:
        batch_size = fit_batch_size(model, seq_len, dev, start=64, bf16=bf16, cpu_default=4)
    row_len = int(seq_len) if packing else int(statement_len)
    rows = int(batch_size) * (int(seq_len) // row_len if not packing else 1)
    kind = "packed" if packing else "unpacked"
    # a batch of synthetic statements (random tokens), shaped as the lab would train on them
    sets = make_knowledge_sets(
        L=max(2, statement_len - 1),
        n_sets=max(1, rows * row_len // (6 * statement_len) + 1),
        vocab=vocab_size,
        seed=seed,
    )
    seqs = sets.train_sequences
    if packing:
        need = rows * row_len
        reps = -(-need // sum(len(s) + 1 for s in seqs)) + 1
        batch = pack_sequences(seqs * reps, row_len)[:rows]
    else:
        reps = -(-rows // len(seqs))
        batch = torch.tensor((seqs * reps)[:rows], dtype=torch.long)[:, :row_len]
    batch = batch.to(dev)
    if fused:
        opt = make_optimizer(model, 3e-4, 0.01)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, foreach=False)
    forward = torch.compile(model) if compile else model

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            logits = forward(input_ids=batch[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(int(warmup)):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(int(steps)):
        step()
    sync()
    seconds = time.perf_counter() - t0
    tokens = int(steps) * batch[:, 1:].numel()
    tps = tokens / seconds
    n = matmul_parameters(model)
    pk = peak_flops(dev, peak)
    return {
        "size": size,
        "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else platform.processor() or "cpu",
        "layout": kind,
        "seq_len": row_len,
        "batch_size": int(batch.shape[0]),
        "bf16": bf16,
        "compile": bool(compile),
        "fused_adamw": bool(fused),
        "gradient_checkpointing": bool(gradient_checkpointing),
        "params_matmul": n,
        "steps": int(steps),
        "seconds": seconds,
        "tokens_per_s": tps,
        "peak_flops": pk,
        "mfu": model_flops_utilization(n, tps, pk),
    }
