"""Record the grids of the chapter "Data imbalance" that do not fit its live CPU budget.

    python scripts/record_lab_grids.py                      # every grid, then record them
    python scripts/record_lab_grids.py --grid P --grid L    # some grids
    python scripts/record_lab_grids.py --scale smoke --out /tmp/smoke   # a seconds-long check

Each grid (:data:`GRIDS`, built by :func:`grid_plan`) is one or more sweeps of
:func:`overshadow_lab.lab.sweep.run_sweep` under a named protocol
(:mod:`overshadow_lab.lab.protocols`), written to a resumable results table in ``--work``
(default: ``results_dir("lab", "recorded")``), then stored as ``lab_<grid>.csv`` with its
provenance ``lab_<grid>.json`` (command, commit, code hash, machine, versions, wall time, the
grid's settings) by :func:`overshadow_lab.records.save_recorded` in ``--out`` (default: the
package's ``recorded/`` folder). The ``dynamics`` grid records a long-format table of training
curves (:func:`overshadow_lab.lab.dynamics.dynamics_run`) instead of one row per run.

``tests/lab/test_recorded_grids.py`` re-runs a seeded subsample of every recorded table and
fails when a re-run falls outside the interval recorded for its run.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import as_completed
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from overshadow_lab.lab.dynamics import dynamics_run  # noqa: E402
from overshadow_lab.lab.grids import GRIDS, grid_plan, load_grid  # noqa: E402
from overshadow_lab.lab.sweep import plan_runs, run_sweep  # noqa: E402
from overshadow_lab.lab.workers import shutdown_workers, worker_pool  # noqa: E402
from overshadow_lab.paths import results_dir  # noqa: E402
from overshadow_lab.records import RECORDED_DIR, provenance, save_recorded  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run the Data imbalance grids and record them.")
    p.add_argument("--grid", action="append", choices=list(GRIDS), help="grid(s) (default: all)")
    p.add_argument("--scale", choices=("full", "smoke"), default="full")
    p.add_argument("--seeds", type=int, default=None, help="seeds per setting (default: grid's)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs)")
    p.add_argument("--work", default=None, help="folder of the resumable results tables")
    p.add_argument("--out", default=None, help="where to record (default: the package's)")
    return p.parse_args(argv)


def _dynamics_worker(run: dict, points: int) -> pd.DataFrame:
    import torch

    torch.set_num_threads(1)
    return dynamics_run(run, points=points, threads=1)


def run_grid(name: str, scale: str, seeds: int | None, workers: int | None, work: Path, out: Path):
    """Run one grid; returns its table (one row per run, or the long dynamics table)."""
    spec = grid_plan(name, scale, seeds)
    if name == "dynamics":
        runs = [
            {**r, "label": s["label"]}
            for s in spec["sweeps"]
            for r in plan_runs(s["factor"], s["values"], spec["seeds"], tier="cpu", **s["fixed"])
        ]
        parts = []
        if (workers or 2) > 1 and len(runs) > 1:
            pool = worker_pool(workers or 2)
            futs = {pool.submit(_dynamics_worker, r, spec["points"]): r for r in runs}
            for f in as_completed(futs):
                parts.append(f.result().assign(label=futs[f]["label"]))
        else:
            for r in runs:
                parts.append(dynamics_run(r, points=spec["points"]).assign(label=r["label"]))
        return pd.concat(parts, ignore_index=True), spec
    tables = []
    for s in spec["sweeps"]:
        if s["file"] == "P_P" and name != "P":  # the P grid's own runs, as recorded
            p_table, _ = load_grid("P", out)
            keep = p_table["P"].isin(s["values"]) & (p_table["seed"] < spec["seeds"])
            tables.append(p_table[keep].assign(grid=name, label=s["label"]))
            continue
        t = run_sweep(
            s["factor"],
            s["values"],
            seeds=spec["seeds"],
            tier="cpu",
            out=work / f"{s['file']}.csv",
            progress=True,
            workers=workers,
            **s["fixed"],
        )
        tables.append(t.assign(grid=name, label=s["label"]))
    return pd.concat(tables, ignore_index=True), spec


def main(argv=None) -> int:
    args = parse_args(argv)
    names = args.grid or list(GRIDS)
    work = Path(args.work) if args.work else results_dir("lab", f"recorded_{args.scale}")
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else RECORDED_DIR
    command = " ".join(["python", "scripts/record_lab_grids.py", *(argv or sys.argv[1:])])
    try:
        for name in names:
            t0 = time.perf_counter()
            table, spec = run_grid(name, args.scale, args.seeds, args.workers, work, out)
            wall = time.perf_counter() - t0
            prov = provenance("cpu", wall_seconds=round(wall, 1))
            prov.update(command=command, grid=name, scale=args.scale, spec=spec)
            csv, _ = save_recorded(table, prov, f"lab_{name}", out)
            print(f"{name}: {len(table)} rows in {wall:.0f} s -> {csv}", flush=True)
    finally:
        shutdown_workers()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
