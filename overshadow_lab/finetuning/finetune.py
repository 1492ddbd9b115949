"""Fine-tuning pretrained models on task slices, the GPU tier, and its recorded results.

Four pieces, used by the chapter "Fine-tuning experiments on GPU" and by ``scripts/gpu_tier.py``:

* **Fine-tuning** (:func:`finetune_task`): load a pretrained model (``hub.load_pretrained``: a
  short name such as ``"smollm2-135m-instruct"``, which works offline, or any hub id online),
  generate a natural-language task corpus with the model's own tokenizer, measure RR, HR and R
  *before* training, fine-tune with the lab's ``train_model`` (optionally only the last few
  blocks, with gradient checkpointing and bf16 autocast on a GPU), and measure again.
* **Memory and speed helpers**: :func:`freeze_all_but_last`, :func:`fit_batch_size` (the largest
  batch that fits the GPU's memory), :func:`benchmark_training` (tokens/s and model FLOPs
  utilisation, with ``torch.compile``, fused AdamW and sequence packing switchable one by one).
* **Orchestration** (:func:`gpu_tier_plan`, :func:`run_plan`): the GPU tier as a list of runs that
  N processes (``accelerate launch``) share by rank; every row carries provenance.
* **Recorded results** (:func:`load_recorded`, :func:`load_or_compute`): GPU-tier results live in
  ``overshadow_lab/recorded/`` with a JSON file of provenance (hardware, versions, commit, wall
  time); the book shows them when present and says plainly when they are not.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from overshadow_lab.device import get_device, get_tier
from overshadow_lab.paths import git_commit, git_dirty

RECORDED_DIR = Path(__file__).resolve().parent.parent / "recorded"

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

# ------------------------------------------------------------------------------------------
# Model helpers
# ------------------------------------------------------------------------------------------


def _blocks(model) -> list[torch.nn.Module]:
    """The transformer blocks of a causal LM (GPT-NeoX, Llama/SmolLM2, GPT-2 layouts)."""
    base = getattr(model, "base_model", model)
    for name in ("layers", "h", "blocks"):
        blocks = getattr(base, name, None)
        if isinstance(blocks, torch.nn.ModuleList):
            return list(blocks)
    raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}")


def freeze_all_but_last(model, n_blocks: int | None) -> int:
    """Train only the last ``n_blocks`` transformer blocks and the final norm.

    ``None`` trains everything. Embeddings (and a head tied to them) stay frozen otherwise,
    which keeps the optimizer small and skips the backward pass through the lower blocks.
    Returns the number of trainable parameters.
    """
    if n_blocks is None:
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        blocks = _blocks(model)
        if not 1 <= int(n_blocks) <= len(blocks):
            raise ValueError(
                f"n_blocks must be between 1 and the model's {len(blocks)} blocks (or None for "
                f"all parameters), got {n_blocks!r}"
            )
        for p in model.parameters():
            p.requires_grad_(False)
        for block in blocks[-int(n_blocks) :]:
            for p in block.parameters():
                p.requires_grad_(True)
        base = getattr(model, "base_model", model)
        for name in ("norm", "final_layer_norm", "ln_f"):
            norm = getattr(base, name, None)
            if isinstance(norm, torch.nn.Module):
                for p in norm.parameters():
                    p.requires_grad_(True)
    from overshadow_lab.lab.models import count_parameters

    return count_parameters(model, trainable_only=True)


def enable_gradient_checkpointing(model) -> bool:
    """Recompute activations in the backward pass (less memory, ~30% more compute)."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x
        model.activation_checkpointing_enable({"use_reentrant": False})
    elif hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:  # pragma: no cover - not a transformers model
        return False
    if hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    return True


