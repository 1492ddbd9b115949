"""Atomic writes, provenance, the code hash and load_or_compute keyed on it."""

from __future__ import annotations

import platform

import pandas as pd
import pytest

from overshadow_lab import records


def test_atomic_csv_write_leaves_no_temporary_file_on_error(tmp_path):
    out = tmp_path / "t.csv"
    records.write_csv_atomic(pd.DataFrame({"a": [1, 2]}), out)
    assert pd.read_csv(out)["a"].tolist() == [1, 2]

    class Boom(pd.DataFrame):
        def to_csv(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        records.write_csv_atomic(Boom({"a": [3]}), out)
    assert pd.read_csv(out)["a"].tolist() == [1, 2]  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_code_hash_is_stable_and_hex():
    h = records.code_hash()
    assert len(h) == 12 and int(h, 16) >= 0
    assert records.code_hash() == h


def test_provenance_has_the_row_fields():
    prov = records.provenance(device="cpu", wall_seconds=1.5)
    assert prov["wall_seconds"] == 1.5 and prov["device"] == "cpu"
    assert prov["code_hash"] == records.code_hash()
    assert set(records.row_provenance("cpu")) == set(records.ROW_PROVENANCE)


def test_load_or_compute_recomputes_a_table_made_by_other_code(tmp_path, monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"x": [len(calls)]})

    path = tmp_path / "r.csv"
    assert records.load_or_compute(path, compute)["x"].tolist() == [1]
    assert records.load_or_compute(path, compute)["x"].tolist() == [1]  # cached
    assert len(calls) == 1
    monkeypatch.setattr(records, "code_hash", lambda: "000000000000")
    assert records.load_or_compute(path, compute)["x"].tolist() == [2]  # stale: recomputed
    (tmp_path / "r.csv.code").unlink()
    assert records.load_or_compute(path, compute)["x"].tolist() == [3]  # no stamp: recomputed


def test_recorded_round_trip(tmp_path):
    assert records.load_recorded("none", tmp_path) is None
    records.save_recorded(pd.DataFrame({"R": [0.5]}), {"commit": "abc"}, "demo", tmp_path)
    table, prov = records.load_recorded("demo", tmp_path)
    assert table["R"].tolist() == [0.5] and prov["commit"] == "abc"


def test_atomic_write_gives_the_mode_a_plain_open_would(tmp_path):
    import os

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    out = records.write_text_atomic("y", tmp_path / "atomic.txt")
    assert os.stat(out).st_mode & 0o777 == os.stat(plain).st_mode & 0o777


def test_load_or_compute_recomputes_a_current_table_the_caller_rejects(tmp_path):
    path = tmp_path / "r.csv"
    records.load_or_compute(path, lambda: pd.DataFrame({"x": [1]}))
    again = records.load_or_compute(
        path, lambda: pd.DataFrame({"x": [1, 2]}), valid=lambda t: len(t) == 2
    )
    assert again["x"].tolist() == [1, 2]
    assert records.load_or_compute(path, lambda: 1 / 0, valid=lambda t: len(t) == 2).shape == (2, 1)


def test_cpu_model_reads_the_model_name_and_falls_back_to_platform(tmp_path):
    from overshadow_lab.records import cpu_model

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n")
    assert cpu_model(info) == "Intel(R) Xeon(R)"
    assert cpu_model(tmp_path / "missing") == (platform.processor() or platform.machine())
