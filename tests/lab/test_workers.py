"""Tests of overshadow_lab.lab.workers: the usable CPU count and workers that die with their parent."""

import math
import os
import subprocess
import sys

import pytest

from overshadow_lab.lab import workers
from overshadow_lab.lab.workers import _cgroup_quota, available_cpus


def test_cgroup_v1_and_v2_quotas_are_read_up_the_hierarchy(tmp_path):
    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "job" / "step").mkdir(parents=True)
    (v1 / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "cpu,cpuacct" / "job" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu,cpuacct" / "job" / "step" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu,cpuacct" / "job" / "step" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "self1").write_text("4:memory:/job\n3:cpu,cpuacct:/job/step\n")
    assert _cgroup_quota(v1, tmp_path / "self1") == 1.5  # the parent's limit applies
    v2 = tmp_path / "v2"
    (v2 / "user").mkdir(parents=True)
    (v2 / "cpu.max").write_text("max 100000\n")
    (v2 / "user" / "cpu.max").write_text("250000 100000\n")
    (tmp_path / "self2").write_text("0::/user\n")
    assert _cgroup_quota(v2, tmp_path / "self2") == 2.5
    (tmp_path / "self3").write_text("0::/elsewhere\n")  # unreadable: no limit known
    assert _cgroup_quota(v2, tmp_path / "self3") == math.inf
    assert _cgroup_quota(v2, tmp_path / "missing") == math.inf


def test_available_cpus_takes_the_smaller_of_affinity_and_quota(monkeypatch):
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(workers, "_cgroup_quota", lambda: 2.5)
    assert available_cpus() == 3
    monkeypatch.setattr(workers, "_cgroup_quota", lambda: 0.2)
    assert available_cpus() == 1
    monkeypatch.setattr(workers, "_cgroup_quota", lambda: math.inf)
    assert available_cpus() == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_whose_parent_is_already_gone_exits_at_once():
    code = (
        "import os, sys; from overshadow_lab.lab.workers import _die_with_parent; "
        "_die_with_parent(os.getppid()); print('armed', flush=True); "
        "_die_with_parent(os.getppid() + 1_000_000); print('still here')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout == "armed\n" and done.returncode == 1