def fit_batch_size(
    model,
    seq_len: int,
    device: str | torch.device | None = None,
    start: int = 512,
    minimum: int = 1,
    bf16: bool = True,
    cpu_default: int = 16,
) -> int:
    """The largest batch (halving from ``start``) whose forward + backward pass fits in memory.

    On CUDA each candidate is tried for real and out-of-memory errors are caught; on a CPU
    there is nothing to probe and ``min(start, cpu_default)`` is returned.
    """
    dev = get_device(device)
    if dev.type != "cuda":
        return max(minimum, min(int(start), int(cpu_default)))
    model.to(dev).train()
    vocab = int(model.get_input_embeddings().weight.shape[0])
    b = int(start)
    while b >= minimum:
        try:
            x = torch.randint(0, vocab, (b, int(seq_len)), device=dev)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=x, use_cache=False).logits
                loss = logits.float().logsumexp(-1).mean()
            loss.backward()
            model.zero_grad(set_to_none=True)
            del x, logits, loss
            torch.cuda.empty_cache()
            return b
        except torch.cuda.OutOfMemoryError:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            b //= 2
    raise RuntimeError(
        f"even batch size {minimum} at sequence length {seq_len} does not fit in GPU memory; "
        "enable gradient checkpointing, train fewer blocks or use a smaller model"
    )


def load_model(name: str, device: str | None = None):
    """``(model, tokenizer)`` for a pretrained name (``hub.load_pretrained``), or for
    ``"tiny-random"``: a from-scratch GPT-NeoX ``tiny`` with the 256-token byte tokenizer, the
    CPU-sized stand-in that exercises the fine-tuning code path in tests."""
    if name == "tiny-random":
        from overshadow_lab.finetuning.tasks import ByteTokenizer
        from overshadow_lab.lab.models import make_model

        return make_model("tiny", vocab_size=256).to(get_device(device)), ByteTokenizer()
    from overshadow_lab.hub import load_pretrained

    return load_pretrained(name, device=device)


# ------------------------------------------------------------------------------------------
# Fine-tuning on a task slice
# ------------------------------------------------------------------------------------------


@dataclass
class FinetuneResult:
    """Before/after metrics of one fine-tuning run (``before``/``after`` are ``evaluate`` dicts)."""

    model_name: str
    task: str
    P: float
    before: dict
    after: dict
    steps: int
    seconds: float
    trainable: int
    parameters: int
    loss_before: float = float("nan")
    loss_after: float = float("nan")
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    sets: Any = None
    model: Any = None

    def table(self) -> pd.DataFrame:
        """One row per stage (before, after) with RR, HR, R, sub_acc and their intervals."""
        keys = ["RR", "HR", "R", "sub_acc", "R_lo", "R_hi", "RR_lo", "RR_hi", "HR_lo", "HR_hi"]
        rows = []
        for stage, ev in (("before", self.before), ("after", self.after)):
            rows.append({"stage": stage, **{k: ev.get(k, float("nan")) for k in keys}})
        return pd.DataFrame(rows)

    def row(self) -> dict:
        """A flat dict for a results table (``R_before``, ``R_after`` ...)."""
        out = {
            "model": self.model_name,
            "task": self.task,
            "P": self.P,
            "steps": self.steps,
            "seconds": self.seconds,
            "trainable": self.trainable,
            "S": self.parameters,
            "loss_before": self.loss_before,
            "loss_after": self.loss_after,
        }
        for stage, ev in (("before", self.before), ("after", self.after)):
            for k in ("RR", "HR", "R", "sub_acc", "R_lo", "R_hi"):
                out[f"{k}_{stage}"] = ev.get(k, float("nan"))
        return out


def sequence_loss(model, sequences: Sequence[Sequence[int]], batch_size: int = 64) -> float:
    """Mean next-token cross-entropy (nats per token) of the model over whole sequences."""
    import torch.nn.functional as F

    dev = next(model.parameters()).device
    groups: dict[int, list] = {}
    for s in sequences:
        groups.setdefault(len(s), []).append(list(s))
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for seqs in groups.values():
            for b in range(0, len(seqs), batch_size):
                x = torch.tensor(seqs[b : b + batch_size], dtype=torch.long, device=dev)
                logits = model(input_ids=x[:, :-1], use_cache=False).logits.float()
                loss = F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum"
                )
                total += float(loss)
                count += x[:, 1:].numel()
    model.train(was_training)
    return total / max(count, 1)


