"""The recorded tables of the chapter "Contrastive decoding" agree with a seeded re-run.

``scripts/record_coda_lab.py`` wrote them; here one cell of the lab grid (P = 10, L = 5, the
distinct token last, seed 0: the chapter's live model) and a few MemoTrap rows are recomputed and
must fall inside the recorded values' 95% intervals (exactly equal, on the same machine).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from overshadow_lab.decoding.ablations import (
    detection_summary,
    method_summary,
    prompt_outcomes,
    text_outcomes,
    train_lab_model,
    wilson,
)
from overshadow_lab.records import load_recorded

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "record_coda_lab.py"


def _recorded(name):
    found = load_recorded(name)
    assert found is not None, f"{name} is not recorded: run python {SCRIPT.name} --part ..."
    table, prov = found
    assert prov.get("code_hash") and prov.get("wall_seconds")
    return table


def _inside(k_new, k_old, n):
    lo, hi = wilson(k_old, n)
    return lo - 1e-9 <= k_new / n <= hi + 1e-9


def test_lab_cell_agrees_with_the_recorded_grid():
    methods, detection = _recorded("coda_lab_methods"), _recorded("coda_lab_detection")
    cell = "P == 10 and L == 5 and position == 'end' and seed == 0"
    old_m, old_d = methods.query(cell), detection.query(cell)
    assert len(old_m) and len(old_d)
    model, sets = train_lab_model(10, 5, "end", 0)
    out = prompt_outcomes(model, sets)
    new_m, new_d = method_summary(out), detection_summary(out)
    keys = ["mask", "method"]
    both = new_m.merge(old_m, on=keys, suffixes=("", "_old"))
    assert len(both) == len(new_m)
    for _, r in both.query("method in ['greedy', 'oracle', 'coda_token_sum', 'scd']").iterrows():
        assert _inside(r["em"], r["em_old"], r["n"]), (r["mask"], r["method"], r["em"], r["em_old"])
        assert _inside(r["hr"], r["hr_old"], r["n"]), (r["mask"], r["method"], r["hr"], r["hr_old"])
    both = new_d.merge(old_d, on=["mask", "rule", "reduce"], suffixes=("", "_old"))
    assert len(both) == len(new_d)
    for _, r in both.iterrows():
        assert _inside(r["top1"], r["top1_old"], r["n"]), (r["rule"], r["reduce"])


def test_text_rows_agree_with_the_recorded_ranks():
    from overshadow_lab.hub import load_pretrained

    try:
        model, tok = load_pretrained("smollm2-135m-instruct")
    except Exception as err:  # noqa: BLE001 - offline machine without the model's wheel
        pytest.skip(f"SmolLM2 is not available here: {err}")
    spec = importlib.util.spec_from_file_location("record_coda_lab", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows = script._memotrap_rows(["proverb", "hate"], script.TEXT_ROWS).iloc[[0, 1]]
    new = text_outcomes(model, tok, rows.reset_index(drop=True), masks=("delete",))
    old = _recorded("coda_text_detection").query("mask == 'delete' and row in [0, 1]")
    both = new.merge(old, on=["row", "mask", "rule", "reduce"], suffixes=("", "_old"))
    assert len(both) == len(new) > 0
    assert np.allclose(both["rank"], both["rank_old"], equal_nan=True)
    finite = np.isfinite(both["score"]) & np.isfinite(both["score_old"])
    assert np.allclose(
        both.loc[finite, "score"], both.loc[finite, "score_old"], rtol=1e-3, atol=1e-3
    )
