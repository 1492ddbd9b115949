"""The GPU-tier script and the throughput benchmark, run on the CPU with tiny configs."""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
#: what the GPU node of the paper-scale tier has installed (issue 13): these and their needs
GPU_NODE_PACKAGES = ("torch", "transformers", "accelerate", "pandas", "scipy")


def _gpu_node_site(folder: Path, packages=GPU_NODE_PACKAGES) -> Path:
    """A site folder holding only ``packages`` and what they require (extras left out), as
    links into this interpreter's site-packages: with ``python -S`` and this folder on the
    path, nothing else is importable, as on the GPU node."""
    site = folder / "site"
    site.mkdir()
    todo, seen = list(packages), set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
        for top in {Path(f).parts[0] for f in dist.files or []}:
            source = Path(dist.locate_file(top))
            if top != ".." and not top.endswith(".pth") and source.exists():
                if not (site / top).exists():
                    (site / top).symlink_to(source)
    return site


def test_gpu_tier_script_runs_tiny_on_cpu_and_writes_results_with_provenance(tmp_path):
    out = tmp_path / "tier"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gpu_tier.py"),
            "--plan",
            "full",
            "--scale",
            "tiny",
            "--out",
            str(out),
            "--benchmark",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={
            "PATH": "/usr/bin:/bin",
            "TQDM_DISABLE": "1",
            "OVERSHADOW_DEVICE": "cpu",
            "HOME": str(Path.home()),
            "HF_HUB_OFFLINE": "1",
        },
    )
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(out / "gpu_tier.csv")
    assert set(table.kind) == {"size", "finetune"}
    assert {"R", "S"} <= set(table.columns) and {"R_before", "R_after"} <= set(table.columns)
    prov = json.loads((out / "gpu_tier.json").read_text())
    assert prov["scale"] == "tiny" and prov["wall_seconds"] > 0
    assert prov["benchmark"][0]["tokens_per_s"] > 0
    for key in ("torch", "transformers", "commit", "gpus", "cpu"):
        assert key in prov


def test_paper_scale_tier_runs_tiny_with_only_the_gpu_nodes_packages(tmp_path):
    """The one-command GPU tier at a CPU size, in an interpreter that can import only torch,
    transformers, accelerate, pandas, scipy, what they need, the standard library and this
    package: it must finish and write its table with provenance and the benchmark."""
    site = _gpu_node_site(tmp_path)
    out = tmp_path / "tier"
    done = subprocess.run(
        [sys.executable, "-S", str(ROOT / "scripts" / "gpu_tier.py"), "--scale", "tiny"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": f"{site}:{ROOT}",
            "TQDM_DISABLE": "1",
            "OVERSHADOW_DEVICE": "cpu",
            "HOME": str(tmp_path),
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(out / "finetune_gpu_tier.csv")
    assert set(table.protocol) == {"exposure-2", "recall"}
    assert set(table["size"]) == {"pico", "nano"}
    assert {"R", "HR", "RR", "S", "exposure", "mfu", "tokens_per_s"} <= set(table.columns)
    prov = json.loads((out / "finetune_gpu_tier.json").read_text())
    assert prov["plan"] == "paper-scale" and prov["finished_runs"] == len(table)
    assert prov["settings"]["sizes"] == ["pico", "nano"]
    assert [b["variant"] for b in prov["benchmark"]] == ["unpacked", "fused"]
    assert all(b["tokens_per_s"] > 0 for b in prov["benchmark"])
    for key in ("torch", "transformers", "accelerate", "commit", "gpus", "wall_seconds"):
        assert key in prov


def test_benchmark_script_prints_tokens_per_second_and_says_mfu_is_not_for_cpus(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_train
    finally:
        sys.path.pop(0)
    target = tmp_path / "bench.json"
    rc = gpu_train.main(
        [
            "--size",
            "nano",
            "--vocab",
            "200",
            "--seq-len",
            "32",
            "--batch-size",
            "2",
            "--steps",
            "2",
            "--warmup",
            "0",
            "--variants",
            "unpacked,fused",
            "--device",
            "cpu",
            "--json",
            str(target),
        ]
    )
    assert rc == 0
    results = json.loads(target.read_text())
    assert [r["variant"] for r in results] == ["unpacked", "fused"]
    assert all(r["tokens_per_s"] > 0 for r in results)
    assert gpu_train.main(["--variants", "warp-drive", "--device", "cpu"]) == 2


def test_paper_scale_tier_keeps_finished_runs_and_records_the_error_when_a_run_fails(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("OVERSHADOW_TIER", "cpu")  # main() sets it when unset; keep it local
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gpu_tier
    finally:
        sys.path.pop(0)
    out = tmp_path / "tier"
    argv = ["--scale", "tiny", "--sizes", "pico,warp-drive", "--no-benchmark", "--out", str(out)]
    assert gpu_tier.main(argv) == 1
    table = pd.read_csv(out / "finetune_gpu_tier.csv")
    assert set(table["size"]) == {"pico"}
    prov = json.loads((out / "finetune_gpu_tier.json").read_text())
    assert "warp-drive" in prov["error"] and prov["benchmark"] == []
