"""The sandbox of one submission, seen from inside: a probe submission reports what it can do."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import overshadow_lab
from overshadow_lab.exercises.framework import from_plain
from overshadow_lab.grading.runner import Limits
from overshadow_lab.grading.sandbox import bubblewrap, descendants, run_submission, undumpable

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"),
    reason="seccomp and /proc checks are written for Linux on x86_64 or aarch64",
)

PROBE = """
import os, resource, socket

def _mem_of_grandparent():
    stat = open(f"/proc/{os.getppid()}/stat").read()
    grandparent = int(stat[stat.rfind(")") + 2 :].split()[1])
    try:
        open(f"/proc/{grandparent}/mem", "r+b").close()
        return "opened"
    except OSError as err:
        return type(err).__name__

def relative_hallucination_rate(hr, rr):
    status = dict(ln.split(":", 1) for ln in open("/proc/self/status").read().splitlines())
    try:
        os.kill(os.getppid(), 0)
        kill = "allowed"
    except OSError as err:
        kill = type(err).__name__
    return {
        "seccomp": status["Seccomp"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "cpu": resource.getrlimit(resource.RLIMIT_CPU)[1],
        "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[1],
        "env": sorted(os.environ),
        "home_is_cwd": os.environ["HOME"] == os.getcwd(),
        "files": sorted(os.listdir(".")),
        "fds": sorted(os.listdir("/proc/self/fd")),
        "kill": kill,
        "grader_memory": _mem_of_grandparent(),
        "uid": os.getuid(),
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
        "tmp": sorted(os.listdir("/tmp")),
    }
"""

MODES = [("fork", None), ("subprocess", None), ("subprocess", "bwrap")]


@pytest.mark.parametrize("isolation,sandbox", MODES, ids=["fork", "subprocess", "bwrap"])
def test_a_submission_runs_confined(isolation, sandbox, monkeypatch):
    bwrap = bubblewrap() if sandbox else None
    if sandbox and bwrap is None:
        pytest.skip("no working bubblewrap on this machine")
    monkeypatch.setenv("OVERSHADOW_TEST_SECRET", "hunter2")
    limits = Limits(cpu_seconds=7, memory_bytes=2**30, file_bytes=2**20, processes=16)
    inputs = {"relative_hallucination_rate": [((0.5, 1.0), {})]}
    with undumpable():
        report = run_submission(
            {"probe.py": PROBE.encode()}, "probe.py", inputs, limits, 60, isolation, bwrap
        )
    assert report.errors == [] and report.defined == ["relative_hallucination_rate"]
    assert {"RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "seccomp"} <= set(report.confined)
    seen = from_plain(report.outcomes["relative_hallucination_rate"][0]["value"])
    assert seen["seccomp"] == "2" and seen["no_new_privs"] == "1"
    assert seen["kill"] == "PermissionError"  # not even signal 0 to its parent
    assert seen["grader_memory"] != "opened"  # the grader's memory cannot be rewritten
    assert 7 < seen["cpu"] < 7 + 60 and seen["fsize"] == 2**20
    assert "OVERSHADOW_TEST_SECRET" not in seen["env"] and "PATH" in seen["env"]
    assert seen["home_is_cwd"] and seen["files"] == ["probe.py"]
    assert {"0", "1", "2", "3"} <= set(seen["fds"]) and len(seen["fds"]) <= 5
    if bwrap:
        assert seen["uid"] == 65534 and seen["interfaces"] == ["lo"]
        # /tmp is emptied: only the submission's own folder, and the folders that lead to the
        # interpreter or the package when they live under /tmp (shown again, read-only)
        shown = {
            p.resolve().relative_to("/tmp").parts[0]
            for p in (Path(sys.prefix), Path(sys.executable), Path(overshadow_lab.__file__))
            if p.resolve().is_relative_to("/tmp")
        }
        work = [t for t in seen["tmp"] if t not in shown]
        assert len(work) == 1 and work[0].startswith("overshadow-grade-"), seen["tmp"]


def test_descendants_lists_a_process_tree():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert proc.pid in descendants(os.getpid())
    finally:
        proc.kill()
        proc.wait()
    assert proc.pid not in descendants(os.getpid())
