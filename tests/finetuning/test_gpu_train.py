"""The GPU-tier script and the throughput benchmark, run on the CPU with tiny configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_tier_script_runs_tiny_on_cpu_and_writes_results_with_provenance(tmp_path):
    out = tmp_path / "tier"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gpu_tier.py"),
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
