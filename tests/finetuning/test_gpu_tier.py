"""The GPU tier: the size comparison at the paper's scale (its plan, budget and a CPU-sized run),
the full plan's shards, their run and merge, and recorded results."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

from overshadow_lab.finetuning.gpu_tier import (
    TINY_SCALE,
    PaperScale,
    gpu_tier_plan,
    log10_span,
    merge_parts,
    paper_scale_problems,
    paper_scale_runs,
    paper_scale_summary,
    run_paper_scale,
    run_plan,
    shard_of,
)
from overshadow_lab.records import (
    load_or_compute,
    load_recorded,
    provenance,
    save_recorded,
)


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


def test_paper_scale_plan_runs_pythia_shapes_seed_by_seed_at_equal_exposure():
    scale = PaperScale()
    assert scale.sizes == ("pythia-70m", "pythia-160m", "pythia-410m")
    assert 40 in scale.epochs and scale.vocab == 50304 and scale.n_sets == 100
    runs = paper_scale_runs(scale)
    protocols = scale.protocols()
    assert len(runs) == scale.seeds * len(protocols) * len(scale.sizes)
    # every size and protocol of seed 0 come before any run of seed 1
    first_seed1 = next(k for k, r in enumerate(runs) if r["seed"] == 1)
    assert {(r["protocol"], r["size"]) for r in runs[:first_seed1]} == {
        (p, s) for p in protocols for s in scale.sizes
    }
    # the recall rule is capped at the largest budget: 40 epochs of 600 statements in 64s
    assert protocols["recall"]["max_steps"] == 40 * 10
    assert protocols["exposure-40"] == {"rule": "exposure", "exposures": 40}  # the adopted one
    with pytest.raises(ValueError, match="seeds"):
        paper_scale_runs(replace(scale, seeds=0))


def test_paper_scale_runs_tiny_gives_each_size_the_same_exposure_and_resumes(tmp_path):
    out = tmp_path / "runs.csv"
    table = run_paper_scale(TINY_SCALE, out, budget_s=600, device="cpu", tier="cpu")
    assert len(table) == len(paper_scale_runs(TINY_SCALE))
    assert {"protocol", "exposure", "tokens_per_s", "mfu"} <= set(table.columns)
    fixed = table[table.protocol == "exposure-2"]
    assert sorted(fixed["size"]) == ["nano", "pico"] and set(fixed.exposure) == {2.0}
    assert table.mfu.isna().all()  # a CPU has no peak to compare with
    assert paper_scale_problems(table) == []
    broken = table.copy()
    broken.loc[broken.protocol == "exposure-2", "exposure"] = 1.5
    broken.loc[0, "HR"] = 1.5
    assert paper_scale_problems(broken) == [
        "HR outside [0, 1] in 1 row(s)",
        "exposure-2: 2 run(s) did not show each statement 2 times",
    ]
    assert paper_scale_problems(table.drop(columns="mfu")) == ["missing column(s): mfu"]
    mtime = out.stat().st_mtime_ns
    again = run_paper_scale(TINY_SCALE, out, budget_s=600, device="cpu", tier="cpu")
    assert out.stat().st_mtime_ns == mtime and len(again) == len(table)


def test_paper_scale_budget_starts_no_run_that_would_not_fit(tmp_path):
    ticks = iter(range(0, 10_000, 10))  # every look at the clock: 10 more seconds

    table = run_paper_scale(
        TINY_SCALE,
        tmp_path / "runs.csv",
        budget_s=35,
        device="cpu",
        tier="cpu",
        clock=lambda: float(next(ticks)),
    )
    assert 0 < len(table) < len(paper_scale_runs(TINY_SCALE))
    assert table.attrs["skipped"] == len(paper_scale_runs(TINY_SCALE)) - len(table)


def test_paper_scale_summary_means_over_seeds_and_gives_r_only_where_recall_is_learned():
    runs = pd.DataFrame(
        {
            "protocol": ["exposure-2"] * 3 + ["recall"] * 2,
            "size": ["a", "a", "b", "a", "a"],
            "S": [10, 10, 20, 10, 10],
            "exposure": [2.0, 2.0, 2.0, 1.0, 2.0],
            "RR": [1.0, 0.8, 0.2, 1.0, 1.0],
            "HR": [0.5, 0.4, 0.1, 0.6, 0.2],
            "R": [50.0, 50.0, 50.0, 60.0, 20.0],
            "sub_acc": [0.5, 0.6, 0.0, 0.4, 0.8],
            "mfu": [float("nan")] * 5,
        }
    )
    out = paper_scale_summary(runs)
    assert list(out.index) == [("exposure-2", "a"), ("exposure-2", "b"), ("recall", "a")]
    assert out.loc[("exposure-2", "a"), ["seeds", "R_runs", "R"]].tolist() == [2, 2, 50.0]
    assert out.loc[("exposure-2", "b"), "R_runs"] == 0  # RR 0.2: no R
    assert pd.isna(out.loc[("exposure-2", "b"), "R"])
    assert out.loc[("exposure-2", "b"), "HR"] == pytest.approx(0.1)  # other means still there
    assert out.loc[("recall", "a"), ["R", "R_min", "R_max", "exposure"]].tolist() == [
        40.0,
        20.0,
        60.0,
        1.5,
    ]
    with pytest.raises(ValueError, match="min_rr"):
        paper_scale_summary(runs, min_rr=50)


#: Recorded GPU-tier tables and the longest wall time each may have taken (the main command is
#: the one of the chapter, held to 8 minutes; the low-exposure one was given 240 s of budget).
GPU_RECORDINGS = {"finetune_gpu_tier": 8 * 60, "finetune_gpu_tier_exposures": 5 * 60}


@pytest.mark.parametrize("name", list(GPU_RECORDINGS))
def test_recorded_gpu_tier_table_is_sound_and_has_provenance(name):
    """A committed GPU run (overshadow_lab/recorded/<name>.*) must pass the same checks as a
    fresh table and say where it came from: the GPU, the versions, the commit and code hash."""
    recorded = load_recorded(name)
    assert recorded is not None, f"overshadow_lab/recorded/{name}.csv is missing"
    table, prov = recorded
    assert paper_scale_problems(table) == []
    assert prov["gpus"] and prov["plan"] == "paper-scale" and prov["error"] is None
    assert prov["wall_seconds"] <= GPU_RECORDINGS[name]
    assert prov["finished_runs"] == len(table) and set(table["code_hash"]) == {prov["code_hash"]}
    assert set(table["commit"]) == {prov["commit"]} and not prov["dirty"]
    for key in ("torch", "transformers", "commit", "code_hash", "benchmark", "settings"):
        assert prov.get(key) is not None, key
    # the sizes and corpus it says it ran, at Pythia's vocabulary
    settings = prov["settings"]
    assert set(table["size"]) == set(settings["sizes"])
    assert (table["n_sets"] == settings["n_sets"]).all() and (table["vocab"] == 50304).all()
