"""Tests of ``overshadow-lab sweep``: output, error messages, and resuming after ``kill -9``."""

import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from overshadow_lab.cli import main

FAST = [
    "--size",
    "nano",
    "--n-sets",
    "6",
    "--vocab",
    "100",
    "--rule",
    "epochs",
    "--batch-size",
    "32",
]
METRICS = ["config_hash", "P", "seed", "RR", "HR", "R", "sub_acc", "steps", "tokens"]


def test_cli_sweep_runs_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "r.csv"
    rc = main(
        [
            "sweep",
            "--factor",
            "L",
            "--values",
            "2,3",
            "--seeds",
            "1",
            "--tier",
            "cpu",
            "--out",
            str(out),
            "--no-progress",
            "--workers",
            "1",
            "--epochs",
            "2",
            *FAST,
        ]
    )
    assert rc == 0
    df = pd.read_csv(out)
    assert df["L"].tolist() == [2, 3] and set(df["factor"]) == {"L"}
    assert "2 runs in" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--factor", "P", "--values", "2,x"], r"--values for P must be numbers"),
        (["--factor", "P", "--values", "0.5"], r"P = m/n .* must be >= 1"),
        (["--factor", "P", "--seeds", "0"], r"--seeds must be >= 1"),
        (["--factor", "P", "--shard", "3/2"], r"shard 3/2 is out of range"),
        (["--factor", "L", "--values", "1"], r"must be > 1"),
    ],
)
def test_cli_errors_name_the_fix(argv, pattern, tmp_path, capsys):
    rc = main(["sweep", *argv, "--out", str(tmp_path / "x.csv"), "--tier", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "overshadow-lab sweep: error:" in err
    assert re.search(pattern, err), err


def _args(out):
    return [
        "sweep",
        "--factor",
        "P",
        "--values",
        "2,3,4",
        "--seeds",
        "2",
        "--tier",
        "cpu",
        "--out",
        str(out),
        "--no-progress",
        "--workers",
        "1",
        "--epochs",
        "10",
        *FAST,
    ]


def test_kill_9_then_resume_gives_the_same_table(tmp_path):
    ref_out, out = tmp_path / "ref.csv", tmp_path / "killed.csv"
    assert main(_args(ref_out)) == 0  # the uninterrupted reference
    ref = pd.read_csv(ref_out)
    assert len(ref) == 6
    cmd = [sys.executable, "-m", "overshadow_lab.cli", *_args(out)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            if out.is_file() and len(pd.read_csv(out)) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    partial = pd.read_csv(out)
    assert 2 <= len(partial) < 6 and partial["config_hash"].is_unique
    assert main(_args(out)) == 0  # the restart resumes
    final = pd.read_csv(out)
    assert final["config_hash"].is_unique and len(final) == 6
    # the runs finished before the kill were kept, not redone
    kept = final.set_index("config_hash").loc[partial["config_hash"], "finished"]
    assert kept.tolist() == partial["finished"].tolist()
    a = final[METRICS].sort_values("config_hash", ignore_index=True)
    b = ref[METRICS].sort_values("config_hash", ignore_index=True)
    pd.testing.assert_frame_equal(a, b)
