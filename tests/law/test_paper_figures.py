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


def test_fig3_in_sample_lines_give_the_papers_numbers_and_their_frame():
    got = paper.fig3_in_sample(paper_figures())
    assert got["paper_line"] == pytest.approx(0.0803, abs=0.0005)
    assert got["refit"] == pytest.approx(0.0586, abs=0.0005)
    assert got["panel_mean"] == pytest.approx(0.201, abs=0.001)


def test_fig3_transfer_scores_every_method_on_every_panel_with_intervals():
    pred, scores = paper.fig3_transfer(paper_figures(), n_boot=300)
    assert set(scores.index) == set(law.METHODS) and (scores.n_tasks == 8).all()
    assert (scores.n_missing == 0).all() and (scores.n_points == 62).all()
    # the oracle is the in-sample refit of every panel, 5.86%
    assert scores.loc["oracle", "mean_rel_error"] == pytest.approx(0.0586, abs=0.0005)
    # predicting a point without it costs accuracy, and a flat line does worst of the per-panel
    assert scores.loc["refit", "mean_rel_error"] > scores.loc["oracle", "mean_rel_error"]
    assert scores.loc["constant", "mean_rel_error"] > scores.loc["keep", "mean_rel_error"]
    # leave one panel out pools panels of one factor only (x means different things)
    assert set(pred.factor) == {"P", "L", "S"}
