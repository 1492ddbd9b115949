"""Fine-tuning helpers, recorded results, the GPU-tier plan and its CPU-sized run."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from overshadow_lab.finetuning.finetune import (
    PEAK_BF16_FLOPS,
    FinetuneResult,
    benchmark_training,
    enable_gradient_checkpointing,
    finetune_task,
    fit_batch_size,
    freeze_all_but_last,
    gpu_tier_plan,
    load_model,
    load_or_compute,
    load_recorded,
    log10_span,
    matmul_parameters,
    merge_parts,
    model_flops_utilization,
    pack_sequences,
    peak_flops,
    provenance,
    run_plan,
    save_recorded,
    shard_of,
)
from overshadow_lab.lab.models import count_parameters, make_model


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


def test_mfu_formula_and_peak_table():
    # 6 * N * tokens/s / peak: 100M parameters at 100k tokens/s on a 989 TFLOP/s card
    assert model_flops_utilization(100e6, 1e5, 989e12) == pytest.approx(6e13 / 989e12)
    assert math.isnan(model_flops_utilization(100e6, 1e5, None))
    assert PEAK_BF16_FLOPS["T4"] == 65e12 and PEAK_BF16_FLOPS["A100"] == 312e12
    assert peak_flops("cpu") is None
    assert peak_flops("cpu", override=1e12) == 1e12
    with pytest.raises(ValueError, match=">= 0"):
        model_flops_utilization(-1, 1.0, 1e12)


def test_matmul_parameters_leave_out_the_input_embedding_only():
    model = make_model("tiny", vocab_size=500)
    emb = model.get_input_embeddings().weight.numel()
    assert matmul_parameters(model) == count_parameters(model) - emb


def test_pack_sequences_keeps_every_token_in_order():
    seqs = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
    rows = pack_sequences(seqs, 4, sep=0)
    assert rows.tolist() == [[5, 6, 7, 0], [8, 9, 0, 10], [11, 12, 13, 0]]
    with pytest.raises(ValueError, match="shorter length"):
        pack_sequences([[1, 2]], 10)


@pytest.mark.parametrize("packing", [True, False])
def test_benchmark_training_reports_tokens_per_second_and_no_mfu_on_cpu(packing):
    r = benchmark_training(
        size="nano",
        vocab_size=200,
        seq_len=32,
        batch_size=2,
        steps=2,
        warmup=1,
        device="cpu",
        packing=packing,
        statement_len=6,
    )
    assert r["tokens_per_s"] > 0 and math.isnan(r["mfu"])
    assert r["seq_len"] == (32 if packing else 6)
    # same tokens per batch either way: 2 rows of 32 or 10 statements of 6 (rounded down)
    assert r["batch_size"] * r["seq_len"] <= 64


def test_finetune_task_trains_the_stand_in_and_reports_before_and_after():
    res = finetune_task(
        "tiny-random",
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
    model, _ = load_model("tiny-random")
    with pytest.raises(ValueError, match="tokenizer"):
        finetune_task(model, task="math")


def test_recorded_results_round_trip_and_missing_is_none(tmp_path):
    assert load_recorded("gpu_tier", tmp_path) is None
    table = pd.DataFrame({"kind": ["size"], "S": [1e6], "R": [12.5]})
    prov = provenance(wall_seconds=1.5)
    assert {"torch", "commit", "gpus", "wall_seconds", "transformers"} <= set(prov)
    save_recorded(table, prov, "gpu_tier", tmp_path)
    got, meta = load_recorded("gpu_tier", tmp_path)
    pd.testing.assert_frame_equal(got, table)
    assert meta["wall_seconds"] == 1.5
    assert json.loads((tmp_path / "gpu_tier.json").read_text())["torch"] == torch.__version__


def test_load_or_compute_computes_once(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"a": [1, 2]})

    path = tmp_path / "r.csv"
    assert load_or_compute(path, compute).a.tolist() == [1, 2]
    assert load_or_compute(path, compute).a.tolist() == [1, 2]
    assert len(calls) == 1


def test_shards_partition_the_plan():
    items = list(range(11))
    parts = [shard_of(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items
    with pytest.raises(ValueError, match="rank"):
        shard_of(items, 3, 3)


def test_gpu_plan_covers_sizes_and_tasks():
    plan = gpu_tier_plan("gpu", seeds=2, pretrained=["EleutherAI/pythia-70m"])
    kinds = pd.Series([p["kind"] for p in plan]).value_counts()
    assert kinds["size"] == 1 and kinds["pretrained"] == 1
    assert kinds["finetune"] == 5 * 4 * 2  # five families, four P, two seeds
    with pytest.raises(ValueError, match="scale"):
        gpu_tier_plan("huge")


def test_tiny_plan_runs_on_two_ranks_and_merges(tmp_path):
    plan = gpu_tier_plan("tiny")
    for rank in (0, 1):
        run_plan(plan, tmp_path, rank=rank, world=2, device="cpu", tier="cpu")
    tables = merge_parts(tmp_path)
    assert set(tables) == {"size", "finetune"}
    assert sorted(tables["size"]["size"]) == ["nano", "tiny"]
    assert sorted(tables["finetune"]["P"]) == [2, 4]
    # resuming redoes nothing
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("finetune-rank*.csv")}
    run_plan(plan, tmp_path, rank=0, world=2, device="cpu", tier="cpu")
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("finetune-rank*.csv")}
    assert before == after


def test_log10_span():
    assert log10_span([1e5, 1e7]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        log10_span([0, 1])


def test_task_grid_holds_L_fixed_across_P_and_reports_R():
    from overshadow_lab.finetuning.finetune import run_task_grid

    grid = run_task_grid(["logical"], [2, 8], n_sets=3, size="nano", max_steps=10, n_boot=20)
    assert grid.P.tolist() == [2, 8]
    # the logical family needs longer relations for P = 8 than for P = 2: both use the longer
    assert grid.span_len.nunique() == 1 and grid.L.nunique() == 1
    assert {"R", "RR", "HR", "R_lo", "R_hi", "steps"} <= set(grid.columns)
    assert (grid.steps == 10).all()
