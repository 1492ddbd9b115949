"""``overshadow-lab law fit`` / ``law predict`` on the paper's CSV and on a lab-style table."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from overshadow_lab.cli import build_parser, main
from overshadow_lab.paths import data_dir


@pytest.fixture
def paper_csv():
    return str(data_dir() / "paper_law_figures.csv")


@pytest.fixture
def lab_csv(tmp_path):
    """A table with the lab's sweep columns, from a known law."""
    rng = np.random.default_rng(0)
    grid = [2, 5, 10, 25, 50, 100]
    rows = []
    for factor in ("P", "L"):
        for v in grid:
            for seed in range(3):
                P, L = (v, 5) if factor == "P" else (5, v)
                r = 10 * np.log10(P) + 5 * np.log10(L) + 20 + rng.normal(0, 1.0)
                rows.append(
                    {
                        "factor": factor,
                        "P": P,
                        "L": L,
                        "S": 120000,
                        "seed": seed,
                        "RR": 1.0,
                        "HR": r / 100,
                        "R": r,
                        "sub_acc": 0.5,
                        "steps": 100,
                        "seconds": 1.0,
                    }
                )
    rows.append({**rows[0], "RR": 0.0, "HR": 0.0, "R": float("nan")})
    path = tmp_path / "sweep.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def _json(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err


def test_fit_reproduces_the_papers_llama_panel(paper_csv, capsys):
    out, _ = _json(
        capsys,
        [
            "law",
            "fit",
            paper_csv,
            "--x",
            "x",
            "--y",
            "observed_R_pct",
            "--where",
            "figure=fig2",
            "--where",
            "factor=P",
            "--group-by",
            "model",
            "--json",
        ],
    )
    assert set(out) == {"Llama-2-7B", "Phi-2.8B", "Pythia-160M"}
    llama = out["Llama-2-7B"]
    assert {"slope", "intercept", "x_c", "r2", "slope_ci"} <= set(llama)
    assert llama["slope"] == pytest.approx(13.84, abs=0.05)
    assert llama["intercept"] == pytest.approx(33.17, abs=0.05)
    assert llama["r2"] == pytest.approx(0.96, abs=0.05)
    assert llama["x_c"] == pytest.approx(10 ** (-llama["intercept"] / llama["slope"]))
    lo, hi = llama["slope_ci"]
    assert lo < llama["slope"] < hi


def test_fit_without_group_by_prints_one_flat_object(paper_csv, capsys):
    out, _ = _json(
        capsys,
        [
            "law",
            "fit",
            paper_csv,
            "--x",
            "x",
            "--y",
            "observed_R_pct",
            "--where",
            "figure=fig2",
            "--where",
            "factor=P",
            "--where",
            "model=Llama-2-7B",
            "--json",
        ],
    )
    assert out["slope"] == pytest.approx(13.84, abs=0.05) and len(out["slope_ci"]) == 2


def test_console_script_subprocess(paper_csv):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "overshadow_lab.cli",
            "law",
            "fit",
            paper_csv,
            "--x",
            "x",
            "--y",
            "observed_R_pct",
            "--where",
            "figure=fig2",
            "--where",
            "factor=L",
            "--group-by",
            "model",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert out["Llama-2-7B"]["slope"] == pytest.approx(17.25, abs=0.05)


def test_fit_on_a_lab_table_drops_rr_zero_with_a_warning(lab_csv, capsys):
    out, err = _json(
        capsys, ["law", "fit", lab_csv, "--x", "P", "--y", "R", "--where", "factor=P", "--json"]
    )
    assert "warning: dropped 1 of 19 rows" in err and "RR = 0" in err
    assert out["n"] == 18 and out["slope"] == pytest.approx(10, abs=1.5)
    assert out["dropped"] == {"RR = 0 (R undefined)": 1}


def test_fit_bootstrap_and_robust_options(lab_csv, capsys):
    out, _ = _json(
        capsys,
        [
            "law",
            "fit",
            lab_csv,
            "--x",
            "L",
            "--where",
            "factor=L",
            "--ci",
            "bootstrap",
            "--cluster",
            "seed",
            "--n-boot",
            "300",
            "--json",
        ],
    )
    assert out["ci"] == "bootstrap" and out["slope_ci"][0] < out["slope_ci"][1]
    out, _ = _json(
        capsys, ["law", "fit", lab_csv, "--x", "L", "--where", "factor=L", "--robust", "--json"]
    )
    assert out["method"] == "huber"


