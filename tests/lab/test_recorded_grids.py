"""The recorded grids of "Data imbalance": the script runs, and a seeded subsample re-runs alike.

``scripts/record_lab_grids.py`` stores each grid in ``overshadow_lab/recorded/lab_<grid>.csv``.
Here the cheapest recorded runs of every table are trained again from the settings their rows
hold, and each new R must fall inside the 95% interval recorded for its run (the same seed on the
same code gives the same R on one machine; the interval is the tolerance across machines).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from overshadow_lab.lab.dynamics import dynamics_run
from overshadow_lab.lab.grids import GRIDS, grid_plan, load_grid, recheck
from overshadow_lab.lab.sweep import plan_runs
from overshadow_lab.records import recorded_files

ROOT = Path(__file__).resolve().parents[2]
RECORDED = [g for g in GRIDS if recorded_files(f"lab_{g}")[0].is_file()]
#: the grids the chapter loads; each must have been recorded
CHAPTER_GRIDS = ("P", "protocols", "dynamics")


def test_the_chapter_grids_are_recorded_with_provenance():
    for name in CHAPTER_GRIDS:
        table, prov = load_grid(name)
        assert not table.empty
        for key in ("command", "commit", "code_hash", "cpu", "torch", "wall_seconds", "spec"):
            assert prov.get(key) is not None, (name, key)


@pytest.mark.parametrize("name", [g for g in RECORDED if g != "dynamics"])
def test_a_seeded_subsample_re_runs_inside_the_recorded_intervals(name):
    table, _ = load_grid(name)
    again = recheck(table, n=2)
    assert len(again) == 2
    inside = (again["new_R"] >= again["R_lo"] - 1e-9) & (again["new_R"] <= again["R_hi"] + 1e-9)
    assert inside.all(), again.to_string()


@pytest.mark.skipif("dynamics" not in RECORDED, reason="dynamics grid not recorded")
def test_a_recorded_training_curve_re_runs_inside_the_seed_band():
    table, _ = load_grid("dynamics")
    spec = grid_plan("dynamics")
    first = spec["sweeps"][0]
    run = plan_runs(first["factor"], first["values"][:1], [0], tier="cpu", **first["fixed"])[0]
    new = dynamics_run(run, points=spec["points"], threads=1)
    recorded = table[(table["label"] == first["label"]) & (table["P"] == run["P"])]
    assert run["config_hash"] in set(recorded["config_hash"])
    last = new["step"].max()
    for metric in ("HR", "RR", "sub_acc"):
        end = recorded[(recorded["metric"] == metric) & (recorded["step"] == last)]["value"]
        value = new[(new["metric"] == metric) & (new["step"] == last)]["value"].iloc[0]
        assert end.min() - 0.02 <= value <= end.max() + 0.02, (metric, value, list(end))


def test_the_script_records_a_smoke_grid_with_provenance(tmp_path):
    out = tmp_path / "rec"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "record_lab_grids.py"),
        "--scale",
        "smoke",
        "--grid",
        "P",
        "--workers",
        "1",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    table, prov = load_grid("P", out)
    assert len(table) == 2 and set(table["P"]) == {1, 2}
    assert prov["grid"] == "P" and prov["scale"] == "smoke" and prov["wall_seconds"] >= 0
    assert "record_lab_grids.py" in prov["command"]
    assert np.isfinite(pd.to_numeric(table["R"])).all()