def finetune_task(
    model: str | Any = "smollm2-135m-instruct",
    task: str = "negation",
    P: float = 5,
    n_sets: int = 4,
    L: float | None = None,
    tokenizer: Any = None,
    train_blocks: int | None = 4,
    gradient_checkpointing: bool = False,
    seed: int = 0,
    n_boot: int = 1000,
    device: str | None = None,
    keep_model: bool = False,
    **train_options: Any,
) -> FinetuneResult:
    """Fine-tune a pretrained causal LM on one task family and measure R before and after.

    ``model`` is a name for ``hub.load_pretrained`` or an already loaded model (then pass its
    ``tokenizer``). ``train_options`` go to ``train_model`` (defaults here: ``rule="epochs"``,
    ``epochs=8``, ``lr=1e-4``, ``batch_size=8``, no warm-up). Loss is over the whole sequence, as
    in the papers. Returns a :class:`FinetuneResult`.
    """
    from overshadow_lab.finetuning.tasks import make_task
    from overshadow_lab.lab.models import count_parameters
    from overshadow_lab.lab.train import train_model
    from overshadow_lab.metrics import evaluate

    name = model if isinstance(model, str) else getattr(model.config, "_name_or_path", "model")
    if isinstance(model, str):
        model, loaded_tok = load_model(model, device=device)
        tokenizer = tokenizer if tokenizer is not None else loaded_tok
    if tokenizer is None:
        raise ValueError("pass the model's tokenizer (tokenizer=...) when giving a loaded model")
    sets = make_task(task, tokenizer=tokenizer, P=P, n_sets=n_sets, L=L, seed=seed)
    dev = get_device(device)
    model.to(dev)
    before = evaluate(model, sets, n_boot=n_boot, seed=seed)
    loss_before = sequence_loss(model, sets.train_sequences)
    trainable = freeze_all_but_last(model, train_blocks)
    if gradient_checkpointing:
        enable_gradient_checkpointing(model)
    opts = {
        "rule": "epochs",
        "epochs": 8,
        "lr": 1e-4,
        "batch_size": 8,
        "warmup": 0.0,
        "eval_every": 10**6,
        "progress": False,
    }
    opts.update(train_options)
    opts.setdefault("seed", seed)
    opts["device"] = str(dev)
    res = train_model(model, sets, **opts)
    after = evaluate(res.model, sets, n_boot=n_boot, seed=seed)
    loss_after = sequence_loss(res.model, sets.train_sequences)
    result = FinetuneResult(
        model_name=str(name),
        task=task,
        P=float(P),
        before=before,
        after=after,
        steps=res.steps,
        seconds=res.seconds,
        trainable=trainable,
        parameters=count_parameters(res.model),
        loss_before=loss_before,
        loss_after=loss_after,
        history=res.history,
        sets=sets,
        model=res.model if keep_model else None,
    )
    return result


def run_task_grid(
    tasks: Sequence[str],
    Ps: Sequence[float],
    seeds: int = 1,
    size: str = "tiny",
    n_sets: int = 20,
    tokenizer_factory: Callable[[], Any] | None = None,
    n_boot: int = 500,
    device: str | None = None,
    progress: bool = False,
    **train_options: Any,
) -> pd.DataFrame:
    """Train a from-scratch model per (task, P, seed) on a natural-language corpus; R and CIs.

    ``tokenizer_factory()`` gives a fresh tokenizer per corpus (default: a ``WordTokenizer``,
    whose vocabulary holds only the corpus's words, so the model stays small). Training options
    go to ``train_model`` (default: the converge rule, ``max_steps=600``, ``eval_every=25``,
    ``batch_size=32``, ``lr=3e-3``).
    """
    from overshadow_lab.finetuning.tasks import WordTokenizer, make_task
    from overshadow_lab.lab.models import count_parameters, make_model
    from overshadow_lab.lab.train import train_model
    from overshadow_lab.metrics import evaluate

    opts = {
        "rule": "converge",
        "max_steps": 600,
        "eval_every": 25,
        "batch_size": 32,
        "lr": 3e-3,
        "progress": False,
    }
    opts.update(train_options)
    factory = tokenizer_factory or WordTokenizer
    # one distinct-span length per task for the whole P grid (the one the largest P needs), so
    # that L stays fixed while P varies
    span = {t: make_task(t, tokenizer=factory(), P=max(Ps), n_sets=n_sets).span_len for t in tasks}
    combos = [(t, P, s) for t in tasks for P in Ps for s in range(int(seeds))]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(combos), desc="task grid", unit="run")
    rows = []
    for task, P, seed in combos:
        sets = make_task(
            task, tokenizer=factory(), P=P, n_sets=n_sets, seed=seed, span_len=span[task]
        )
        model = make_model(size, vocab_size=sets.vocab_size, seed=seed)
        res = train_model(model, sets, seed=seed, device=device, **opts)
        ev = evaluate(res.model, sets, n_boot=n_boot, seed=seed)
        rows.append(
            {
                "task": task,
                "P": P,
                "seed": seed,
                "L": sets.L_actual,
                "span_len": sets.span_len,
                "S": count_parameters(res.model),
                "steps": res.steps,
                "seconds": res.seconds,
                "stop_reason": res.stop_reason,
                **{k: ev[k] for k in ("RR", "HR", "R", "sub_acc", "R_lo", "R_hi")},
            }
        )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Speed: tokens/s and model FLOPs utilisation
