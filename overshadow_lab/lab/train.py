"""Training loop of the lab: full-sequence causal LM loss, AdamW, four stopping rules.

Rules (SPEC §3; :mod:`overshadow_lab.lab.protocols` names them and says when to use which):

* ``rule="converge"`` (default): train until the dominant set is recalled (RR on the dominant
  prompts >= ``rr_threshold``, checked every ``eval_every`` steps) *and* ``min_steps`` have
  passed, or until the training loss plateaus (no relative improvement above ``plateau_tol``
  for ``patience`` checks), whichever comes first, capped by ``max_steps``. Steps and wall time
  are recorded, so that a trend can be read against the training it took. The check uses at
  most ``rr_sample`` dominant prompts (a fixed random subset) to stay cheap on large corpora.
* ``rule="epochs"``: the paper's protocol, a fixed number of passes over the corpus.
* ``rule="exposure"``: every subordinate statement is presented exactly ``exposures`` times,
  whatever P, at a constant learning rate after warm-up; the sampler counts every presentation
  and the run stops when the least-seen subordinate statement reaches the budget.
* ``rule="plateau"``: train until the training loss plateaus (the plateau test of
  ``"converge"`` alone, without the recall test), capped by ``max_steps``.

Every run counts how often each training sequence was presented
(:attr:`TrainResult.exposure` summarises the counts of the subordinate and dominant statements),
and ``train_model(..., monitor=f)`` calls ``f(step, model, loss)`` before the first step and
after every step, which is how :mod:`overshadow_lab.lab.dynamics` records a run's curves.

Speed on a CPU comes from doing little besides the model's own work: the corpus is turned once
into tensors grouped by sequence length (synthetic corpora have one length, so no padding and no
attention mask), batches are index slices of those tensors, GPT-NeoX models run a lean forward
(:mod:`overshadow_lab.lab.neox`), the output layer and the loss are one fused step
(:class:`LinearCrossEntropy`), AdamW is the fused/foreach implementation (on that lean CPU route
over two tensors: the parameters live in one buffer, :class:`_FlatParameters`), and RR is read
from one teacher-forced forward pass instead of ``generate``. ``TrainConfig(fast=False)`` trains
through the model's own forward instead (same results up to float rounding);
``benchmarks/train_throughput.py`` measures the difference against a plain ``Trainer``.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from overshadow_lab.configs import override
from overshadow_lab.device import get_device
from overshadow_lab.lab import neox
from overshadow_lab.metrics import answer_matches

RULES = ("converge", "epochs", "exposure", "plateau")
SCHEDULES = ("auto", "constant", "linear", "cosine")


@dataclass
class TrainConfig:
    """Hyperparameters and the stopping rule (see the module docstring)."""

    rule: str = "converge"
    epochs: int = 40
    exposures: int = 20
    max_steps: int = 2000
    min_steps: int = 0
    rr_threshold: float = 0.95
    eval_every: int = 50
    patience: int = 5
    plateau_tol: float = 1e-3
    lr: float = 3e-3
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.98)
    batch_size: int = 16
    warmup: float = 0.05
    schedule: str = "auto"
    grad_clip: float | None = 1.0
    seed: int = 0
    device: str | None = None
    bf16: bool | None = None
    progress: bool = True
    checkpoint_dir: str | None = None
    threads: int | None = None
    rr_sample: int | None = 1024
    fast: bool = True


@dataclass
class TrainResult:
    """What a training run returns; ``history`` has one row per check (step, loss, RR, seconds)."""

    model: Any
    steps: int
    seconds: float
    tokens: int
    converged: bool
    stop_reason: str = ""
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    config: TrainConfig | None = None
    exposure: dict = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


def progress_enabled(progress: bool) -> bool:
    """Progress bars are on when asked for and ``$TQDM_DISABLE`` is not set to a true value."""
    env = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return bool(progress) and env not in ("1", "true", "yes", "on")


def _validate(cfg: TrainConfig) -> None:
    if cfg.rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {cfg.rule!r}")
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {cfg.schedule!r}")
    for name in ("epochs", "exposures", "max_steps", "eval_every", "batch_size", "patience"):
        v = getattr(cfg, name)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
    if not 0 < cfg.rr_threshold <= 1:
        raise ValueError(f"rr_threshold is a recall fraction in (0, 1], got {cfg.rr_threshold}")
    if not cfg.lr > 0:
        raise ValueError(f"lr must be > 0, got {cfg.lr}")
    if not 0 <= cfg.warmup < 1:
        raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {cfg.warmup}")


class _Batches:
    """The corpus as tensors grouped by length; yields shuffled index batches epoch after epoch.

    ``counts[i]`` is how many times training sequence ``i`` has been presented so far.
    """

    def __init__(self, sequences: list[list[int]], batch_size: int, device, generator):
        groups: dict[int, list[int]] = {}
        for i, s in enumerate(sequences):
            if len(s) < 2:
                raise ValueError(
                    "every training sequence needs at least 2 tokens (input and target)"
                )
            groups.setdefault(len(s), []).append(i)
        self.index = [np.array(g) for g in groups.values()]
        self.tensors = [
            torch.tensor([sequences[i] for i in g], dtype=torch.long, device=device)
            for g in groups.values()
        ]
        self.batch_size = batch_size
        self.gen = generator
        self.n_sequences = len(sequences)
        self.counts = np.zeros(len(sequences), dtype=np.int64)
        self.batches_per_epoch = pass_steps(sequences, batch_size)
        self._queue: list[tuple[int, torch.Tensor]] = []
        self.epoch = 0

    def _refill(self) -> None:
        batches = []
        for k, t in enumerate(self.tensors):
            perm = torch.randperm(len(t), generator=self.gen)
            for b in range(0, len(t), self.batch_size):
                batches.append((k, perm[b : b + self.batch_size]))
        order = torch.randperm(len(batches), generator=self.gen).tolist()
        self._queue = [batches[i] for i in order]
        self.epoch += 1

    def next(self) -> torch.Tensor:
        if not self._queue:
            self._refill()
        k, rows = self._queue.pop()
        np.add.at(self.counts, self.index[k][rows.numpy()], 1)
        t = self.tensors[k]
        return t[rows.to(t.device)]


def subordinate_rows(sets) -> np.ndarray:
    """Indices of the training sequences that are subordinate statements (prompt + ``Y_b``)."""
    sub = sets.subordinate
    keys = {tuple(p) + tuple(a) for p, a in zip(sub.prompts, sub.answers, strict=True)}
    return np.array(
        [i for i, s in enumerate(sets.train_sequences) if tuple(s) in keys], dtype=np.int64
    )


def _exposure_summary(counts: np.ndarray, sub_rows: np.ndarray) -> dict:
    """Least and most presentations of the subordinate and of the other training sequences."""
    other = np.setdiff1d(np.arange(len(counts)), sub_rows)
    out = {}
    for name, rows in (("subordinate", sub_rows), ("other", other)):
        c = counts[rows] if len(rows) else np.zeros(1, dtype=np.int64)
        out[f"{name}_min"], out[f"{name}_max"] = int(c.min()), int(c.max())
    return out


def recall_rows(cfg: TrainConfig, n_prompts: int) -> np.ndarray:
    """Which of the ``n_prompts`` dominant prompts a run's recall checks use: all of them, or a
    fixed random subset of ``rr_sample`` (seeded by the run's seed), which keeps checks cheap."""
    rows = np.arange(n_prompts)
    if cfg.rr_sample and n_prompts > cfg.rr_sample:
        rng = np.random.default_rng(int(cfg.seed))
        rows = np.sort(rng.choice(rows, cfg.rr_sample, replace=False))
    return rows


class StopRule:
    """One run's stopping rule as both trainers apply it: when recall is checked, what a check
    records, and whether a check or the exposure budget ends the run.

    :func:`train_model` and the stacked trainer's members (:mod:`overshadow_lab.lab.stacked`)
    both call :meth:`after_step` once per optimizer step, so the four rules cannot drift apart
    between them. After a step, recall is checked every ``eval_every`` steps, at the last step
    (``total``) and when the exposure budget is reached; a check appends a row to ``history``
    (step, epoch, the mean loss since the last check, RR, seconds). The ``converge`` rule stops
    at the first check with RR at or above ``rr_threshold`` (after ``min_steps``); ``converge``
    and ``plateau`` stop after ``patience`` checks without a relative improvement of the loss of
    ``plateau_tol``; ``exposure`` stops once every subordinate statement has been presented
    ``exposures`` times; every rule stops at ``total``, the run's step budget (its epochs, the
    exposure rule's ceiling or ``max_steps``). ``reason`` and ``converged`` say why.
    """

    def __init__(self, cfg: TrainConfig, sets, data: _Batches):
        sub_rows = subordinate_rows(sets)
        if cfg.rule == "exposure" and not len(sub_rows):
            raise ValueError(
                "rule='exposure' counts presentations of the subordinate statements, but none of "
                "sets.train_sequences is a subordinate prompt followed by its answer; use "
                "rule='epochs' for this corpus"
            )
        if cfg.rule == "epochs":
            total = epoch_steps(len(sets.train_sequences), int(cfg.batch_size), int(cfg.epochs))
        elif cfg.rule == "exposure":
            # a ceiling: each pass presents every statement once, in batches of one length each
            # (a corpus of several lengths takes more batches per pass than epoch_steps
            # counts); the run stops earlier, once the least-seen subordinate statement
            # reaches the budget
            total = pass_steps(sets.train_sequences, int(cfg.batch_size), int(cfg.exposures))
        else:
            total = int(cfg.max_steps)
        self.cfg, self.total, self.data, self.sub_rows = cfg, int(total), data, sub_rows
        self.losses: list[float] = []
        self.history: list[dict] = []
        self.best = float("inf")
        self.stale = 0
        self.converged = False
        self.reason = {"epochs": "epochs", "exposure": "exposures"}.get(cfg.rule, "max_steps")

    def after_step(
        self, step: int, loss: float, recall: Callable[[], float], clock: Callable[[], float]
    ) -> bool:
        """Book step ``step`` (counted from 1) with its training loss; returns whether the run
        stops now. ``recall()`` is called at a check only; ``clock()`` gives its seconds."""
        cfg = self.cfg
        self.losses.append(loss)
        done = cfg.rule == "exposure" and self.data.counts[self.sub_rows].min() >= cfg.exposures
        if step % cfg.eval_every == 0 or step == self.total or done:
            window = float(np.mean(self.losses[-cfg.eval_every :]))
            rr = recall()
            self.history.append(
                {
                    "step": step,
                    "epoch": step / self.data.batches_per_epoch,
                    "loss": window,
                    "RR": rr,
                    "seconds": clock(),
                }
            )
            if cfg.rule in ("converge", "plateau"):
                if cfg.rule == "converge" and rr >= cfg.rr_threshold and step >= cfg.min_steps:
                    self.converged, self.reason = True, "rr_threshold"
                    return True
                if window < self.best * (1 - cfg.plateau_tol):
                    self.best, self.stale = window, 0
                else:
                    self.stale += 1
                    if self.stale >= cfg.patience and step >= cfg.min_steps:
                        self.converged, self.reason = cfg.rule == "plateau", "plateau"
                        return True
        if done:
            self.converged = True
            return True
        return step >= self.total

    def finish(self) -> None:
        """After the last step: an ``epochs`` run counts as converged if its last check
        reached ``rr_threshold``."""
        if self.cfg.rule == "epochs":
            last = self.history[-1]["RR"] if self.history else float("nan")
            self.converged = bool(last >= self.cfg.rr_threshold)

    def lr_factor(self) -> Callable[[int], float]:
        """The learning rate's multiplier at each step: warm-up over ``warmup`` of the budget,
        then the schedule (``auto``: linear decay for ``epochs`` runs, constant otherwise)."""
        schedule = self.cfg.schedule
        if schedule == "auto":
            schedule = "linear" if self.cfg.rule == "epochs" else "constant"
        return _lr_lambda(schedule, int(round(self.cfg.warmup * self.total)), self.total)

    def exposure(self) -> dict:
        """Least and most presentations so far of the subordinate and the other sequences."""
        return _exposure_summary(self.data.counts, self.sub_rows)

    def table(self) -> pd.DataFrame:
        """The checks as a table (columns step, epoch, loss, RR, seconds)."""
        return pd.DataFrame(self.history, columns=["step", "epoch", "loss", "RR", "seconds"])


def epoch_steps(n_sequences: int, batch_size: int, epochs: int = 1) -> int:
    """Optimizer steps of ``epochs`` passes over ``n_sequences`` (the last batch may be short)."""
    if batch_size < 1 or n_sequences < 1 or epochs < 0:
        raise ValueError(
            f"need n_sequences >= 1, batch_size >= 1 and epochs >= 0, got {n_sequences}, "
            f"{batch_size}, {epochs}"
        )
    return int(epochs) * math.ceil(n_sequences / batch_size)


def pass_steps(sequences, batch_size: int, passes: int = 1) -> int:
    """Optimizer steps of ``passes`` passes of the trainer's sampler over ``sequences``: each
    length gets its own batches, so a corpus of several lengths takes more than
    :func:`epoch_steps` counts (the same for one length)."""
    counts = Counter(len(s) for s in sequences)
    return sum(math.ceil(c / int(batch_size)) for c in counts.values()) * int(passes)


def _lr_lambda(schedule: str, warmup_steps: int, total: int):
    def f(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        frac = min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))
        if schedule == "linear":
            return max(0.0, 1.0 - frac)
        return 0.5 * (1.0 + math.cos(math.pi * frac))

    return f


