"""Training dynamics: the race between dominant and subordinate knowledge, step by step.

A single number at the end of a run (R = HR / RR) hides *how* the run got there. Recorded on a
schedule of steps, the curves show the race the stopping rule cuts short: the dominant answer
``Y_a`` of a set is learnt from ``m = P n`` statements, the subordinate exception ``Y_b`` from
``n``; early in training the shared span predicts ``Y_a`` and the subordinate prompts inherit it
(HR rises), later the subordinate statements are learnt as exceptions (HR falls, accuracy
rises), unless the model lacks the capacity or the exposures to learn them.

:func:`train_with_dynamics` trains one model (any protocol of
:mod:`overshadow_lab.lab.protocols`) and returns the run's result with a **long-format table**,
one row per (step, metric), carrying the run's key columns (``config_hash``, P, L, size, seed,
protocol ... whatever the caller passes). The metrics (:data:`METRICS`):

* ``RR``, ``HR``, ``sub_acc``: as in :func:`overshadow_lab.metrics.evaluate` (greedy exact
  match, read by teacher forcing); RR on at most ``dominant_sample`` dominant prompts;
* ``p_Ya_sub`` / ``p_Yb_sub``: the model's probability of the whole answer ``Y_a`` / ``Y_b``
  after a subordinate prompt, averaged over the subordinate prompts;
* ``loss``: the mean training loss over the steps since the previous record.

:func:`step_schedule` spaces the records evenly on a log scale (early training moves fastest).
:func:`dynamics_run` does the same for one run of a sweep plan
(:func:`overshadow_lab.lab.sweep.plan_runs`), so a script can record a grid's curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.models import count_parameters, make_model
from overshadow_lab.lab.results import DATA_KEYS, TRAIN_KEYS
from overshadow_lab.lab.train import (
    TrainConfig,
    TrainResult,
    epoch_steps,
    pass_steps,
    train_model,
)
from overshadow_lab.metrics import _logits, _model_device

#: The metrics of a dynamics table, in the order they are recorded.
METRICS = ("RR", "HR", "sub_acc", "p_Ya_sub", "p_Yb_sub", "loss")
#: The columns of a dynamics table after the run's key columns.
DYNAMICS_COLUMNS = ("step", "epoch", "metric", "value")


def score_answers(
    model, prompts: list[list[int]], answers: list[list[int]], batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy exact match and log-probability of each answer after its prompt (teacher forced).

    Returns ``(matches, logprob)``: ``matches[i]`` is True when greedy decoding of prompt ``i``
    reproduces ``answers[i]`` (as :func:`overshadow_lab.metrics.answer_matches`), and
    ``logprob[i]`` is ``log p(answers[i] | prompts[i])`` summed over the answer's tokens.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers; give one each")
    device = _model_device(model)
    matches = np.zeros(len(prompts), dtype=bool)
    logprob = np.zeros(len(prompts), dtype=float)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (p, a) in enumerate(zip(prompts, answers, strict=True)):
        groups.setdefault((len(p), len(a)), []).append(i)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for (lp, la), idx in groups.items():
            for b in range(0, len(idx), batch_size):
                chunk = idx[b : b + batch_size]
                full = torch.tensor(
                    [list(prompts[i]) + list(answers[i]) for i in chunk],
                    dtype=torch.long,
                    device=device,
                )
                logits = _logits(model, full[:, :-1])[:, lp - 1 : lp - 1 + la, :].float()
                target = full[:, lp : lp + la]
                matches[chunk] = (logits.argmax(-1) == target).all(dim=1).cpu().numpy()
                lp_tok = torch.log_softmax(logits, -1).gather(-1, target[..., None])[..., 0]
                logprob[chunk] = lp_tok.sum(dim=1).cpu().numpy()
    model.train(was_training)
    return matches, logprob


def measure(model, sets, dominant_sample: int | None = 1024, seed: int = 0) -> dict[str, float]:
    """RR, HR, sub_acc, p_Ya_sub and p_Yb_sub of ``model`` on ``sets`` now (see the module).

    RR is read on a fixed random subset of at most ``dominant_sample`` dominant prompts (all of
    them when None), so that frequent records stay cheap on large corpora.
    """
    dom, sub = sets.dominant, sets.subordinate
    rows = np.arange(len(dom.prompts))
    if dominant_sample and len(rows) > dominant_sample:
        rows = np.sort(np.random.default_rng(seed).choice(rows, dominant_sample, replace=False))
    dom_ok, _ = score_answers(model, [dom.prompts[i] for i in rows], [dom.answers[i] for i in rows])
    hall, lp_a = score_answers(model, sub.prompts, sub.overshadow_answers)
    ok, lp_b = score_answers(model, sub.prompts, sub.answers)
    return {
        "RR": float(dom_ok.mean()),
        "HR": float(hall.mean()),
        "sub_acc": float(ok.mean()),
        "p_Ya_sub": float(np.exp(lp_a).mean()),
        "p_Yb_sub": float(np.exp(lp_b).mean()),
    }


def step_schedule(total: int, points: int = 16, kind: str = "log") -> list[int]:
    """Steps at which to record: 0, ``total`` and about ``points`` steps between.

    ``kind="log"`` spaces them evenly in log(step) (training changes fastest at first),
    ``kind="linear"`` evenly in step.
    """
    if int(total) < 1 or int(points) < 2:
        raise ValueError(f"need total >= 1 and points >= 2, got total={total}, points={points}")
    if kind == "log":
        inner = np.geomspace(1, total, int(points))
    elif kind == "linear":
        inner = np.linspace(1, total, int(points))
    else:
        raise ValueError(f"kind must be 'log' or 'linear', got {kind!r}")
    return sorted({0, int(total), *(int(round(x)) for x in inner)})


def planned_steps(sets, config: TrainConfig) -> int:
    """The most steps a run of ``config`` on ``sets`` can take (its schedule's end)."""
    n, b = len(sets.train_sequences), int(config.batch_size)
    if config.rule == "epochs":
        return epoch_steps(n, b, int(config.epochs))
    if config.rule == "exposure":  # a ceiling: the run stops once the budget is met
        return pass_steps(sets.train_sequences, b, int(config.exposures))
    return int(config.max_steps)


class DynamicsMonitor:
    """A ``monitor`` for :func:`~overshadow_lab.lab.train.train_model` recording :data:`METRICS`.

    Called at every step, it measures the model only at the steps of ``steps``; ``rows`` gathers
    wide records (one per measured step), :meth:`table` returns the long-format table.
    """

    def __init__(self, sets, steps: Sequence[int], steps_per_epoch: float, **measure_kw: Any):
        self.sets = sets
        self.steps = set(int(s) for s in steps)
        self.steps_per_epoch = float(steps_per_epoch)
        self.measure_kw = measure_kw
        self.rows: list[dict] = []
        self._losses: list[float] = []

    def __call__(self, step: int, model, loss: float | None) -> None:
        if loss is not None:
            self._losses.append(loss)
        if step not in self.steps:
            return
        row = {"step": step, "epoch": step / self.steps_per_epoch}
        row.update(measure(model, self.sets, **self.measure_kw))
        row["loss"] = float(np.mean(self._losses)) if self._losses else float("nan")
        self._losses = []
        self.rows.append(row)

    def table(self, key: dict | None = None) -> pd.DataFrame:
        """Long format: the ``key`` columns, then step, epoch, metric, value."""
        wide = pd.DataFrame(self.rows, columns=["step", "epoch", *METRICS])
        long = wide.melt(id_vars=["step", "epoch"], var_name="metric", value_name="value")
        long = long.dropna(subset=["value"]).sort_values(["step", "metric"], ignore_index=True)
        key = dict(key or {})
        clash = sorted(set(key) & {"step", "epoch", "metric", "value"})
        if clash:
            raise ValueError(f"key column(s) {clash} would overwrite the table's own; rename them")
        for k, v in key.items():
            long[k] = v
        return long[[*key, *DYNAMICS_COLUMNS]]


def train_with_dynamics(
    model,
    sets,
    config: TrainConfig | None = None,
    points: int = 16,
    key: dict | None = None,
    steps: Sequence[int] | None = None,
    **overrides: Any,
) -> tuple[TrainResult, pd.DataFrame]:
    """Train ``model`` (as :func:`~overshadow_lab.lab.train.train_model`) recording its dynamics.

    ``steps`` (default: :func:`step_schedule` of the run's :func:`planned_steps` with
    ``points``) are the steps measured; the run's own last step is always measured too.
    Returns ``(result, table)``, the table in long format with the columns of ``key`` first.
    """
    cfg = config if config is not None else TrainConfig()
    if overrides:
        cfg = TrainConfig(**{**cfg.__dict__, **overrides})
    total = planned_steps(sets, cfg)
    schedule = list(steps) if steps is not None else step_schedule(total, points)
    per_epoch = max(1, math.ceil(len(sets.train_sequences) / int(cfg.batch_size)))
    monitor = DynamicsMonitor(sets, schedule, per_epoch, seed=int(cfg.seed))
    result = train_model(model, sets, cfg, monitor=monitor)
    if not monitor.rows or monitor.rows[-1]["step"] != result.steps:  # stopped early: record end
        monitor.steps.add(result.steps)
        monitor(result.steps, result.model, None)
    return result, monitor.table(key)


def dynamics_run(run: dict, points: int = 16, threads: int | None = None) -> pd.DataFrame:
    """The dynamics table of one run of a sweep plan (a dict from ``plan_runs``).

    The key columns are the run's ``config_hash``, its ``factor`` and ``factor_value``, P, L,
    size, seed, the rule and the parameter count S.
    """
    sets = make_knowledge_sets(**{k: run[k] for k in DATA_KEYS}, seed=run["seed"])
    model = make_model(run["size"], sets.vocab_size, init=run["init"], seed=run["seed"])
    extra = {k: run[k] for k in ("exposures",) if k in run}
    cfg = TrainConfig(
        **{k: run[k] for k in TRAIN_KEYS},
        **extra,
        seed=run["seed"],
        progress=False,
        threads=threads,
    )
    key = {k: run[k] for k in ("config_hash", "factor", "P", "L", "size", "seed", "rule")}
    key["factor_value"] = run["value"]
    key["S"] = count_parameters(model)
    _, table = train_with_dynamics(model, sets, cfg, points=points, key=key)
    return table


__all__ = [
    "DYNAMICS_COLUMNS",
    "METRICS",
    "DynamicsMonitor",
    "dynamics_run",
    "measure",
    "planned_steps",
    "score_answers",
    "step_schedule",
    "train_with_dynamics",
]
