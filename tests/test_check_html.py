"""The rendered-book scan: what it flags and what it leaves alone."""

from __future__ import annotations

from tools.check_html import main, scan_page


def _page(body: str) -> str:
    return f"<html><head><title>t</title></head><body>{body}</body></html>"


def test_clean_maths_code_and_outputs_pass():
    html = _page(
        '<section class="tex2jax_ignore mathjax_ignore"><p>A rate '
        '<span class="math notranslate nohighlight">\\(R = \\frac{a}{b}\\)</span> and</p>'
        '<div class="math notranslate nohighlight">\\[x\\]</div>'
        "<pre>price = '$5' {cite}</pre><code>$HOME</code>"
        '<div class="cell_output"><pre>$</pre></div>'
        '<p>see <span class="bibtex-citation">Zhang et al. (2024)</span></p></section>'
    )
    assert scan_page(html) == []


def test_stray_dollars_roles_and_empty_citations_are_flagged():
    html = _page(
        "<p>satisfies $<span class='math'>\\(x\\)</span>$</p>"
        "<p>as {prf:ref}`cor-mu` says and {cite:p}`a` and :::{note}</p>"
        "<p>raw \\(y\\) and <span class='bibtex-citation' id='id4'></span></p>"
    )
    problems = scan_page(html)
    text = " | ".join(problems)
    assert "satisfies $" in text and "{prf:ref}" in text and "{cite:p}" in text
    assert ":::{" in text and "\\(y" in text
    assert any("empty citation" in p for p in problems)


def test_main_reports_and_fails_on_a_bad_page(tmp_path, capsys):
    (tmp_path / "good.html").write_text(_page("<p>fine</p>"))
    assert main([str(tmp_path)]) == 0
    (tmp_path / "bad.html").write_text(_page("<p>left $x$ as text</p>"))
    assert main([str(tmp_path)]) == 1
    assert "bad.html: unrendered: left $x$ as text" in capsys.readouterr().out
    assert main([str(tmp_path / "missing")]) == 2