def make_optimizer(model, lr: float, weight_decay: float, betas=(0.9, 0.98)):
    """AdamW with decoupled weight decay on matrices only (not on biases and norms)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    dev = decay[0].device if decay else torch.device("cpu")
    kw: dict[str, Any] = {"lr": lr, "betas": tuple(betas)}
    try:
        return (
            torch.optim.AdamW(groups, fused=True, **kw)
            if dev.type in ("cpu", "cuda")
            else torch.optim.AdamW(groups, foreach=True, **kw)
        )
    except (RuntimeError, TypeError):  # pragma: no cover - older torch without fused CPU AdamW
        return torch.optim.AdamW(groups, foreach=True, **kw)


def _clip_rows(grads: torch.Tensor, max_norms) -> None:
    """Each row of ``grads`` (a whole gradient per row: one model's, or one stack member's)
    scaled in place to norm at most ``max_norms`` (per row; inf: unclipped), the rule of
    ``torch.nn.utils.clip_grad_norm_``; the multiply is skipped when no row is clipped."""
    total = torch.linalg.vector_norm(grads, dim=-1)
    coef = torch.clamp(max_norms / (total + 1e-6), max=1.0)
    if bool((coef < 1).any()):  # multiplying by one changes nothing: skip the pass
        grads.mul_(coef[..., None])


def _adamw_groups(rows, cfg: TrainConfig) -> list[dict]:
    """The two AdamW groups of :func:`make_optimizer` for parameters kept as two tensors (the
    matrices, then the biases and norms): matrices with weight decay, the rest without."""
    kw = {"lr": cfg.lr, "betas": tuple(cfg.betas)}
    return [
        {"params": [rows[0]], "weight_decay": cfg.weight_decay, **kw},
        {"params": [rows[1]], "weight_decay": 0.0, **kw},
    ]


class _FlatParameters:
    """A model's parameters in one buffer and their gradients in another, for the lean CPU loop.

    A small model's step on a CPU pays a fixed cost per operation, and the optimizer's
    bookkeeping is one operation or more per parameter: zeroing, a norm and a multiply each for
    clipping, AdamW's lists. Here each parameter is re-pointed at a piece of one buffer
    (matrices first, then biases and norms: the two AdamW groups of :func:`make_optimizer`) and
    its gradient is a view of a second buffer, into which autograd adds. Zeroing is then one
    fill, clipping one norm and one multiply, and AdamW updates two tensors. The update is the
    one of :func:`make_optimizer` with ``clip_grad_norm_``, up to float rounding (the norm is
    taken over the buffer at once, not as the norm of the parameters' norms;
    ``tests/lab/test_train.py``). Used only where the forward uses every parameter (the lean
    GPT-NeoX forward): a gradient of zeros, unlike no gradient, would let AdamW move a parameter
    the loss does not use. :meth:`release` gives every parameter its own storage again.
    """

    def __init__(self, model, cfg: TrainConfig):
        self.params = [p for p in model.parameters() if p.requires_grad]
        order = [p for p in self.params if p.ndim >= 2] + [p for p in self.params if p.ndim < 2]
        total = sum(p.numel() for p in order)
        split = sum(p.numel() for p in order if p.ndim >= 2)
        self.flat = torch.empty(total, dtype=order[0].dtype, device=order[0].device)
        self.grads = torch.zeros_like(self.flat)
        start = 0
        with torch.no_grad():
            for p in order:
                piece = slice(start, start + p.numel())
                self.flat[piece].copy_(p.reshape(-1))
                p.data = self.flat[piece].view_as(p)
                p.grad = self.grads[piece].view_as(p)
                start += p.numel()
        rows = []
        for piece in (slice(0, split), slice(split, total)):
            row = self.flat[piece].detach().requires_grad_()
            row.grad = self.grads[piece]
            rows.append(row)
        self.optimizer = torch.optim.AdamW(_adamw_groups(rows, cfg), fused=True)

    @staticmethod
    def usable(model, cfg: TrainConfig, device, bf16: bool) -> bool:
        """Whether the run takes the lean forward on a CPU in float32 (see the class doc)."""
        params = [p for p in model.parameters() if p.requires_grad]
        return (
            device.type == "cpu"
            and cfg.fast
            and not bf16
            and bool(params)
            and all(p.dtype == torch.float32 and p.device.type == "cpu" for p in params)
            and fusable(model)
            and neox.supported(model)
        )

    def zero_grad(self) -> None:
        self.grads.zero_()

    def clip(self, max_norm: float) -> None:
        """``clip_grad_norm_(params, max_norm)``: one norm, and one multiply when it clips."""
        _clip_rows(self.grads, max_norm)

    def release(self) -> None:
        """Each parameter and gradient in storage of its own again (as ``save_pretrained``
        expects: pieces of one buffer look like shared tensors to it)."""
        with torch.no_grad():
            for p in self.params:
                p.data = p.data.clone()
                p.grad = p.grad.clone()


class LinearCrossEntropy(torch.autograd.Function):
    """``cross_entropy(h @ W.T + b, target)`` (mean) with a hand-written backward.

    The output layer and the loss are one step: the forward turns the logits into
    probabilities in place and keeps them; the backward subtracts one at the targets and
    multiplies back through ``W``. Plain autograd instead stores log-probabilities, builds a
    one-hot gradient from zeros and recomputes the softmax; on a CPU with a vocabulary of
    thousands and a hidden size of tens, that bookkeeping costs more than the matrix products.
    Targets equal to ``ignore_index`` count for nothing (the mean is over the others).
    """

    @staticmethod
    def forward(ctx, h, weight, bias, target, ignore_index: int = -100):
        logits = h @ weight.t()
        if bias is not None:
            logits += bias
        keep = target != ignore_index
        safe = torch.where(keep, target, torch.zeros_like(target))
        logits -= logits.amax(dim=1, keepdim=True)
        picked = logits.gather(1, safe[:, None]).squeeze(1)
        probs = logits.exp_()
        total = probs.sum(dim=1)
        probs /= total[:, None]
        n = keep.sum().clamp(min=1)
        loss = ((total.log() - picked) * keep).sum() / n
        ctx.save_for_backward(h, weight, probs, safe, keep, n)
        ctx.has_bias = bias is not None
        ctx.used = False
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        if ctx.used:
            raise RuntimeError(
                "LinearCrossEntropy reuses its saved probabilities for the gradient, so it can "
                "be differentiated once; use lm_loss(..., fused=False) with retain_graph=True"
            )
        ctx.used = True
        h, weight, g, safe, keep, n = ctx.saved_tensors
        rows = torch.arange(len(safe), device=g.device)
        g[rows, safe] -= 1.0
        g *= (keep.to(g.dtype) * (grad_loss / n))[:, None]
        grad_h = g @ weight if ctx.needs_input_grad[0] else None
        grad_w = g.t() @ h if ctx.needs_input_grad[1] else None
        grad_b = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_h, grad_w, grad_b, None, None


# Causal LMs whose logits are exactly ``output_embeddings(base_model(ids)[0])``: no logit
# scaling, soft-capping or final projection after the head (those would change the loss).
FUSABLE = ("gpt_neox", "llama", "mistral", "qwen2", "qwen3", "gpt2")


def fusable(model) -> bool:
    """Whether :func:`lm_loss` can use :class:`LinearCrossEntropy` for ``model``."""
    config = getattr(model, "config", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return (
        getattr(config, "model_type", None) in FUSABLE
        and isinstance(head, torch.nn.Linear)
        and getattr(config, "final_logit_softcapping", None) is None
        and getattr(model, "base_model", model) is not model
    )


def lm_loss(model, batch: torch.Tensor, fast: bool | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over every position of the (unpadded) batch.

    ``fast=None`` (default) takes the quick route when the model allows it and no autocast is
    active: GPT-NeoX models go through :func:`overshadow_lab.lab.neox.hidden_states`, and the output
    layer and the loss are computed together by :class:`LinearCrossEntropy` (:func:`fusable`).
    ``fast=False`` always calls the model and ``F.cross_entropy`` on its logits. Both give the
    same loss and gradients up to float rounding (``tests/lab/test_train.py`` checks it).
    """

    inputs, targets = batch[:, :-1], batch[:, 1:].reshape(-1)
    if fast is None:
        fast = fusable(model) and not torch.is_autocast_enabled(batch.device.type)
    if fast:
        if neox.supported(model):
            hidden = neox.hidden_states(model, inputs)
        else:
            hidden = model.base_model(input_ids=inputs, use_cache=False)[0]
        head = model.get_output_embeddings()
        h = hidden.reshape(-1, hidden.shape[-1])
        return LinearCrossEntropy.apply(h, head.weight, head.bias, targets)
    out = model(input_ids=inputs, use_cache=False)
    logits = out.logits if hasattr(out, "logits") else out[0]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets)


