"""Worker processes for sweeps: how many CPUs this process may use, and workers that die with it.

* :func:`available_cpus` counts the CPUs this process may actually run on: its CPU affinity
  (``os.sched_getaffinity``: what ``taskset``, Slurm's ``--cpus-per-task`` or a container's
  cpuset grant) and, where readable, the cgroup's CPU quota (``cpu.max`` in cgroup v2,
  ``cpu.cfs_quota_us / cpu.cfs_period_us`` in v1: what Docker's ``--cpus`` or Kubernetes'
  CPU limit set), falling back to ``os.cpu_count()``. ``os.cpu_count()`` alone counts the whole
  machine, so a job granted 4 of 64 cores would start 64 workers and thrash.
* :func:`worker_pool` is a pool of spawned worker processes, kept for the next sweep of this
  Python session (starting a worker imports torch and transformers, seconds each). Every worker
  dies with its parent, even when the parent is killed with ``kill -9`` and cannot clean up: on
  Linux the worker asks the kernel for ``SIGKILL`` when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``, called through ``ctypes``); elsewhere a daemon thread polls the
  parent's pid once a second. Either way a worker that finds its parent already gone on start
  exits at once. The pool's resource tracker exits by itself once the parent and the workers,
  which hold its pipe, are gone.
"""

from __future__ import annotations

import ctypes
import math
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_CGROUP = Path("/sys/fs/cgroup")


def _cgroup_quota(root: Path = _CGROUP, self_cgroup: Path = Path("/proc/self/cgroup")) -> float:
    """The CPU quota (in CPUs) of this process's cgroup and its parents; ``inf`` if none."""
    try:
        entries = [line.split(":", 2) for line in self_cgroup.read_text().splitlines()]
    except OSError:
        return math.inf
    quota = math.inf
    for _, controllers, rel in (e for e in entries if len(e) == 3):
        if controllers == "":  # cgroup v2: one unified hierarchy
            base, files = root, ("cpu.max",)
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's hierarchy
            base = next(
                (root / n for n in (controllers, "cpu", "cpu,cpuacct") if (root / n).is_dir()), None
            )
            if base is None:
                continue
            files = ("cpu.cfs_quota_us", "cpu.cfs_period_us")
        else:
            continue
        folder = base / rel.strip("/")
        while True:  # a limit anywhere above this cgroup applies too
            quota = min(quota, _read_quota(folder, files))
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return quota


def _read_quota(folder: Path, files: tuple[str, ...]) -> float:
    try:
        if len(files) == 1:
            limit, period = (folder / files[0]).read_text().split()[:2]
        else:
            limit, period = ((folder / f).read_text().strip() for f in files)
        if limit in ("max", "-1"):
            return math.inf
        return int(limit) / int(period)
    except (OSError, ValueError):
        return math.inf


def available_cpus() -> int:
    """The number of CPUs this process may use (affinity and cgroup quota; see the module)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota < n:
        n = math.ceil(quota)
    return max(1, n)


def _die_with_parent(parent: int) -> None:
    """Make this worker process end when process ``parent`` ends (see the module docstring)."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    if not armed:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


_POOL: dict[str, Any] = {}


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes that die with this one, kept between sweeps."""
    pool = _POOL.get("pool")
    if pool is not None and (_POOL.get("workers") != workers or getattr(pool, "_broken", False)):
        pool.shutdown(wait=False, cancel_futures=True)
        pool = None
    if pool is None:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        _POOL.update(pool=pool, workers=workers)
    return pool


def shutdown_workers() -> None:
    """Stop the kept worker processes (they also stop when Python exits)."""
    pool = _POOL.pop("pool", None)
    _POOL.pop("workers", None)
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["available_cpus", "shutdown_workers", "worker_pool"]
