"""Tests of overshadow_lab.lab.results: whole-row appends, row checks, repair, shards and merging."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from overshadow_lab.lab.results import (
    BadRowsWarning,
    ResultsWriter,
    append_row,
    check_output_path,
    config_hash,
    merge_results,
    read_results,
    rejected_path,
    scan_table,
    shard_files,
    shard_path,
)
from overshadow_lab.lab.sweep import plan_runs


def _row(seed=0, **changes):
    """A complete sweep row (made-up metrics) whose hash is that of its own settings."""
    run = plan_runs("P", [2], seeds=[seed], tier="cpu", **changes)[0]
    metrics = dict(S=1234, RR=np.float64(0.9), HR=0.25, R=27.77777777777778, sub_acc=0.5)
    metrics |= dict(steps=np.int64(40), seconds=1.5, tokens=5120, converged=np.bool_(True))
    return {**run, **metrics, "stop_reason": "rr_threshold", "note": None}


def test_a_row_reads_back_valid_with_the_values_written(tmp_path):
    out = tmp_path / "r.csv"
    rows = [_row(0), _row(1, lr=1e-05, L=2.5, span_len=2, position="middle")]
    with ResultsWriter(out) as w:
        assert [w.append(r) for r in rows] == [True, True]
        assert not w.append(rows[0])  # a run already in the table is not added again
    scan = scan_table(out.read_text())
    assert not scan.bad and [r["config_hash"] for r in scan.rows] == [
        r["config_hash"] for r in rows
    ]
    table = read_results(out)
    assert table["lr"].tolist() == [3e-3, 1e-05] and table["L"].tolist() == [5, 2.5]
    assert table["converged"].tolist() == [True, True] and table["note"].isna().all()
    assert table["R"].iloc[0] == 27.77777777777778


def test_a_table_is_made_with_its_first_row_only(tmp_path):
    out = tmp_path / "sub" / "r.csv"
    with ResultsWriter(out) as w:
        assert w.hashes == set()
    assert not (tmp_path / "sub").exists()
    append_row(out, _row())
    assert out.read_text().count("\n") == 2  # the header and the row, each one line


def test_text_with_line_breaks_stays_on_one_line(tmp_path):
    out = tmp_path / "r.csv"
    append_row(out, {"config_hash": "a", "stop_reason": "two\nlines, and a comma"})
    assert out.read_text().splitlines()[1] == 'a,"two lines, and a comma"'


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda h, r: r[: len(r) // 2], r"torn: the last line has no end of line"),
        (lambda h, r: r.rsplit(",", 3)[0] + "\n", r"torn: \d+ of \d+ fields"),
        (lambda h, r: r.replace(",0.25,", ",x,", 1), r"HR is not a number \('x'\)"),
        (lambda h, r: r.replace(",0.25,", ",,", 1), r"HR is empty"),
        (lambda h, r: r.replace(",end,", ",start,", 1), r"not the hash of the row's own settings"),
        (lambda h, r: r + r, r"a second row of run \w+ \(first on line 2\)"),
    ],
)
def test_scan_sorts_out_bad_rows(damage, reason, tmp_path):
    out = tmp_path / "r.csv"
    append_row(out, _row())
    header, row = out.read_text().splitlines(keepends=True)
    repeated = "second" in reason
    scan = scan_table(header + damage(header, row))
    assert [k for k, _, _ in scan.bad] == [3 if repeated else 2]
    assert len(scan.rows) == (1 if repeated else 0)
    assert re.search(reason, scan.bad[0][1]), scan.bad[0][1]


def test_a_torn_header_is_a_bad_line_and_an_empty_file_an_empty_table():
    assert scan_table("factor,val").bad == [(1, "torn header (no end of line)", "factor,val")]
    assert scan_table("").rows == [] and scan_table("").bad == []


def test_opening_a_damaged_table_moves_bad_rows_aside(tmp_path):
    out = tmp_path / "r.csv"
    for seed in range(3):
        append_row(out, _row(seed))
    text = out.read_text()
    out.write_text(text[:-20])  # the last row torn
    with pytest.warns(BadRowsWarning, match=r"1 bad row\(s\) in .*line 4: torn.*moved to"):
        with ResultsWriter(out) as w:
            assert len(w.hashes) == 2
            w.append(_row(2))  # the run redone
    assert out.read_text() == text  # the table as it was before the damage
    side = pd.read_csv(rejected_path(out))
    assert side.columns.tolist() == ["table_line", "reason", "row"] and len(side) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_results(out)) == 3


def test_read_results_of_other_tables(tmp_path):
    assert read_results(tmp_path / "none.csv").columns[0] == "factor"
    paper = tmp_path / "paper.csv"
    paper.write_text("x,y\n1,2\n3\n")  # not a sweep table: returned as read
    assert len(read_results(paper)) == 2


def test_check_output_path_creates_nothing(tmp_path):
    assert check_output_path(tmp_path / "a" / "b" / "r.csv") == tmp_path / "a" / "b" / "r.csv"
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match=r"not a regular file"):
        check_output_path("/dev/null")


def test_shard_files_are_found_and_checked(tmp_path):
    out = tmp_path / "res.csv"
    assert shard_path(out, (1, 4)) == tmp_path / "res.shard-1-of-4.csv"
    with pytest.raises(FileNotFoundError, match=r"no shard files res.shard-\*-of-\*.csv"):
        shard_files(out)
    for i in (0, 2):
        shard_path(out, (i, 3)).write_text("config_hash\n")
    rejected_path(shard_path(out, (1, 3))).write_text("x\n")  # not a shard
    with pytest.raises(FileNotFoundError, match=r"missing shard file\(s\) res.shard-1-of-3.csv"):
        shard_files(out)
    shard_path(out, (1, 3)).write_text("config_hash\n")
    assert shard_files(out) == [shard_path(out, (i, 3)) for i in range(3)]
    shard_path(out, (0, 2)).write_text("config_hash\n")
    with pytest.raises(ValueError, match=r"different shard counts \(2, 3\)"):
        shard_files(out)


def test_merge_adds_each_valid_run_once(tmp_path):
    out, a, b = tmp_path / "m.csv", tmp_path / "a.csv", tmp_path / "b.csv"
    append_row(out, _row(0))
    for seed in (0, 1):
        append_row(a, _row(seed))
    append_row(b, _row(2) | {"extra": 7})
    b.write_text(b.read_text() + "torn,row")
    b_text = b.read_text()
    with pytest.warns(BadRowsWarning, match=r"b.csv: line 3: torn.*left out"):
        report = merge_results([a, b], out)
    assert (report.added, report.repeated, report.bad) == (2, 1, 1)
    assert b.read_text() == b_text  # inputs are not changed
    merged = read_results(out)
    assert merged["seed"].tolist() == [0, 1, 2] and merged["extra"].isna().tolist() == [
        True,
        True,
        False,
    ]
    with pytest.warns(BadRowsWarning):
        again = merge_results([a, b], out)
    assert again.added == 0 and len(read_results(out)) == 3
    with pytest.raises(FileNotFoundError, match=r"no such results file"):
        merge_results([tmp_path / "nope.csv"], out)
    assert config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})


def test_rows_made_by_other_package_code_are_redone_on_resume(tmp_path):
    out = tmp_path / "r.csv"
    append_row(out, {**_row(0), "code_hash": "0123456789ab"})  # older code
    append_row(out, {**_row(1), "code_hash": "fedcba987654"})  # this code
    # a reader (the law CLI, a chapter) keeps both rows with their provenance ...
    assert read_results(out)["code_hash"].tolist() == ["0123456789ab", "fedcba987654"]
    # ... but a resumed sweep sets the old one aside and redoes its run
    with pytest.warns(BadRowsWarning, match=r"made by other package code \(code_hash 0123"):
        with ResultsWriter(out, code="fedcba987654") as w:
            assert w.hashes == {_row(1)["config_hash"]}
    assert read_results(out)["code_hash"].tolist() == ["fedcba987654"]
    assert "other package code" in pd.read_csv(rejected_path(out))["reason"].iloc[0]