# ------------------------------------------------------------------------------------------


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
    from overshadow_lab.lab.models import count_parameters

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
    from overshadow_lab.lab.data import make_knowledge_sets
    from overshadow_lab.lab.models import make_model
    from overshadow_lab.lab.train import make_optimizer

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


# ------------------------------------------------------------------------------------------
# Provenance, recorded results, "load if present, else compute"
# ------------------------------------------------------------------------------------------


def provenance(wall_seconds: float | None = None, device: str | None = None) -> dict:
    """Hardware, software versions, commit and wall time of a run (for recorded results)."""
    import transformers

    import overshadow_lab

    dev = get_device(device)
    commit, dirty = git_commit(), git_dirty()
    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    try:
        import accelerate

        acc = accelerate.__version__
    except ImportError:  # pragma: no cover - accelerate is a dependency
        acc = None
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": str(dev),
        "gpus": gpus,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "accelerate": acc,
        "overshadow_lab": overshadow_lab.__version__,
        "commit": commit,
        "dirty": dirty,
        "tier": get_tier(),
        "wall_seconds": wall_seconds,
    }


def recorded_files(name: str = "gpu_tier", folder: str | Path | None = None) -> tuple[Path, Path]:
    """The CSV and provenance JSON of a recorded result set."""
    folder = Path(folder) if folder is not None else RECORDED_DIR
    return folder / f"{name}.csv", folder / f"{name}.json"


def save_recorded(
    table: pd.DataFrame, prov: dict, name: str = "gpu_tier", folder: str | Path | None = None
) -> tuple[Path, Path]:
    """Write a result table and its provenance (atomically) for :func:`load_recorded`."""
    csv, meta = recorded_files(name, folder)
    csv.parent.mkdir(parents=True, exist_ok=True)
    tmp = csv.with_name(f".{csv.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, csv)
    tmp = meta.with_name(f".{meta.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(prov, indent=2, default=str))
    os.replace(tmp, meta)
    return csv, meta


def load_recorded(
    name: str = "gpu_tier", folder: str | Path | None = None
) -> tuple[pd.DataFrame, dict] | None:
    """``(table, provenance)`` of a recorded result set, or None when none has been recorded."""
    csv, meta = recorded_files(name, folder)
    if not csv.is_file():
        return None
    prov = json.loads(meta.read_text()) if meta.is_file() else {"note": "no provenance file"}
    return pd.read_csv(csv), prov


def load_or_compute(path: str | Path, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Read the CSV at ``path`` if it exists, else ``compute()`` it and write it there."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > 0:
        return pd.read_csv(path)
    table = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return table


# ------------------------------------------------------------------------------------------
# The GPU tier as a plan of runs, shared by the processes of `accelerate launch`
# ------------------------------------------------------------------------------------------

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
                        "model": "tiny-random" if tiny else finetune_model,
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
    :func:`load_model` (``"tiny-random"`` gives a CPU-sized stand-in).
    """
    from overshadow_lab.lab.sweep import append_row, config_hash, run_sweep

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
        from overshadow_lab.hub import hub_reachable

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
    """Orders of magnitude spanned by positive values (``log10(max / min)``)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0 or (v <= 0).any():
        raise ValueError("log10_span needs positive values")
    return float(math.log10(v.max() / v.min()))
