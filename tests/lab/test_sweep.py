"""Tests of overshadow_lab.lab.sweep: tiers, planning, hashing, sharding, appends and resuming."""

import inspect
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from overshadow_lab.lab.data import SyntheticConfig
from overshadow_lab.lab.models import make_model, size_parameters
from overshadow_lab.lab.sweep import (
    DATA_KEYS,
    MODEL_KEYS,
    TIER_OVERRIDES,
    TRAIN_KEYS,
    append_row,
    config_hash,
    default_grid,
    library_defaults,
    parse_shard,
    plan_runs,
    read_results,
    run_sweep,
    summarize,
    tier_defaults,
)
from overshadow_lab.lab.train import TrainConfig

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


def _library_default(key):
    if key in TRAIN_KEYS:
        return getattr(TrainConfig(), key)
    if key in DATA_KEYS:
        return getattr(SyntheticConfig(), key)
    return inspect.signature(make_model).parameters[key].default


def test_tiers_are_the_library_defaults_plus_documented_overrides():
    assert set(TRAIN_KEYS) <= set(TrainConfig.__dataclass_fields__)
    assert set(DATA_KEYS) == set(SyntheticConfig.__dataclass_fields__) - {"seed"}
    assert library_defaults() == {
        k: _library_default(k) for k in (*DATA_KEYS, *MODEL_KEYS, *TRAIN_KEYS)
    }
    for tier in ("cpu", "gpu"):
        settings = tier_defaults(tier)
        assert list(settings) == [*DATA_KEYS, *MODEL_KEYS, *TRAIN_KEYS]
        for key, value in settings.items():
            default = _library_default(key)
            if key in TIER_OVERRIDES[tier]:  # an override says something the default does not
                assert value == TIER_OVERRIDES[tier][key] and value != default, key
            else:  # everything else is the library's default, type included
                assert value == default and type(value) is type(default), key


def test_the_values_sweeps_use_are_unchanged():
    """Every chapter's sweep results are keyed on these values (through config_hash)."""
    common = dict(P=5, L=5, n=1, span_len=1, answer_len=1, position="end", vocab=2000)
    common |= dict(init="scratch", rule="converge", min_steps=0, rr_threshold=0.95)
    common |= dict(patience=8, weight_decay=1e-2, batch_size=64, warmup=0.05)
    assert tier_defaults("cpu") == common | dict(
        n_sets=50, size="tiny", epochs=10, max_steps=1500, eval_every=25, lr=3e-3
    )
    assert tier_defaults("gpu") == common | dict(
        n_sets=100, size="pythia-70m", epochs=40, max_steps=4000, eval_every=50, lr=1e-3
    )
    # the hashes of the runs the chapters made before the defaults were derived
    assert plan_runs("P", [2], 1, tier="cpu")[0]["config_hash"] == "3c6509c31d0c3b1b"
    assert plan_runs("L", [2], 1, tier="gpu")[0]["config_hash"] == "308f4d05c711baff"
    # numpy scalars hash like the Python numbers they are
    assert plan_runs("P", [2], 1, tier="cpu", n_sets=np.int64(50))[0]["config_hash"] == (
        "3c6509c31d0c3b1b"
    )


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


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda d: d, r"is a folder: give a file in it"),
        (
            lambda d: (d / "file").write_text("x") and d / "file" / "r.csv",
            r"is a file, not a folder",
        ),
        (lambda d: (d / "t.csv").write_text("a,b\n1,2\n") and d / "t.csv", r"not a results table"),
    ],
)
def test_a_bad_out_is_refused_before_any_training_leaving_nothing(make, pattern, tmp_path):
    out = make(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=pattern):
        run_sweep("P", [2], seeds=1, tier="cpu", out=out, progress=False, workers=1, **FAST)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_an_unwritable_folder_is_refused_before_any_training(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root may write anywhere: the kernel's answer for another user
        from overshadow_lab.lab import results

        real = os.access
        monkeypatch.setattr(
            results.os, "access", lambda p, mode: False if Path(p) == folder else real(p, mode)
        )
    with pytest.raises(ValueError, match=r"cannot write in"):
        run_sweep("P", [2], seeds=1, tier="cpu", out=folder / "r.csv", progress=False, **FAST)
    assert not list(folder.iterdir())
