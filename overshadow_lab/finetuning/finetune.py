"""Fine-tuning a model on one task family, and training small models over a grid of tasks.

Used by the chapter "Natural-language tasks and fine-tuning", by the law chapter, and by the
GPU tier (:mod:`overshadow_lab.finetuning.gpu_tier`):

* :func:`finetune_task`: load a model by any name (:func:`overshadow_lab.loading.load_model`:
  a short name such as ``"smollm2-135m-instruct"``, which works offline, a hub id online, a lab
  size for a from-scratch stand-in, or a folder), generate a natural-language task corpus with
  the model's own tokenizer, measure RR, HR and R *before* training, fine-tune with the lab's
  ``train_model`` (optionally only the last few blocks, with gradient checkpointing and bf16
  autocast on a GPU), and measure again;
* :func:`run_task_grid`: a from-scratch model per (task, P, seed) on a word-level corpus;
* the memory helpers they rely on: :func:`freeze_all_but_last`,
  :func:`enable_gradient_checkpointing`, :func:`fit_batch_size` (the largest batch that fits the
  GPU's memory) and :func:`sequence_loss`.

Speed measurements (tokens/s, MFU) live in :mod:`overshadow_lab.finetuning.speed`; recorded
results and provenance in :mod:`overshadow_lab.records`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from overshadow_lab.device import get_device
from overshadow_lab.finetuning.tasks import make_task
from overshadow_lab.finetuning.tokenizers import WordTokenizer
from overshadow_lab.lab.models import count_parameters, make_model
from overshadow_lab.lab.train import train_model
from overshadow_lab.loading import load_model
from overshadow_lab.metrics import evaluate

# ------------------------------------------------------------------------------------------
# Freezing, gradient checkpointing, batch-size fitting
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

    ``model`` is any name :func:`~overshadow_lab.loading.load_model` accepts (a short name, a
    hub id, a lab size for a byte-level stand-in, a folder) or an already loaded model (then pass
    its ``tokenizer``). ``train_options`` go to ``train_model`` (defaults here: ``rule="epochs"``,
    ``epochs=8``, ``lr=1e-4``, ``batch_size=8``, no warm-up). Loss is over the whole sequence, as
    in the papers. Returns a :class:`FinetuneResult`.
    """
    name = model if isinstance(model, str) else getattr(model.config, "_name_or_path", "model")
    if isinstance(model, str):
        model, loaded_tok = load_model(model, device=device)
        tokenizer = tokenizer if tokenizer is not None else loaded_tok
    if tokenizer is None:
        raise ValueError(
            "pass the model's tokenizer (tokenizer=...): a loaded model or a saved lab run "
            "comes without one"
        )
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
    bar = tqdm(total=len(combos), desc="task grid", unit="run", disable=not progress)
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
        bar.update(1)
    bar.close()
    return pd.DataFrame(rows)