def test_fit_text_output(paper_csv, capsys):
    assert (
        main(
            [
                "law",
                "fit",
                paper_csv,
                "--x",
                "x",
                "--y",
                "observed_R_pct",
                "--where",
                "figure=fig2",
                "--group-by",
                "factor",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert text.count("slope") == 3 and "R2" in text


def test_predict_one_factor_on_the_paper_and_on_the_lab(paper_csv, lab_csv, capsys):
    out, _ = _json(
        capsys,
        [
            "law",
            "predict",
            paper_csv,
            "--factor",
            "P",
            "--value",
            "40",
            "--x",
            "x",
            "--y",
            "observed_R_pct",
            "--where",
            "figure=fig2",
            "--where",
            "model=Llama-2-7B",
            "--json",
        ],
    )
    expected = 13.838 * np.log10(40) + 33.166
    assert out["predicted"] == pytest.approx(expected, abs=0.05)
    assert out["pi_lo"] < out["predicted"] < out["pi_hi"] and not out["extrapolated"]
    out, _ = _json(capsys, ["law", "predict", lab_csv, "--factor", "P", "--value", "400", "--json"])
    assert out["extrapolated"] and out["law"]["n"] == 18


def test_predict_joint(lab_csv, capsys):
    out, _ = _json(capsys, ["law", "predict", lab_csv, "--at", "P=40", "--at", "L=10", "--json"])
    assert out["predicted"] == pytest.approx(10 * np.log10(40) + 5 + 20, abs=2)
    assert out["law"]["held"] == {"S": 120000.0}
    assert out["pi_lo"] < out["predicted"] < out["pi_hi"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["law", "fit", "missing.csv", "--x", "x"], "no such file"),
        (["law", "predict", "{lab}", "--at", "P=40"], "missing L"),
        (
            ["law", "predict", "{lab}", "--at", "P=40", "--at", "L=5", "--at", "S=7e9"],
            "S was held at 120000",
        ),
        (["law", "predict", "{lab}"], "give --factor F --value V"),
        (["law", "fit", "{lab}", "--x", "P", "--where", "P"], "COL=VALUE"),
        (
            [
                "law",
                "fit",
                "{lab}",
                "--x",
                "P",
                "--where",
                "factor=P",
                "--where",
                "P=2",
                "--where",
                "P=5",
            ],
            "at least 3 distinct values of P",
        ),
        (["law", "fit", "{lab}", "--x", "seed", "--where", "factor=P"], "seed are not positive"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(lab_csv, capsys, argv, message):
    argv = [a.replace("{lab}", lab_csv) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("overshadow-lab law: error:") or "overshadow-lab law: warning" in err
    assert message in err


def test_help_documents_the_options():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["law"]
    law_sub = sub._subparsers._group_actions[0].choices
    fit_help, predict_help = law_sub["fit"].format_help(), law_sub["predict"].format_help()
    for opt in ("--x", "--y", "--where", "--group-by", "--log-base", "--json", "slope_ci"):
        assert opt in fit_help
    for opt in ("--factor", "--value", "--at", "prediction interval"):
        assert opt in predict_help


def test_law_without_subcommand_prints_help(capsys):
    assert main(["law"]) == 2
    assert "{fit,predict,transfer}" in capsys.readouterr().out


def test_fit_on_a_lab_table_selects_the_sweep_of_x(lab_csv, capsys):
    out, err = _json(capsys, ["law", "fit", lab_csv, "--x", "L", "--json"])
    assert "rows with factor == L" in err
    assert out["n"] == 18 and out["slope"] == pytest.approx(5, abs=1.5)
    # grouping by factor keeps every sweep, and the L sweep holds P at a single value
    assert main(["law", "fit", lab_csv, "--x", "P", "--group-by", "factor"]) == 2
    assert "got 1 (5)" in capsys.readouterr().err


def _sweep_rows(lr=0.003, seeds=(0, 1), commit="abc", shift=0.0, factor="P"):
    """Rows as the sweep writes them: settings, metrics, provenance and a config_hash."""
    rng = np.random.default_rng(int(lr * 1e4) + len(seeds))
    rows = []
    grid = [2, 5, 10, 25, 50, 100] if factor == "P" else ["pythia-14m", "pythia-70m", "tiny"]
    for i, v in enumerate(grid):
        for seed in seeds:
            P = v if factor == "P" else 5
            S = [14e6, 70e6, 1.2e5][i] if factor == "S" else 120000
            size = v if factor == "S" else "tiny"
            r = 10 * np.log10(P if factor == "P" else S) + shift + rng.normal(0, 1.0)
            rows.append(
                {
                    "factor": factor,
                    "value": v,
                    "P": P,
                    "L": 5,
                    "S": S,
                    "size": size,
                    "seed": seed,
                    "RR": 1.0,
                    "HR": r / 100,
                    "R": r,
                    "config_hash": f"{factor}{v}-{seed}-{lr}",
                    "n_sets": 50,
                    "lr": lr,
                    "init": "scratch",
                    "commit": commit,
                    "device": "cpu",
                    "tier": "cpu",
                }
            )
    return rows


@pytest.fixture
def sweep_tables(tmp_path):
    """A clean sweep table and the same table with runs of another learning rate appended."""
    clean = _sweep_rows()
    foreign = _sweep_rows(lr=0.001, seeds=(0,), commit="def", shift=30.0)
    paths = {}
    for name, rows in (("clean", clean), ("mixed", clean + foreign)):
        paths[name] = tmp_path / f"{name}.csv"
        pd.DataFrame(rows).to_csv(paths[name], index=False)
    return {k: str(v) for k, v in paths.items()}


def test_fit_refuses_a_sweep_table_that_mixes_configurations(sweep_tables, capsys):
    assert main(["law", "fit", sweep_tables["mixed"], "--x", "P", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("overshadow-lab law: error: the rows mix configurations")
    assert "lr takes 2 values (0.001, 0.003)" in err and "--where lr=VALUE" in err
    assert "commit" not in err  # provenance differs too, but it is not a setting
    clean, _ = _json(capsys, ["law", "fit", sweep_tables["clean"], "--x", "P", "--json"])
    picked, _ = _json(
        capsys, ["law", "fit", sweep_tables["mixed"], "--x", "P", "--where", "lr=0.003", "--json"]
    )
    assert picked == clean
    grouped, _ = _json(
        capsys, ["law", "fit", sweep_tables["mixed"], "--x", "P", "--group-by", "lr", "--json"]
    )
    assert sorted(grouped) == ["0.001", "0.003"] and grouped["0.003"] == clean
    # predict refuses the mixed table the same way, for one factor and for the joint law
    assert main(["law", "predict", sweep_tables["mixed"], "--factor", "P", "--value", "40"]) == 2
    assert "lr takes 2 values" in capsys.readouterr().err
    assert main(["law", "predict", sweep_tables["mixed"], "--at", "P=40"]) == 2
    assert "lr takes 2 values" in capsys.readouterr().err


def test_an_s_sweep_varies_size_with_s_and_is_not_refused(tmp_path, capsys):
    path = tmp_path / "s.csv"
    pd.DataFrame(_sweep_rows(factor="S", seeds=(0, 1, 2))).to_csv(path, index=False)
    out, _ = _json(capsys, ["law", "fit", str(path), "--x", "S", "--json"])
    assert out["n"] == 9 and out["slope"] == pytest.approx(10, abs=2.5)


@pytest.fixture
def flat_csv(tmp_path):
    rows = [
        {"factor": "P", "P": p, "L": 5, "seed": s, "RR": 1.0, "R": 0.0}
        for p in (2, 5, 10, 25)
        for s in (0, 1)
    ]
    path = tmp_path / "flat.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("extra", [[], ["--robust"], ["--ci", "bootstrap", "--n-boot", "200"]])
def test_flat_r_gives_slope_zero_with_its_interval_not_a_traceback(flat_csv, capsys, extra):
    out, err = _json(capsys, ["law", "fit", flat_csv, "--x", "P", *extra, "--json"])
    assert out["slope"] == pytest.approx(0, abs=1e-9)
    assert out["slope_ci"] == pytest.approx([0, 0], abs=1e-9)
    assert out["r2"] is None and out["x_c"] is None
    assert "warning: R is 0 in every row" in err
    assert main(["law", "fit", flat_csv, "--x", "P", *extra]) == 0
    text = capsys.readouterr().out
    assert "x_c       n/a  R2 n/a" in text


def test_bootstrap_with_one_run_per_x_is_not_zero_width(lab_csv, capsys):
    argv = ["law", "fit", lab_csv, "--x", "P", "--where", "seed=0", "--ci", "bootstrap"]
    out, err = _json(capsys, [*argv, "--json"])
    lo, hi = out["slope_ci"]
    assert out["ci_scheme"] == "residuals" and lo < out["slope"] < hi and hi - lo > 1
    assert "warning: every x has a single run" in err
    t, _ = _json(capsys, ["law", "fit", lab_csv, "--x", "P", "--where", "seed=0", "--json"])
    assert hi - lo < t["slope_ci"][1] - t["slope_ci"][0]  # percentile runs narrower than t


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "--x", "P", "--n-boot", "0"], "whole number of at least 100"),
        (
            ["fit", "--x", "P", "--ci", "bootstrap", "--n-boot", "-5"],
            "at least 100 (a percentile interval needs resamples in both tails; 2000 is usual), got -5",
        ),
        (["fit", "--x", "P", "--level", "1.5"], "confidence level must lie in (0, 1)"),
        (["fit", "--x", "P", "--level", "nan"], "confidence level must lie in (0, 1)"),
        (["fit", "--x", "P", "--log-base", "1"], "log base must be positive and not 1"),
        (["fit", "--x", "P", "--log-base", "inf"], "log base must be positive and not 1"),
        (["fit", "--x", "P", "--cluster", "seed"], "--cluster only applies with --ci bootstrap"),
        (["predict", "--factor", "P", "--value", "inf"], "--value must be a positive finite"),
        (["predict", "--factor", "P", "--value", "nan"], "--value must be a positive finite"),
        (["predict", "--factor", "P", "--value", "0"], "--value must be a positive finite"),
        (["predict", "--factor", "P", "--value", "-3"], "--value must be a positive finite"),
        (["predict", "--at", "P=inf"], "--at P must be a positive finite number"),
        (["predict", "--at", "P=abc"], "--at P takes a number, got 'abc'"),
        (["predict", "--level", "0"], "confidence level must lie in (0, 1)"),
    ],
)
def test_numeric_options_are_checked_before_the_table_is_read(capsys, argv, message):
    # the file does not exist: the option's own error must come first
    assert main(["law", argv[0], "no-such-table.csv", *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("overshadow-lab law: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_an_empty_file_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert main(["law", "fit", str(path), "--x", "P"]) == 2
    err = capsys.readouterr().err
    assert err == f"overshadow-lab law: error: {path} is empty: there is no table to fit\n"


def _full_sweep_table(path):
    """A sweep table whose rows carry every setting, so each row's hash can be checked."""
    from overshadow_lab.lab.results import CONFIG_KEYS, config_hash
    from overshadow_lab.lab.sweep import tier_defaults

    rng = np.random.default_rng(3)
    rows = []
    for P in (2, 5, 10, 25, 50, 100):
        for seed in (0, 1):
            cfg = {**tier_defaults("cpu"), "P": P, "seed": seed}
            cfg = {k: cfg[k] for k in CONFIG_KEYS}
            r = 10 * np.log10(P) + rng.normal(0, 1.0)
            rows.append(
                {
                    "factor": "P",
                    "value": P,
                    **cfg,
                    "RR": 1.0,
                    "HR": r / 100,
                    "R": r,
                    "steps": 100,
                    "seconds": 1.0,
                    "tokens": 1000,
                    "config_hash": config_hash(cfg),
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_fit_on_a_torn_table_equals_the_fit_on_its_whole_rows(tmp_path, capsys):
    whole = _full_sweep_table(tmp_path / "whole.csv")
    lines = whole.read_text().splitlines(keepends=True)
    # the clean table: every row but the last; the torn ones: the last row cut before its hash,
    # and cut inside its hash (a kill -9 while the row was being appended)
    (tmp_path / "clean.csv").write_text("".join(lines[:-1]))
    last = lines[-1]
    cut = last.rindex(",")
    for name, tail in (("before", last[: cut - 3]), ("inside", last[: cut + 5])):
        (tmp_path / f"torn_{name}.csv").write_text("".join(lines[:-1]) + tail)
    clean, _ = _json(capsys, ["law", "fit", str(tmp_path / "clean.csv"), "--x", "P", "--json"])
    assert clean["n"] == 11
    for name in ("before", "inside"):
        torn, err = _json(
            capsys, ["law", "fit", str(tmp_path / f"torn_{name}.csv"), "--x", "P", "--json"]
        )
        assert torn == clean, name
        assert "warning" in err and "torn" in err.lower(), err
