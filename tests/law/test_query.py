"""Tables: the --where selection, grouped fits, and the refusal of rows that mix configurations."""

import numpy as np
import pandas as pd
import pytest

from overshadow_lab import law
from tests.law.synthetic import design


def test_select_rows_numeric_text_and_repeated_conditions():
    df = design()
    assert len(law.select_rows(df, {"P": "5"})) == 3 + 18
    assert len(law.select_rows(df, {"factor": ["P"], "P": ["2", "100"]})) == 6
    with pytest.raises(ValueError, match="no column 'Q'"):
        law.select_rows(df, {"Q": "1"})
    with pytest.raises(ValueError, match="no rows match"):
        law.select_rows(df, {"factor": "S"})
    with pytest.raises(ValueError, match="COL=VALUE"):
        law.parse_where(["figure"])


def test_fit_law_frame_groups_and_drops_rr_zero_rows():
    df = design()
    df.loc[0, "RR"] = 0.0
    with pytest.warns(law.LawDataWarning, match="RR = 0"):
        fits = law.fit_law_frame(df, "P", "R", where={"factor": "P"}, group_by="seed")
    assert sorted(fits) == ["0", "1", "2"]
    assert fits["0"].n == 5 and fits["1"].n == 6
    boot = law.fit_law_frame(
        df.iloc[1:], "P", "R", where={"factor": "P"}, ci="bootstrap", n_boot=300
    )
    assert boot.to_dict()["ci"] == "bootstrap" and boot.slope_ci != boot.to_dict()["intercept_ci"]


def _two_learning_rates():
    df = design()
    df = df[df.factor == "P"].assign(lr=0.003, n_sets=50, commit="abc")
    foreign = df[df.seed == 0].assign(lr=0.001, R=df[df.seed == 0].R + 25, commit="def")
    return df, pd.concat([df, foreign], ignore_index=True)


def test_rows_that_mix_configurations_are_refused_naming_the_columns():
    clean, mixed = _two_learning_rates()
    settings = ["P", "L", "lr", "n_sets"]  # the fitted factor itself is allowed to vary
    with pytest.raises(ValueError, match=r"lr takes 2 values \(0.001, 0.003\).*--where lr=VALUE"):
        law.fit_law_frame(mixed, "P", "R", settings=settings)
    assert law.differing_settings(mixed, ["L", "lr", "n_sets", "commit"]) == {
        "lr": ["0.001", "0.003"],
        "commit": ["abc", "def"],
    }
    # selecting one configuration gives exactly the clean table's law
    picked = law.fit_law_frame(mixed, "P", "R", where={"lr": "0.003"}, settings=settings)
    ref = law.fit_law_frame(clean, "P", "R", settings=settings)
    assert picked.to_dict() == ref.to_dict()
    # so does fitting each configuration apart
    fits = law.fit_law_frame(mixed, "P", "R", group_by="lr", settings=settings)
    assert sorted(fits) == ["0.001", "0.003"] and fits["0.003"].to_dict() == ref.to_dict()
    # provenance (the commit) is not a setting unless named
    law.fit_law_frame(mixed.assign(lr=0.003), "P", "R", settings=settings)


def test_a_setting_missing_in_some_rows_counts_as_different():
    clean, _ = _two_learning_rates()
    clean.loc[clean.index[0], "n_sets"] = np.nan
    with pytest.raises(ValueError, match=r"n_sets takes 2 values \(50.0, nan\)"):
        law.check_one_configuration(clean, ["n_sets"])


def test_fit_law_frame_checks_its_options_before_selecting_rows():
    df = design()
    with pytest.raises(ValueError, match="whole number of at least 100"):
        law.fit_law_frame(df, "P", "R", ci="bootstrap", n_boot=0)
    with pytest.raises(ValueError, match="no column 'zz' to bootstrap over"):
        law.fit_law_frame(df, "P", "R", ci="bootstrap", cluster="zz")
    with pytest.raises(ValueError, match="unknown bootstrap scheme"):
        law.fit_law_frame(df, "P", "R", ci="bootstrap", scheme="nope")
    with pytest.raises(ValueError, match=r"confidence level must lie in \(0, 1\)"):
        law.fit_law_frame(df, "P", "R", level=0)


def test_a_bootstrap_fit_records_which_scheme_gave_its_interval():
    df = design()
    one_seed = df[(df.factor == "P") & (df.seed == 0)]
    with pytest.warns(law.LawFitWarning, match="single run"):
        fit = law.fit_law_frame(one_seed, "P", "R", ci="bootstrap", n_boot=500)
    d = fit.to_dict()
    assert d["ci"] == "bootstrap" and d["ci_scheme"] == "residuals"
    assert d["slope_ci"][1] - d["slope_ci"][0] > 0
    three = law.fit_law_frame(df[df.factor == "P"], "P", "R", ci="bootstrap", n_boot=500)
    assert three.to_dict()["ci_scheme"] == "within-x"
    assert law.fit_law_frame(df[df.factor == "P"], "P", "R").to_dict()["ci_scheme"] is None
