"""The glue/claim mechanism chapters use for numbers and qualitative claims in prose."""

import pytest

from overshadow_lab import claims


def test_glue_formats_and_records_the_text():
    assert claims.glue("t_rate", 12.3456, ".1f") == "12.3"
    assert claims.GLUED["t_rate"] == "12.3"
    assert claims.glue("t_ci", (1.234, 5.678), ".2f") == "[1.23, 5.68]"
    assert claims.glue("t_rate", 7, "d") == "7"  # re-running a cell replaces the value
    assert claims.GLUED["t_rate"] == "7"


def test_glue_rejects_names_the_role_cannot_refer_to():
    with pytest.raises(ValueError, match="letters, digits"):
        claims.glue("R at P=2", 1.0)


def test_claim_names_the_sentence_that_no_longer_holds():
    claims.claim(2 > 1, "two exceeds one")
    with pytest.raises(claims.ClaimFailed, match="R rises with P"):
        claims.claim(False, "R rises with P")
