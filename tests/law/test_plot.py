"""Drawing a law, and what importing the law costs: no torch, and no matplotlib or scipy.stats."""

import ast
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from overshadow_lab import law
from tests.law.synthetic import sweep

LAW_DIR = Path(law.__file__).parent


def test_plot_law_fit_draws_points_line_and_band_on_a_log_axis():
    fit = law.fit_law(*sweep())
    fig, ax = plt.subplots()
    try:
        assert law.plot_law_fit(fit, ax, label="fit") is ax
        assert ax.get_xscale() == "log"
        assert len(ax.lines) == 1 and len(ax.collections) == 2  # the band and the points
        line_x, line_y = ax.lines[0].get_data()
        assert line_y == pytest.approx(fit.predict(line_x))
        fig2, ax2 = plt.subplots()
        with pytest.raises(ValueError, match="band must be 'prediction', 'confidence' or None"):
            law.plot_law_fit(fit, ax2, band="wide")
        assert not ax2.lines  # refused before drawing anything
        plt.close(fig2)
    finally:
        plt.close(fig)


def _imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module)
    return names


def test_the_law_package_imports_neither_torch_nor_the_rest_of_the_lab():
    # the command line fits laws without torch: the law's modules import only the standard
    # library, numpy, pandas, scipy, matplotlib and each other
    third_party = {"numpy", "pandas", "scipy", "matplotlib"}
    for path in sorted(LAW_DIR.glob("*.py")):
        for name in _imported_modules(path):
            top = name.split(".")[0]
            ok = (
                top in third_party
                or top in sys.stdlib_module_names
                or top == "__future__"
                or name == "overshadow_lab.law"
                or name.startswith("overshadow_lab.law.")
            )
            assert ok, f"{path.name} imports {name}"


def test_importing_the_law_loads_neither_matplotlib_nor_scipy_stats():
    # both take a large part of a second; `overshadow-lab law fit` needs neither
    code = (
        "import sys\n"
        "from overshadow_lab import law\n"
        "law.fit_law([2, 5, 10, 25], [1.0, 2.5, 3.0, 4.2]).to_dict()\n"
        "heavy = [m for m in ('matplotlib', 'scipy.stats') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert law.log_axis.__module__ == 'overshadow_lab.law.plot'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
