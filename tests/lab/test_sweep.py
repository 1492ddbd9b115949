"""Tests of overshadow_lab.lab.sweep: planning, hashing, sharding, atomic appends and resuming."""

import pandas as pd
import pytest

from overshadow_lab.lab.models import size_parameters
from overshadow_lab.lab.sweep import (
    append_row,
    config_hash,
    default_grid,
    parse_shard,
    plan_runs,
    read_results,
    run_sweep,
    summarize,
    tier_defaults,
)

FAST = dict(size="nano", n_sets=6, vocab=100, rule="epochs", epochs=2, batch_size=32, eval_every=5)


def test_plan_and_hash():
    runs = plan_runs("P", [2, 5], seeds=2, tier="cpu", L=3)
    assert [(r["P"], r["seed"]) for r in runs] == [(2, 0), (2, 1), (5, 0), (5, 1)]
    assert all(r["L"] == 3 for r in runs)
    assert len({r["config_hash"] for r in runs}) == 4
    again = plan_runs("P", [2, 5], seeds=[0, 1], tier="cpu", L=3)
    assert [r["config_hash"] for r in again] == [r["config_hash"] for r in runs]
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert plan_runs("P", [2], 1, tier="cpu", lr=1e-3)[0]["config_hash"] != runs[0]["config_hash"]


def test_tiers_and_grids():
    assert tier_defaults("cpu")["size"] == "tiny"
    assert default_grid("P", "cpu") == [2, 5, 10, 25, 100]
    assert default_grid("P", "gpu") == [2, 5, 10, 25, 50, 100]
    sizes = [size_parameters(s) for s in default_grid("S", "cpu")]
    assert sizes == sorted(sizes) and sizes[-1] / sizes[0] >= 100
    gpu = [size_parameters(s) for s in default_grid("S", "gpu")]
    assert gpu[-1] / gpu[0] > 100


def test_shards_partition_the_runs():
    runs = plan_runs("L", [2, 3, 4], seeds=3, tier="cpu")
    parts = [[r for k, r in enumerate(runs) if k % 4 == i] for i in range(4)]
    assert sum(len(p) for p in parts) == len(runs)
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) is None


def test_append_row_is_idempotent_and_unions_columns(tmp_path):
    out = tmp_path / "r.csv"
    append_row(out, {"config_hash": "a", "R": 1.0})
    append_row(out, {"config_hash": "a", "R": 1.0})
    append_row(out, {"config_hash": "b", "R": 2.0, "extra": 3})
    df = read_results(out)
    assert df["config_hash"].tolist() == ["a", "b"] and df["extra"].isna().tolist() == [True, False]
    assert not list(tmp_path.glob(".*.tmp"))


def test_sweep_writes_resumes_and_shards(tmp_path):
    out = tmp_path / "res.csv"
    full = run_sweep("P", [2, 3], seeds=2, tier="cpu", out=out, progress=False, workers=1, **FAST)
    assert len(full) == 4 and full["config_hash"].is_unique
    for col in (
        "factor",
        "P",
        "L",
        "S",
        "seed",
        "RR",
        "HR",
        "R",
        "sub_acc",
        "steps",
        "seconds",
        "package",
        "torch",
        "device",
        "commit",
    ):
        assert col in full.columns
    assert (full["S"] == size_parameters("nano", 100)).all()
    stamp = out.stat().st_mtime_ns
    again = run_sweep("P", [2, 3], seeds=2, tier="cpu", out=out, progress=False, **FAST)
    assert out.stat().st_mtime_ns == stamp  # nothing re-run, nothing rewritten
    pd.testing.assert_frame_equal(full, again)
    # a shard of a fresh file runs only its part; the other shard completes it
    out2 = tmp_path / "sharded.csv"
    a = run_sweep(
        "P", [2, 3], seeds=2, tier="cpu", out=out2, progress=False, workers=1, shard="0/2", **FAST
    )
    assert len(a) == 2
    b = run_sweep(
        "P", [2, 3], seeds=2, tier="cpu", out=out2, progress=False, workers=1, shard="1/2", **FAST
    )
    merged = read_results(out2).sort_values("config_hash", ignore_index=True)
    ref = full.sort_values("config_hash", ignore_index=True)
    assert len(b) == 2 and merged["config_hash"].tolist() == ref["config_hash"].tolist()
    assert merged["R"].tolist() == ref["R"].tolist()
    s = summarize(full)
    assert s["P"].tolist() == [2, 3] and (s["count"] == 2).all() and (s["lo"] <= s["R"]).all()


def test_size_factor_reports_parameter_counts(tmp_path):
    t = run_sweep(
        "S",
        ["nano", "tiny"],
        seeds=1,
        tier="cpu",
        progress=False,
        workers=1,
        **{k: v for k, v in FAST.items() if k != "size"},
    )
    assert t["S"].tolist() == [size_parameters("nano", 100), size_parameters("tiny", 100)]


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"factor": "Q"}, r"factor must be one of P, L, S"),
        ({"factor": "P", "seeds": 0}, r"seeds must be >= 1"),
        ({"factor": "P", "values": []}, r"values is empty"),
        ({"factor": "P", "colour": 1}, r"unknown sweep setting.*fixed settings are"),
        ({"factor": "P", "values": [0.5]}, r"must be >= 1"),
        ({"factor": "S", "values": ["huge"]}, r"unknown model size 'huge'"),
        ({"factor": "P", "shard": "2/2"}, r"shard 2/2 is out of range"),
        ({"factor": "P", "shard": "half"}, r"shard must look like i/N"),
    ],
)
def test_bad_inputs(kwargs, pattern, tmp_path):
    with pytest.raises(ValueError, match=pattern):
        run_sweep(tier="cpu", progress=False, out=tmp_path / "x.csv", **kwargs)
