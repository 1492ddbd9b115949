"""Training speed: the MFU formula, the peak table, packing and the benchmark on a CPU."""

from __future__ import annotations

import math

import pytest

from overshadow_lab.finetuning.speed import (
    BENCHMARK_VARIANTS,
    PEAK_BF16_FLOPS,
    benchmark_training,
    benchmark_variants,
    matmul_parameters,
    model_flops_utilization,
    pack_sequences,
    peak_flops,
)
from overshadow_lab.lab.models import count_parameters, make_model


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


def test_benchmark_variants_add_one_optimisation_at_a_time_and_reject_unknown_names():
    assert list(BENCHMARK_VARIANTS) == ["unpacked", "baseline", "fused", "compile"]
    assert BENCHMARK_VARIANTS["compile"] == {"packing": True, "fused": True, "compile": True}
    with pytest.raises(ValueError, match="warp-drive"):
        benchmark_variants(["fused", "warp-drive"])
    (result,) = benchmark_variants(
        ["unpacked"],
        size="nano",
        vocab_size=200,
        seq_len=32,
        batch_size=2,
        steps=1,
        warmup=0,
        device="cpu",
    )
    assert result["variant"] == "unpacked" and result["layout"] == "unpacked"
