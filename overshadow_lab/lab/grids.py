"""The recorded grids of the chapter "Data imbalance": what they run, how to load and re-check them.

The chapter's big grids take longer than its live CPU budget, so
``scripts/record_lab_grids.py`` runs them and stores each as ``recorded/lab_<grid>.csv`` with
its provenance (:func:`overshadow_lab.records.save_recorded`). This module is the one place
that says what each grid is (:data:`GRIDS`, expanded by :func:`grid_plan`), so the script, the
chapter and the test that re-checks the tables cannot disagree about it.

Every grid shares :data:`BASE`, the lab's *capacity regime*: a model and a number of knowledge
sets chosen (from the ``capacity`` grid) so that the model cannot memorise every subordinate
fact; with the default tier settings the tiny model memorises them all and R is 0 at every P.
The grids train under the adopted protocol (:data:`~overshadow_lab.lab.protocols.ADOPTED`,
equal exposure), except ``protocols``, which runs the P grid under each protocol.

:func:`recheck` re-runs a seeded subsample of a recorded table and returns, for each re-run,
the recorded R, its recorded interval and the new R; ``tests/lab/test_recorded_grids.py``
fails when a new R leaves its interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from overshadow_lab.lab.protocols import ADOPTED, PROTOCOLS, protocol_options
from overshadow_lab.lab.results import CONFIG_KEYS, OPTIONAL_KEYS
from overshadow_lab.lab.sweep import plan_runs, run_one
from overshadow_lab.records import load_recorded

#: The capacity regime every grid starts from (see the module docstring and the chapter).
BASE: dict[str, Any] = {
    "size": "pico",
    "n_sets": 400,
    "vocab": 2000,
    "batch_size": 64,
    "lr": 1e-2,
    "eval_every": 10_000,  # no recall checks during a run: the budget rules do not need them
    "max_steps": 800,  # the cap of the plateau and recall rules (1.3 passes at P = 100)
}
#: The budget of the adopted protocol: presentations of each subordinate statement.
EXPOSURES = 10
P_GRID = [1, 2, 5, 10, 25, 50, 100]
L_GRID = [2, 8, 32, 64]
S_GRID = ["pico", "nano", "tiny"]
CAPACITY_SETS = [100, 400]
CAPACITY_SIZES = ["pico", "tiny"]
POSITIONS = ["start", "middle", "end"]
WEIGHT_DECAYS = [0.0, 0.1, 1.0]
#: The protocols are compared without P = 100: the paper's epochs cost as much as equal exposure
#: there, and the grid had to fit a shared CPU (the exposure rows of P = 100 are in the P grid).
PROTOCOL_P_GRID = [1, 2, 5, 10, 25, 50]

#: grid name -> (seeds, sweeps); each sweep is (label, factor, values, fixed settings).
#: In the order the script runs them (most needed first).
GRIDS: dict[str, tuple[int, list[tuple[str, str, list, dict]]]] = {
    "P": (5, [("P", "P", P_GRID, {})]),
    "protocols": (3, [(name, "P", PROTOCOL_P_GRID, {"protocol": name}) for name in PROTOCOLS]),
    "dynamics": (
        3,
        [
            ("P", "P", [2, 10, 25], {}),
            ("L", "L", [2, 8, 64], {}),
            ("S", "S", ["pico", "tiny"], {}),
        ],
    ),
    "L": (5, [("L", "L", L_GRID, {})]),
    "S": (5, [("S", "S", S_GRID, {})]),
    "weight_decay": (5, [("weight_decay", "weight_decay", WEIGHT_DECAYS, {"P": 10})]),
    "position": (5, [("position", "position", POSITIONS, {"P": 10})]),
    "capacity": (
        2,
        [(s, "n_sets", CAPACITY_SETS, {"size": s, "P": 10}) for s in CAPACITY_SIZES],
    ),
}
#: The smoke scale: the same code on a corpus and model that train in seconds (tests).
SMOKE = {"size": "nano", "n_sets": 4, "vocab": 200, "batch_size": 16, "exposures": 2}


def grid_plan(name: str, scale: str = "full", seeds: int | None = None) -> dict:
    """What grid ``name`` runs: ``{"seeds", "points", "sweeps": [{label, factor, values,
    fixed}]}`` with every setting spelled out (``fixed`` goes to ``run_sweep``)."""
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}: use one of {', '.join(GRIDS)}")
    if scale not in ("full", "smoke"):
        raise ValueError(f"scale must be 'full' or 'smoke', got {scale!r}")
    n_seeds, sweeps = GRIDS[name]
    out = []
    for label, factor, values, fixed in sweeps:
        fixed = dict(fixed)
        proto = fixed.pop("protocol", ADOPTED)
        options = protocol_options(proto, **({"exposures": EXPOSURES} if proto == ADOPTED else {}))
        if proto == "epochs":
            options["epochs"] = EXPOSURES  # the same exposures, spent with the paper's schedule
        settings = {**BASE, **options, **fixed}
        if settings["rule"] in ("converge", "plateau"):
            settings["eval_every"] = 25  # these rules decide at their checks
        if scale == "smoke":
            settings.update({k: v for k, v in SMOKE.items() if k != factor})
            settings["max_steps"] = 40
            if settings["rule"] == "epochs":
                settings["epochs"] = SMOKE["exposures"]
            values = values[:2]
        settings.pop("plateau_tol", None)  # TrainConfig's default; not a sweep setting
        same_as_p = name == "protocols" and proto == ADOPTED  # the P grid's runs, reused
        out.append(
            {
                "file": "P_P" if same_as_p else f"{name}_{label}",
                "label": label,
                "protocol": proto,
                "factor": factor,
                "values": list(values),
                "fixed": settings,
            }
        )
    return {
        "seeds": int(seeds) if seeds is not None else (1 if scale == "smoke" else n_seeds),
        "points": 6 if scale == "smoke" else 14,
        "sweeps": out,
    }


def load_grid(name: str, folder=None) -> tuple[pd.DataFrame, dict]:
    """``(table, provenance)`` of recorded grid ``name``; a clear error if it was never run."""
    rec = load_recorded(f"lab_{name}", folder)
    if rec is None:
        raise FileNotFoundError(
            f"grid {name!r} has not been recorded: run python scripts/record_lab_grids.py "
            f"--grid {name}"
        )
    return rec


def _as_written(v: Any) -> Any:
    """A table value as the sweep planned it: whole-number floats were ints (a column with gaps
    reads back as floats), numpy scalars plain Python."""
    v = v.item() if isinstance(v, np.generic) else v
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _run_of(row: pd.Series) -> dict:
    """The sweep run a recorded row came from, re-planned from its own settings."""
    keys = [*CONFIG_KEYS, *(k for k in OPTIONAL_KEYS if k in row and pd.notna(row[k]))]
    settings = {k: _as_written(v) for k, v in row[keys].items()}
    factor = row["factor"]
    value = settings["size"] if factor == "S" else settings[factor]
    seed = settings.pop("seed")
    settings.pop("size" if factor == "S" else factor)
    (run,) = plan_runs(factor, [value], [int(seed)], tier="cpu", **settings)
    if run["config_hash"] != row["config_hash"]:
        raise ValueError(
            f"recorded row {row['config_hash']} does not re-plan to itself (got "
            f"{run['config_hash']}): the table and the code disagree; re-record the grid"
        )
    return run


def recheck(table: pd.DataFrame, n: int = 2, seed: int = 0, cheapest: bool = True):
    """Re-run ``n`` recorded runs of ``table`` (the cheapest by recorded seconds, or a seeded
    random choice) and return recorded R, its interval and the re-run's R, one row each."""
    rows = table.sort_values("seconds") if cheapest else table.sample(frac=1.0, random_state=seed)
    out = []
    for _, row in rows.head(n).iterrows():
        run = _run_of(row)
        new = run_one(run, threads=1)
        out.append(
            {
                "config_hash": row["config_hash"],
                "R": row["R"],
                "R_lo": row["R_lo"],
                "R_hi": row["R_hi"],
                "new_R": new["R"],
                "HR": row["HR"],
                "new_HR": new["HR"],
            }
        )
    return pd.DataFrame(out)


__all__ = [
    "BASE",
    "EXPOSURES",
    "GRIDS",
    "L_GRID",
    "P_GRID",
    "S_GRID",
    "grid_plan",
    "load_grid",
    "recheck",
]
