"""Tests of ``overshadow-lab sweep``: output, errors, resuming after ``kill -9``, shards and merge."""

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import warnings

import pandas as pd
import pytest

from overshadow_lab.cli import build_parser, main
from overshadow_lab.lab import sweep as lab_sweep
from overshadow_lab.lab.results import BadRowsWarning, read_results, scan_table

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
        (["--values", "2"], r"--factor is required: P, L or S"),
        (["--factor", "P", "--out", "."], r"out \S+ is a folder: give a file in it"),
    ],
)
def test_cli_errors_name_the_fix(argv, pattern, tmp_path, capsys):
    argv = [*argv, "--out", str(tmp_path / "x.csv")] if "--out" not in argv else argv
    rc = main(["sweep", *argv, "--tier", "cpu", "--no-progress"])
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
            if _valid_rows(out) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # rows are appended whole, but a kill can land inside the write of one: that torn row is no
    # finished run (the restart moves it aside and redoes its run), so count the valid rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadRowsWarning)
        partial = read_results(out)
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


def _valid_rows(path) -> int:
    return len(scan_table(path.read_text()).rows) if path.is_file() else 0


def _shard_cmd(out, shard):
    """Shard ``shard`` of the sweep of :func:`_args`, two epochs a run, as its own process."""
    return [
        sys.executable,
        "-m",
        "overshadow_lab.cli",
        *_args(out),
        "--epochs",
        "2",
        "--shard",
        shard,
    ]


def test_two_shards_in_two_processes_then_merge_equal_the_unsharded_sweep(tmp_path, capsys):
    ref_out, out = tmp_path / "ref.csv", tmp_path / "res.csv"
    assert main([*_args(ref_out), "--epochs", "2"]) == 0
    procs = [
        subprocess.Popen(_shard_cmd(out, f"{i}/2"), stdout=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert "merge --out" in logs[0] and f"runs in {tmp_path / 'res.shard-1-of-2.csv'}" in logs[1]
    assert not out.exists()  # the shards wrote their own files only
    shards = [tmp_path / f"res.shard-{i}-of-2.csv" for i in range(2)]
    assert [len(pd.read_csv(s)) for s in shards] == [3, 3]
    capsys.readouterr()
    assert main(["sweep", "merge", "--out", str(out)]) == 0
    assert "merged 2 file(s)" in capsys.readouterr().out
    ref, merged = pd.read_csv(ref_out), pd.read_csv(out)
    a = merged[METRICS].sort_values("config_hash", ignore_index=True)
    b = ref[METRICS].sort_values("config_hash", ignore_index=True)
    pd.testing.assert_frame_equal(a, b)
    assert main(["sweep", "merge", "--out", str(out), *map(str, shards)]) == 0  # again: no change
    assert "0 runs added, 6 already there" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == 6


def test_merge_names_a_missing_shard(tmp_path, capsys):
    (tmp_path / "res.shard-0-of-3.csv").write_text("config_hash\n")
    rc = main(["sweep", "merge", "--out", str(tmp_path / "res.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "missing shard file(s) res.shard-1-of-3.csv, res.shard-2-of-3.csv" in err


def test_the_documented_cluster_recipe_parses():
    """Every ``overshadow-lab`` command of the job-array recipe is one the parser accepts."""
    text = lab_sweep.__doc__.replace("\\\n", " ")
    env = {"$SLURM_ARRAY_TASK_ID": "3", "$SLURM_ARRAY_TASK_COUNT": "8", "$i": "1", "$N": "4"}
    commands = []
    for line in text.splitlines():
        code = line.startswith("    ") and not line.strip().startswith("#")
        if not code or "overshadow-lab sweep" not in line:
            continue
        cmd = line.split("overshadow-lab ", 1)[1].strip().rstrip("&").strip()
        for k, v in env.items():
            cmd = cmd.replace(k, v)
        commands.append(shlex.split(cmd))
    assert len(commands) == 3  # the array task, the bash shard, the merge
    for argv in commands:
        args = build_parser().parse_args(argv)
        assert args.func.__name__ in ("run", "run_merge")
    assert any("--shard" in c and "3/8" in c for c in commands)


def test_cli_sweeps_a_setting_under_a_named_protocol(tmp_path, capsys):
    out = tmp_path / "w.csv"
    small = ["--size", "nano", "--n-sets", "4", "--vocab", "100", "--batch-size", "16"]
    rc = main(
        [
            "sweep",
            "--factor",
            "weight_decay",
            "--values",
            "0,0.5",
            "--seeds",
            "1",
            "--protocol",
            "exposure",
            "--exposures",
            "2",
            "--P",
            "3",
            "--out",
            str(out),
            "--no-progress",
            "--workers",
            "1",
            *small,
        ]
    )
    assert rc == 0
    table = read_results(out)
    assert sorted(table["weight_decay"]) == [0, 0.5]
    assert set(table["rule"]) == {"exposure"} and set(table["sub_exposures"]) == {2}
    assert "weight_decay" in capsys.readouterr().out
    assert (
        build_parser().parse_args(["sweep", "--factor", "position", "--values", "start,end"]).factor
        == "position"
    )
