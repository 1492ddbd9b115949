"""Train several small GPT-NeoX models of one shape in one step: what a sweep's runs share.

A sweep of the lab trains dozens of models that differ only in their data, seed and a few
hyperparameters. A small model's step is many small tensor operations, each with a fixed cost
and too little work to use a core's vector units well. :func:`train_stacked` trains ``K`` such
models as one: their parameters are stacked along a new leading dimension, and one forward
(:func:`overshadow_lab.lab.neox.stacked_hidden_states`) computes all ``K`` models with batched
matrix products (``torch.baddbmm``) and one attention call over the ``K x B`` sequences. Each
operation then does ``K`` times the work for one fixed cost. The optimizer, the gradient
clipping, the schedule and the stopping rule stay per member.

**Why batched matrix products over ``torch.func.vmap``.** ``functional_call`` + ``vmap`` over the
transformers forward would batch the same computation, but it goes through the transformers
module tree at every step (masks, rotary tables, output objects: the very overhead the lab's
lean forward :mod:`overshadow_lab.lab.neox` removes) and cannot use a hand-written output
layer + loss, the largest cost of a small model's step. The stacked forward is the lean forward
written once more with a leading member dimension, and is tested against it.

**The output layer** (:class:`StackedLinearCrossEntropy`) is where a small model spends most:
a vocabulary of thousands against a hidden size of tens. It works member by member and block of
rows by block, so that each block of logits is made, turned into probabilities and multiplied
back while it is still in the core's cache; the gradients are ready when the forward ends.
Positions of a batch that share their whole prefix share their hidden state, so their output
row is computed once (:mod:`overshadow_lab.lab.prefixes`: about a fifth of a lab batch's
positions). Stacking all members' logits instead would make one tensor too large for any
cache, and each of the passes over it would go to memory.

**Memory layout.** The weights of all members live in one ``[K, N]`` buffer, one row per
member, matrices first: member ``k``'s own ``nn.Parameter`` tensors are re-pointed at pieces of
row ``k`` (so each member's transformers model always holds its current weights), its AdamW
updates two tensors (the matrices, decayed, and the rest) and its gradient norm is one
reduction; the forward multiplies with ``[K, *shape]`` views across the rows. Gradients land in
a second buffer of the same layout. When a member stops, its weights are copied out and the
others are packed into a smaller stack with their optimizer state, so finished members cost
nothing afterwards. Recall checks (the ``converge`` rule) use the lean forward too, with the
output layer at the answer positions only (:class:`_Recall`, equal to
:func:`~overshadow_lab.metrics.answer_matches`).

**Equal to training one at a time.** Every member draws its batches exactly as
:func:`~overshadow_lab.lab.train.train_model` does (the same batcher, seeded with its own
seed), has its own AdamW (fused, decoupled weight decay on matrices only, its own learning rate,
schedule, betas and weight decay), its own gradient-norm clipping and its own stopping rule
(any of the four of :mod:`overshadow_lab.lab.protocols`, checked in ``train_model``'s order,
with its exposure counts); ``tests/lab/test_stacked.py`` checks that each member's losses,
recall, stop and final weights match ``train_model``'s to float rounding, for members that
differ in data, seed, learning rate, weight decay, batch size, rule and stopping step.

**Both cores.** On a CPU with several threads for torch, the members are split into one lane
per core (:func:`plan_lanes`, balanced by their step budgets), and each lane is a stack of its
own trained on one intra-op thread. On Linux (:data:`LANES`) each lane is a forked process: it
starts at once with the models, data and imports it inherits, and sends back its members'
weights and run states. Elsewhere each lane is a thread of this process: torch releases Python's
interpreter lock inside its operations, and the autograd engine runs a CPU graph's backward on
the thread that asked for it, so the lanes compute at the same time, but they take turns for
the lock between operations, which a small model's step has many of (two lanes of 4 tiny models
took 16.7 s as threads, 14.4 s as processes). Either way each lane does the arithmetic a
single-threaded stack would do with its members, so the results are the same to the bit as with
``threads=1`` (``tests/lab/test_stacked.py``). Why lanes and not the one stack on all cores: a
small model's operations are too small to split well over cores (the output layer's blocks of
65 rows, for one, ran no faster on two intra-op threads than on one); and why forked and not
spawned processes: a spawned process pays its start-up, importing torch and transformers
(seconds), in a sweep whose runs last seconds. ``benchmarks/RESULTS.md`` has the measurements.
A failing lane stops the others at their next step, and its error is raised (with the lane's
traceback as its cause).

**Members of different shapes and data.** Members must share one model shape (a sweep over S
gives one stack per size): anything else is refused before any work. Their data may differ:
sequences of different lengths (an L sweep) and batches of different sizes (the last batch of
an epoch, or different ``batch_size``) are padded on the right to the step's longest sequence
and largest batch. Causal attention means a token never sees the padding after it, and padded
targets are ignored by the loss, so padding changes no member's result; it only costs the
padded work, so :func:`plan_stacks` groups runs of one length (:func:`stack_key`).
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import pickle
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from overshadow_lab.configs import override
from overshadow_lab.device import get_device
from overshadow_lab.lab import neox
from overshadow_lab.lab.prefixes import identity_groups, prefix_groups
from overshadow_lab.lab.train import (
    StopRule,
    TrainConfig,
    TrainResult,
    _adamw_groups,
    _Batches,
    _clip_rows,
    _validate,
    progress_enabled,
    recall_rows,
)

#: Options every member of a stack must share (they describe the process, not the run).
SHARED_OPTIONS = ("device", "bf16", "threads", "progress")

IGNORE = -100
#: Logits per block of the output layer (``rows x vocabulary``): 512 KiB of floats, so that a
#: block stays in the core's cache from its matrix product to the products back through ``W``.
CHUNK_FLOATS = 1 << 17


def shape_signature(model) -> tuple:
    """What must be equal for two models to be stacked: parameter names, shapes and types and
    the settings of the forward (residual form, rotary dimensions and base, norm epsilon)."""
    cfg = model.config
    att = model.gpt_neox.layers[0].attention
    rope = getattr(cfg, "rope_parameters", None) or {}
    return (
        tuple((n, tuple(p.shape), str(p.dtype)) for n, p in model.named_parameters()),
        bool(cfg.use_parallel_residual),
        att.head_size,
        att.rotary_ndims,
        float(att.scaling),
        float(rope.get("rope_theta", 0.0)),
        float(cfg.layer_norm_eps),
    )


def stack_key(run: dict) -> tuple:
    """A grouping key for sweep runs (dicts of :func:`~overshadow_lab.lab.sweep.plan_runs`):
    runs with one key share a model shape and a sequence length, so they stack without padding
    (only ``size`` is required to be equal; ``L`` and ``span_len``/``answer_len`` set the
    length)."""
    return (
        run["size"],
        run.get("init", "scratch"),
        run.get("L"),
        run.get("span_len"),
        run.get("answer_len"),
    )


def plan_stacks(
    runs: Sequence[dict], workers: int = 1, max_members: int | None = None
) -> list[list[dict]]:
    """Sweep runs split into stacks: runs of one :func:`stack_key` only, each key's runs
    spread evenly over up to ``workers`` stacks (one per worker process), in the given order,
    and no stack over ``max_members`` runs (a sweep can write a stack's runs only when the
    whole stack has finished, so smaller stacks lose less to an interruption).

    One stack per core trains every run of a sweep in ``workers`` single-threaded processes
    (the way ``run_sweep`` uses a CPU), each step advancing all the runs of its stack.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if max_members is not None and max_members < 1:
        raise ValueError(f"max_members must be >= 1 (or None), got {max_members}")
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(stack_key(run), []).append(run)
    stacks = []
    for group in groups.values():
        parts = min(workers, len(group))
        if max_members is not None:
            parts = max(parts, -(-len(group) // max_members))
        stacks.extend(group[i::parts] for i in range(parts))
    return stacks


def _problem(model) -> str | None:
    """Why ``model`` cannot be trained stacked (the end of a sentence), or None."""
    if getattr(getattr(model, "config", None), "model_type", None) != "gpt_neox":
        return (
            f"is a {type(model).__name__}; train_stacked stacks GPT-NeoX models only (use "
            f"train_model for other architectures)"
        )
    was = model.training
    ok = neox.supported(model.train())  # as it will train: dropout must be off
    model.train(was)
    if not ok:
        return (
            "cannot use the lean GPT-NeoX forward (rotary type, activation or dropout, see "
            "neox.supported); use train_model for it"
        )
    head = model.get_output_embeddings()
    if head.weight is model.gpt_neox.embed_in.weight or head.bias is not None:
        return (
            "ties its input and output embeddings or has an output bias; train_stacked needs "
            "an untied, bias-free output layer (as make_model builds)"
        )
    return None


def stackable(model) -> bool:
    """Whether :func:`train_stacked` accepts ``model`` (GPT-NeoX that the lean forward
    supports, untied bias-free output layer); ``train_model`` could hand such models to it."""
    return _problem(model) is None


def _check_models(models, datasets, configs) -> None:
    if not models:
        raise ValueError("train_stacked needs at least one model")
    if not (len(models) == len(datasets) == len(configs)):
        raise ValueError(
            f"train_stacked needs one dataset and one config per model: got {len(models)} "
            f"models, {len(datasets)} datasets, {len(configs)} configs"
        )
    if len({id(m) for m in models}) != len(models):
        raise ValueError("the same model object appears twice; pass one model per member")
    for k, m in enumerate(models):
        problem = _problem(m)
        if problem is not None:
            raise ValueError(f"member {k} {problem}")
    first = shape_signature(models[0])
    for k, m in enumerate(models[1:], start=1):
        if shape_signature(m) != first:
            raise ValueError(
                f"member {k} has another shape than member 0 (parameters or attention "
                f"settings); stack only models of one size (group runs by size, see stack_key)"
            )
    for name in SHARED_OPTIONS:
        values = {repr(getattr(c, name)) for c in configs}
        if len(values) > 1:
            raise ValueError(
                f"members disagree on {name} ({', '.join(sorted(values))}); it must be the same "
                f"for every member of a stack"
            )
    for k, c in enumerate(configs):
        _validate(c)
        if not c.fast:
            raise ValueError(
                f"member {k} asks for fast=False (the model's own forward); train_stacked always "
                f"uses the stacked lean forward, so use train_model for it"
            )
    dirs = [c.checkpoint_dir for c in configs if c.checkpoint_dir]
    if len(set(dirs)) != len(dirs):
        raise ValueError("two members share a checkpoint_dir; give each member its own folder")


def _member_configs(config, n: int, overrides: dict) -> list[TrainConfig]:
    if config is None or isinstance(config, TrainConfig):
        configs = [config if config is not None else TrainConfig()] * n
    else:
        configs = list(config)
        if not all(isinstance(c, TrainConfig) for c in configs):
            raise ValueError("config must be a TrainConfig or a sequence of TrainConfigs")
    return [override(c, overrides, "training option") for c in configs]


class StackedLinearCrossEntropy(torch.autograd.Function):
    """Per-member ``cross_entropy(h[k] @ W[k].T, target[k])`` (means over the kept targets).

    :class:`~overshadow_lab.lab.train.LinearCrossEntropy` with a leading member dimension:
    ``h`` is ``[K, M, d]``, ``weight`` ``[K, V, d]``, ``target`` ``[K, M]`` (``-100`` ignored);
    returns the ``K`` losses. ``groups``, when given, holds each member's
    :class:`~overshadow_lab.lab.prefixes.PrefixGroups`: rows of one group share their hidden
    state, and the output layer runs once per group (from its first row). The logits are the
    one large tensor of a small model's step (a vocabulary of thousands against a hidden size of
    tens), so they are made member by member and block of rows by block (:data:`CHUNK_FLOATS`),
    turned into probabilities by one fused softmax and multiplied back through ``W`` at once,
    while they are still in the CPU's cache; the targets' part of the gradient
    (``-onehot(t) @ W == -W[t]``) never touches the logits. The gradients are ready when the
    forward ends and kept for the backward, which only scales them. Stacking the logits of all
    members instead would make a tensor too large for the cache, and every pass over it would
    go to memory.
    """

    @staticmethod
    def forward(ctx, h, weight, target, groups=None):
        members, rows, vocab = h.shape[0], h.shape[1], weight.shape[1]
        keep = target != IGNORE
        safe = torch.where(keep, target, torch.zeros_like(target))
        n = keep.sum(dim=1).clamp(min=1)
        scale = keep.to(h.dtype) / n[:, None].to(h.dtype)  # d loss_k / d logit-row, per row
        grad_h = torch.empty_like(h)
        grad_w = torch.empty_like(weight)
        loss = torch.empty(members, dtype=h.dtype, device=h.device)
        block = max(16, CHUNK_FLOATS // vocab)
        for k in range(members):
            g = identity_groups(rows, h.device) if groups is None else groups[k]
            distinct = h[k].index_select(0, g.first)
            weight_of = torch.zeros(g.distinct, dtype=h.dtype, device=h.device)
            weight_of.index_add_(0, g.inverse, scale[k])
            weighted = distinct * weight_of[:, None]
            blocks = -(-g.distinct // block)
            size = -(-g.distinct // blocks)  # blocks of equal size
            # each row's target probability is read from its block: rows sorted by block
            order = torch.argsort(g.inverse, stable=True)
            local = g.inverse[order]
            ends = torch.searchsorted(local, torch.arange(1, blocks + 1, device=h.device) * size)
            where = (local % size) * vocab + safe[k, order]
            picked = torch.empty(rows, dtype=h.dtype, device=h.device)
            back = torch.empty_like(distinct)
            start = 0
            for b, end in enumerate(ends.tolist()):
                part = slice(b * size, (b + 1) * size)
                probs = torch.softmax(distinct[part] @ weight[k].t(), dim=1)
                torch.take(probs, where[start:end], out=picked[start:end])
                torch.mm(probs, weight[k], out=back[part])
                if b == 0:
                    torch.mm(probs.t(), weighted[part], out=grad_w[k])
                else:
                    grad_w[k].addmm_(probs.t(), weighted[part])
                start = end
            nll = picked.log().neg_()
            lost = picked == 0
            if bool(lost.any()):  # a target's probability underflowed: from the logits instead
                which = order[lost]
                logits = h[k, which] @ weight[k].t()
                nll[lost] = (
                    torch.logsumexp(logits, 1) - logits.gather(1, safe[k, which, None])[:, 0]
                )
            loss[k] = (nll * scale[k, order]).sum()
            grad_w[k].index_add_(0, safe[k], h[k] * scale[k, :, None], alpha=-1.0)
            torch.sub(
                back.index_select(0, g.inverse), weight[k].index_select(0, safe[k]), out=grad_h[k]
            )
        grad_h *= scale[..., None]
        ctx.save_for_backward(grad_h, grad_w)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        grad_h, grad_w = ctx.saved_tensors
        if not bool((grad_loss == 1).all()):  # the losses were weighted: scale each member
            grad_h = grad_h * grad_loss[:, None, None]
            grad_w = grad_w * grad_loss[:, None, None]
        return grad_h, grad_w, None, None


class _Stack:
    """The weights of the active members in one ``[K, N]`` buffer, one row per member.

    Within a row the matrices come first, then the biases and norms, so a member's weights
    are two contiguous pieces: its optimizer updates two tensors per step, not one per
    parameter, and a member's gradient norm is one reduction. ``weights[name]`` is the
    ``[K, *shape]`` view of one parameter across members (what the stacked forward multiplies
    with), and each member's own ``nn.Parameter`` is re-pointed at its piece of its row.
    Built again, smaller, when members leave.
    """

    def __init__(self, models: list, device):
        named = list(models[0].named_parameters())
        order = [n for n, p in named if p.ndim >= 2] + [n for n, p in named if p.ndim < 2]
        params = [dict(m.named_parameters()) for m in models]
        shapes = {n: params[0][n].shape for n in order}
        count = len(models)
        total = sum(int(np.prod(shapes[n])) for n in order)
        dtype = params[0][order[0]].dtype
        flat = torch.empty(count, total, device=device, dtype=dtype)
        self.grads = torch.zeros_like(flat)
        self.weights: dict[str, torch.Tensor] = {}
        self.split = sum(int(np.prod(shapes[n])) for n in order if len(shapes[n]) >= 2)
        start = 0
        with torch.no_grad():
            for name in order:
                shape, size = shapes[name], int(np.prod(shapes[name]))
                block = flat[:, start : start + size].view(count, *shape)
                block.copy_(torch.stack([p[name].detach() for p in params]))
                for k, p in enumerate(params):
                    p[name].data = flat[k, start : start + size].view(shape)
                    p[name].grad = None
                leaf = block.detach().requires_grad_()
                leaf.grad = self.grads[:, start : start + size].view(count, *shape)
                self.weights[name] = leaf
                start += size
        self.rows = []  # per member: (matrices, vectors), the tensors its optimizer updates
        for k in range(count):
            pair = []
            for piece in (slice(0, self.split), slice(self.split, total)):
                row = flat[k, piece].detach().requires_grad_()
                row.grad = self.grads[k, piece]
                pair.append(row)
            self.rows.append(tuple(pair))

    def clip(self, max_norms: torch.Tensor) -> None:
        """Each member's gradient scaled to norm at most ``max_norms[k]`` (inf: unclipped), as
        ``torch.nn.utils.clip_grad_norm_`` does for one model."""
        _clip_rows(self.grads, max_norms)


class _Recall:
    """Teacher-forced greedy recall of fixed prompts: :func:`overshadow_lab.metrics.answer_matches`
    computed from the lean forward, with the output layer applied at the answer positions only.

    A check asks, for each prompt, whether the arg-max next token at every answer position is
    the answer's token. ``answer_matches`` runs the model's own forward and the output layer
    over every position; for the lab's short prompts and large vocabulary, the output layer at
    the one or two answer positions is a small fraction of that, and recall is checked every
    ``eval_every`` steps, so this is a large part of a run's time saved. Equal to
    ``answer_matches`` (``tests/lab/test_stacked.py``).
    """

    def __init__(self, prompts, answers, device, rows: int = 1024):
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (p, a) in enumerate(zip(prompts, answers, strict=True)):
            groups.setdefault((len(p), len(a)), []).append(i)
        self.n = len(prompts)
        self.parts = []
        for (lp, la), idx in groups.items():
            for b in range(0, len(idx), rows):
                chunk = idx[b : b + rows]
                seqs = [list(prompts[i]) + list(answers[i]) for i in chunk]
                full = torch.tensor(seqs, dtype=torch.long, device=device)
                self.parts.append((lp, la, full))

    def __call__(self, model) -> float:
        head = model.get_output_embeddings()
        hits = 0
        with torch.no_grad():  # not inference mode: the rotary tables it caches serve training
            for lp, la, full in self.parts:
                hidden = neox.hidden_states(model, full[:, :-1])[:, lp - 1 : lp - 1 + la]
                pred = F.linear(hidden, head.weight, head.bias).argmax(-1)
                hits += int((pred == full[:, lp : lp + la]).all(dim=1).sum())
        return hits / self.n if self.n else float("nan")


class _Member:
    """One run of the stack: its data, schedule, stopping rule and history (as in train_model)."""

    def __init__(self, index: int, model, sets, cfg: TrainConfig, device):
        self.index, self.model, self.sets, self.cfg = index, model, sets, cfg
        self.data = _Batches(
            sets.train_sequences,
            int(cfg.batch_size),
            device,
            torch.Generator().manual_seed(int(cfg.seed)),
        )
        try:
            self.rule = StopRule(cfg, sets, self.data)
        except ValueError as err:  # say which member
            raise ValueError(f"member {index}: {err}") from None
        self.factor = self.rule.lr_factor()
        rows = recall_rows(cfg, len(sets.dominant.prompts))
        self.recall = _Recall(
            [sets.dominant.prompts[i] for i in rows],
            [sets.dominant.answers[i] for i in rows],
            device,
        )
        self.tokens = 0
        self.steps = 0
        self.seconds = 0.0

    def record(self, loss: float, tokens: int, elapsed: float) -> bool:
        """Book one step; returns whether the member's rule stops it now (the rule
        train_model applies: :class:`~overshadow_lab.lab.train.StopRule`)."""
        self.steps += 1
        self.tokens += tokens
        return self.rule.after_step(
            self.steps, loss, lambda: self.recall(self.model), lambda: elapsed
        )

    def result(self) -> TrainResult:
        cfg = self.cfg
        self.rule.finish()
        self.model.eval()
        if cfg.checkpoint_dir:
            self.model.save_pretrained(cfg.checkpoint_dir, safe_serialization=True)
        return TrainResult(
            model=self.model,
            steps=self.steps,
            seconds=self.seconds,
            tokens=self.tokens,
            converged=self.rule.converged,
            stop_reason=self.rule.reason,
            history=self.rule.table(),
            config=cfg,
            exposure=self.rule.exposure(),
        )


def _batch(batches: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``[K, B, T]`` and targets ``[K, B * T]`` of the members' batches, right-padded to
    the largest batch and the longest sequence (padded targets are ignored)."""
    shapes = {tuple(b.shape) for b in batches}
    if len(shapes) == 1:
        seqs = torch.stack(batches)
        return seqs[:, :, :-1], seqs[:, :, 1:].reshape(len(batches), -1)
    rows = max(b.shape[0] for b in batches)
    width = max(b.shape[1] for b in batches)
    ref = batches[0]
    seqs = torch.zeros(len(batches), rows, width, dtype=ref.dtype, device=ref.device)
    targets = torch.full_like(seqs, IGNORE)
    for k, b in enumerate(batches):
        seqs[k, : b.shape[0], : b.shape[1]] = b
        targets[k, : b.shape[0], : b.shape[1]] = b
    return seqs[:, :, :-1], targets[:, :, 1:].reshape(len(batches), -1)


def train_stacked(
    models: Sequence,
    datasets: Sequence,
    config: TrainConfig | Sequence[TrainConfig] | None = None,
    **overrides: Any,
) -> list[TrainResult]:
    """Train ``models[k]`` on ``datasets[k]`` for every ``k`` at once; one result per member.

    ``config`` is one :class:`~overshadow_lab.lab.train.TrainConfig` for all members or one per
    member (seeds, learning rates, weight decay, batch sizes, rules and budgets may all differ;
    ``device``, ``bf16``, ``threads`` and ``progress`` must agree); ``overrides`` apply to every
    member. Each member trains exactly as :func:`~overshadow_lab.lab.train.train_model` would
    train it alone (same batches, optimizer, schedule, clipping and stopping rule; equal up to
    float rounding) and its :class:`~overshadow_lab.lab.train.TrainResult` is the same, except
    that ``seconds`` is the wall time of the stack until the member stopped (time shared with
    its stack-mates). With more than one torch thread on a CPU (``threads``, default all
    cores), the members train in one lane per thread, a forked process each on Linux (see the
    module doc, "Both cores").
    Inputs that cannot be stacked (other architectures, different shapes, ``fast=False``) are
    refused before any work, with the reason. Models are trained in place.
    """
    models, datasets = list(models), list(datasets)
    configs = _member_configs(config, len(models), overrides)
    _check_models(models, datasets, configs)
    shared = configs[0]
    device = get_device(shared.device)
    torch.manual_seed(int(configs[0].seed))  # as train_model does (nothing here draws from it)
    old_threads = torch.get_num_threads()
    if shared.threads:
        torch.set_num_threads(int(shared.threads))
    try:
        for m in models:
            m.to(device)
        members = [
            _Member(k, m, s, c, device)
            for k, (m, s, c) in enumerate(zip(models, datasets, configs, strict=True))
        ]
        cores = torch.get_num_threads() if device.type == "cpu" else 1
        lanes = plan_lanes([m.rule.total for m in members], cores)
        bar = None
        if progress_enabled(shared.progress):
            from tqdm import tqdm

            bar = tqdm(
                total=sum(m.rule.total for m in members),
                desc=f"train ({len(members)} stacked)",
                unit="member-step",
                leave=False,
            )
        try:
            with warnings.catch_warnings():
                # the stacked weights are strided views of the members' rows; autograd adds
                # their gradients into the matching views of the gradient buffer, as intended
                # (filtered here, once: the filters are global, and lanes share them)
                warnings.filterwarnings("ignore", message=".*gradient layout contract")
                if len(lanes) == 1:
                    _train(members, shared, device, _Progress(bar))
                else:
                    _train_lanes(
                        [[members[k] for k in lane] for lane in lanes], shared, device, bar
                    )
        finally:
            if bar is not None:
                bar.close()
        return [m.result() for m in members]
    finally:
        torch.set_num_threads(old_threads)


def plan_lanes(steps: Sequence[int], cores: int) -> list[list[int]]:
    """Members (by index) split into at most ``cores`` lanes of about equal work, each lane a
    stack that one single-threaded thread trains (see the module doc, "Both cores").

    ``steps[k]`` is member ``k``'s step budget (members that stop early free their lane
    sooner, which no plan can know in advance). The longest runs are placed first, each in the
    lane with the least work so far; within a lane, members keep their order.
    """
    lanes: list[list[int]] = [[] for _ in range(max(1, min(int(cores), len(steps))))]
    work = [0] * len(lanes)
    for k in sorted(range(len(steps)), key=lambda k: -steps[k]):
        i = work.index(min(work))
        lanes[i].append(k)
        work[i] += steps[k]
    return [sorted(lane) for lane in lanes]


#: How lanes run on a CPU: ``"fork"``, one forked process per lane (Linux), or ``"threads"``,
#: one thread per lane in this process (elsewhere); see the module doc, "Both cores".
LANES = "fork" if sys.platform == "linux" else "threads"


class _Progress:
    """A progress bar that several lanes may advance (tqdm's counter is not meant for threads),
    and the flag that tells every lane to stop (another lane failed or was interrupted)."""

    def __init__(self, bar):
        self.bar = bar
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def update(self, n: int) -> None:
        if self.bar is not None:
            with self.lock:
                self.bar.update(n)


def _train_lanes(lanes: list[list[_Member]], shared: TrainConfig, device, bar) -> None:
    """Train each lane's members as one stack on one intra-op thread: in a forked process
    each when :data:`LANES` is ``"fork"`` (:func:`_train_lane_processes`), else in a thread each.

    torch releases the interpreter lock inside its operations, and the autograd engine runs a
    CPU graph's backward on the thread that asked for it, so the lanes compute at the same
    time; each lane's arithmetic is what a single-threaded process would do with that stack.
    If a lane fails (or the caller is interrupted), the others stop at their next step and the
    error is raised here.
    """
    if LANES == "fork":
        _train_lane_processes(lanes, shared, device, bar)
        return
    progress = _Progress(bar)
    old = torch.get_num_threads()  # each lane sets torch's count to 1; it is restored below

    def lane(members: list[_Member]) -> None:
        torch.set_num_threads(1)
        _train(members, shared, device, progress)

    try:
        with ThreadPoolExecutor(len(lanes), thread_name_prefix="stacked-lane") as pool:
            futures = [pool.submit(lane, members) for members in lanes]
            try:  # the first failure, in whichever lane, stops the others
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for future in (*done, *futures):
                    future.result()
            except BaseException:
                progress.stop.set()
                raise
    finally:
        torch.set_num_threads(old)


class _LaneError(Exception):
    """The traceback of an error raised in a lane's process (the ``__cause__`` of the error
    re-raised here), as ``concurrent.futures`` reports a worker's."""


class _LaneProgress:
    """A forked lane's side of the progress: its member-steps in a shared counter (the parent
    advances the bar) and the event that tells it to stop."""

    def __init__(self, counter, stop):
        self.counter, self.stop = counter, stop

    def update(self, n: int) -> None:
        self.counter.value += n  # this lane's own counter: one writer, the parent only reads


def _member_state(m: _Member) -> dict:
    """What the parent needs of a member trained in a lane's process to build its result:
    its final weights and the counts, history and stopping state of its run."""
    return {
        "weights": [p.detach().clone() for p in m.model.parameters()],
        "steps": m.steps,
        "tokens": m.tokens,
        "seconds": m.seconds,
        "counts": m.data.counts,
        "epoch": m.data.epoch,
        # everything the rule has recorded; its inputs (config, batcher, rows) stay here
        "rule": {k: v for k, v in vars(m.rule).items() if k not in ("cfg", "data", "sub_rows")},
    }


def _adopt(m: _Member, state: dict) -> None:
    """Give member ``m`` (in this process, untrained) the state its lane's process sent."""
    with torch.no_grad():
        for p, w in zip(m.model.parameters(), state["weights"], strict=True):
            p.copy_(w)
    m.steps, m.tokens, m.seconds = state["steps"], state["tokens"], state["seconds"]
    m.data.counts, m.data.epoch = state["counts"], state["epoch"]
    for k, v in state["rule"].items():
        setattr(m.rule, k, v)


def _lane_process(members, shared, device, conn, counter, stop) -> None:
    """A forked lane: train ``members`` as one stack on one thread and send back their states
    (or the error, with its traceback) through ``conn``."""
    try:
        torch.set_num_threads(1)
        _train(members, shared, device, _LaneProgress(counter, stop))
        message = (
            ("stopped", None) if stop.is_set() else ("done", [_member_state(m) for m in members])
        )
    except BaseException as err:  # noqa: BLE001 - every error goes back to the parent
        message = ("error", err, traceback.format_exc())
    try:
        data = pickle.dumps(message)
    except Exception:  # an error that cannot be pickled: its type and text
        text = f"{type(message[1]).__name__}: {message[1]}"
        data = pickle.dumps(("error", RuntimeError(text), message[2]))
    conn.send_bytes(data)
    conn.close()


def _train_lane_processes(lanes: list[list[_Member]], shared: TrainConfig, device, bar) -> None:
    """Train each lane's members as one stack in a forked process of its own, on one thread.

    Lanes in threads of one process contend for Python's interpreter lock between their
    operations (a small model's step is many operations); forked processes share nothing and
    start at once, with the models, data and imports they inherit, so nothing is pickled on the
    way in. Each sends back its members' weights and run states. The same arithmetic as a
    single-threaded stack (``tests/lab/test_stacked.py``). If a lane fails (or the caller is
    interrupted), the others are told to stop, and the error is raised here with the lane's
    traceback as its cause.
    """
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    procs, pending, counters = [], {}, []
    shown = 0
    try:
        for members in lanes:
            recv, send = ctx.Pipe(duplex=False)
            counter = ctx.RawValue("q", 0)
            proc = ctx.Process(
                target=_lane_process,
                args=(members, shared, device, send, counter, stop),
                name="stacked-lane",
                daemon=True,
            )
            with warnings.catch_warnings():
                # Python 3.12+ warns about fork() in a process with threads (a notebook's
                # kernel has some). The lane only runs torch's CPU operations, on one thread,
                # and sends through its own pipe: what DataLoader's forked workers also do
                warnings.filterwarnings("ignore", message=".*use of fork\\(\\) may lead")
                proc.start()
            send.close()
            procs.append(proc)
            pending[recv] = members
            counters.append(counter)
        while pending:
            ready = mp.connection.wait(list(pending), timeout=0.25)
            if bar is not None:
                now = sum(c.value for c in counters)
                bar.update(now - shown)
                shown = now
            for conn in ready:
                members = pending.pop(conn)
                try:
                    message = pickle.loads(conn.recv_bytes())
                except EOFError:
                    raise RuntimeError(
                        "a training lane's process ended without a result (killed, perhaps "
                        "for memory); train fewer members at once or pass threads=1"
                    ) from None
                finally:
                    conn.close()
                if message[0] == "error":
                    raise message[1] from _LaneError(message[2])
                if message[0] == "done":  # ("stopped" only after a stop this loop set)
                    for m, state in zip(members, message[1], strict=True):
                        _adopt(m, state)
    except BaseException:
        stop.set()
        raise
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()


def _train(members: list[_Member], shared: TrainConfig, device, progress: _Progress) -> None:
    """Train ``members`` as one stack until each has stopped (their results are then ready);
    returns early, leaving them part-trained, when ``progress.stop`` is set."""
    bf16 = (device.type == "cuda") if shared.bf16 is None else bool(shared.bf16)
    shape = members[0].model
    head = shape.get_output_embeddings().weight
    head_name = next(n for n, p in shape.named_parameters() if p is head)
    active = list(members)
    stack = _Stack([m.model for m in active], device)
    groups = [
        g for m, rows in zip(active, stack.rows, strict=True) for g in _adamw_groups(rows, m.cfg)
    ]
    base_lr = [m.cfg.lr for m in active]
    opt = torch.optim.AdamW(groups, fused=device.type in ("cpu", "cuda"))
    for m in active:
        m.model.train()
    step = 0
    t0 = time.perf_counter()
    while active and not progress.stop.is_set():
        batches = [m.data.next() for m in active]
        inputs, targets = _batch(batches)
        for k, m in enumerate(active):
            lr = base_lr[k] * m.factor(step)
            opt.param_groups[2 * k]["lr"] = lr
            opt.param_groups[2 * k + 1]["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            hidden = neox.stacked_hidden_states(shape, stack.weights, inputs)
        # the output layer and the loss in float32, as train_model's fused loss
        # positions that share their prefix share their hidden state: one output row for them
        groups = [prefix_groups(ids) for ids in inputs]
        losses = StackedLinearCrossEntropy.apply(
            hidden.float(), stack.weights[head_name], targets, groups
        )
        stack.grads.zero_()
        losses.sum().backward()  # (the caller filters the gradient-layout warning)
        clips = [m.cfg.grad_clip or float("inf") for m in active]
        stack.clip(torch.tensor(clips, device=device, dtype=stack.grads.dtype))
        opt.step()
        step += 1
        progress.update(len(active))
        values = losses.detach().tolist()
        elapsed = time.perf_counter() - t0
        done = []
        for k, m in enumerate(active):
            if m.record(values[k], batches[k].numel(), elapsed):
                done.append(k)
        if done:
            elapsed = time.perf_counter() - t0
            for k in done:
                active[k].seconds = elapsed
                for p in active[k].model.parameters():  # its own weights again, off the stack
                    p.data = p.data.clone()
                for row in stack.rows[k]:
                    opt.state.pop(row, None)
            keep = [k for k in range(len(active)) if k not in done]
            active = [active[k] for k in keep]
            base_lr = [base_lr[k] for k in keep]
            groups = [opt.param_groups[2 * k + j] for k in keep for j in (0, 1)]
            if active:  # pack the others into a smaller stack; their optimizer state moves along
                old = [stack.rows[k] for k in keep]
                stack = _Stack([m.model for m in active], device)
                for j, (before, after) in enumerate(zip(old, stack.rows, strict=True)):
                    for i in (0, 1):
                        opt.state[after[i]] = opt.state.pop(before[i])
                        groups[2 * j + i]["params"] = [after[i]]
            opt.param_groups = groups
