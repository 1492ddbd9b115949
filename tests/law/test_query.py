"""Tables: the --where selection, grouped fits, and the refusal of rows that mix configurations."""

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
