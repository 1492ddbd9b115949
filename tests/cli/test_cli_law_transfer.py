"""``overshadow-lab law transfer``: a synthetic law carried over to a task table."""

import json

import numpy as np
import pandas as pd
import pytest

from overshadow_lab import law
from overshadow_lab.cli import main

GRID = [2, 4, 8, 16, 64]


@pytest.fixture
def tables(tmp_path):
    """Synthetic runs on a slope of 10 per decade; three tasks with the same slope, other levels."""
    rng = np.random.default_rng(0)
    syn = [
        {"task": "synthetic", "P": P, "seed": s, "R": 10 * np.log10(P) + 35 + rng.normal(0, 1.0)}
        for P in GRID
        for s in range(3)
    ]
    tasks = [
        {"task": t, "P": P, "seed": s, "RR": 1.0, "R": 10 * np.log10(P) + b + rng.normal(0, 1.0)}
        for t, b in (("a", 30.0), ("b", 45.0), ("c", 20.0))
        for P in GRID
        for s in range(3)
    ]
    tasks.append({"task": "a", "P": 2, "seed": 9, "RR": 0.0, "R": np.nan})
    syn_csv, task_csv = tmp_path / "syn.csv", tmp_path / "tasks.csv"
    pd.DataFrame(syn).to_csv(syn_csv, index=False)
    pd.DataFrame(tasks).to_csv(task_csv, index=False)
    return str(syn_csv), str(task_csv), tmp_path


def _run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return out


def test_transfer_from_a_fitted_json_law_matches_the_package(tables, capsys):
    syn_csv, task_csv, tmp = tables
    fitted = _run(capsys, ["law", "fit", syn_csv, "--x", "P", "--json"]).out
    law_json = tmp / "law.json"
    law_json.write_text(fitted)
    out = _run(
        capsys, ["law", "transfer", task_csv, "--law", str(law_json), "--n-boot", "200", "--json"]
    )
    got = json.loads(out.out)
    assert "dropped 1 of 46 runs" in out.err  # the RR = 0 run
    assert set(got["scores"]) == set(law.METHODS)
    runs = pd.read_csv(task_csv)
    points = law.task_points(runs[runs.RR > 0])
    source = law.fit_law(*pd.read_csv(syn_csv)[["P", "R"]].to_numpy().T)
    _, ref = law.transfer_report(points, source, n_boot=200)
    for m in law.METHODS:
        assert got["scores"][m]["mean_rel_error"] == pytest.approx(ref.loc[m, "mean_rel_error"])
    # the tasks share the synthetic slope, so keeping it beats a flat line
    assert got["scores"]["keep"]["mean_rel_error"] < got["scores"]["constant"]["mean_rel_error"]
    row = got["predictions"][0]
    assert {"task", "x", "actual", "method", "predicted", "pi_lo", "pi_hi", "covered"} <= set(row)


def test_transfer_fits_a_csv_law_and_predicts_a_planned_value(tables, capsys):
    syn_csv, task_csv, _ = tables
    out = _run(
        capsys,
        [
            "law", "transfer", task_csv, "--law", syn_csv, "--law-where", "task=synthetic",
            "--method", "keep", "--method", "constant", "--at", "32", "--n-boot", "200",
        ],
    ).out  # fmt: skip
    assert "synthetic law: slope" in out and "keep      relative error" in out
    planned = [ln for ln in out.splitlines() if ln.split()[:3] == ["b", "32", "keep"]]
    assert len(planned) == 1
    # task b sits 10 points above the synthetic law at every P: 10*log10(32) + 45 = 60.05
    assert float(planned[0].split()[3]) == pytest.approx(60.05, abs=2.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--law", "missing.json"], "no such file: missing.json"),
        (["--law", "LAW", "--n-boot", "5"], "at least 100"),
        (["--law", "LAW", "--at", "-3"], "--at must be a positive"),
        (["--law", "LAW", "--where", "task=zzz"], "no rows match"),
        (["--law", "BAD"], "not valid JSON"),
        (["--law", "GROUPED"], "lacks"),
    ],
)
def test_transfer_errors_are_one_line(tables, capsys, extra, message):
    syn_csv, task_csv, tmp = tables
    (tmp / "bad.json").write_text("{not json")
    (tmp / "grouped.json").write_text(json.dumps({"a": {"slope": 1.0}}))
    subst = {"LAW": syn_csv, "BAD": str(tmp / "bad.json"), "GROUPED": str(tmp / "grouped.json")}
    argv = ["law", "transfer", task_csv] + [subst.get(a, a) for a in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_law_survives_the_round_trip_through_json():
    rng = np.random.default_rng(1)
    x = np.repeat(GRID, 3).astype(float)
    fit = law.fit_law(x, 8 * np.log10(x) + 20 + rng.normal(0, 2, x.size))
    back = law.law_from_dict(json.loads(json.dumps(fit.to_dict())))
    grid = np.array([1.5, 10.0, 100.0])
    assert np.allclose(back.predict(grid), fit.predict(grid))
    assert np.allclose(back.prediction_interval(grid), fit.prediction_interval(grid))
    assert back.slope_ci == pytest.approx(fit.slope_ci)
