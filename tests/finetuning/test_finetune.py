"""Fine-tuning a task: freezing, gradient checkpointing, batch-size fitting, the task grid."""

from __future__ import annotations

import pytest
import torch

from overshadow_lab.finetuning.finetune import (
    FinetuneResult,
    enable_gradient_checkpointing,
    finetune_task,
    fit_batch_size,
    freeze_all_but_last,
    run_task_grid,
)
from overshadow_lab.lab.models import count_parameters, make_model
from overshadow_lab.loading import load_model


def test_freeze_all_but_last_trains_only_the_top_blocks_and_the_final_norm():
    model = make_model("tiny", vocab_size=300)
    total = count_parameters(model)
    n = freeze_all_but_last(model, 1)
    block = model.gpt_neox.layers[-1]
    expected = sum(p.numel() for p in block.parameters()) + sum(
        p.numel() for p in model.gpt_neox.final_layer_norm.parameters()
    )
    assert n == expected < total
    assert not any(p.requires_grad for p in model.gpt_neox.layers[0].parameters())
    assert freeze_all_but_last(model, None) == total
    with pytest.raises(ValueError, match="between 1 and the model's 2 blocks"):
        freeze_all_but_last(model, 9)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    x = torch.randint(0, 100, (2, 12))
    grads = []
    for ckpt in (False, True):
        model = make_model("tiny", vocab_size=100, seed=3).train()
        if ckpt:
            assert enable_gradient_checkpointing(model)
        model(input_ids=x, labels=x).loss.backward()
        grads.append(
            torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        )
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_fit_batch_size_on_cpu_is_the_capped_default():
    model = make_model("nano", vocab_size=50)
    assert fit_batch_size(model, 16, "cpu", start=512) == 16
    assert fit_batch_size(model, 16, "cpu", start=4) == 4


def test_finetune_task_trains_the_stand_in_and_reports_before_and_after():
    res = finetune_task(
        "tiny",
        task="negation",
        P=3,
        n_sets=2,
        train_blocks=None,
        n_boot=50,
        epochs=20,
        lr=3e-3,
        batch_size=4,
    )
    assert isinstance(res, FinetuneResult)
    assert res.trainable == res.parameters
    t = res.table()
    assert t.stage.tolist() == ["before", "after"]
    # a random byte-level model recalls nothing; training lowers its loss on the statements
    assert res.before["RR"] == 0.0
    assert res.loss_after < 0.7 * res.loss_before
    assert res.steps == int(res.history.step.iloc[-1]) > 0
    row = res.row()
    assert {"R_before", "R_after", "RR_after", "S", "loss_after"} <= set(row)


def test_finetune_task_needs_a_tokenizer_with_a_loaded_model():
    model, _ = load_model("tiny")
    with pytest.raises(ValueError, match="tokenizer"):
        finetune_task(model, task="math")


def test_task_grid_holds_L_fixed_across_P_and_reports_R():
    grid = run_task_grid(["logical"], [2, 8], n_sets=3, size="nano", max_steps=10, n_boot=20)
    assert grid.P.tolist() == [2, 8]
    # the logical family needs longer relations for P = 8 than for P = 2: both use the longer
    assert grid.span_len.nunique() == 1 and grid.L.nunique() == 1
    assert {"R", "RR", "HR", "R_lo", "R_hi", "steps"} <= set(grid.columns)
    assert (grid.steps == 10).all()
