"""Our re-analysis of the paper's digitised figures (overshadow_lab.paper)."""

import subprocess
import sys

import pytest

from overshadow_lab import law, paper
from overshadow_lab.paper import paper_figures


def test_paper_fig2_llama_p_panel_matches_the_spec():
    fits = law.fit_law_frame(
        paper_figures(),
        "x",
        "observed_R_pct",
        where={"figure": "fig2", "factor": "P"},
        group_by="model",
    )
    llama = fits["Llama-2-7B"]
    assert llama.slope == pytest.approx(13.84, abs=0.05)
    assert llama.intercept == pytest.approx(33.17, abs=0.05)
    assert llama.r2 == pytest.approx(0.96, abs=0.05)
    panels = paper.fit_paper_panels(paper_figures())
    assert len(panels) == 7 and panels["slope"].between(7, 17.5).all()


def test_paper_fig3_mean_relative_error_is_about_8_percent():
    panels, summary = paper.paper_fig3_errors(paper_figures())
    assert summary["mean_over_panels"] == pytest.approx(0.0804, abs=0.001)
    assert summary["mean_S"] == pytest.approx(0.0698, abs=0.001)
    assert summary["mean_P"] == pytest.approx(0.0801, abs=0.001)
    assert summary["mean_L"] == pytest.approx(0.0968, abs=0.001)
    assert len(panels) == 8


def test_transfer_table_computes_both_choices():
    table = paper.transfer_table(paper_figures())
    assert len(table) == 8
    llama = table[table.task == "time-event"].iloc[0]
    assert llama.source_slope == pytest.approx(13.84, abs=0.01)
    # refitting two parameters in-sample can never do worse in squared error than keeping one
    assert (table["err_refit"] <= table["err_keep"] + 0.02).all()
    assert table[["loo_keep", "loo_refit"]].notna().all().all()


def test_paper_can_be_imported_before_law_without_an_import_cycle():
    code = (
        "import overshadow_lab.paper as p\n"
        "from overshadow_lab import law\n"
        "assert p.fit_law is law.fit_law\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