def train_model(
    model,
    sets,
    config: TrainConfig | None = None,
    monitor: Callable[[int, Any, float | None], None] | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train ``model`` on ``sets.train_sequences`` with the rule of ``config`` (see module doc).

    ``monitor``, when given, is called as ``monitor(step, model, loss)`` once before training
    (step 0, loss None) and after every optimizer step with that step's training loss; it may
    evaluate the model (leaving it in the mode it found it in, as the lab's metrics do).

    Deterministic for a seed on the CPU. On CUDA it runs under bf16 autocast unless
    ``bf16=False``. ``threads`` sets torch's CPU threads for the run (restored afterwards); by
    default a run uses the threads torch has (all cores), which measured fastest for a single
    run of every CPU size at batch sizes 16 and 64. A sweep instead trains one model per core,
    each on one thread (``run_sweep`` passes ``threads=1``).
    Returns a :class:`TrainResult` (the trained model is ``result.model``).
    """
    cfg = config if config is not None else TrainConfig()
    cfg = override(cfg, overrides, "training option")
    _validate(cfg)
    device = get_device(cfg.device)
    model.to(device)
    threads = cfg.threads
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        return _train(model, sets, cfg, device, monitor)
    finally:
        torch.set_num_threads(old_threads)


def _train(model, sets, cfg: TrainConfig, device, monitor=None) -> TrainResult:
    bf16 = (device.type == "cuda") if cfg.bf16 is None else bool(cfg.bf16)
    torch.manual_seed(int(cfg.seed))
    gen = torch.Generator().manual_seed(int(cfg.seed))
    data = _Batches(sets.train_sequences, int(cfg.batch_size), device, gen)
    rule = StopRule(cfg, sets, data)
    total = rule.total
    model.train()
    flat = _FlatParameters(model, cfg) if _FlatParameters.usable(model, cfg, device, bf16) else None
    opt = flat.optimizer if flat else make_optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, rule.lr_factor())
    dom = sets.dominant
    check = recall_rows(cfg, len(dom.prompts))
    check_prompts = [dom.prompts[i] for i in check]
    check_answers = [dom.answers[i] for i in check]

    def recall() -> float:
        return float(answer_matches(model, check_prompts, check_answers).mean())

    bar = None
    if progress_enabled(cfg.progress):
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"train ({cfg.rule})", leave=False, mininterval=1.0)
    tokens = 0
    step = 0
    if monitor is not None:
        monitor(0, model, None)
    t0 = time.perf_counter()

    def check() -> float:
        rr = recall()
        model.train()
        return rr

    try:
        while step < total:
            batch = data.next()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = lm_loss(model, batch, fast=None if cfg.fast else False)
            if flat is not None:
                flat.zero_grad()
            else:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                if flat is not None:
                    flat.clip(cfg.grad_clip)
                else:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            step += 1
            tokens += batch.numel()
            value = float(loss.detach())
            if bar is not None:
                bar.update(1)
            if monitor is not None:
                monitor(step, model, value)
                model.train()
            stop = rule.after_step(step, value, check, lambda: time.perf_counter() - t0)
            if bar is not None and rule.history and rule.history[-1]["step"] == step:  # a check
                last = rule.history[-1]
                bar.set_postfix(loss=f"{last['loss']:.3f}", RR=f"{last['RR']:.2f}")
            if stop:
                break
    finally:
        if flat is not None:
            flat.release()
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    model.eval()
    rule.finish()
    if cfg.checkpoint_dir:
        Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(cfg.checkpoint_dir, safe_serialization=True)
    return TrainResult(
        model=model,
        steps=step,
        seconds=seconds,
        tokens=tokens,
        converged=rule.converged,
        stop_reason=rule.reason,
        history=rule.table(),
        config=cfg,
        exposure=rule.exposure(),
    )


def config_dict(cfg: TrainConfig) -> dict:
    """Plain dictionary of a TrainConfig (for hashing and provenance)."""
    return asdict(cfg)
