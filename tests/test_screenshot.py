"""The offline screenshot helper swaps the CDN MathJax for a local one, and nothing else."""

from pathlib import Path

import pytest

from tools.screenshot import localize_mathjax

PAGE = """<html><head>
<script>window.MathJax = {"options": {"processHtmlClass": "math"}}</script>
<script defer="defer" src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>
</head><body><span class="math">\\(x^2\\)</span></body></html>"""


def test_cdn_script_and_v3_config_are_replaced_by_local_mathjax2():
    out = localize_mathjax(PAGE, Path("/usr/share/javascript/mathjax/MathJax.js"))
    assert "cdn.jsdelivr" not in out and "processHtmlClass" not in out
    assert 'src="file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML"' in out
    assert "tex2jax" in out and '<span class="math">\\(x^2\\)</span>' in out


def test_a_page_without_mathjax_is_refused():
    with pytest.raises(ValueError, match="loads no MathJax"):
        localize_mathjax("<html><body>no maths</body></html>", Path("MathJax.js"))
